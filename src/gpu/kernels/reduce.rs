//! Launchers for shaders/reduce.wgsl: one workgroup per output element, deterministic.

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
    _pad: [u32; 2],
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
    let mut p = Params {
        out_dims: [1; 4],
        red_dims: [1; 4],
        strides: [1; 4],
        out_count: y.numel() as u32,
        red_count: spec.reduced_count() as u32,
        _pad: [0; 2],
    };
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
    ctx.launch(
        shaders::REDUCE,
        entry,
        &[],
        bytemuck::bytes_of(&p),
        &[x, y],
        Workgroups::Linear(y.numel() as u64),
    )
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
