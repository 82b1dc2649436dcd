//! The pointwise kernels (shaders/pointwise.wgsl: relu, sigmoid, tanh forward and backward, add,
//! scale) on the adapter chosen the usual way (WGRAD_BACKEND=vulkan|gl|..., else the best
//! present), at 1M elements and at a training-sized activation (64×16×14×14, the encoder's first
//! conv output). Each timed iteration submits the launch and waits for the device, so the figure
//! is GPU time.
//!
//! Throughput is bytes read + written, each element once: 8 bytes an element for the unary
//! kernels (forward, scale), 12 for the binary ones (backward: `x` or `y` and `dy` in, `dx` out;
//! add: `a`, `b` in, `out` out).

mod common;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use wgrad::gpu::Launch;
use wgrad::gpu::kernels::pointwise as pw;
use wgrad::{GpuContext, GpuTensor, Result, Shape, Tensor};

const SIZES: [(&str, &[usize]); 2] = [("1M", &[1 << 20]), ("64x16x14x14", &[64, 16, 14, 14])];

/// `(kernel, bytes an element, launch)` for every kernel over tensors of one shape.
fn launches(
    ctx: &GpuContext,
    a: &GpuTensor,
    b: &GpuTensor,
    out: &GpuTensor,
) -> Result<Vec<(&'static str, usize, Launch)>> {
    Ok(vec![
        ("relu_forward", 8, pw::relu_forward(ctx, a, out)?),
        ("relu_backward", 12, pw::relu_backward(ctx, a, b, out)?),
        ("sigmoid_forward", 8, pw::sigmoid_forward(ctx, a, out)?),
        (
            "sigmoid_backward",
            12,
            pw::sigmoid_backward(ctx, a, b, out)?,
        ),
        ("tanh_forward", 8, pw::tanh_forward(ctx, a, out)?),
        ("tanh_backward", 12, pw::tanh_backward(ctx, a, b, out)?),
        ("add", 12, pw::add(ctx, a, b, out)?),
        ("scale", 8, pw::scale(ctx, 0.5, a, out)?),
    ])
}

fn bench(c: &mut Criterion) {
    let Some(ctx) = common::context("pointwise") else {
        return;
    };
    let adapter = ctx.describe();
    let mut group = c.benchmark_group(format!("pointwise [{adapter}]"));
    group.sample_size(10);
    for (size, dims) in SIZES {
        let shape = Shape::new(dims);
        let n = shape.numel();
        let built = (|| {
            let a = ctx.upload("a", &Tensor::uniform(&shape, -1.0, 1.0, 1))?;
            let b = ctx.upload("b", &Tensor::uniform(&shape, -1.0, 1.0, 2))?;
            let out = ctx.zeros("out", &shape)?;
            let list = launches(&ctx, &a, &b, &out)?;
            Ok::<_, wgrad::Error>((list, [a, b, out]))
        })();
        let (list, _keep) = match built {
            Ok(l) => l,
            Err(e) => {
                eprintln!("pointwise bench: {size}: {e}");
                continue;
            }
        };
        for (kernel, per_element, l) in &list {
            let bytes = Throughput::Bytes((per_element * n) as u64);
            common::launches(&mut group, &ctx, format!("{kernel} {size}"), bytes, &[l]);
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
