//! Launchers for shaders/loss.wgsl, validated as the CPU twins in [`crate::cpu::loss`] are.
//!
//! Labels live on the GPU, where a launcher cannot read them, so their range is checked when
//! they are uploaded: use [`upload_labels`]. A label that is out of range anyway (written by
//! other means) is ignored by the kernels: its row adds 0 to the loss and gets a zero gradient.

use crate::cpu::loss::{check_labels, check_logits, check_scalar};
use crate::cpu::pointwise::check_binary;
use crate::error::{Error, Result};
use crate::gpu::kernels::noise::check_h;
use crate::gpu::kernels::pointwise::{check_f32, count};
use crate::gpu::{DType, GpuContext, GpuTensor, Launch, Workgroups, shaders};
use crate::shape::same;
use crate::spec::PointLoss;

/// Invocations per workgroup of every loss entry (the shader's `WG`).
const WORKGROUP: u64 = 256;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    classes: u32,
    slices: u32,
    divisor: u32,
}

/// `n` is the element count (MSE) or the row count (cross-entropy) of `x`.
fn params(op: &str, x: &GpuTensor, n: usize, classes: usize) -> Result<Params> {
    count(op, &format!("{} {}", x.label, x.shape), x.numel())?;
    Ok(Params {
        n: n as u32,
        classes: classes as u32,
        slices: 1,
        divisor: n as u32,
    })
}

/// The most workgroups a forward loss's first pass uses: plenty to fill a GPU, few enough for
/// one workgroup of `loss_sum` to add.
const MAX_SLICES: usize = 256;

/// Workgroups for the first pass over `n` items, `per` items per invocation at least: 1 (one
/// pass, the loss as it was computed before slicing) for small inputs.
fn slices(n: usize, per: usize) -> usize {
    n.div_ceil(WORKGROUP as usize * per).clamp(1, MAX_SLICES)
}

/// A forward loss over `n` items: one pass when `p.slices` is 1, else the first pass into
/// per-slice sums and `loss_sum` adding them into `out`.
fn sliced(
    ctx: &GpuContext,
    entry: &'static str,
    p: Params,
    inputs: &[&GpuTensor],
    out: &GpuTensor,
) -> Result<Launch> {
    let bound = |out| inputs.iter().copied().chain([out]).collect::<Vec<_>>();
    if p.slices == 1 {
        return ctx.launch(
            shaders::LOSS,
            entry,
            &[],
            bytemuck::bytes_of(&p),
            &bound(out),
            Workgroups::Linear(1),
        );
    }
    let sums = ctx.zeros(&format!("{entry} slice sums"), [p.slices as usize])?;
    let first = ctx.launch(
        shaders::LOSS,
        entry,
        &[],
        bytemuck::bytes_of(&p),
        &bound(&sums),
        Workgroups::Linear(p.slices as u64),
    )?;
    let second = Params {
        n: p.slices,
        classes: 0,
        slices: 1,
        divisor: p.divisor,
    };
    Ok(first.followed_by(ctx.launch(
        shaders::LOSS,
        "loss_sum",
        &[],
        bytemuck::bytes_of(&second),
        &[&sums, out],
        Workgroups::Linear(1),
    )?))
}

/// Checks `labels` against `classes`, then uploads them as a u32 tensor `[labels.len()]`.
pub fn upload_labels(
    ctx: &GpuContext,
    name: &str,
    labels: &[u32],
    classes: usize,
) -> Result<GpuTensor> {
    check_labels(labels, classes)?;
    ctx.upload_labels(name, labels)
}

fn check_mse(op: &str, y: &GpuTensor, t: &GpuTensor) -> Result<()> {
    check_binary(op, "y", &y.shape, "target", &t.shape)?;
    check_f32(op, "y", y)?;
    check_f32(op, "target", t)
}

fn check_cross_entropy(op: &str, logits: &GpuTensor, labels: &GpuTensor) -> Result<(usize, usize)> {
    let dims = check_logits(op, &logits.shape, labels.numel())?;
    check_f32(op, "logits", logits)?;
    if labels.dtype != DType::U32 || labels.shape.rank() != 1 {
        return Err(Error::invalid(
            op,
            format!(
                "labels ({} {}) must be a u32 vector (upload them with upload_labels), got {:?}",
                labels.label, labels.shape, labels.dtype
            ),
        ));
    }
    Ok(dims)
}

fn check_scalar_f32(op: &str, name: &str, t: &GpuTensor) -> Result<()> {
    check_scalar(op, name, &t.shape)?;
    check_f32(op, name, t)
}

/// `out[0] = mean((y − t)²)`: slices of at least 8 elements an invocation summed by
/// workgroups of their own, then added by a second pass (one pass below 2,048 elements).
pub fn mse_loss(ctx: &GpuContext, y: &GpuTensor, t: &GpuTensor, out: &GpuTensor) -> Result<Launch> {
    point_loss(ctx, PointLoss::Mse, y, t, out)
}

