//! What every bench shares: the adapter (chosen the usual way: `WGRAD_BACKEND=vulkan|gl|...`,
//! else the best present; `WGRAD_TUNE`, `WGRAD_TIERED`, `WGRAD_KERNELS` and `WGRAD_SUBGROUPS` as
//! the command reads them), named in the output, and timing a launch as real GPU time.

#![allow(dead_code)] // each bench uses part of this

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Throughput};
use wgrad::gpu::tune::TuneMode;
use wgrad::gpu::{AdapterChoice, BackendKind, Launch};
use wgrad::{GpuContext, Options, Result};

/// The engine options the benches run with, from `WGRAD_BACKEND`, `WGRAD_TUNE`, `WGRAD_TIERED`,
/// `WGRAD_KERNELS` and `WGRAD_SUBGROUPS` (no disk cache: a bench measures what it was asked to).
pub fn options() -> Result<Options> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let mut o = Options::default();
    if let Some(b) = env("WGRAD_BACKEND").filter(|b| b != "auto") {
        o.adapter = AdapterChoice::backend(BackendKind::parse(&b)?);
    }
    if let Some(m) = env("WGRAD_TUNE") {
        o.tune = Some(TuneMode::parse(&m)?);
    }
    if let Some(t) = env("WGRAD_TIERED") {
        o.tier_up = Some(!matches!(t.as_str(), "0" | "off" | "false"));
    }
    if let Some(k) = env("WGRAD_KERNELS") {
        o.kernels = wgrad::KernelClass::parse(&k)?;
    }
    if let Some(s) = env("WGRAD_SUBGROUPS") {
        o.subgroups = Some(!matches!(s.as_str(), "0" | "off" | "false"));
    }
    Ok(o)
}

/// The adapter to measure, with a line naming it; `None` (after saying why) when there is none.
pub fn context(bench: &str) -> Option<GpuContext> {
    match options().and_then(|o| GpuContext::new(&o)) {
        Ok(ctx) => {
            println!("{bench} bench on {}", ctx.describe());
            Some(ctx)
        }
        Err(e) => {
            eprintln!("{bench} bench: no adapter: {e}");
            None
        }
    }
}

/// Benchmarks `launches` (run in order, one submission per batch of iterations, waiting for
/// the device) under `id`, after one run to compile and warm them.
pub fn launches(
    group: &mut BenchmarkGroup<'_, WallTime>,
    ctx: &GpuContext,
    id: String,
    throughput: Throughput,
    launches: &[&Launch],
) {
    if let Err(e) = ctx.time_launches(launches, 1) {
        eprintln!("{id}: {e}");
        return;
    }
    group.throughput(throughput);
    group.bench_function(id, |b| {
        b.iter_custom(|iters| {
            ctx.time_launches(launches, iters as usize)
                .expect("a launch that ran once fails now")
        })
    });
}
