//! Launchers for shaders/batch_norm.wgsl, validated as the CPU twins in
//! [`crate::cpu::batch_norm`] are.

use crate::cpu::batch_norm::{check_vector, dims};
use crate::error::{Error, Result};
use crate::gpu::kernels::pointwise::{check_f32, count};
use crate::gpu::{GpuContext, GpuTensor, Launch, Workgroups, shaders};
use crate::shape::same;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    channels: u32,
    plane: u32,
    count: u32,
    eps: f32,
    mean_at: u32,
    var_at: u32,
    _pad: u32,
}

/// The moments a normalisation uses: the batch's own `[2, C]` statistics (from
/// [`batch_norm_stats`]: means, then variances), or running means and variances, each `[C]`.
#[derive(Clone, Copy, Debug)]
pub enum Moments<'a> {
    Batch(&'a GpuTensor),
    Running {
        mean: &'a GpuTensor,
        var: &'a GpuTensor,
    },
}

impl<'a> Moments<'a> {
    /// The two bindings and the offsets the kernel reads them at, checked against `c` channels.
    fn bind(self, op: &str, c: usize) -> Result<([&'a GpuTensor; 2], [u32; 2])> {
        match self {
            Moments::Batch(s) => {
                check_f32(op, "stats", s)?;
                if s.shape.dims() != [2, c] {
                    return Err(Error::invalid(
                        op,
                        format!("stats must be [2, {c}] (means, variances), got {}", s.shape),
                    ));
                }
                Ok(([s, s], [0, c as u32]))
            }
            Moments::Running { mean, var } => {
                check_f32(op, "mean", mean)?;
                check_f32(op, "var", var)?;
                check_vector(op, "mean", &mean.shape, c)?;
                check_vector(op, "var", &var.shape, c)?;
                Ok(([mean, var], [0, 0]))
            }
        }
    }
}

/// The uniforms for `x`, checked.
fn params(op: &str, x: &GpuTensor, eps: f32, at: [u32; 2]) -> Result<(Params, usize)> {
    check_f32(op, "x", x)?;
    let (n, c, plane) = dims(op, &x.shape)?;
    if !(eps.is_finite() && eps > 0.0) {
        return Err(Error::invalid(
            op,
            format!("eps {eps} must be finite and > 0"),
        ));
    }
    let total = count(op, &format!("{} {}", x.label, x.shape), x.numel())?;
    Ok((
        Params {
            n: total,
            channels: c as u32,
            plane: plane as u32,
            count: (n * plane) as u32,
            eps,
            mean_at: at[0],
            var_at: at[1],
            _pad: 0,
        },
        c,
    ))
}

fn launch(
    ctx: &GpuContext,
    op: &'static str,
    p: Params,
    tensors: &[&GpuTensor],
    groups: u64,
) -> Result<Launch> {
    ctx.launch(
        shaders::BATCH_NORM,
        op,
        &[],
        bytemuck::bytes_of(&p),
        tensors,
        Workgroups::Linear(groups),
    )
}

/// One invocation per element of `x`.
fn per_element(p: &Params) -> u64 {
    (p.n as u64).div_ceil(256)
}

fn check_out(op: &str, name: &str, x: &GpuTensor, out: &GpuTensor) -> Result<()> {
    check_f32(op, name, out)?;
    same(op, "x", &x.shape, name, &out.shape)
}

fn check_pair(op: &str, name: &str, t: &GpuTensor, c: usize) -> Result<()> {
    check_f32(op, name, t)?;
    if t.shape.dims() != [2, c] {
        return Err(Error::invalid(
            op,
            format!("{name} must be [2, {c}], got {}", t.shape),
        ));
    }
    Ok(())
}

/// `stats = [means; biased variances]` (`[2, C]`) of `x` (`[N, C, …]`), one workgroup per
/// channel.
pub fn batch_norm_stats(ctx: &GpuContext, x: &GpuTensor, stats: &GpuTensor) -> Result<Launch> {
    let op = "batch_norm_stats";
    let (p, c) = params(op, x, 1.0, [0, 0])?;
    check_pair(op, "stats", stats, c)?;
    launch(ctx, op, p, &[x, stats], c as u64)
}

/// `y = (x − mean)/sqrt(var + eps)·weight + bias`, per channel.
pub fn batch_norm_forward(
    ctx: &GpuContext,
    eps: f32,
    x: &GpuTensor,
    moments: Moments<'_>,
    weight: &GpuTensor,
    bias: &GpuTensor,
    y: &GpuTensor,
) -> Result<Launch> {
    let op = "batch_norm_forward";
    let c = dims(op, &x.shape)?.1;
    let ([m, v], at) = moments.bind(op, c)?;
    let (p, c) = params(op, x, eps, at)?;
    for (name, t) in [("weight", weight), ("bias", bias)] {
        check_f32(op, name, t)?;
        check_vector(op, name, &t.shape, c)?;
    }
    check_out(op, "y", x, y)?;
    launch(ctx, op, p, &[x, m, v, weight, bias, y], per_element(&p))
}

/// `sums = [Σ dy; Σ dy·x̂]` (`[2, C]`): the bias's and the weight's gradients, and what the
/// training backward needs. One workgroup per channel.
pub fn batch_norm_backward_sums(
    ctx: &GpuContext,
    eps: f32,
    x: &GpuTensor,
    moments: Moments<'_>,
    dy: &GpuTensor,
    sums: &GpuTensor,
) -> Result<Launch> {
    let op = "batch_norm_backward_sums";
    let c = dims(op, &x.shape)?.1;
    let ([m, v], at) = moments.bind(op, c)?;
    let (p, c) = params(op, x, eps, at)?;
    check_out(op, "dy", x, dy)?;
    check_pair(op, "sums", sums, c)?;
    launch(ctx, op, p, &[x, m, v, dy, sums], c as u64)
}

/// Training's `dx`, through the batch's moments `stats` (`sums` from
/// [`batch_norm_backward_sums`] with the same moments).
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_backward(
    ctx: &GpuContext,
    eps: f32,
    x: &GpuTensor,
    stats: &GpuTensor,
    weight: &GpuTensor,
    dy: &GpuTensor,
    sums: &GpuTensor,
    dx: &GpuTensor,
) -> Result<Launch> {
    let op = "batch_norm_backward";
    let c = dims(op, &x.shape)?.1;
    let ([m, v], at) = Moments::Batch(stats).bind(op, c)?;
    let (p, c) = params(op, x, eps, at)?;
    check_f32(op, "weight", weight)?;
    check_vector(op, "weight", &weight.shape, c)?;
    check_out(op, "dy", x, dy)?;
    check_pair(op, "sums", sums, c)?;
    check_out(op, "dx", x, dx)?;
    launch(
        ctx,
        op,
        p,
        &[x, m, v, weight, dy, sums, dx],
        per_element(&p),
    )
}

/// Evaluation's `dx = dy·weight/sqrt(var + eps)`, the running moments constant (so neither x
/// nor the mean enters).
pub fn batch_norm_backward_eval(
    ctx: &GpuContext,
    eps: f32,
    dy: &GpuTensor,
    var: &GpuTensor,
    weight: &GpuTensor,
    dx: &GpuTensor,
) -> Result<Launch> {
    let op = "batch_norm_backward_eval";
    let (p, c) = params(op, dy, eps, [0, 0])?;
    for (name, t) in [("var", var), ("weight", weight)] {
        check_f32(op, name, t)?;
        check_vector(op, name, &t.shape, c)?;
    }
    check_out(op, "dx", dy, dx)?;
    launch(ctx, op, p, &[dy, var, weight, dx], per_element(&p))
}
