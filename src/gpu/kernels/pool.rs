//! Launchers for shaders/pool.wgsl, validated as the CPU twins in [`crate::cpu::pool`] are.

use crate::error::{Error, Result};
use crate::gpu::kernels::pointwise::check_f32;
use crate::gpu::{GpuContext, GpuTensor, Launch, Workgroups, shaders};
use crate::shape::Shape;
use crate::spec::{PoolKind, PoolSpec};

/// Invocations per workgroup (the shader's `WG`).
const WORKGROUP: u64 = 256;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    planes: u32,
    h: u32,
    w: u32,
    oh: u32,
    ow: u32,
    kh: u32,
    kw: u32,
    sh: u32,
    sw: u32,
    ph: u32,
    pw: u32,
    count: u32,
}

fn check(op: &str, what: &str, t: &GpuTensor, want: &Shape) -> Result<()> {
    check_f32(op, what, t)?;
    if &t.shape != want {
        return Err(Error::invalid(
            op,
            format!("{what} ({}) must be {want}, got {}", t.label, t.shape),
        ));
    }
    Ok(())
}

/// One invocation per element of `count` (the output's elements forward, the input's backward).
fn launch(
    ctx: &GpuContext,
    s: &PoolSpec,
    kind: PoolKind,
    entry: &'static str,
    backward: bool,
    tensors: &[&GpuTensor],
) -> Result<Launch> {
    if s.kind != kind {
        return Err(Error::invalid(entry, format!("given a {:?} spec", s.kind)));
    }
    let [n, c, h, w] = s.input;
    let [oh, ow] = s.out_hw();
    // PoolSpec's constructors refuse sizes past u32 (shape::checked_numel).
    let count = if backward {
        s.in_shape().numel()
    } else {
        s.out_shape().numel()
    };
    let u = |v: usize| v as u32;
    let p = Params {
        planes: u(n * c),
        h: u(h),
        w: u(w),
        oh: u(oh),
        ow: u(ow),
        kh: u(s.kernel[0]),
        kw: u(s.kernel[1]),
        sh: u(s.stride[0]),
        sw: u(s.stride[1]),
        ph: u(s.padding[0]),
        pw: u(s.padding[1]),
        count: u(count),
    };
    ctx.launch(
        shaders::POOL,
        entry,
        &[],
        bytemuck::bytes_of(&p),
        tensors,
        Workgroups::Linear((count as u64).div_ceil(WORKGROUP)),
    )
}

/// `y` = the max of each window (a NaN wins).
pub fn max_pool2d_forward(
    ctx: &GpuContext,
    s: &PoolSpec,
    x: &GpuTensor,
    y: &GpuTensor,
) -> Result<Launch> {
    let op = "max_pool2d_forward";
    check(op, "x", x, &s.in_shape())?;
    check(op, "y", y, &s.out_shape())?;
    launch(ctx, s, PoolKind::Max, op, false, &[x, y])
}

/// `dx`: each output's gradient at its window's max, recomputed from `x`.
pub fn max_pool2d_backward(
    ctx: &GpuContext,
    s: &PoolSpec,
    x: &GpuTensor,
    dy: &GpuTensor,
    dx: &GpuTensor,
) -> Result<Launch> {
    let op = "max_pool2d_backward";
    check(op, "x", x, &s.in_shape())?;
    check(op, "dy", dy, &s.out_shape())?;
    check(op, "dx", dx, &s.in_shape())?;
    launch(ctx, s, PoolKind::Max, op, true, &[x, dy, dx])
}

/// `y` = the mean of each window, padding counted as zeros.
pub fn avg_pool2d_forward(
    ctx: &GpuContext,
    s: &PoolSpec,
    x: &GpuTensor,
    y: &GpuTensor,
) -> Result<Launch> {
    let op = "avg_pool2d_forward";
    check(op, "x", x, &s.in_shape())?;
    check(op, "y", y, &s.out_shape())?;
    launch(ctx, s, PoolKind::Avg, op, false, &[x, y])
}

/// `dx`: each output's gradient spread over its window.
pub fn avg_pool2d_backward(
    ctx: &GpuContext,
    s: &PoolSpec,
    dy: &GpuTensor,
    dx: &GpuTensor,
) -> Result<Launch> {
    let op = "avg_pool2d_backward";
    check(op, "dy", dy, &s.out_shape())?;
    check(op, "dx", dx, &s.in_shape())?;
    launch(ctx, s, PoolKind::Avg, op, true, &[dy, dx])
}

/// `y` = each pixel repeated over its `scale` block.
pub fn upsample_nearest2d_forward(
    ctx: &GpuContext,
    s: &PoolSpec,
    x: &GpuTensor,
    y: &GpuTensor,
) -> Result<Launch> {
    let op = "upsample_nearest2d_forward";
    check(op, "x", x, &s.in_shape())?;
    check(op, "y", y, &s.out_shape())?;
    launch(ctx, s, PoolKind::UpsampleNearest, op, false, &[x, y])
}

/// `dx` = the sum of each pixel's block of `dy`.
pub fn upsample_nearest2d_backward(
    ctx: &GpuContext,
    s: &PoolSpec,
    dy: &GpuTensor,
    dx: &GpuTensor,
) -> Result<Launch> {
    let op = "upsample_nearest2d_backward";
    check(op, "dy", dy, &s.out_shape())?;
    check(op, "dx", dx, &s.in_shape())?;
    launch(ctx, s, PoolKind::UpsampleNearest, op, true, &[dy, dx])
}

/// The forward launch for any kind.
pub fn forward(ctx: &GpuContext, s: &PoolSpec, x: &GpuTensor, y: &GpuTensor) -> Result<Launch> {
    match s.kind {
        PoolKind::Max => max_pool2d_forward(ctx, s, x, y),
        PoolKind::Avg => avg_pool2d_forward(ctx, s, x, y),
        PoolKind::UpsampleNearest => upsample_nearest2d_forward(ctx, s, x, y),
    }
}

/// The backward launch for any kind; `x` (the forward input) is used by the max pool only.
pub fn backward(
    ctx: &GpuContext,
    s: &PoolSpec,
    x: &GpuTensor,
    dy: &GpuTensor,
    dx: &GpuTensor,
) -> Result<Launch> {
    match s.kind {
        PoolKind::Max => max_pool2d_backward(ctx, s, x, dy, dx),
        PoolKind::Avg => avg_pool2d_backward(ctx, s, dy, dx),
        PoolKind::UpsampleNearest => upsample_nearest2d_backward(ctx, s, dy, dx),
    }
}
