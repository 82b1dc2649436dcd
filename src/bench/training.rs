//! Training throughput: the default autoencoder preset at batch 64 with Adam, timed by wall
//! clock (a step is several submissions and a read-back; no single pass to timestamp). Two ways
//! of reading the loss:
//! - blocking: `step` then `flush_losses` every step, so each step waits for its own loss (what
//!   other engines' "images/s with the loss printed every step" measures);
//! - non-blocking: `step` then `losses`, which returns the losses already back; steps queue up and
//!   the device never idles waiting for the host. The final flush is inside the timing.

use super::{Method, Options};
use crate::check::synthetic_images;
use crate::error::{Error, Result};
use crate::exec::Device;
use crate::gpu::select::tag;
use crate::gpu::{GpuContext, backend_name};
use crate::nn::{AutoencoderConfig, Optimizer};
use crate::optim_config::AdamConfig;
use crate::train::Trainer;
use serde::Serialize;
use std::sync::Arc;
use std::time::Instant;

/// The batch `wgrad bench` trains with; [`training_at`] takes any.
pub const BATCH: usize = 64;

/// Steps taken, the time they took, and images per second.
#[derive(Clone, Debug, Serialize)]
pub struct Throughput {
    pub steps: usize,
    pub seconds: f64,
    pub images_per_s: f64,
}

/// Training figures on one adapter.
#[derive(Clone, Debug, Serialize)]
pub struct TrainingFigures {
    pub adapter: String,
    pub backend: String,
    pub preset: String,
    pub batch: usize,
    pub optimizer: String,
    pub method: Method,
    /// Loss read back after every step.
    pub blocking: Throughput,
    /// Losses collected without waiting ([`Trainer::losses`]).
    pub nonblocking: Throughput,
    pub launches_per_step: usize,
    /// The memory plan's peak bytes (pool plus fixed tensors) and the naive sum of every tensor.
    pub peak_bytes: u64,
    pub naive_bytes: u64,
    /// The last loss seen, so a figure from a diverging or broken run is recognisable.
    pub last_loss: f32,
}

/// Runs `one_step` until at least `opts.min_steps` steps and `opts.target_s` seconds.
fn timed(
    opts: &Options,
    batch: usize,
    mut one_step: impl FnMut() -> Result<()>,
) -> Result<Throughput> {
    let start = Instant::now();
    let mut steps = 0;
    while steps < opts.min_steps || start.elapsed().as_secs_f64() < opts.target_s {
        one_step()?;
        steps += 1;
    }
    let seconds = start.elapsed().as_secs_f64();
    Ok(Throughput {
        steps,
        seconds,
        images_per_s: (steps * batch) as f64 / seconds,
    })
}

/// Measures training on `ctx` at batch [`BATCH`].
pub fn training(ctx: &Arc<GpuContext>, opts: &Options) -> Result<TrainingFigures> {
    training_at(ctx, opts, BATCH)
}

/// Measures training on `ctx` at batch `batch`.
pub fn training_at(ctx: &Arc<GpuContext>, opts: &Options, batch: usize) -> Result<TrainingFigures> {
    let adam = Optimizer::Adam(AdamConfig::adam());
    let config = AutoencoderConfig::default();
    let mut t = Trainer::new(Device::Gpu(ctx.clone()), config, batch, adam, 0)?;
    let x = synthetic_images(batch, 1);
    t.finish_tier_up()?;
    for _ in 0..2 {
        t.step(&x)?; // warm-up: first-use costs (driver compiles, memory touched)
    }
    let mut last_loss = f32::NAN;
    let mut note = |losses: Vec<(u64, f32)>| {
        if let Some(l) = losses.last() {
            last_loss = l.1;
        }
    };
    note(t.flush_losses()?);
    let blocking = timed(opts, batch, || {
        t.step(&x)?;
        let l = t.flush_losses()?;
        if l.is_empty() {
            return Err(Error::invalid("bench training", "a step reported no loss"));
        }
        note(l);
        Ok(())
    })?;
    let start = Instant::now();
    let mut n = timed(opts, batch, || {
        t.step(&x)?;
        note(t.losses()?);
        Ok(())
    })?;
    note(t.flush_losses()?);
    n.seconds = start.elapsed().as_secs_f64();
    n.images_per_s = (n.steps * batch) as f64 / n.seconds;
    let (peak_bytes, naive_bytes) = t
        .memory()
        .map_or((0, 0), |m| (m.peak_bytes(), m.naive_bytes));
    Ok(TrainingFigures {
        adapter: tag(ctx),
        backend: backend_name(ctx.backend()).into(),
        preset: "default (1x28x28, conv 16/32, code 32)".into(),
        batch,
        optimizer: "Adam (lr 1e-3)".into(),
        method: Method::WallClock,
        blocking,
        nonblocking: n,
        launches_per_step: t.program().map_or(0, |p| p.launch_count()),
        peak_bytes,
        naive_bytes,
        last_loss,
    })
}
