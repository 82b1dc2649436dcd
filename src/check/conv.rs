//! conv2d and conv_transpose2d (src/ops/conv.rs: compositions of im2col / col2im and matmul)
//! against the direct CPU loops: forward and the data, weight and bias gradients, on one awkward
//! shape each and on the default autoencoder's layers at batch 64. Tolerances as in
//! tests/gpu/conv.rs: a reduction over each output's number of terms.

use super::{Case, data, expect, nans, read_all};
use crate::compare::Tolerance;
use crate::cpu::conv as cpu;
use crate::error::Result;
use crate::gpu::{GpuContext, GpuTensor};
use crate::ops::conv::{self as ops, ConvPlan};
use crate::shape::{ConvParams, Shape, conv_transpose2d_layer, conv2d_layer};
use crate::spec::Activation;
use crate::tensor::Tensor;
use std::sync::Arc;

/// One layer: input shape, the other channel count, square kernel, parameters, fused activation
/// (conv2d only).
#[derive(Clone, Copy)]
struct Layer {
    name: &'static str,
    x: [usize; 4],
    c: usize,
    k: usize,
    p: ConvParams,
    act: Activation,
}

/// Submits a plan into a NaN-filled output of `shape`, which it returns.
fn gpu_out(
    ctx: &GpuContext,
    shape: &Shape,
    build: impl FnOnce(&GpuTensor) -> Result<ConvPlan>,
) -> Result<GpuTensor> {
    let out = nans(ctx, "out", shape.clone())?;
    build(&out)?.run(ctx)?;
    Ok(out)
}

/// Reads back the four outputs (forward, data, weight and bias gradients) of a case whose
/// plans `submitted` built and submitted.
async fn read_four(
    ctx: Arc<GpuContext>,
    submitted: Result<[GpuTensor; 4]>,
) -> Result<Vec<Vec<f32>>> {
    let outs = submitted?;
    read_all(&ctx, &outs.iter().collect::<Vec<_>>()).await
}

fn describe(l: &Layer, w: &Shape) -> String {
    let p = &l.p;
    let mut d = format!(
        "{}: x{} w{} s{} p{}",
        l.name,
        Shape::new(l.x),
        w,
        p.stride[0],
        p.padding[0]
    );
    if p.output_padding[0] > 0 {
        d += &format!(" op{}", p.output_padding[0]);
    }
    if l.act != Activation::None {
        d += &format!(" {:?}", l.act);
    }
    d
}

fn conv2d(l: Layer) -> Case {
    let (xs, ws) = (Shape::new(l.x), Shape::new([l.c, l.x[1], l.k, l.k]));
    let d = describe(&l, &ws);
    let (x, w, b) = (data(&l.x, 1), data(ws.dims(), 2), data(&[l.c], 3));
    let (rx, rw, rb, rd, rxs, rws) = (
        x.clone(),
        w.clone(),
        b.clone(),
        d.clone(),
        xs.clone(),
        ws.clone(),
    );
    let p = l.p;
    Case::new(
        "conv2d",
        d,
        move || {
            let (g, f) = conv2d_layer("conv2d", &rxs, &rws, p)?;
            let dy = data(g.windows_shape(f).dims(), 4);
            let batch_sum = Tolerance::reduction(g.batch * g.col_cols());
            Ok(vec![
                expect(
                    "conv2d_forward",
                    &rd,
                    cpu::conv2d_forward(&rx, &rw, Some(&rb), p, l.act)?.data,
                    Tolerance::reduction(g.col_rows()),
                ),
                expect(
                    "conv2d_backward_data",
                    &rd,
                    cpu::conv2d_backward_data(&dy, &rw, &rxs, p)?.data,
                    Tolerance::reduction(f * l.k * l.k),
                ),
                expect(
                    "conv2d_backward_weight",
                    &rd,
                    cpu::conv2d_backward_weight(&rx, &dy, &rws, p)?.data,
                    batch_sum,
                ),
                expect(
                    "conv2d_backward_bias",
                    &rd,
                    cpu::conv2d_backward_bias(&dy)?.data,
                    batch_sum,
                ),
            ])
        },
        move |ctx| {
            let submitted = (|| {
                let ctx = &ctx;
                let (g, f) = conv2d_layer("conv2d", &xs, &ws, p)?;
                let ys = g.windows_shape(f);
                let dy = data(ys.dims(), 4);
                let (gx, gw) = (ctx.upload("x", &x)?, ctx.upload("w", &w)?);
                let (gb, gdy) = (ctx.upload("b", &b)?, ctx.upload("dy", &dy)?);
                let fwd = gpu_out(ctx, &ys, |y| {
                    ops::conv2d_forward(ctx, &gx, &gw, Some(&gb), y, p, l.act)
                })?;
                let dx = gpu_out(ctx, &xs, |o| {
                    ops::conv2d_backward_data(ctx, &gdy, &gw, o, p)
                })?;
                let dw = gpu_out(ctx, &ws, |o| {
                    ops::conv2d_backward_weight(ctx, &gx, &gdy, o, p)
                })?;
                let db = gpu_out(ctx, &Shape::new([f]), |o| {
                    ops::conv2d_backward_bias(ctx, &gdy, o)
                })?;
                Ok([fwd, dx, dw, db])
            })();
            read_four(ctx, submitted)
        },
    )
}