/// `out[0]` = the mean of `kind`'s term over every element (`kind.entry()`), sliced as
/// [`mse_loss`] is.
pub fn point_loss(
    ctx: &GpuContext,
    kind: PointLoss,
    y: &GpuTensor,
    t: &GpuTensor,
    out: &GpuTensor,
) -> Result<Launch> {
    let op = kind.entry();
    check_mse(op, y, t)?;
    check_scalar_f32(op, "output", out)?;
    let mut p = params(op, y, y.numel(), 0)?;
    p.slices = slices(y.numel(), 8) as u32;
    sliced(ctx, op, p, &[y, t], out)
}

/// `dy = 2(y − t)/numel · g[0]`.
pub fn mse_loss_backward(
    ctx: &GpuContext,
    y: &GpuTensor,
    t: &GpuTensor,
    g: &GpuTensor,
    dy: &GpuTensor,
) -> Result<Launch> {
    point_loss_backward(ctx, PointLoss::Mse, y, t, g, dy)
}

/// `dy = grad(y, t)/numel · g[0]` for `kind` (`kind.backward_entry()`).
pub fn point_loss_backward(
    ctx: &GpuContext,
    kind: PointLoss,
    y: &GpuTensor,
    t: &GpuTensor,
    g: &GpuTensor,
    dy: &GpuTensor,
) -> Result<Launch> {
    let op = kind.backward_entry();
    check_mse(op, y, t)?;
    check_scalar_f32(op, "g", g)?;
    check_f32(op, "dy", dy)?;
    same(op, "y", &y.shape, "dy", &dy.shape)?;
    let p = params(op, y, y.numel(), 0)?;
    ctx.launch(
        shaders::LOSS,
        op,
        &[],
        bytemuck::bytes_of(&p),
        &[y, t, g, dy],
        Workgroups::Linear((y.numel() as u64).div_ceil(WORKGROUP)),
    )
}

/// `out[0]` = mean over rows of `logsumexp(z) − z[label]`, for logits `[B, K]` and u32 labels
/// `[B]`: sliced as [`mse_loss`] is, at least one row an invocation (one pass up to 256 rows).
pub fn softmax_cross_entropy(
    ctx: &GpuContext,
    logits: &GpuTensor,
    labels: &GpuTensor,
    out: &GpuTensor,
) -> Result<Launch> {
    let op = "softmax_cross_entropy";
    let (rows, classes) = check_cross_entropy(op, logits, labels)?;
    check_scalar_f32(op, "output", out)?;
    let mut p = params(op, logits, rows, classes)?;
    p.slices = slices(rows, 1) as u32;
    sliced(ctx, op, p, &[logits, labels], out)
}

/// `dz = (softmax(z) − onehot(label)) / B · g[0]`, one invocation per row.
pub fn softmax_cross_entropy_backward(
    ctx: &GpuContext,
    logits: &GpuTensor,
    labels: &GpuTensor,
    g: &GpuTensor,
    dz: &GpuTensor,
) -> Result<Launch> {
    let op = "softmax_cross_entropy_backward";
    let (rows, classes) = check_cross_entropy(op, logits, labels)?;
    check_scalar_f32(op, "g", g)?;
    check_f32(op, "dz", dz)?;
    same(op, "logits", &logits.shape, "dz", &dz.shape)?;
    let p = params(op, logits, rows, classes)?;
    ctx.launch(
        shaders::LOSS,
        op,
        &[],
        bytemuck::bytes_of(&p),
        &[logits, labels, g, dz],
        Workgroups::Linear((rows as u64).div_ceil(WORKGROUP)),
    )
}

/// `out[0]` = the KL divergence of `N(mu, exp(logvar))` from `N(0, 1)` for `h = [mu | logvar]`
/// (`[N, 2z]`), summed over the latent and averaged over the rows; sliced as [`mse_loss`] is.
pub fn kl_divergence(ctx: &GpuContext, h: &GpuTensor, out: &GpuTensor) -> Result<Launch> {
    let op = "kl_divergence";
    let (rows, latent) = check_h(op, h)?;
    check_scalar_f32(op, "output", out)?;
    let mut p = params(op, h, rows * latent, latent)?;
    p.divisor = rows as u32;
    p.slices = slices(rows * latent, 8) as u32;
    sliced(ctx, op, p, &[h], out)
}

/// `dh = [mu | (exp(logvar) − 1)/2] / N · g[0]`.
pub fn kl_divergence_backward(
    ctx: &GpuContext,
    h: &GpuTensor,
    g: &GpuTensor,
    dh: &GpuTensor,
) -> Result<Launch> {
    let op = "kl_divergence_backward";
    let (rows, latent) = check_h(op, h)?;
    check_scalar_f32(op, "g", g)?;
    check_f32(op, "dh", dh)?;
    same(op, "h", &h.shape, "dh", &dh.shape)?;
    let mut p = params(op, h, h.numel(), latent)?;
    p.divisor = rows as u32;
    ctx.launch(
        shaders::LOSS,
        op,
        &[],
        bytemuck::bytes_of(&p),
        &[h, g, dh],
        Workgroups::Linear((h.numel() as u64).div_ceil(WORKGROUP)),
    )
}
