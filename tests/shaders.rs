//! Every shader parses, validates, and translates to SPIR-V, MSL, HLSL and GLSL with naga — no
//! GPU needed. This is our evidence for Metal and DX12 on machines that have neither.
#![cfg(not(target_arch = "wasm32"))] // native: blocking calls, files, processes

use wgrad::gpu::shaders::ALL;
use wgrad::gpu::translate::{Target, translate};

#[test]
fn every_shader_translates_to_every_target() {
    let mut failures = Vec::new();
    for file in ALL {
        match translate(*file) {
            Ok(t) => {
                assert!(!t.is_empty(), "{} has no entry points", file.name);
                for target in [Target::SpirV, Target::Msl, Target::Hlsl, Target::Glsl] {
                    let n = t.iter().filter(|x| x.target == target).count();
                    assert_eq!(
                        n * 4,
                        t.len(),
                        "{}: {target:?} missing for some entry point",
                        file.name
                    );
                }
                let entries: Vec<&str> = t
                    .iter()
                    .filter(|x| x.target == Target::SpirV)
                    .map(|x| x.entry.as_str())
                    .collect();
                println!(
                    "{}: {} entry points translated to SPIR-V, MSL, HLSL, GLSL: {}",
                    file.name,
                    entries.len(),
                    entries.join(", ")
                );
            }
            Err(e) => failures.push(e.to_string()),
        }
    }
    assert!(
        failures.is_empty(),
        "shader failures:\n{}",
        failures.join("\n")
    );
}

#[test]
fn a_broken_shader_is_reported_with_file_and_line() {
    let bad = wgrad::gpu::shaders::ShaderFile {
        name: "broken.wgsl",
        source: "fn f() -> f32 { return 1u; }",
    };
    let e = wgrad::gpu::translate::validate(bad)
        .unwrap_err()
        .to_string();
    assert!(e.contains("broken.wgsl"), "{e}");
}
