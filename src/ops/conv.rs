//! conv2d and conv_transpose2d on the GPU, forward and gradients, composed of im2col / col2im and
//! matmul launches (see the backward-pass table in docs/ARCHITECTURE.md). The CPU references, of
//! the same names, are in [`crate::cpu::conv`].
//!
//! Every op is one of three shapes of work over a convolution geometry ([`ConvGeometry`]: an
//! image `[N, C, H, W]`, window positions `[N, F, OH, OW]`, a weight `[F, C, kh, kw]` seen as a
//! `[F, C·kh·kw]` matrix):
//!
//! - image → windows, `windows[n] = W·im2col(image)[n]`: conv2d forward, conv_transpose2d dX;
//! - windows → image, `image = col2im(Wᵀ·windows[n])`: conv2d dX, conv_transpose2d forward;
//! - weight gradient, `dW = Σ_n windows[n]·im2col(image)[n]ᵀ`: both ops' dW.
//!
//! Each op returns a [`ConvPlan`]: its launches in order and the scratch tensors (columns, ones,
//! partial sums) they use, allocated once so that replaying the plan allocates nothing. Outputs
//! are passed in; a tensor whose shape determines the geometry (the input, or for the data
//! gradient the input's gradient, and for the weight gradient its output) must have its NCHW
//! shape, the others only the right number of elements.

use crate::error::Result;
use crate::gpu::kernels::{im2col, matmul::matmul};
use crate::gpu::{GpuContext, GpuTensor, Launch};
use crate::shape::{
    ConvGeometry, ConvParams, Shape, conv_transpose2d_layer, conv2d_layer, rank4, same_numel,
};
use crate::spec::{Activation, BiasMode, MatmulSpec};
use crate::tensor::Tensor;

/// The launches of one composite op, to be recorded in order, and the scratch tensors they use.
#[derive(Debug)]
pub struct ConvPlan {
    pub launches: Vec<Launch>,
    pub scratch: Vec<GpuTensor>,
}

impl ConvPlan {
    /// Records every launch, in order, into a compute pass.
    pub fn record(&self, pass: &mut wgpu::ComputePass<'_>) {
        for l in &self.launches {
            l.record(pass);
        }
    }

    /// Submits the plan's launches (see [`GpuContext::run`]).
    pub fn run(&self, ctx: &GpuContext) -> Result<()> {
        ctx.run(&self.launches.iter().collect::<Vec<_>>())
    }
}

fn cols(ctx: &GpuContext, op: &str, g: &ConvGeometry) -> Result<GpuTensor> {
    ctx.zeros(&format!("{op} cols"), g.cols_shape())
}

fn check_bias(op: &str, b: Option<&GpuTensor>, channels: usize) -> Result<()> {
    match b {
        Some(b) => same_numel(op, "bias", &b.shape, &Shape::new([channels])),
        None => Ok(()),
    }
}

/// `windows[n] = act(W·im2col(image)[n] + b)`, the bias per filter fused into the matmul.
#[allow(clippy::too_many_arguments)]
fn image_to_windows(
    ctx: &GpuContext,
    op: &str,
    g: &ConvGeometry,
    f: usize,
    image: &GpuTensor,
    w: &GpuTensor,
    b: Option<&GpuTensor>,
    act: Activation,
    windows: &GpuTensor,
) -> Result<ConvPlan> {
    let c = cols(ctx, op, g)?;
    let mut spec = MatmulSpec::new(f, g.col_rows(), g.col_cols());
    spec.batch = g.batch;
    spec.broadcast_a = true;
    spec.bias = if b.is_some() {
        BiasMode::PerRow
    } else {
        BiasMode::None
    };
    spec.act = act;
    let launches = vec![
        im2col::im2col(ctx, g, image, &c)?,
        matmul(ctx, &spec, w, &c, b, windows)?,
    ];
    Ok(ConvPlan {
        launches,
        scratch: vec![c],
    })
}

