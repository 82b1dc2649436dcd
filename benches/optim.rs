//! The optimizer steps (shaders/optim.wgsl: sgd_step, adam_step, adamw_step) on the adapter chosen
//! the usual way (WGRAD_BACKEND=vulkan|gl|..., else the best present), over 111,521 parameters
//! (the default autoencoder's count, as one flat tensor) and over 2^20. Each timed iteration
//! submits the launch and waits for the device, so the figure is GPU time. The steps run in
//! place, so repeated iterations keep updating the same parameters, as training does.
//!
//! Throughput is bytes read + written, each element once:
//! - `sgd_step` (lr 1e-3, no momentum): reads param and grad, writes param: 12 bytes/param;
//! - `sgd_step momentum` (momentum 0.9, a step after the first): also reads and writes the
//!   momentum buffer: 20 bytes/param;
//! - `adam_step`, `adamw_step` (PyTorch defaults, step 10): read param, grad, m, v and write
//!   param, m, v: 28 bytes/param.

mod common;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use wgrad::gpu::Launch;
use wgrad::gpu::kernels::optim;
use wgrad::{AdamConfig, GpuContext, GpuTensor, Result, SgdConfig, Tensor};

const SIZES: [(&str, usize); 2] = [("111521 (autoencoder)", 111_521), ("1M", 1 << 20)];

/// `(kernel, bytes a parameter, launch)` over `n` parameters, and the tensors they use.
type Steps = (Vec<(&'static str, usize, Launch)>, Vec<GpuTensor>);

fn steps(ctx: &GpuContext, n: usize) -> Result<Steps> {
    let up = |name: &str, lo, hi, seed| ctx.upload(name, &Tensor::uniform([n], lo, hi, seed));
    let p = up("param", -1.0, 1.0, 1)?;
    let g = up("grad", -1.0, 1.0, 2)?;
    let buf = up("momentum_buf", -0.1, 0.1, 3)?;
    let m = up("m", -0.1, 0.1, 4)?;
    let v = up("v", 0.0, 0.01, 5)?;
    let momentum = SgdConfig {
        momentum: 0.9,
        ..SgdConfig::default()
    };
    let (adam, adamw) = (AdamConfig::adam(), AdamConfig::adamw());
    let list = vec![
        (
            "sgd_step",
            12,
            optim::sgd_step(ctx, &p, &g, None, &SgdConfig::default(), 2)?,
        ),
        (
            "sgd_step momentum",
            20,
            optim::sgd_step(ctx, &p, &g, Some(&buf), &momentum, 2)?,
        ),
        (
            "adam_step",
            28,
            optim::adam_step(ctx, &p, &g, &m, &v, &adam, 10)?,
        ),
        (
            "adamw_step",
            28,
            optim::adamw_step(ctx, &p, &g, &m, &v, &adamw, 10)?,
        ),
    ];
    Ok((list, vec![p, g, buf, m, v]))
}

fn bench(c: &mut Criterion) {
    let Some(ctx) = common::context("optim") else {
        return;
    };
    let adapter = ctx.describe();
    let mut group = c.benchmark_group(format!("optim [{adapter}]"));
    group.sample_size(10);
    for (size, n) in SIZES {
        let (list, _keep) = match steps(&ctx, n) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("optim bench: {size}: {e}");
                continue;
            }
        };
        for (kernel, per_param, l) in &list {
            let bytes = Throughput::Bytes((per_param * n) as u64);
            common::launches(&mut group, &ctx, format!("{kernel} {size}"), bytes, &[l]);
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
