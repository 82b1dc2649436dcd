//! Launchers for shaders/optim.wgsl: in-place optimizer steps (SGD, Adam, AdamW), one element
//! per invocation, 64 per workgroup.
//!
//! A launch is built for one step number (the first-step flag and the bias corrections are
//! uniforms computed on the host in f64); a training loop builds it once and rewrites its
//! uniforms before each step with [`sgd_uniforms`] / [`adam_uniforms`] and
//! [`Launch::write_params`], so a step allocates nothing.

use crate::error::{Error, Result};
use crate::gpu::{DType, GpuContext, GpuTensor, Launch, Workgroups, shaders};
use crate::optim_config::{AdamConfig, SgdConfig, check_lengths};

/// Invocations per workgroup (`WG` in optim.wgsl).
pub const WORKGROUP_SIZE: u64 = 64;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct SgdParams {
    n: u32,
    lr: f32,
    momentum: f32,
    one_minus_dampening: f32,
    weight_decay: f32,
    use_momentum: u32,
    first_step: u32,
    nesterov: u32,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct AdamParams {
    n: u32,
    beta1: f32,
    one_minus_beta1: f32,
    beta2: f32,
    one_minus_beta2: f32,
    step_size: f32,
    bc2_sqrt: f32,
    eps: f32,
    l2: f32,
    decay: f32,
    _pad0: u32,
    _pad1: u32,
}

/// `(description, length)` of a tensor for the length check, after checking it is f32.
fn described(op: &str, role: &str, t: &GpuTensor) -> Result<(String, usize)> {
    if t.dtype != DType::F32 {
        return Err(Error::invalid(
            op,
            format!(
                "{role} '{}' {} is {:?}, expected F32",
                t.label, t.shape, t.dtype
            ),
        ));
    }
    Ok((format!("{role} '{}' {}", t.label, t.shape), t.numel()))
}

/// The element count as the shaders' u32 `n`.
fn count(op: &str, param: &GpuTensor) -> Result<u32> {
    u32::try_from(param.numel()).map_err(|_| {
        Error::invalid(
            op,
            format!(
                "param '{}' has {} elements, more than a u32 index reaches",
                param.label,
                param.numel()
            ),
        )
    })
}

fn linear(n: u32) -> Workgroups {
    Workgroups::Linear((n as u64).div_ceil(WORKGROUP_SIZE))
}

/// The uniforms of an `sgd_step` launch over `n` elements at `step`. An executor that builds the
/// launch once rewrites these before each step ([`Launch::write_params`]).
pub fn sgd_uniforms(config: &SgdConfig, step: u64, n: u32) -> Vec<u8> {
    let params = SgdParams {
        n,
        lr: config.lr as f32,
        momentum: config.momentum as f32,
        one_minus_dampening: (1.0 - config.dampening) as f32,
        weight_decay: config.weight_decay as f32,
        use_momentum: config.uses_momentum() as u32,
        first_step: (step == 1) as u32,
        nesterov: config.nesterov as u32,
    };
    bytemuck::bytes_of(&params).to_vec()
}

/// The uniforms of an `adam_step` (or, when `decoupled`, `adamw_step`) launch over `n` elements
/// at `step`: the bias corrections are computed here in f64.
pub fn adam_uniforms(decoupled: bool, config: &AdamConfig, step: u64, n: u32) -> Vec<u8> {
    let (b1, b2) = config.betas;
    let (bc1, bc2) = config.bias_corrections(step);
    let wd = config.weight_decay;
    let params = AdamParams {
        n,
        beta1: b1 as f32,
        one_minus_beta1: (1.0 - b1) as f32,
        beta2: b2 as f32,
        one_minus_beta2: (1.0 - b2) as f32,
        step_size: (config.lr / bc1) as f32,
        bc2_sqrt: bc2.sqrt() as f32,
        eps: config.eps as f32,
        l2: if decoupled { 0.0 } else { wd as f32 },
        decay: if decoupled {
            (1.0 - config.lr * wd) as f32
        } else {
            1.0
        },
        _pad0: 0,
        _pad1: 0,
    };
    bytemuck::bytes_of(&params).to_vec()
}

/// One `torch.optim.SGD` step on `param` in place (see [`SgdConfig`]). `momentum_buf` is
/// required when `config.momentum != 0`: it is overwritten with `d` at `step == 1` (its earlier
/// contents are ignored) and updated in place after that.
pub fn sgd_step(
    ctx: &GpuContext,
    param: &GpuTensor,
    grad: &GpuTensor,
    momentum_buf: Option<&GpuTensor>,
    config: &SgdConfig,
    step: u64,
) -> Result<Launch> {
    let op = "sgd_step";
    config.check(op, step)?;
    let mut lens = vec![described(op, "param", param)?, described(op, "grad", grad)?];
    if let Some(b) = momentum_buf {
        lens.push(described(op, "momentum_buf", b)?);
    }
    check_lengths(op, &lens)?;
    if config.uses_momentum() && momentum_buf.is_none() {
        return Err(Error::invalid(
            op,
            format!(
                "momentum is {} but no momentum_buf was given for param '{}'",
                config.momentum, param.label
            ),
        ));
    }
    let n = count(op, param)?;
    let params = sgd_uniforms(config, step, n);
    // The shader binds a buffer either way; without momentum it never touches it.
    let dummy;
    let buf = match momentum_buf {
        Some(b) => b,
        None => {
            dummy = ctx.zeros("sgd_step no momentum_buf", [1])?;
            &dummy
        }
    };
    ctx.launch(
        shaders::OPTIM,
        "sgd_step",
        &[],
        &params,
        &[param, grad, buf],
        linear(n),
    )
}

/// One `torch.optim.Adam` step (L2 weight decay) on `param`, `m` (exp_avg) and `v` (exp_avg_sq)
/// in place. `step` counts from 1; `m` and `v` start at zero.
pub fn adam_step(
    ctx: &GpuContext,
    param: &GpuTensor,
    grad: &GpuTensor,
    m: &GpuTensor,
    v: &GpuTensor,
    config: &AdamConfig,
    step: u64,
) -> Result<Launch> {
    adam_like(ctx, "adam_step", param, grad, m, v, config, step)
}

/// One `torch.optim.AdamW` step (decoupled weight decay: `p *= 1 − lr·wd` first) in place.
pub fn adamw_step(
    ctx: &GpuContext,
    param: &GpuTensor,
    grad: &GpuTensor,
    m: &GpuTensor,
    v: &GpuTensor,
    config: &AdamConfig,
    step: u64,
) -> Result<Launch> {
    adam_like(ctx, "adamw_step", param, grad, m, v, config, step)
}

#[allow(clippy::too_many_arguments)]
fn adam_like(
    ctx: &GpuContext,
    op: &'static str,
    param: &GpuTensor,
    grad: &GpuTensor,
    m: &GpuTensor,
    v: &GpuTensor,
    config: &AdamConfig,
    step: u64,
) -> Result<Launch> {
    config.check(op, step)?;
    check_lengths(
        op,
        &[
            described(op, "param", param)?,
            described(op, "grad", grad)?,
            described(op, "m", m)?,
            described(op, "v", v)?,
        ],
    )?;
    let n = count(op, param)?;
    let params = adam_uniforms(op == "adamw_step", config, step, n);
    ctx.launch(
        shaders::OPTIM,
        op,
        &[],
        &params,
        &[param, grad, m, v],
        linear(n),
    )
}
