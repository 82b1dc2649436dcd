//! Launchers for shaders/noise.wgsl, validated as the CPU twins in [`crate::cpu::noise`] are.

use crate::error::{Error, Result};
use crate::gpu::kernels::pointwise::{check_f32, count};
use crate::gpu::{DType, GpuContext, GpuTensor, Launch, Workgroups, shaders};
use crate::shape::same;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    /// The noise's std, or dropout's p.
    sigma: f32,
    seed: u32,
    /// reparameterize: the latent width z.
    latent: u32,
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
    launch(ctx, op, std, seed, x, step, y)
}

fn check_step(op: &str, step: &GpuTensor) -> Result<()> {
    if step.dtype != DType::U32 || step.numel() != 1 {
        return Err(Error::invalid(
            op,
            format!("step ({} {}) must be one u32", step.label, step.shape),
        ));
    }
    Ok(())
}

fn dropout(
    ctx: &GpuContext,
    op: &'static str,
    p: f32,
    seed: u32,
    x: &GpuTensor,
    step: &GpuTensor,
    y: &GpuTensor,
) -> Result<Launch> {
    if !(0.0..=1.0).contains(&p) {
        return Err(Error::invalid(op, format!("p {p} must be in [0, 1]")));
    }
    launch(ctx, op, p, seed, x, step, y)
}

/// Checks the tensors and launches `op` with `sigma` (the noise's std or dropout's p).
fn launch(
    ctx: &GpuContext,
    op: &'static str,
    sigma: f32,
    seed: u32,
    x: &GpuTensor,
    step: &GpuTensor,
    y: &GpuTensor,
) -> Result<Launch> {
    check_f32(op, "input", x)?;
    check_f32(op, "output", y)?;
    same(op, "input", &x.shape, "output", &y.shape)?;
    check_step(op, step)?;
    let n = count(op, &format!("{} {}", x.label, x.shape), x.numel())?;
    let params = Params {
        n,
        sigma,
        seed,
        latent: 0,
    };
    ctx.launch(
        shaders::NOISE,
        op,
        &[],
        bytemuck::bytes_of(&params),
        &[x, step, y],
        Workgroups::Linear((n as u64).div_ceil(256)),
    )
}

/// `y = x · mask / (1 − p)`, the mask drawn from (`seed`, `step[0]`, element).
pub fn dropout_forward(
    ctx: &GpuContext,
    p: f32,
    seed: u32,
    x: &GpuTensor,
    step: &GpuTensor,
    y: &GpuTensor,
) -> Result<Launch> {
    dropout(ctx, "dropout_forward", p, seed, x, step, y)
}

/// `dx = dy · mask / (1 − p)`, the forward's mask drawn again.
pub fn dropout_backward(
    ctx: &GpuContext,
    p: f32,
    seed: u32,
    dy: &GpuTensor,
    step: &GpuTensor,
    dx: &GpuTensor,
) -> Result<Launch> {
    dropout(ctx, "dropout_backward", p, seed, dy, step, dx)
}

/// `z = mu + exp(logvar/2)·eps` for `h = [mu | logvar]` (`[N, 2z]` → `[N, z]`), `eps` the
/// standard normal draws of (`seed`, `step[0]`, `b·z + j`).
pub fn reparameterize(
    ctx: &GpuContext,
    seed: u32,
    h: &GpuTensor,
    step: &GpuTensor,
    z: &GpuTensor,
) -> Result<Launch> {
    let op = "reparameterize";
    let (n, latent) = check_h(op, h)?;
    check_f32(op, "z", z)?;
    if z.shape.dims() != [n, latent] {
        return Err(Error::invalid(
            op,
            format!(
                "z must be [{n}, {latent}] for h {}, got {}",
                h.shape, z.shape
            ),
        ));
    }
    latent_launch(ctx, op, seed, latent, &[h, step, z])
}

/// `dh = [dz | dz·eps·exp(logvar/2)/2]`, the forward's draws again.
pub fn reparameterize_backward(
    ctx: &GpuContext,
    seed: u32,
    h: &GpuTensor,
    dz: &GpuTensor,
    step: &GpuTensor,
    dh: &GpuTensor,
) -> Result<Launch> {
    let op = "reparameterize_backward";
    let (n, latent) = check_h(op, h)?;
    check_f32(op, "dz", dz)?;
    check_f32(op, "dh", dh)?;
    if dz.shape.dims() != [n, latent] {
        return Err(Error::invalid(
            op,
            format!(
                "dz must be [{n}, {latent}] for h {}, got {}",
                h.shape, dz.shape
            ),
        ));
    }
    same(op, "h", &h.shape, "dh", &dh.shape)?;
    latent_launch(ctx, op, seed, latent, &[h, step, dh, dz])
}

/// `(rows, latent)` of a variational encoder's f32 `h = [N, 2z]`, checked as the CPU twin does.
pub(crate) fn check_h(op: &str, h: &GpuTensor) -> Result<(usize, usize)> {
    check_f32(op, "h", h)?;
    crate::cpu::noise::check_latent(op, &h.shape)
}

/// Launches a reparameterize entry over its output (`tensors[2]`), one invocation an element.
fn latent_launch(
    ctx: &GpuContext,
    op: &'static str,
    seed: u32,
    latent: usize,
    tensors: &[&GpuTensor],
) -> Result<Launch> {
    check_step(op, tensors[1])?;
    let out = tensors[2];
    let n = count(op, &format!("{} {}", out.label, out.shape), out.numel())?;
    let params = Params {
        n,
        sigma: 0.0,
        seed,
        latent: latent as u32,
    };
    ctx.launch(
        shaders::NOISE,
        op,
        &[],
        bytemuck::bytes_of(&params),
        tensors,
        Workgroups::Linear((n as u64).div_ceil(256)),
    )
}
