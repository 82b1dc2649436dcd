//! Launcher for shaders/noise.wgsl, validated as the CPU twin in [`crate::cpu::noise`] is.

use crate::error::{Error, Result};
use crate::gpu::kernels::pointwise::{check_f32, count};
use crate::gpu::{DType, GpuContext, GpuTensor, Launch, Workgroups, shaders};
use crate::shape::same;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    std: f32,
    seed: u32,
    _pad: u32,
}

/// `y = clamp(x + std·z, 0, 1)`, `z` standard normal draws of (`seed`, `step[0]`, element).
/// `step` is a u32 `[1]` tensor (written before each run, so one launch serves every step).
pub fn gaussian_noise(
    ctx: &GpuContext,
    std: f32,
    seed: u32,
    x: &GpuTensor,
    step: &GpuTensor,
    y: &GpuTensor,
) -> Result<Launch> {
    let op = "gaussian_noise";
    if !(std.is_finite() && std >= 0.0) {
        return Err(Error::invalid(
            op,
            format!("std {std} must be finite and at least 0"),
        ));
    }
    check_f32(op, "x", x)?;
    check_f32(op, "y", y)?;
    same(op, "x", &x.shape, "y", &y.shape)?;
    if step.dtype != DType::U32 || step.numel() != 1 {
        return Err(Error::invalid(
            op,
            format!("step ({} {}) must be one u32", step.label, step.shape),
        ));
    }
    let n = count(op, &format!("{} {}", x.label, x.shape), x.numel())?;
    let p = Params {
        n,
        std,
        seed,
        _pad: 0,
    };
    ctx.launch(
        shaders::NOISE,
        op,
        &[],
        bytemuck::bytes_of(&p),
        &[x, step, y],
        Workgroups::Linear((n as u64).div_ceil(256)),
    )
}
