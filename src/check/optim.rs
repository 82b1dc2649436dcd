//! Optimizer steps against cpu::optim: three steps in a row with a fresh gradient each, then the
//! parameter, the last update `p_3 − p_2` and every state buffer compared. The update is held to
//! its own tolerance because with lr = 1e-3 an update off by 0.1% hides inside the parameter's
//! (tests/gpu/optim.rs explains the numbers).

use super::{Case, data, expect, read_all};
use crate::compare::Tolerance;
use crate::cpu::optim as cpu;
use crate::error::Result;
use crate::gpu::kernels::optim as gk;
use crate::gpu::{GpuContext, GpuTensor};
use crate::optim_config::{AdamConfig, SgdConfig};
use std::sync::Arc;

/// An update's tolerance: a few ulps of |p| < 1 on top of 1e-4 relative.
const UPDATE: Tolerance = Tolerance {
    atol: 5e-7,
    rtol: 1e-4,
};

/// Adam's second moment is a sum of non-negative terms: relative tolerance alone (atol only
/// forgives a subnormal flushed to zero).
const SECOND_MOMENT: Tolerance = Tolerance {
    atol: f32::MIN_POSITIVE as f64,
    rtol: 1e-5,
};

const LEN: usize = 1000;
const STEPS: u64 = 3;

#[derive(Clone, Copy)]
enum Opt {
    Sgd(SgdConfig),
    Adam(AdamConfig),
    AdamW(AdamConfig),
}

impl Opt {
    fn op(&self) -> &'static str {
        match self {
            Opt::Sgd(_) => "sgd_step",
            Opt::Adam(_) => "adam_step",
            Opt::AdamW(_) => "adamw_step",
        }
    }
    fn state_names(&self) -> &'static [&'static str] {
        match self {
            Opt::Sgd(c) if c.uses_momentum() => &["momentum_buf"],
            Opt::Sgd(_) => &[],
            _ => &["m", "v"],
        }
    }
    /// Initial state: SGD's momentum buffer starts with stale values that step 1 must ignore;
    /// Adam's m and v start at zero, as PyTorch's do.
    fn initial_state(&self) -> Vec<Vec<f32>> {
        let fill = |_| match self {
            Opt::Sgd(_) => data(&[LEN], 12).data,
            _ => vec![0.0; LEN],
        };
        self.state_names().iter().map(fill).collect()
    }
}

fn cpu_step(opt: &Opt, p: &mut [f32], g: &[f32], state: &mut [Vec<f32>], step: u64) -> Result<()> {
    match (opt, state) {
        (Opt::Sgd(c), []) => cpu::sgd_step(p, g, None, c, step),
        (Opt::Sgd(c), [b]) => cpu::sgd_step(p, g, Some(b), c, step),
        (Opt::Adam(c), [m, v]) => cpu::adam_step(p, g, m, v, c, step),
        (Opt::AdamW(c), [m, v]) => cpu::adamw_step(p, g, m, v, c, step),
        _ => Err(crate::error::Error::invalid(
            opt.op(),
            "state does not fit the optimizer",
        )),
    }
}

fn delta(new: &[f32], old: &[f32]) -> Vec<f32> {
    new.iter()
        .zip(old)
        .map(|(&n, &o)| (n as f64 - o as f64) as f32)
        .collect()
}

