//! Reductions and losses (shaders/reduce.wgsl, shaders/loss.wgsl) on the adapter chosen the usual
//! way (WGRAD_BACKEND=vulkan|gl|..., else the best present). Each timed iteration submits the
//! launch and waits for the device, so the figure is GPU time.
//!
//! | id | what |
//! |---|---|
//! | `reduce_sum 1M -> 1` | every element of a `[2^20]` vector to one scalar (one workgroup) |
//! | `reduce_sum 64x16x14x14 [0,2,3] -> 16` | a conv bias gradient (encoder conv 1's output) |
//! | `mse_loss 64x1x28x28` / `mse_loss_backward ..` | the autoencoder's reconstruction loss |
//! | `mse_loss 1M` / `mse_loss_backward 1M` | the same kernels over `[2^20]` |
//! | `softmax_cross_entropy BxK` / `.._backward BxK` | classifier logits, B = 64 and 1024, K = 10 |
//!
//! On an adapter with subgroup operations every case runs twice in one group, with them (`sg`,
//! `Options::subgroups` forced on, CPU drivers included) and without (`plain`, a second device
//! with them off): the two tree_sum variants side by side (the same bits; tests/gpu/subgroups.rs).
//!
//! Throughput is bytes read + written, each element once: reduce reads the input and writes the
//! output; mse_loss reads y and t and writes one scalar, its backward reads y, t and the upstream
//! scalar and writes dy; cross-entropy reads the logits and the (u32) labels and writes one
//! scalar, its backward reads those and the upstream scalar and writes dz.

mod common;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use wgrad::gpu::Launch;
use wgrad::gpu::kernels::{loss, reduce};
use wgrad::spec::ReduceSpec;
use wgrad::{GpuContext, GpuTensor, Options, Result, Shape, Tensor};

/// `(id, bytes moved, launch)` and the tensors the launches use.
type Cases = (Vec<(String, usize, Launch)>, Vec<GpuTensor>);

fn random(ctx: &GpuContext, name: &str, shape: &Shape, seed: u64) -> Result<GpuTensor> {
    ctx.upload(name, &Tensor::uniform(shape, -1.0, 1.0, seed))
}

fn reduce_cases(ctx: &GpuContext) -> Result<Cases> {
    let mut cases = Vec::new();
    let mut keep = Vec::new();
    for (name, dims, axes) in [
        ("1M", vec![1usize << 20], vec![0usize]),
        ("64x16x14x14 [0,2,3]", vec![64, 16, 14, 14], vec![0, 2, 3]),
    ] {
        let spec = ReduceSpec::new(dims, &axes)?;
        let out_shape = spec.out_shape();
        let x = random(ctx, "x", &spec.shape, 1)?;
        let y = ctx.zeros("y", &out_shape)?;
        let bytes = 4 * (x.numel() + y.numel());
        let id = format!("reduce_sum {name} -> {out_shape}");
        cases.push((id, bytes, reduce::reduce_sum(ctx, &spec, &x, &y)?));
        keep.extend([x, y]);
    }
    Ok((cases, keep))
}

fn loss_cases(ctx: &GpuContext) -> Result<Cases> {
    let mut cases = Vec::new();
    let mut keep = Vec::new();
    let g = ctx.upload("g", &Tensor::full([1], 1.0))?;
    for (name, dims) in [
        ("64x1x28x28", vec![64usize, 1, 28, 28]),
        ("1M", vec![1 << 20]),
    ] {
        let shape = Shape::new(dims);
        let n = shape.numel();
        let y = random(ctx, "y", &shape, 1)?;
        let t = random(ctx, "t", &shape, 2)?;
        let out = ctx.zeros("loss", [1])?;
        let dy = ctx.zeros("dy", &shape)?;
        cases.push((
            format!("mse_loss {name}"),
            4 * (2 * n + 1),
            loss::mse_loss(ctx, &y, &t, &out)?,
        ));
        cases.push((
            format!("mse_loss_backward {name}"),
            4 * (3 * n + 1),
            loss::mse_loss_backward(ctx, &y, &t, &g, &dy)?,
        ));
        keep.extend([y, t, out, dy]);
    }
    const CLASSES: usize = 10;
    for rows in [64usize, 1024] {
        let shape = Shape::new([rows, CLASSES]);
        let n = shape.numel();
        let z = random(ctx, "logits", &shape, 3)?;
        let labels: Vec<u32> = (0..rows).map(|i| (i * 7 % CLASSES) as u32).collect();
        let labels = loss::upload_labels(ctx, "labels", &labels, CLASSES)?;
        let out = ctx.zeros("loss", [1])?;
        let dz = ctx.zeros("dz", &shape)?;
        cases.push((
            format!("softmax_cross_entropy {rows}x{CLASSES}"),
            4 * (n + rows + 1),
            loss::softmax_cross_entropy(ctx, &z, &labels, &out)?,
        ));
        cases.push((
            format!("softmax_cross_entropy_backward {rows}x{CLASSES}"),
            4 * (2 * n + rows + 1),
            loss::softmax_cross_entropy_backward(ctx, &z, &labels, &g, &dz)?,
        ));
        keep.extend([z, labels, out, dz]);
    }
    keep.push(g);
    Ok((cases, keep))
}

fn bench(c: &mut Criterion) {
    let Some(ctx) = common::context("reduce") else {
        return;
    };
    let adapter = ctx.describe();
    // The same adapter with subgroups forced on and off, to time both tree_sum variants.
    let mut variants = vec![("", ctx)];
    if variants[0].1.has_subgroups() {
        let open = |on| {
            common::options().and_then(|o| {
                GpuContext::new(&Options {
                    subgroups: Some(on),
                    ..o
                })
            })
        };
        let plain = open(true).and_then(|sg| {
            variants[0].1 = sg;
            open(false)
        });
        match plain {
            Ok(p) => {
                variants[0].0 = " sg";
                variants.push((" plain", p));
            }
            Err(e) => eprintln!("reduce bench: no second device without subgroups: {e}"),
        }
    }
    for (family, build) in [
        ("reduce", reduce_cases as fn(&GpuContext) -> Result<Cases>),
        ("loss", loss_cases),
    ] {
        let mut group = c.benchmark_group(format!("{family} [{adapter}]"));
        group.sample_size(10);
        let built: Vec<_> = variants
            .iter()
            .filter_map(|(tag, ctx)| match build(ctx) {
                Ok(cases) => Some((*tag, ctx, cases)),
                Err(e) => {
                    eprintln!("reduce bench: {family}{tag}: {e}");
                    None
                }
            })
            .collect();
        // Interleaved (case by case, variant by variant) so that load drifts hit both alike.
        let count = built.iter().map(|b| b.2.0.len()).min().unwrap_or(0);
        for i in 0..count {
            for (tag, ctx, (cases, _keep)) in &built {
                let (id, bytes, l) = &cases[i];
                let bytes = Throughput::Bytes(*bytes as u64);
                common::launches(&mut group, ctx, format!("{id}{tag}"), bytes, &[l]);
            }
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
