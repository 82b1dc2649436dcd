//! One training step of the default autoencoder preset at batch 64 with Adam, on the adapter
//! chosen the usual way (WGRAD_BACKEND=vulkan|gl|..., else the best present). Throughput is in
//! "elements" = images, so elem/s reads as images/s. Two ways of reading the loss:
//! - `loss every step`: each step waits for its own loss (what burn's figure measures);
//! - `loss ring`: steps queue up and losses come back a few steps late, without stalling.

mod common;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::sync::Arc;
use wgrad::exec::Device;
use wgrad::nn::{AutoencoderConfig, Optimizer};
use wgrad::train::Trainer;
use wgrad::{AdamConfig, Tensor};

const BATCH: usize = 64;

fn bench(c: &mut Criterion) {
    let Some(ctx) = common::context("train_step").map(Arc::new) else {
        return;
    };
    let adapter = ctx.describe();
    let mut t = match Trainer::new(
        Device::Gpu(ctx),
        AutoencoderConfig::default(),
        BATCH,
        Optimizer::Adam(AdamConfig::adam()),
        0,
    ) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("train_step bench: {e}");
            return;
        }
    };
    if let Err(e) = t.finish_tier_up() {
        eprintln!("train_step bench: {e}");
        return;
    }
    let Some(m) = t.memory() else { return };
    println!(
        "default preset, batch {BATCH}, {}: {} kernels a step; planned peak {} bytes vs naive {} ({:.0}%)",
        adapter,
        t.program().map_or(0, |p| p.launch_count()),
        m.peak_bytes(),
        m.naive_bytes,
        100.0 * m.peak_bytes() as f64 / m.naive_bytes as f64
    );
    let x = Tensor::uniform([BATCH, 1, 28, 28], 0.0, 1.0, 1);
    let mut group = c.benchmark_group(format!(
        "train step, default preset, batch {BATCH}, Adam [{adapter}]"
    ));
    group.throughput(Throughput::Elements(BATCH as u64));
    group.sample_size(20);
    group.bench_function("loss every step", |b| {
        b.iter(|| {
            t.step(&x).expect("step");
            t.flush_losses().expect("loss")
        })
    });
    group.bench_function("loss ring", |b| {
        b.iter(|| {
            t.step(&x).expect("step");
            t.losses().expect("loss")
        })
    });
    group.finish();
    let _ = t.flush_losses();
}

criterion_group!(benches, bench);
criterion_main!(benches);
