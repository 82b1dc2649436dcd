//! Throughput (`wgrad bench`): per-kernel GFLOP/s and GB/s on one adapter, then training
//! images/s for the default autoencoder preset. Every figure carries the adapter, the backend and
//! the timing method, so numbers from different machines and drivers are never mixed up.
//!
//! Each item is warmed up (pipelines built, memory touched), timed once to size the batches, then
//! timed in batches of repeated dispatches until about `target` seconds are spent; the median of
//! the per-dispatch times is reported. FLOPs: 2·m·n·k per matmul (a convolution counts its
//! matmul's); bytes: every tensor each launch reads plus every tensor it writes, once.
//!
//! | file | holds |
//! |---|---|
//! | `timer.rs` | timestamp queries where the adapter has them, else wall clock with a device wait |
//! | `kernels.rs` | the catalogue of kernel items: shapes, FLOP and byte counts, launches |
//! | `conv.rs` | the convolution items (im2col / col2im, conv2d and conv_transpose2d at the preset's layers) |
//! | `training.rs` | training images/s, loss read every step and not, and the memory plan |
//! | `gpu.rs` | the one-shot GPU measurement (`--gpu`): big matmuls, convolutions, training at three batches |

mod conv;
mod gpu;
mod kernels;
pub use crate::gpu::timer;
mod training;

pub use gpu::{GpuReport, MATMUL_SIZES, TRAIN_BATCHES, gpu_report};
pub use kernels::{Item, Prepared, catalogue};
pub use timer::Method;
pub use training::{TrainingFigures, training, training_at};

use crate::check::AdapterRow;
use crate::error::Result;
use crate::gpu::select::tag;
use crate::gpu::{GpuContext, Launch, backend_name};
use serde::Serialize;
use std::sync::Arc;

/// How long to measure.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Seconds to spend timing each item (after warm-up).
    pub target_s: f64,
    /// Batches per item; the median is reported.
    pub samples: usize,
    /// Training steps at least, per variant.
    pub min_steps: usize,
}

impl Options {
    /// About 0.3 s per item, 7 samples; 30 training steps per variant (5-step figures of the
    /// same build ranged 39–72 ms a step on lavapipe).
    pub fn full() -> Self {
        Options {
            target_s: 0.3,
            samples: 7,
            min_steps: 30,
        }
    }
    /// A smoke run (`--quick`): about 0.03 s per item, 3 samples.
    pub fn quick() -> Self {
        Options {
            target_s: 0.03,
            samples: 3,
            min_steps: 3,
        }
    }
}

/// One kernel's figures on one adapter.
#[derive(Clone, Debug, Serialize)]
pub struct Measurement {
    pub op: String,
    pub shape: String,
    pub adapter: String,
    pub backend: String,
    pub method: Method,
    /// Median seconds per run of the item's launches.
    pub seconds: f64,
    pub samples: usize,
    /// Runs per timed batch.
    pub reps: usize,
    pub flops: f64,
    pub bytes: f64,
    /// `flops / seconds / 1e9`, when the item does arithmetic worth counting.
    pub gflops: Option<f64>,
    pub gbytes_per_s: f64,
    /// Why the item could not be measured.
    pub error: Option<String>,
}

/// Everything measured on one adapter.
#[derive(Clone, Debug, Serialize)]
pub struct AdapterBench {
    pub adapter: AdapterRow,
    pub method: Method,
    pub items: Vec<Measurement>,
    pub training: Option<TrainingFigures>,
    pub training_error: Option<String>,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// `(median seconds per run, samples, reps per sample)` of `launches`.
pub fn measure(
    ctx: &GpuContext,
    method: Method,
    launches: &[&Launch],
    opts: &Options,
) -> Result<(f64, usize, usize)> {
    timer::time(ctx, Method::WallClock, launches, 1)?; // warm-up
    let first = timer::time(ctx, method, launches, 1)?;
    let samples = opts.samples.max(1);
    if first * samples as f64 >= opts.target_s {
        // One run already fills the budget: as many single runs as fit, at least one.
        let n = ((opts.target_s / first) as usize).clamp(1, samples);
        let mut times = vec![first];
        for _ in 1..n {
            times.push(timer::time(ctx, method, launches, 1)?);
        }
        return Ok((median(times), n, 1));
    }
    let reps = ((opts.target_s / samples as f64 / first) as usize).clamp(1, 10_000);
    let mut times = Vec::with_capacity(samples);
    for _ in 0..samples {
        times.push(timer::time(ctx, method, launches, reps)? / reps as f64);
    }
    Ok((median(times), samples, reps))
}

/// Measures one item on `ctx`; an error becomes the measurement's `error`.
pub fn measure_item(ctx: &GpuContext, item: &Item, opts: &Options) -> Measurement {
    let method = Method::for_context(ctx);
    let mut m = Measurement {
        op: item.op.clone(),
        shape: item.shape.clone(),
        adapter: tag(ctx),
        backend: backend_name(ctx.backend()).into(),
        method,
        seconds: f64::NAN,
        samples: 0,
        reps: 0,
        flops: item.flops,
        bytes: item.bytes,
        gflops: None,
        gbytes_per_s: f64::NAN,
        error: None,
    };
    let result = (item.build)(ctx).and_then(|p| {
        let launches: Vec<&Launch> = p.launches.iter().collect();
        measure(ctx, method, &launches, opts)
    });
    match result {
        Ok((s, samples, reps)) => {
            m.seconds = s;
            m.samples = samples;
            m.reps = reps;
            m.gflops = (item.flops > 0.0).then(|| item.flops / s / 1e9);
            m.gbytes_per_s = item.bytes / s / 1e9;
        }
        Err(e) => m.error = Some(e.to_string()),
    }
    m
}

/// Every kernel item, then training, on one adapter; `on_item` sees each measurement as it is
/// made (for progress).
pub fn bench_adapter(
    ctx: &Arc<GpuContext>,
    opts: &Options,
    on_item: &mut dyn FnMut(&Measurement),
) -> AdapterBench {
    let mut items = Vec::new();
    for item in catalogue() {
        let m = measure_item(ctx, &item, opts);
        on_item(&m);
        items.push(m);
    }
    let (training, training_error) = match training(ctx, opts) {
        Ok(t) => (Some(t), None),
        Err(e) => (None, Some(e.to_string())),
    };
    AdapterBench {
        adapter: AdapterRow::of(ctx),
        method: Method::for_context(ctx),
        items,
        training,
        training_error,
    }
}