/// Submits the steps on the GPU, with a copy of the parameter taken before the last one; returns
/// the parameter, that copy and the state buffers.
fn gpu_steps(ctx: &GpuContext, opt: &Opt) -> Result<(GpuTensor, GpuTensor, Vec<GpuTensor>)> {
    let init = data(&[LEN], 11);
    let param = ctx.upload("param", &init)?;
    let before_last = ctx.zeros("param before the last step", [LEN])?;
    let grad = ctx.zeros("grad", [LEN])?;
    let mut state = Vec::new();
    for (name, s) in opt.state_names().iter().zip(opt.initial_state()) {
        let t = ctx.zeros(name, [LEN])?;
        ctx.write(&t, &s)?;
        state.push(t);
    }
    for step in 1..=STEPS {
        if step == STEPS {
            ctx.copy(&param, &before_last, None)?;
        }
        // Queued writes land before the next submission: each step gets its own gradient.
        ctx.write(&grad, &data(&[LEN], 100 + step).data)?;
        let l = match opt {
            Opt::Sgd(c) => gk::sgd_step(ctx, &param, &grad, state.first(), c, step)?,
            Opt::Adam(c) => gk::adam_step(ctx, &param, &grad, &state[0], &state[1], c, step)?,
            Opt::AdamW(c) => gk::adamw_step(ctx, &param, &grad, &state[0], &state[1], c, step)?,
        };
        ctx.run(&[&l])?;
    }
    Ok((param, before_last, state))
}

/// The parameter, the last update and the state, in [`case`]'s order.
async fn gpu_outputs(
    ctx: Arc<GpuContext>,
    submitted: Result<(GpuTensor, GpuTensor, Vec<GpuTensor>)>,
) -> Result<Vec<Vec<f32>>> {
    let (param, before_last, state) = submitted?;
    let now = ctx.download_async(&param).await?.data;
    let prev = ctx.download_async(&before_last).await?.data;
    let mut out = vec![delta(&now, &prev)];
    out.insert(0, now);
    out.extend(read_all(&ctx, &state.iter().collect::<Vec<_>>()).await?);
    Ok(out)
}

fn case(opt: Opt, config: &str) -> Case {
    let op = opt.op();
    let shape = format!("[{LEN}], {STEPS} steps, {config}");
    let d = shape.clone();
    Case::new(
        op,
        shape,
        move || {
            let mut p = data(&[LEN], 11).data;
            let mut state = opt.initial_state();
            let mut last = Vec::new();
            for step in 1..=STEPS {
                let prev = p.clone();
                cpu_step(
                    &opt,
                    &mut p,
                    &data(&[LEN], 100 + step).data,
                    &mut state,
                    step,
                )?;
                last = delta(&p, &prev);
            }
            let mut out = vec![
                expect(&format!("{op} param"), &d, p, Tolerance::OPTIMIZER),
                expect(&format!("{op} update"), &d, last, UPDATE),
            ];
            for (name, s) in opt.state_names().iter().zip(state) {
                let tol = if *name == "v" {
                    SECOND_MOMENT
                } else {
                    Tolerance::OPTIMIZER
                };
                out.push(expect(&format!("{op} {name}"), &d, s, tol));
            }
            Ok(out)
        },
        move |ctx| {
            let submitted = gpu_steps(&ctx, &opt);
            gpu_outputs(ctx, submitted)
        },
    )
}

pub(super) fn cases() -> Vec<Case> {
    let nesterov = SgdConfig {
        momentum: 0.9,
        nesterov: true,
        weight_decay: 0.05,
        ..SgdConfig::new(0.1)
    };
    let damped = SgdConfig {
        momentum: 0.8,
        dampening: 0.3,
        weight_decay: 1e-3,
        ..SgdConfig::new(0.1)
    };
    vec![
        case(Opt::Sgd(SgdConfig::new(0.1)), "lr 0.1"),
        case(
            Opt::Sgd(damped),
            "lr 0.1 momentum 0.8 dampening 0.3 wd 1e-3",
        ),
        case(Opt::Sgd(nesterov), "lr 0.1 nesterov momentum 0.9 wd 0.05"),
        case(Opt::Adam(AdamConfig::adam()), "defaults"),
        case(
            Opt::Adam(AdamConfig {
                lr: 0.01,
                betas: (0.8, 0.99),
                eps: 1e-6,
                weight_decay: 0.1,
            }),
            "lr 0.01 betas (0.8, 0.99) eps 1e-6 wd 0.1",
        ),
        case(Opt::AdamW(AdamConfig::adamw()), "defaults (wd 1e-2)"),
    ]
}
