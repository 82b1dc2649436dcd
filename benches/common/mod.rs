//! What every bench shares: the adapter (chosen the usual way: `WGRAD_BACKEND=vulkan|gl|...`,
//! else the best present), named in the output, and timing a launch as real GPU time.

#![allow(dead_code)] // each bench uses part of this

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Throughput};
use wgrad::GpuContext;
use wgrad::gpu::{AdapterChoice, Launch};

/// The adapter to measure, with a line naming it; `None` (after saying why) when there is none.
pub fn context(bench: &str) -> Option<GpuContext> {
    match AdapterChoice::from_env().and_then(|ch| GpuContext::new(&ch)) {
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