fn conv_transpose2d(l: Layer) -> Case {
    let (xs, ws) = (Shape::new(l.x), Shape::new([l.x[1], l.c, l.k, l.k]));
    let d = describe(&l, &ws);
    let (x, w, b) = (data(&l.x, 5), data(ws.dims(), 6), data(&[l.c], 7));
    let (rx, rw, rb, rd, rxs, rws) = (
        x.clone(),
        w.clone(),
        b.clone(),
        d.clone(),
        xs.clone(),
        ws.clone(),
    );
    let p = l.p;
    let dy_of = |g: &crate::shape::ConvGeometry| -> Tensor { data(g.image_shape().dims(), 8) };
    Case::new(
        "conv_transpose2d",
        d,
        move || {
            let (g, f) = conv_transpose2d_layer("conv_transpose2d", &rxs, &rws, p)?;
            let dy = dy_of(&g);
            let taps = l.k * l.k;
            Ok(vec![
                expect(
                    "conv_transpose2d_forward",
                    &rd,
                    cpu::conv_transpose2d_forward(&rx, &rw, Some(&rb), p)?.data,
                    Tolerance::reduction(f * taps),
                ),
                expect(
                    "conv_transpose2d_backward_data",
                    &rd,
                    cpu::conv_transpose2d_backward_data(&dy, &rw, &rxs, p)?.data,
                    Tolerance::reduction(g.col_rows()),
                ),
                expect(
                    "conv_transpose2d_backward_weight",
                    &rd,
                    cpu::conv_transpose2d_backward_weight(&rx, &dy, &rws, p)?.data,
                    Tolerance::reduction(g.batch * g.col_cols()),
                ),
                expect(
                    "conv_transpose2d_backward_bias",
                    &rd,
                    cpu::conv_transpose2d_backward_bias(&dy)?.data,
                    Tolerance::reduction(dy.numel() / l.c),
                ),
            ])
        },
        move |ctx| {
            let submitted = (|| {
                let ctx = &ctx;
                let (g, _) = conv_transpose2d_layer("conv_transpose2d", &xs, &ws, p)?;
                let dy = dy_of(&g);
                let (gx, gw) = (ctx.upload("x", &x)?, ctx.upload("w", &w)?);
                let (gb, gdy) = (ctx.upload("b", &b)?, ctx.upload("dy", &dy)?);
                let ys = g.image_shape();
                let fwd = gpu_out(ctx, &ys, |y| {
                    ops::conv_transpose2d_forward(ctx, &gx, &gw, Some(&gb), y, p)
                })?;
                let dx = gpu_out(ctx, &xs, |o| {
                    ops::conv_transpose2d_backward_data(ctx, &gdy, &gw, o, p)
                })?;
                let dw = gpu_out(ctx, &ws, |o| {
                    ops::conv_transpose2d_backward_weight(ctx, &gx, &gdy, o, p)
                })?;
                let db = gpu_out(ctx, &Shape::new([l.c]), |o| {
                    ops::conv_transpose2d_backward_bias(ctx, &gdy, o)
                })?;
                Ok([fwd, dx, dw, db])
            })();
            read_four(ctx, submitted)
        },
    )
}

/// The awkward shapes, and the autoencoder's layers at `batch` images.
pub(super) fn cases(batch: usize) -> Vec<Case> {
    let s2p1 = ConvParams::square(2, 1, 1);
    let op1 = s2p1.with_output_padding(1);
    let layer = |name, x, c, k, p, act| Layer {
        name,
        x,
        c,
        k,
        p,
        act,
    };
    let relu = Activation::Relu;
    let none = Activation::None;
    vec![
        conv2d(layer(
            "odd sizes",
            [3, 7, 13, 7],
            2,
            5,
            ConvParams::square(2, 2, 1),
            Activation::LeakyRelu(0.1),
        )),
        conv2d(layer("encoder.0", [batch, 1, 28, 28], 16, 3, s2p1, relu)),
        conv2d(layer("encoder.2", [batch, 16, 14, 14], 32, 3, s2p1, relu)),
        conv_transpose2d(layer("odd sizes", [2, 3, 7, 5], 5, 3, op1, none)),
        conv_transpose2d(layer("decoder.0", [batch, 32, 7, 7], 16, 3, op1, none)),
        conv_transpose2d(layer("decoder.2", [batch, 16, 14, 14], 1, 3, op1, none)),
    ]
}
