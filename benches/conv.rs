//! conv2d and conv_transpose2d through `ops::conv` (im2col / col2im + matmul launches), forward,
//! data gradient (`dX`) and weight gradient (`dW`), on the adapter chosen the usual way
//! (WGRAD_BACKEND=vulkan|gl|..., else the best present). Each timed iteration submits the op's
//! launches and waits for the device, so the figure is GPU time.
//!
//! Throughput is reported as "elements" = FLOPs, so Gelem/s reads as GFLOP/s: 2·N·F·C·kh·kw·OH·OW
//! for the forward pass, the same count for each gradient. (F, C) are (out, in) channels of a
//! conv2d, and OH·OW its output positions; for conv_transpose2d the multiply-adds are counted
//! over the *input* positions (its windows), 2·N·Cin·Cout·kh·kw·Hin·Win, which is the work done,
//! not 2·N·Cin·Cout·kh·kw·Hout·Wout (stride² times more). The forward pass adds a bias per output
//! channel (fused, as the layers do); the gradients have none.
//!
//! Shapes, batch 64, kernel 3×3:
//!
//! | id | layer |
//! |---|---|
//! | `burn conv2d 1x28x28->32 s1` | conv2d 64×1×28×28 → 32 channels, s1 p1 |
//! | `burn conv2d 32x14x14->64 s2` | conv2d 64×32×14×14 → 64 channels, s2 p1 |
//! | `burn tconv 64x7x7->32 s2` | conv_transpose2d 64×64×7×7 → 32 channels, s2 p1 op1 |
//! | `ae enc.0 conv2d 1x28x28->16` | encoder Conv2d(1, 16, 3, s2, p1) on 28×28 |
//! | `ae enc.2 conv2d 16x14x14->32` | encoder Conv2d(16, 32, 3, s2, p1) on 14×14 |
//! | `ae dec.0 tconv 32x7x7->16` | decoder ConvTranspose2d(32, 16, 3, s2, p1, op1) on 7×7 |
//! | `ae dec.2 tconv 16x14x14->1` | decoder ConvTranspose2d(16, 1, 3, s2, p1, op1) on 14×14 |
//!
//! Reference for the `burn` rows: burn 0.22.1's wgpu backend on lavapipe (same machine) took
//! 30, 29 and 30 ms for the three forward passes respectively.

mod common;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use wgrad::ops::conv::{self as ops, ConvPlan};
use wgrad::shape::{conv_transpose2d_layer, conv2d_layer};
use wgrad::{Activation, ConvParams, GpuContext, GpuTensor, Result, Shape, Tensor};

/// One layer: input `[N, C, H, W]`, the other channel count (the output's), stride, output
/// padding (transposed only), and whether it is a conv_transpose2d. Kernel 3×3, padding 1.
struct Case {
    name: &'static str,
    x: [usize; 4],
    c: usize,
    stride: usize,
    transposed: bool,
}

const fn case(
    name: &'static str,
    x: [usize; 4],
    c: usize,
    stride: usize,
    transposed: bool,
) -> Case {
    Case {
        name,
        x,
        c,
        stride,
        transposed,
    }
}

const CASES: [Case; 7] = [
    case("burn conv2d 1x28x28->32 s1", [64, 1, 28, 28], 32, 1, false),
    case(
        "burn conv2d 32x14x14->64 s2",
        [64, 32, 14, 14],
        64,
        2,
        false,
    ),
    case("burn tconv 64x7x7->32 s2", [64, 64, 7, 7], 32, 2, true),
    case("ae enc.0 conv2d 1x28x28->16", [64, 1, 28, 28], 16, 2, false),
    case(
        "ae enc.2 conv2d 16x14x14->32",
        [64, 16, 14, 14],
        32,
        2,
        false,
    ),
    case("ae dec.0 tconv 32x7x7->16", [64, 32, 7, 7], 16, 2, true),
    case("ae dec.2 tconv 16x14x14->1", [64, 16, 14, 14], 1, 2, true),
];

/// The three plans of a case (forward, dX, dW), the tensors they use, and the FLOP count.
struct Built {
    plans: [(&'static str, ConvPlan); 3],
    _keep: Vec<GpuTensor>,
    flops: f64,
    shapes: String,
}

fn build(ctx: &GpuContext, c: &Case) -> Result<Built> {
    let p = if c.transposed {
        ConvParams::square(c.stride, 1, 1).with_output_padding(1)
    } else {
        ConvParams::square(c.stride, 1, 1)
    };
    let xs = Shape::new(c.x);
    let (ws, g, f, ys) = if c.transposed {
        let ws = Shape::new([c.x[1], c.c, 3, 3]);
        let (g, f) = conv_transpose2d_layer("bench", &xs, &ws, p)?;
        let ys = g.image_shape();
        (ws, g, f, ys)
    } else {
        let ws = Shape::new([c.c, c.x[1], 3, 3]);
        let (g, f) = conv2d_layer("bench", &xs, &ws, p)?;
        let ys = g.windows_shape(f);
        (ws, g, f, ys)
    };
    let flops = 2.0 * (g.batch * f * g.col_rows() * g.col_cols()) as f64;
    let up = |name: &str, s: &Shape, seed| ctx.upload(name, &Tensor::uniform(s, -1.0, 1.0, seed));
    let x = up("x", &xs, 1)?;
    let w = up("w", &ws, 2)?;
    let b = up("b", &Shape::new([ys.dim(1)]), 3)?;
    let dy = up("dy", &ys, 4)?;
    let y = ctx.zeros("y", &ys)?;
    let dx = ctx.zeros("dx", &xs)?;
    let dw = ctx.zeros("dw", &ws)?;
    let plans = if c.transposed {
        [
            (
                "fwd",
                ops::conv_transpose2d_forward(ctx, &x, &w, Some(&b), &y, p)?,
            ),
            (
                "dX",
                ops::conv_transpose2d_backward_data(ctx, &dy, &w, &dx, p)?,
            ),
            (
                "dW",
                ops::conv_transpose2d_backward_weight(ctx, &x, &dy, &dw, p)?,
            ),
        ]
    } else {
        [
            (
                "fwd",
                ops::conv2d_forward(ctx, &x, &w, Some(&b), &y, p, Activation::None)?,
            ),
            ("dX", ops::conv2d_backward_data(ctx, &dy, &w, &dx, p)?),
            ("dW", ops::conv2d_backward_weight(ctx, &x, &dy, &dw, p)?),
        ]
    };
    Ok(Built {
        plans,
        _keep: vec![x, w, b, dy, y, dx, dw],
        flops,
        shapes: format!("x{xs} w{ws} -> y{ys} s{:?}", p.stride),
    })
}

fn bench(c: &mut Criterion) {
    let Some(ctx) = common::context("conv") else {
        return;
    };
    let adapter = ctx.describe();
    let mut group = c.benchmark_group(format!("conv [{adapter}]"));
    group.sample_size(10);
    for case in &CASES {
        let built = match build(&ctx, case) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("conv bench: {}: {e}", case.name);
                continue;
            }
        };
        println!(
            "{}: {}, {:.1} MFLOP per pass",
            case.name,
            built.shapes,
            built.flops / 1e6
        );
        for (what, plan) in &built.plans {
            let launches: Vec<_> = plan.launches.iter().collect();
            let id = format!("{} {what}", case.name);
            let flops = Throughput::Elements(built.flops as u64);
            common::launches(&mut group, &ctx, id, flops, &launches);
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
