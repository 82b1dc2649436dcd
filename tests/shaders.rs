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
    let bad = wgrad::gpu::shaders::ShaderFile::new("broken.wgsl", "fn f() -> f32 { return 1u; }");
    let e = wgrad::gpu::translate::validate(bad)
        .unwrap_err()
        .to_string();
    assert!(e.contains("broken.wgsl"), "{e}");
}

/// The workgroup memory the launcher reports for a mapping (`MatmulTile::workgroup`, what
/// `fits` checks against the device) is what matmul.wgsl declares once the mapping's pipeline
/// constants are applied: the `matmul_tiled*` panels are sized by override expressions.
#[test]
fn matmul_workgroup_memory_is_what_the_shader_declares() {
    use wgrad::gpu::kernels::matmul::{MatmulTile, TILED_SHAPES, entry_and_constants};
    let file = wgrad::gpu::shaders::MATMUL;
    let (module, info) = wgrad::gpu::translate::validate(file).unwrap();
    let mut tiles: Vec<MatmulTile> = TILED_SHAPES.to_vec();
    tiles.push(MatmulTile::Shared);
    for (tm, tn, wg_x, wg_y, tk) in [(8, 4, 8, 4, 4), (4, 8, 4, 8, 32), (4, 4, 3, 5, 8)] {
        tiles.push(MatmulTile::Tiled {
            tm,
            tn,
            wg_x,
            wg_y,
            tk,
            vec4: true,
        });
    }
    let mut aligned = wgrad::MatmulSpec::new(8, 8, 8);
    aligned.trans_b = true;
    for tile in tiles {
        for spec in [wgrad::MatmulSpec::new(3, 5, 7), aligned] {
            let (entry, consts) = entry_and_constants(&spec, tile);
            let constants = consts.iter().map(|(k, v)| (k.to_string(), *v)).collect();
            let (m, _) = naga::back::pipeline_constants::process_overrides(
                &module,
                &info,
                Some((naga::ShaderStage::Compute, entry)),
                &constants,
            )
            .unwrap();
            let m = m.into_owned();
            let i = m.entry_points.iter().position(|e| e.name == entry).unwrap();
            let mut validator = naga::valid::Validator::new(
                naga::valid::ValidationFlags::all(),
                naga::valid::Capabilities::default(),
            );
            let info = validator.validate(&m).unwrap();
            let ep = info.get_entry_point(i);
            let declared: u32 = m
                .global_variables
                .iter()
                .filter(|(h, g)| g.space == naga::AddressSpace::WorkGroup && !ep[*h].is_empty())
                .map(|(_, g)| m.types[g.ty].inner.size(m.to_ctx()))
                .sum();
            assert_eq!(declared, tile.workgroup().1, "{entry} {tile:?}");
        }
    }
}
