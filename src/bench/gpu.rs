//! The one-shot GPU measurement (`wgrad bench --gpu`, which `benches/gpu.sh` runs): what to
//! measure when a machine with a real GPU is at hand for a few minutes. Square matmuls from
//! 1024³ to 8192³ in GFLOP/s (and as a share of the GPU's fp32 peak when the caller knows it),
//! the default preset's convolutions, and training images/s of the default autoencoder at batch
//! 64, 256 and 1024 with the kernel launches a step. On a CPU driver the sizes stop at 2048³
//! and batch 256 (the rest would take minutes each there), and the report says what it skipped.

use super::{Measurement, Options, TrainingFigures, measure_item, training_at};
use crate::check::AdapterRow;
use crate::gpu::GpuContext;
use crate::spec::MatmulSpec;
use serde::Serialize;
use std::sync::Arc;

/// Square matmul sizes (m = n = k).
pub const MATMUL_SIZES: [usize; 4] = [1024, 2048, 4096, 8192];
/// Training batch sizes.
pub const TRAIN_BATCHES: [usize; 3] = [64, 256, 1024];

/// Everything `wgrad bench --gpu` measured on one adapter.
#[derive(Clone, Debug, Serialize)]
pub struct GpuReport {
    pub adapter: AdapterRow,
    /// The fp32 peak the caller gave (GFLOP/s), for the share of peak.
    pub peak_gflops: Option<f64>,
    pub matmul: Vec<Measurement>,
    pub conv: Vec<Measurement>,
    pub training: Vec<TrainingFigures>,
    /// `(batch, why)` for training runs that failed.
    pub training_errors: Vec<(usize, String)>,
    /// What was left out on a CPU driver.
    pub skipped: Vec<String>,
}

/// Measures `ctx`; `on_item` sees each kernel measurement as it is made, `on_training` each
/// training figure (for progress).
pub fn gpu_report(
    ctx: &Arc<GpuContext>,
    opts: &Options,
    peak_gflops: Option<f64>,
    on_item: &mut dyn FnMut(&Measurement),
    on_training: &mut dyn FnMut(&TrainingFigures),
) -> GpuReport {
    let cpu = ctx.is_cpu_driver();
    let mut skipped = Vec::new();
    let mut matmul = Vec::new();
    for n in MATMUL_SIZES {
        if cpu && n > 2048 {
            skipped.push(format!("matmul {n}³ (a CPU driver)"));
            continue;
        }
        let m = measure_item(
            ctx,
            &super::kernels::matmul_item("", MatmulSpec::new(n, n, n)),
            opts,
        );
        on_item(&m);
        matmul.push(m);
    }
    let mut conv = Vec::new();
    match super::conv::conv_items() {
        Ok(items) => {
            for item in items {
                let m = measure_item(ctx, &item, opts);
                on_item(&m);
                conv.push(m);
            }
        }
        Err(e) => skipped.push(format!("convolutions: {e}")),
    }
    let (mut training, mut training_errors) = (Vec::new(), Vec::new());
    for batch in TRAIN_BATCHES {
        if cpu && batch > 256 {
            skipped.push(format!("training at batch {batch} (a CPU driver)"));
            continue;
        }
        match training_at(ctx, opts, batch) {
            Ok(t) => {
                on_training(&t);
                training.push(t);
            }
            Err(e) => training_errors.push((batch, e.to_string())),
        }
    }
    GpuReport {
        adapter: AdapterRow::of(ctx),
        peak_gflops,
        matmul,
        conv,
        training,
        training_errors,
        skipped,
    }
}
