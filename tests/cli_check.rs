//! The `wgrad check` and `wgrad bench` commands, driven as a user runs them: exit status, the
//! one-line error, and the JSON reports (every row passes on every adapter present; the bench
//! reports positive figures — never more than that about timings).
#![cfg(not(target_arch = "wasm32"))] // native: blocking calls, files, processes

use serde_json::Value;
use std::collections::BTreeSet;
use std::process::{Command, Output};

fn wgrad(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wgrad"))
        .args(args)
        .env(
            "XDG_RUNTIME_DIR",
            std::env::var("XDG_RUNTIME_DIR").unwrap_or("/tmp".into()),
        )
        .env_remove("WGRAD_BACKEND")
        .env_remove("WGRAD_KERNELS")
        .output()
        .expect("the wgrad binary runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Backends of the adapters on this machine. With `CI=true`, none is a failure, never a skip.
fn backends_present() -> BTreeSet<String> {
    let present: BTreeSet<String> = wgrad::gpu::list_adapters()
        .iter()
        .map(|a| wgrad::gpu::backend_name(a.backend).to_string())
        .collect();
    if present.is_empty() && std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("no GPU adapter found; CI=true makes this a failure");
    }
    present
}

/// Asserts a failed run that printed exactly one line, `wgrad: ...`, on stderr.
fn assert_one_error_line(out: &Output, mentions: &str) {
    let err = text(&out.stderr);
    assert!(!out.status.success(), "expected a failure; stderr: {err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "expected one error line, got: {err}");
    assert!(lines[0].starts_with("wgrad: "), "{err}");
    assert!(
        lines[0].contains(mentions),
        "{err} should mention {mentions}"
    );
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", text(&out.stdout)))
}

#[test]
fn check_passes_on_every_adapter() {
    let present = backends_present();
    let out = wgrad(&["check", "--json"]);
    if present.is_empty() {
        // Nothing to check must not pass.
        assert_one_error_line(&out, "no GPU adapter");
        return;
    }
    assert!(out.status.success(), "check failed: {}", text(&out.stderr));
    let report = json(&out);
    // Without --kernels, CPU drivers run their own (register-blocked) matmul kernels.
    for (device, class) in classes(&report) {
        let want = if device == "Cpu" { "cpu" } else { "gpu" };
        assert_eq!(class, want, "{device}");
    }
    let rows = report["rows"].as_array().expect("rows");
    assert!(!rows.is_empty());
    let failed: Vec<&Value> = rows.iter().filter(|r| r["passed"] != true).collect();
    assert!(failed.is_empty(), "failing rows: {failed:#?}");
    assert_eq!(report["failed"], 0);
    // Every adapter present was checked, each with the whole catalogue, training step included.
    let covered: BTreeSet<String> = rows
        .iter()
        .filter_map(|r| r["backend"].as_str().map(String::from))
        .collect();
    assert_eq!(covered, present, "backends checked vs present");
    for backend in &present {
        let ops: BTreeSet<&str> = rows
            .iter()
            .filter(|r| r["backend"] == backend.as_str())
            .filter_map(|r| r["op"].as_str())
            .collect();
        for op in [
            "matmul",
            "matmul_rows",
            "matmul_tiled split sum_batches trans_b tanh",
            "matmul_tiled4 trans_a",
            "matmul_tiled_a4 trans_a +bias per col sigmoid",
            "matmul_tiled_b4 broadcast_a +bias per row relu",
            "im2col",
            "col2im_bias",
            "conv2d_backward_weight",
            "conv_transpose2d_backward_data",
            "sigmoid_backward",
            "reduce_mean",
            "softmax_cross_entropy_backward",
            "adamw_step v",
            "autoencoder step loss",
            "autoencoder step d loss/d encoder.0.weight",
        ] {
            assert!(ops.contains(op), "{op} was not checked on {backend}");
        }
    }
}

/// (device type, matmul kernel class) of each adapter of a check report.
fn classes(report: &Value) -> Vec<(String, String)> {
    report["adapters"]
        .as_array()
        .expect("adapters")
        .iter()
        .map(|a| {
            let s = |k: &str| a[k].as_str().unwrap_or_default().to_string();
            (s("device_type"), s("matmul_kernels"))
        })
        .collect()
}

/// `--kernels gpu` runs the GPU-class matmul kernels on every adapter, CPU drivers included:
/// the whole catalogue passes, and the report says so for each adapter.
#[test]
fn check_passes_with_gpu_kernels_forced() {
    let present = backends_present();
    if present.is_empty() {
        return;
    }
    let out = wgrad(&["check", "--json", "--kernels", "gpu"]);
    assert!(out.status.success(), "check failed: {}", text(&out.stderr));
    let report = json(&out);
    assert_eq!(report["failed"], 0, "{report:#}");
    for (_, class) in classes(&report) {
        assert_eq!(class, "gpu");
    }
    let out = wgrad(&["check", "--kernels", "fast"]);
    assert_one_error_line(&out, "--kernels");
}

#[test]
fn check_refuses_an_unknown_backend() {
    let out = wgrad(&["check", "--backend", "nosuch"]);
    assert_one_error_line(&out, "nosuch");
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
}

#[test]
fn bench_quick_reports_positive_figures() {
    let present = backends_present();
    let out = wgrad(&["bench", "--quick", "--json"]);
    if present.is_empty() {
        assert_one_error_line(&out, "no GPU adapter");
        return;
    }
    assert!(out.status.success(), "bench failed: {}", text(&out.stderr));
    let doc = json(&out);
    let adapters = doc["adapters"].as_array().expect("adapters");
    assert_eq!(adapters.len(), wgrad::gpu::list_adapters().len());
    for a in adapters {
        let name = &a["adapter"]["adapter"];
        let big = a["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|m| {
                m["op"] == "matmul"
                    && m["shape"]
                        .as_str()
                        .is_some_and(|s| s.starts_with("[1024x1024]·[1024x1024]"))
            })
            .unwrap_or_else(|| panic!("no matmul 1024³ on {name}"));
        let gflops = big["gflops"].as_f64().unwrap_or(0.0);
        assert!(gflops > 0.0, "matmul 1024³ on {name}: {big}");
        let training = &a["training"];
        for variant in ["blocking", "nonblocking"] {
            let ips = training[variant]["images_per_s"].as_f64().unwrap_or(0.0);
            assert!(ips > 0.0, "{variant} images/s on {name}: {training}");
        }
        assert!(training["peak_bytes"].as_u64().unwrap_or(0) > 0);
    }
}

#[test]
fn bench_profile_times_every_dispatch_of_a_step() {
    let present = backends_present();
    let out = wgrad(&["bench", "--profile", "--json"]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let v = json(&out);
    let adapters = v.as_array().expect("one profile per adapter");
    assert!(!present.is_empty());
    assert_eq!(adapters.len(), wgrad::gpu::list_adapters().len());
    // Every launch of the step's program, plus the one optimizer dispatch.
    let expected = wgrad::GpuContext::all(&wgrad::Options::default())
        .into_iter()
        .find_map(|c| c.ok())
        .map(|ctx| {
            let t = wgrad::train::Trainer::new(
                wgrad::exec::Device::Gpu(std::sync::Arc::new(ctx)),
                wgrad::nn::AutoencoderConfig::default(),
                64,
                wgrad::nn::Optimizer::Adam(wgrad::AdamConfig::adam()),
                0,
            )
            .unwrap();
            t.program().unwrap().launch_count() + 1
        });
    for a in adapters {
        let rows = a["dispatches"].as_array().unwrap();
        assert_eq!(Some(rows.len()), expected, "{a}");
        assert!(rows.iter().all(|r| r["ms"].as_f64().unwrap() >= 0.0));
        assert!(a["total_ms"].as_f64().unwrap() > 0.0);
        assert!(
            rows.iter()
                .any(|r| r["kernel"].as_str().unwrap().starts_with("adam_step"))
        );
    }
}

/// `wgrad tune --list` names the adapter's cache file in WGRAD_CACHE_DIR; `--clear` removes the
/// tune caches there (and nothing else).
#[test]
fn tune_lists_and_clears_its_cache() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_wgrad"))
            .args(args)
            .env(
                "XDG_RUNTIME_DIR",
                std::env::var("XDG_RUNTIME_DIR").unwrap_or("/tmp".into()),
            )
            .env("WGRAD_CACHE_DIR", dir.path())
            .env_remove("WGRAD_BACKEND")
            .output()
            .expect("the wgrad binary runs")
    };
    if !backends_present().is_empty() {
        let out = run(&["tune", "--list"]);
        assert!(out.status.success(), "stderr: {}", text(&out.stderr));
        let listed = text(&out.stdout);
        let shown = dir.path().display().to_string();
        assert!(listed.contains(&shown), "{listed}");
    }
    std::fs::write(dir.path().join("tune-0123.json"), b"{}").unwrap();
    std::fs::write(dir.path().join("other.json"), b"{}").unwrap();
    let out = run(&["tune", "--clear"]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("removed 1 tune cache file"),
        "{}",
        text(&out.stdout)
    );
    assert!(!dir.path().join("tune-0123.json").exists());
    assert!(dir.path().join("other.json").exists());
}
