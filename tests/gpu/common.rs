//! Shared by every GPU-versus-CPU test: one context per adapter on the machine (opened once per
//! test binary), and a checker that prints one line per comparison and fails with the report.

use std::sync::{Arc, OnceLock};
use wgrad::compare::{Tolerance, compare};
use wgrad::{GpuContext, Tensor};

static CONTEXTS: OnceLock<Vec<Arc<GpuContext>>> = OnceLock::new();

/// Every adapter of the machine. With `CI=true`, finding none is a failure, never a skip.
pub fn contexts() -> &'static [Arc<GpuContext>] {
    CONTEXTS.get_or_init(|| {
        let mut out = Vec::new();
        for c in GpuContext::all(&wgrad::Options::default()) {
            match c {
                Ok(c) => out.push(Arc::new(c)),
                Err(e) => eprintln!("skipping an adapter that would not open: {e}"),
            }
        }
        if out.is_empty() {
            let msg = "no GPU adapter found (install mesa-vulkan-drivers for lavapipe)";
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{msg}; CI=true makes this a failure");
            }
            eprintln!("{msg}: GPU tests compare nothing on this machine");
        }
        out
    })
}

/// Short adapter tag for reports: `vulkan:llvmpipe`.
pub fn tag(ctx: &GpuContext) -> String {
    let name = ctx.info.name.split_whitespace().next().unwrap_or("?");
    format!("{}:{name}", wgrad::gpu::backend_name(ctx.backend()))
}

/// Compares and panics with the full report on a mismatch; prints a one-line summary either way.
pub fn check(ctx: &GpuContext, what: &str, gpu: &[f32], cpu: &[f32], tol: Tolerance) {
    let c = compare(format!("[{}] {what}", tag(ctx)), gpu, cpu, tol);
    println!("{}", c.report());
    if !c.passed() {
        panic!("{}", c.report());
    }
}

/// Deterministic test data in [-1, 1).
pub fn data(shape: &[usize], seed: u64) -> Tensor {
    Tensor::uniform(shape.to_vec(), -1.0, 1.0, seed)
}
