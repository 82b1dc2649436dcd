//! Launchers for shaders/pointwise.wgsl: one per entry point, validated as the CPU twins in
//! [`crate::cpu::pointwise`] are (same shape checks), plus dtype and output-shape checks.
//!
//! Outputs are separate tensors: wgpu forbids binding one buffer both read-only and read-write
//! in a dispatch, so none of these runs in place.

use crate::cpu::pointwise::{bias_channel_dims, bias_column_dims, check_binary};
use crate::error::{Error, Result};
use crate::gpu::{DType, GpuContext, GpuTensor, Launch, Workgroups, shaders};
use crate::shape::{nonempty, same};

/// Invocations per workgroup of every pointwise entry (the shader's `WG` override).
pub const WORKGROUP: u32 = 256;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    s: f32,
    inner: u32,
    channels: u32,
}

/// The most elements a kernel indexes: indices are u32, and a folded grid may overshoot the
/// element count by up to 65,535 workgroups, so staying under 2³¹ keeps every index from
/// wrapping. (Binding-size limits stop far smaller tensors on today's devices.)
pub const MAX_ELEMENTS: usize = 1 << 31;

/// `n` as the kernels' u32 element count, or an error naming `op` when it is too large.
pub(crate) fn count(op: &str, what: &str, n: usize) -> Result<u32> {
    if n > MAX_ELEMENTS {
        return Err(Error::Limit {
            op: op.into(),
            what: format!("{what} of {n} elements"),
            needed: n as u64,
            limit_name: "wgrad's u32 element indexing (2^31 elements)",
            limit: MAX_ELEMENTS as u64,
        });
    }
    Ok(n as u32)
}

/// Fails unless `t` holds f32 data.
pub(crate) fn check_f32(op: &str, name: &str, t: &GpuTensor) -> Result<()> {
    if t.dtype != DType::F32 {
        return Err(Error::invalid(
            op,
            format!(
                "{name} ({} {}) must be f32, got {:?}",
                t.label, t.shape, t.dtype
            ),
        ));
    }
    Ok(())
}

/// Checks that the output is f32 and shaped like the input it mirrors.
fn check_out(op: &str, like_name: &str, like: &GpuTensor, out: &GpuTensor) -> Result<()> {
    check_f32(op, "output", out)?;
    same(op, like_name, &like.shape, "output", &out.shape)
}

fn launch(
    ctx: &GpuContext,
    entry: &'static str,
    wg: u32,
    params: Params,
    tensors: &[&GpuTensor],
) -> Result<Launch> {
    let max = ctx
        .limits
        .max_compute_invocations_per_workgroup
        .min(ctx.limits.max_compute_workgroup_size_x);
    if wg == 0 || wg > max {
        return Err(Error::invalid(
            entry,
            format!("workgroup size {wg} must be in 1..={max} on this device"),
        ));
    }
    ctx.launch(
        shaders::POINTWISE,
        entry,
        &[("WG", wg as f64)],
        bytemuck::bytes_of(&params),
        tensors,
        Workgroups::Linear((params.n as u64).div_ceil(wg as u64)),
    )
}

fn params(op: &str, x: &GpuTensor, s: f32) -> Result<Params> {
    Ok(Params {
        n: count(op, &format!("{} {}", x.label, x.shape), x.numel())?,
        s,
        inner: 1,
        channels: 1,
    })
}

/// `y = f(x)` entries, with `s` the slope or scale when the entry has one.
fn unary(
    ctx: &GpuContext,
    entry: &'static str,
    wg: u32,
    s: f32,
    x: &GpuTensor,
    y: &GpuTensor,
) -> Result<Launch> {
    nonempty(entry, "x", &x.shape)?;
    check_f32(entry, "x", x)?;
    check_out(entry, "x", x, y)?;
    launch(ctx, entry, wg, params(entry, x, s)?, &[x, y])
}

/// `out = f(a, b)` entries over two same-shaped inputs.
fn binary(
    ctx: &GpuContext,
    entry: &'static str,
    names: [&str; 2],
    s: f32,
    a: &GpuTensor,
    b: &GpuTensor,
    out: &GpuTensor,
) -> Result<Launch> {
    check_binary(entry, names[0], &a.shape, names[1], &b.shape)?;
    check_f32(entry, names[0], a)?;
    check_f32(entry, names[1], b)?;
    check_out(entry, names[0], a, out)?;
    launch(ctx, entry, WORKGROUP, params(entry, a, s)?, &[a, b, out])
}

/// `y = max(x, 0)`.
pub fn relu_forward(ctx: &GpuContext, x: &GpuTensor, y: &GpuTensor) -> Result<Launch> {
    unary(ctx, "relu_forward", WORKGROUP, 0.0, x, y)
}

/// `dx = dy` where `x > 0`, else 0.
pub fn relu_backward(
    ctx: &GpuContext,
    x: &GpuTensor,
    dy: &GpuTensor,
    dx: &GpuTensor,
) -> Result<Launch> {
    binary(ctx, "relu_backward", ["x", "dy"], 0.0, x, dy, dx)
}

/// `y = x` for `x > 0`, else `slope·x`.
pub fn leaky_relu_forward(
    ctx: &GpuContext,
    slope: f32,
    x: &GpuTensor,
    y: &GpuTensor,
) -> Result<Launch> {
    unary(ctx, "leaky_relu_forward", WORKGROUP, slope, x, y)
}

/// `dx = dy` where `x > 0`, else `slope·dy`.
pub fn leaky_relu_backward(
    ctx: &GpuContext,
    slope: f32,
    x: &GpuTensor,
    dy: &GpuTensor,
    dx: &GpuTensor,
) -> Result<Launch> {
    binary(ctx, "leaky_relu_backward", ["x", "dy"], slope, x, dy, dx)
}