/// `image = col2im(Wᵀ·windows[n]) + b`, the bias per image channel fused into col2im.
#[allow(clippy::too_many_arguments)]
fn windows_to_image(
    ctx: &GpuContext,
    op: &str,
    g: &ConvGeometry,
    f: usize,
    windows: &GpuTensor,
    w: &GpuTensor,
    b: Option<&GpuTensor>,
    image: &GpuTensor,
) -> Result<ConvPlan> {
    let c = cols(ctx, op, g)?;
    let mut spec = MatmulSpec::new(g.col_rows(), f, g.col_cols());
    spec.batch = g.batch;
    spec.broadcast_a = true;
    spec.trans_a = true;
    let gather = match b {
        Some(b) => im2col::col2im_bias(ctx, g, &c, b, image)?,
        None => im2col::col2im(ctx, g, &c, image)?,
    };
    Ok(ConvPlan {
        launches: vec![matmul(ctx, &spec, w, windows, None, &c)?, gather],
        scratch: vec![c],
    })
}

/// `dW = Σ_n windows[n]·im2col(image)[n]ᵀ`, summed over the batch inside the matmul.
fn weight_grad(
    ctx: &GpuContext,
    op: &str,
    g: &ConvGeometry,
    f: usize,
    windows: &GpuTensor,
    image: &GpuTensor,
    dw: &GpuTensor,
) -> Result<ConvPlan> {
    let c = cols(ctx, op, g)?;
    let mut spec = MatmulSpec::new(f, g.col_cols(), g.col_rows());
    spec.batch = g.batch;
    spec.trans_b = true;
    spec.sum_batches = true;
    let launches = vec![
        im2col::im2col(ctx, g, image, &c)?,
        matmul(ctx, &spec, windows, &c, None, dw)?,
    ];
    Ok(ConvPlan {
        launches,
        scratch: vec![c],
    })
}

/// `db[c] = Σ_{n,h,w} dy[n, c, h, w]` as two matmuls against ones vectors: first one sum per
/// image and channel (`[N, C, H·W]·1`, N·C/4 parallel invocations), then the sum of those over
/// the batch. Splitting the sum keeps it deterministic and parallel without a reduce kernel,
/// and its f32 rounding error grows with H·W + N rather than N·H·W.
fn bias_grad(ctx: &GpuContext, op: &str, dy: &GpuTensor, db: &GpuTensor) -> Result<ConvPlan> {
    let [n, c, h, w] = rank4(op, "dy", &dy.shape)?;
    same_numel(op, "db", &db.shape, &Shape::new([c]))?;
    let ones_hw = ctx.upload(&format!("{op} ones[h·w]"), &Tensor::full([h * w, 1], 1.0))?;
    let ones_n = ctx.upload(&format!("{op} ones[n]"), &Tensor::full([n, 1], 1.0))?;
    let partial = ctx.zeros(&format!("{op} per-image sums"), [n, c])?;
    let mut per_image = MatmulSpec::new(c, h * w, 1);
    per_image.batch = n;
    per_image.broadcast_b = true;
    let mut over_batch = MatmulSpec::new(c, n, 1);
    over_batch.trans_a = true;
    let launches = vec![
        matmul(ctx, &per_image, dy, &ones_hw, None, &partial)?,
        matmul(ctx, &over_batch, &partial, &ones_n, None, db)?,
    ];
    Ok(ConvPlan {
        launches,
        scratch: vec![ones_hw, ones_n, partial],
    })
}

/// `y = act(conv2d(x, w) + b)`: x `[N, C, H, W]`, w `[F, C, kh, kw]`, b `[F]`, y `[N, F, OH, OW]`.
pub fn conv2d_forward(
    ctx: &GpuContext,
    x: &GpuTensor,
    w: &GpuTensor,
    b: Option<&GpuTensor>,
    y: &GpuTensor,
    p: ConvParams,
    act: Activation,
) -> Result<ConvPlan> {
    let op = "conv2d_forward";
    let (g, f) = conv2d_layer(op, &x.shape, &w.shape, p)?;
    check_bias(op, b, f)?;
    same_numel(op, "y", &y.shape, &g.windows_shape(f))?;
    image_to_windows(ctx, op, &g, f, x, w, b, act, y)
}

