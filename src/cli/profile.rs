//! `wgrad bench --profile`: the GPU time of every dispatch of one training step of the default
//! preset (batch 64, Adam), per adapter, so anybody can see where the time goes.

use serde::Serialize;
use std::sync::Arc;
use wgrad::exec::Device;
use wgrad::gpu::GpuContext;
use wgrad::gpu::select::tag;
use wgrad::nn::{AutoencoderConfig, Optimizer};
use wgrad::train::Trainer;
use wgrad::{AdamConfig, Result, Tensor};

const BATCH: usize = 64;
/// Steps profiled; every dispatch reports its median.
const RUNS: usize = 7;

#[derive(Serialize)]
pub struct ProfileRow {
    pub node: String,
    pub kernel: String,
    pub ms: f64,
}

#[derive(Serialize)]
pub struct AdapterProfile {
    pub adapter: String,
    pub method: String,
    pub total_ms: f64,
    pub dispatches: Vec<ProfileRow>,
}

/// Profiles the step (after three warm-up steps) on `ctx`.
pub fn profile(ctx: &Arc<GpuContext>) -> Result<AdapterProfile> {
    let mut t = Trainer::new(
        Device::Gpu(ctx.clone()),
        AutoencoderConfig::default(),
        BATCH,
        Optimizer::Adam(AdamConfig::adam()),
        0,
    )?;
    let x = Tensor::uniform([BATCH, 1, 28, 28], 0.0, 1.0, 1);
    t.finish_tier_up()?;
    for _ in 0..3 {
        t.step(&x)?;
    }
    t.flush_losses()?;
    // One dispatch per pass is noisy on a shared machine (single runs of the same step ranged
    // 66–122 ms on lavapipe): each dispatch's figure is its median over RUNS profiled steps.
    let runs: Vec<wgrad::exec::Profile> =
        (0..RUNS).map(|_| t.profile(&x)).collect::<Result<_>>()?;
    let first = &runs[0];
    let dispatches: Vec<ProfileRow> = first
        .dispatches
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let mut ms: Vec<f64> = runs.iter().map(|r| r.dispatches[i].seconds * 1e3).collect();
            ms.sort_by(f64::total_cmp);
            ProfileRow {
                node: d.label.clone(),
                kernel: d.kernel.clone(),
                ms: ms[ms.len() / 2],
            }
        })
        .collect();
    Ok(AdapterProfile {
        adapter: tag(ctx),
        method: format!("{} (median of {RUNS} steps)", first.method),
        total_ms: dispatches.iter().map(|d| d.ms).sum(),
        dispatches,
    })
}

/// Prints a profile: every dispatch in order with its share, then the totals per kernel.
pub fn print(p: &AdapterProfile) {
    println!(
        "\n== one training step, default preset, batch {BATCH}, Adam [{}], timed by {}: {:.2} ms in {} dispatches",
        p.adapter,
        p.method,
        p.total_ms,
        p.dispatches.len()
    );
    println!("{:>9} {:>6}  {:<30} node", "ms", "share", "kernel");
    for d in &p.dispatches {
        println!(
            "{:>9.3} {:>5.1}%  {:<30} {}",
            d.ms,
            100.0 * d.ms / p.total_ms.max(1e-12),
            d.kernel,
            d.node
        );
    }
    let mut by_kernel: Vec<(String, f64, usize)> = Vec::new();
    for d in &p.dispatches {
        match by_kernel.iter_mut().find(|k| k.0 == d.kernel) {
            Some(k) => {
                k.1 += d.ms;
                k.2 += 1;
            }
            None => by_kernel.push((d.kernel.clone(), d.ms, 1)),
        }
    }
    by_kernel.sort_by(|a, b| b.1.total_cmp(&a.1));
    println!("per kernel:");
    for (k, ms, n) in by_kernel {
        println!(
            "{ms:>9.3} {:>5.1}%  {k:<28} ({n} dispatches)",
            100.0 * ms / p.total_ms.max(1e-12)
        );
    }
}