/// `y = 1 / (1 + e^(−x))`.
pub fn sigmoid_forward(ctx: &GpuContext, x: &GpuTensor, y: &GpuTensor) -> Result<Launch> {
    unary(ctx, "sigmoid_forward", WORKGROUP, 0.0, x, y)
}

/// `dx = dy·y·(1 − y)`, from the forward output `y`.
pub fn sigmoid_backward(
    ctx: &GpuContext,
    y: &GpuTensor,
    dy: &GpuTensor,
    dx: &GpuTensor,
) -> Result<Launch> {
    binary(ctx, "sigmoid_backward", ["y", "dy"], 0.0, y, dy, dx)
}

/// `y = tanh(x)`.
pub fn tanh_forward(ctx: &GpuContext, x: &GpuTensor, y: &GpuTensor) -> Result<Launch> {
    unary(ctx, "tanh_forward", WORKGROUP, 0.0, x, y)
}

/// `dx = dy·(1 − y²)`, from the forward output `y`.
pub fn tanh_backward(
    ctx: &GpuContext,
    y: &GpuTensor,
    dy: &GpuTensor,
    dx: &GpuTensor,
) -> Result<Launch> {
    binary(ctx, "tanh_backward", ["y", "dy"], 0.0, y, dy, dx)
}

/// `y = x·Φ(x)` (PyTorch's exact GELU).
pub fn gelu_forward(ctx: &GpuContext, x: &GpuTensor, y: &GpuTensor) -> Result<Launch> {
    unary(ctx, "gelu_forward", WORKGROUP, 0.0, x, y)
}

/// `dx = dy·(Φ(x) + x·φ(x))`, from the input `x`.
pub fn gelu_backward(
    ctx: &GpuContext,
    x: &GpuTensor,
    dy: &GpuTensor,
    dx: &GpuTensor,
) -> Result<Launch> {
    binary(ctx, "gelu_backward", ["x", "dy"], 0.0, x, dy, dx)
}

/// `y = x·σ(x)`.
pub fn silu_forward(ctx: &GpuContext, x: &GpuTensor, y: &GpuTensor) -> Result<Launch> {
    unary(ctx, "silu_forward", WORKGROUP, 0.0, x, y)
}

/// `dx = dy·σ(x)·(1 + x·(1 − σ(x)))`, from the input `x`.
pub fn silu_backward(
    ctx: &GpuContext,
    x: &GpuTensor,
    dy: &GpuTensor,
    dx: &GpuTensor,
) -> Result<Launch> {
    binary(ctx, "silu_backward", ["x", "dy"], 0.0, x, dy, dx)
}

/// `out = a + b`.
pub fn add(ctx: &GpuContext, a: &GpuTensor, b: &GpuTensor, out: &GpuTensor) -> Result<Launch> {
    binary(ctx, "add", ["a", "b"], 0.0, a, b, out)
}

/// `out = a − b`.
pub fn sub(ctx: &GpuContext, a: &GpuTensor, b: &GpuTensor, out: &GpuTensor) -> Result<Launch> {
    binary(ctx, "sub", ["a", "b"], 0.0, a, b, out)
}

/// `out = a ⊙ b`.
pub fn mul(ctx: &GpuContext, a: &GpuTensor, b: &GpuTensor, out: &GpuTensor) -> Result<Launch> {
    binary(ctx, "mul", ["a", "b"], 0.0, a, b, out)
}

/// `y = s·x`.
pub fn scale(ctx: &GpuContext, s: f32, x: &GpuTensor, y: &GpuTensor) -> Result<Launch> {
    scale_wg(ctx, WORKGROUP, s, x, y)
}

/// [`scale`] with an explicit workgroup size (a per-adapter choice; the tests use a small one
/// to cross the 65,535-workgroups-per-dimension limit cheaply).
pub fn scale_wg(
    ctx: &GpuContext,
    workgroup: u32,
    s: f32,
    x: &GpuTensor,
    y: &GpuTensor,
) -> Result<Launch> {
    unary(ctx, "scale", workgroup, s, x, y)
}

/// `y[n, c, ...] = x[n, c, ...] + b[c]` for `x` `[N, C, spatial...]` and `b` `[C]`.
pub fn bias_add_channel(
    ctx: &GpuContext,
    x: &GpuTensor,
    b: &GpuTensor,
    y: &GpuTensor,
) -> Result<Launch> {
    let op = "bias_add_channel";
    let (channels, inner) = bias_channel_dims(&x.shape, &b.shape)?;
    check_f32(op, "x", x)?;
    check_f32(op, "bias", b)?;
    check_out(op, "x", x, y)?;
    let p = Params {
        inner: inner as u32,
        channels: channels as u32,
        ..params(op, x, 0.0)?
    };
    launch(ctx, op, WORKGROUP, p, &[x, b, y])
}

/// `y[r, c] = x[r, c] + b[c]` for `x` `[rows, cols]` and `b` `[cols]`.
pub fn bias_add_column(
    ctx: &GpuContext,
    x: &GpuTensor,
    b: &GpuTensor,
    y: &GpuTensor,
) -> Result<Launch> {
    let op = "bias_add_column";
    let cols = bias_column_dims(&x.shape, &b.shape)?;
    check_f32(op, "x", x)?;
    check_f32(op, "bias", b)?;
    check_out(op, "x", x, y)?;
    let p = Params {
        channels: cols as u32,
        ..params(op, x, 0.0)?
    };
    launch(ctx, op, WORKGROUP, p, &[x, b, y])
}