/// `dx = col2im(Wᵀ·dy[n])`, the gradient of [`conv2d_forward`] (before its activation) with
/// respect to its input; `dx` has the input's shape.
pub fn conv2d_backward_data(
    ctx: &GpuContext,
    dy: &GpuTensor,
    w: &GpuTensor,
    dx: &GpuTensor,
    p: ConvParams,
) -> Result<ConvPlan> {
    let op = "conv2d_backward_data";
    let (g, f) = conv2d_layer(op, &dx.shape, &w.shape, p)?;
    same_numel(op, "dy", &dy.shape, &g.windows_shape(f))?;
    windows_to_image(ctx, op, &g, f, dy, w, None, dx)
}

/// `dw = Σ_n dy[n]·im2col(x)[n]ᵀ`; `dw` has the weight's shape `[F, C, kh, kw]`.
pub fn conv2d_backward_weight(
    ctx: &GpuContext,
    x: &GpuTensor,
    dy: &GpuTensor,
    dw: &GpuTensor,
    p: ConvParams,
) -> Result<ConvPlan> {
    let op = "conv2d_backward_weight";
    let (g, f) = conv2d_layer(op, &x.shape, &dw.shape, p)?;
    same_numel(op, "dy", &dy.shape, &g.windows_shape(f))?;
    weight_grad(ctx, op, &g, f, dy, x, dw)
}

/// `db[f] = Σ_{n,h,w} dy[n, f, h, w]`; dy must be `[N, F, OH, OW]`.
pub fn conv2d_backward_bias(ctx: &GpuContext, dy: &GpuTensor, db: &GpuTensor) -> Result<ConvPlan> {
    bias_grad(ctx, "conv2d_backward_bias", dy, db)
}

/// `y = col2im(Wᵀ·x[n]) + b`: x `[N, F, h, w]`, w `[F, C, kh, kw]` (`[in, out, kh, kw]`), b `[C]`,
/// y `[N, C, H, W]` as [`crate::shape::conv_transpose2d_geometry`] computes.
pub fn conv_transpose2d_forward(
    ctx: &GpuContext,
    x: &GpuTensor,
    w: &GpuTensor,
    b: Option<&GpuTensor>,
    y: &GpuTensor,
    p: ConvParams,
) -> Result<ConvPlan> {
    let op = "conv_transpose2d_forward";
    let (g, f) = conv_transpose2d_layer(op, &x.shape, &w.shape, p)?;
    check_bias(op, b, g.channels)?;
    same_numel(op, "y", &y.shape, &g.image_shape())?;
    windows_to_image(ctx, op, &g, f, x, w, b, y)
}

/// `dx[n] = W·im2col(dy)[n]`; `dx` has the input's shape.
pub fn conv_transpose2d_backward_data(
    ctx: &GpuContext,
    dy: &GpuTensor,
    w: &GpuTensor,
    dx: &GpuTensor,
    p: ConvParams,
) -> Result<ConvPlan> {
    let op = "conv_transpose2d_backward_data";
    let (g, f) = conv_transpose2d_layer(op, &dx.shape, &w.shape, p)?;
    same_numel(op, "dy", &dy.shape, &g.image_shape())?;
    image_to_windows(ctx, op, &g, f, dy, w, None, Activation::None, dx)
}

/// `dw = Σ_n x[n]·im2col(dy)[n]ᵀ`; `dw` has the weight's shape `[F, C, kh, kw]`.
pub fn conv_transpose2d_backward_weight(
    ctx: &GpuContext,
    x: &GpuTensor,
    dy: &GpuTensor,
    dw: &GpuTensor,
    p: ConvParams,
) -> Result<ConvPlan> {
    let op = "conv_transpose2d_backward_weight";
    let (g, f) = conv_transpose2d_layer(op, &x.shape, &dw.shape, p)?;
    same_numel(op, "dy", &dy.shape, &g.image_shape())?;
    weight_grad(ctx, op, &g, f, x, dy, dw)
}

/// `db[c] = Σ_{n,h,w} dy[n, c, h, w]`; dy must be `[N, C, H, W]`.
pub fn conv_transpose2d_backward_bias(
    ctx: &GpuContext,
    dy: &GpuTensor,
    db: &GpuTensor,
) -> Result<ConvPlan> {
    bias_grad(ctx, "conv_transpose2d_backward_bias", dy, db)
}
