//! Launchers for shaders/reduce.wgsl: one workgroup per output element (several, and a second
//! pass over their partials, for a few long reductions), deterministic.

use crate::error::Result;
use crate::gpu::kernels::pointwise::{check_f32, count};
use crate::gpu::{GpuContext, GpuTensor, Launch, Workgroups, shaders};
use crate::shape::same;
use crate::spec::ReduceSpec;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    out_dims: [u32; 4],
    red_dims: [u32; 4],
    strides: [u32; 4],
    out_count: u32,
    red_count: u32,
    slices: u32,
    divisor: f32,
    red_inner: u32,
    _pad: [u32; 3],
}

/// Reduced elements a slice aims for when a reduction is split.
const SLICE: usize = 8192;

/// Workgroups per output element: more than one only where there are too few outputs to fill
/// the device (fewer than 64) and each sums a long range. Depends on the shape only, so every
/// adapter adds in the same order.
pub fn slices(out_count: usize, red_count: usize) -> usize {
    if out_count >= 64 || red_count < 2 * SLICE {
        return 1;
    }
    (red_count / SLICE).min(1024)
}

fn reduce(
    ctx: &GpuContext,
    entry: &'static str,
    spec: &ReduceSpec,
    x: &GpuTensor,
    y: &GpuTensor,
) -> Result<Launch> {
    spec.check(entry)?;
    same(entry, "spec shape", &spec.shape, "x", &x.shape)?;
    same(
        entry,
        "reduced shape",
        &spec.out_shape(),
        "output",
        &y.shape,
    )?;
    check_f32(entry, "x", x)?;
    check_f32(entry, "output", y)?;
    count(entry, &format!("{} {}", x.label, x.shape), x.numel())?;
    let (dims, reduced) = spec.padded();
    let red_count = spec.reduced_count();
    let mut p = Params {
        out_dims: [1; 4],
        red_dims: [1; 4],
        strides: [1; 4],
        out_count: y.numel() as u32,
        red_count: red_count as u32,
        slices: 1,
        divisor: red_count as f32,
        red_inner: 0,
        _pad: [0; 3],
    };
    // Reduced axes innermost: every axis after the first reduced one (of size > 1) is reduced.
    let first = (0..4).find(|&a| reduced[a] && dims[a] > 1);
    p.red_inner = first.is_none_or(|f| (f..4).all(|a| reduced[a] || dims[a] == 1)) as u32;
    for a in (0..4).rev() {
        if a < 3 {
            p.strides[a] = p.strides[a + 1] * dims[a + 1] as u32;
        }
        if reduced[a] {
            p.red_dims[a] = dims[a] as u32;
        } else {
            p.out_dims[a] = dims[a] as u32;
        }
    }
    // One dispatch: `p` over `input` into `output`, one workgroup per value written.
    let dispatch = |entry: &'static str, p: &Params, input: &GpuTensor, output: &GpuTensor| {
        let groups = (p.out_count * p.slices) as u64;
        let params = bytemuck::bytes_of(p);
        ctx.launch(
            shaders::REDUCE,
            entry,
            &[],
            params,
            &[input, output],
            Workgroups::Linear(groups),
        )
    };
    let s = slices(y.numel(), red_count);
    if s == 1 {
        return dispatch(entry, &p, x, y);
    }
    // Partials [outputs, slices], then each output's `slices` partials summed in order.
    let partials = ctx.zeros(&format!("{entry} partials"), [y.numel() * s])?;
    p.slices = s as u32;
    let second = Params {
        out_dims: [1, 1, y.numel() as u32, 1],
        red_dims: [1, 1, 1, s as u32],
        strides: [0, 0, s as u32, 1],
        out_count: y.numel() as u32,
        red_count: s as u32,
        slices: 1,
        divisor: red_count as f32,
        red_inner: 1,
        _pad: [0; 3],
    };
    Ok(dispatch("reduce_sum", &p, x, &partials)?
        .followed_by(dispatch(entry, &second, &partials, y)?))
}

/// `y` = the sum of `x` over `spec.axes`; `y` has shape `spec.out_shape()`.
pub fn reduce_sum(
    ctx: &GpuContext,
    spec: &ReduceSpec,
    x: &GpuTensor,
    y: &GpuTensor,
) -> Result<Launch> {
    reduce(ctx, "reduce_sum", spec, x, y)
}

/// `y` = the mean of `x` over `spec.axes`; `y` has shape `spec.out_shape()`.
pub fn reduce_mean(
    ctx: &GpuContext,
    spec: &ReduceSpec,
    x: &GpuTensor,
    y: &GpuTensor,
) -> Result<Launch> {
    reduce(ctx, "reduce_mean", spec, x, y)
}
