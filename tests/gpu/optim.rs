//! optim.wgsl against cpu::optim: several steps in a row (step 1..=5, fresh gradients each step,
//! parameter and optimizer state carried on both sides and compared after every step), on
//! lengths that are not multiples of the 64-wide workgroup, one large enough that the workgroup
//! count folds into y, and the argument checks.

use crate::common::{check, contexts, data};
use wgrad::compare::Tolerance;
use wgrad::gpu::kernels::optim::{self as gk, WORKGROUP_SIZE};
use wgrad::gpu::{GpuContext, GpuTensor, Launch};
use wgrad::{AdamConfig, SgdConfig, cpu};

#[derive(Clone, Copy, Debug)]
enum Opt {
    Sgd(SgdConfig),
    Adam(AdamConfig),
    AdamW(AdamConfig),
}

impl Opt {
    fn name(&self) -> &'static str {
        match self {
            Opt::Sgd(_) => "sgd_step",
            Opt::Adam(_) => "adam_step",
            Opt::AdamW(_) => "adamw_step",
        }
    }
    /// Names of the state tensors the optimizer keeps next to the parameter.
    fn state_names(&self) -> &'static [&'static str] {
        match self {
            Opt::Sgd(c) if c.uses_momentum() => &["momentum_buf"],
            Opt::Sgd(_) => &[],
            _ => &["m", "v"],
        }
    }
}

/// One adapter's copy of parameter, gradient and state.
struct OnGpu<'a> {
    ctx: &'a GpuContext,
    param: GpuTensor,
    grad: GpuTensor,
    state: Vec<GpuTensor>,
    /// The parameter as this adapter left it after the previous step.
    prev: Vec<f32>,
}

impl OnGpu<'_> {
    fn launch(&self, opt: &Opt, step: u64) -> Launch {
        let (p, g, s) = (&self.param, &self.grad, &self.state);
        match opt {
            Opt::Sgd(c) => gk::sgd_step(self.ctx, p, g, s.first(), c, step),
            Opt::Adam(c) => gk::adam_step(self.ctx, p, g, &s[0], &s[1], c, step),
            Opt::AdamW(c) => gk::adamw_step(self.ctx, p, g, &s[0], &s[1], c, step),
        }
        .unwrap()
    }
}

fn cpu_step(opt: &Opt, param: &mut [f32], grad: &[f32], state: &mut [Vec<f32>], step: u64) {
    match (opt, state) {
        (Opt::Sgd(c), []) => cpu::optim::sgd_step(param, grad, None, c, step),
        (Opt::Sgd(c), [b]) => cpu::optim::sgd_step(param, grad, Some(b), c, step),
        (Opt::Adam(c), [m, v]) => cpu::optim::adam_step(param, grad, m, v, c, step),
        (Opt::AdamW(c), [m, v]) => cpu::optim::adamw_step(param, grad, m, v, c, step),
        _ => unreachable!("state does not fit the optimizer"),
    }
    .unwrap()
}

/// Runs `steps` steps of `opt` on a tensor of `len` elements on the CPU and on every adapter,
/// comparing parameter and state after each step.
fn run(opt: Opt, len: usize, steps: u64, what: &str) {
    let mut param = data(&[len], 11).data;
    // SGD's momentum buffer starts with stale values that step 1 must ignore; Adam's m and v
    // start at zero, as PyTorch initialises them.
    let mut state: Vec<Vec<f32>> = opt
        .state_names()
        .iter()
        .map(|_| match opt {
            Opt::Sgd(_) => data(&[len], 12).data,
            _ => vec![0.0; len],
        })
        .collect();
    let mut gpus: Vec<OnGpu> = contexts()
        .iter()
        .map(|ctx| {
            let up = |label: &str, d: &[f32]| {
                let t = ctx.zeros(label, [len]).unwrap();
                ctx.write(&t, d).unwrap();
                t
            };
            OnGpu {
                ctx,
                prev: param.clone(),
                param: up("param", &param),
                grad: ctx.zeros("grad", [len]).unwrap(),
                state: opt
                    .state_names()
                    .iter()
                    .zip(&state)
                    .map(|(n, s)| up(n, s))
                    .collect(),
            }
        })
        .collect();
    for step in 1..=steps {
        let grad = data(&[len], 100 + step).data;
        let cpu_prev = param.clone();
        cpu_step(&opt, &mut param, &grad, &mut state, step);
        let cpu_delta = delta(&param, &cpu_prev);
        for g in &mut gpus {
            g.ctx.write(&g.grad, &grad).unwrap();
            let launch = g.launch(&opt, step);
            if len as u64
                > WORKGROUP_SIZE * g.ctx.limits.max_compute_workgroups_per_dimension as u64
            {
                assert!(launch.workgroups[1] > 1, "expected a folded dispatch");
            }
            g.ctx.run(&[&launch]).unwrap();
            let desc = |t: &str| format!("{} {what} len {len} step {step}: {t}", opt.name());
            let got = g.ctx.download(&g.param).unwrap();
            check(
                g.ctx,
                &desc("param"),
                &got.data,
                &param,
                Tolerance::OPTIMIZER,
            );
            check(
                g.ctx,
                &desc("update p_t - p_(t-1)"),
                &delta(&got.data, &g.prev),
                &cpu_delta,
                UPDATE,
            );
            g.prev = got.data;
            for ((name, gs), cs) in opt.state_names().iter().zip(&g.state).zip(&state) {
                let got = g.ctx.download(gs).unwrap();
                let tol = if *name == "v" {
                    SECOND_MOMENT
                } else {
                    Tolerance::OPTIMIZER
                };
                check(g.ctx, &desc(name), &got.data, cs, tol);
            }
        }
    }
}

/// The update `new − old` of each element, as f32 (exact differences rounded once).
fn delta(new: &[f32], old: &[f32]) -> Vec<f32> {
    new.iter()
        .zip(old)
        .map(|(&n, &o)| (n as f64 - o as f64) as f32)
        .collect()
}

/// The update itself, not only the parameter, is held to the CPU: with lr = 1e-3 an update
/// off by 0.1% would hide inside the parameter's atol of 1e-6. Each side rounds p_(t-1) and p_t
/// to f32 and carries its own state, so atol is a few ulps of |p| (the tests keep |p| < 4, where
/// an ulp is at most 2.4e-7): an Adam update (lr 1e-3) off by 0.1% fails at step 1.
const UPDATE: Tolerance = Tolerance {
    atol: 5e-7,
    rtol: 1e-4,
};

/// Adam's v is a sum of non-negative terms (no cancellation), so it is held to a relative
/// tolerance alone; atol only forgives a subnormal flushed to zero.
const SECOND_MOMENT: Tolerance = Tolerance {
    atol: f32::MIN_POSITIVE as f64,
    rtol: 1e-5,
};

const LENGTHS: [usize; 3] = [1, 7, 1000];

#[test]
fn sgd_variants() {
    let base = SgdConfig::new(0.1);
    let configs = [
        ("plain", base),
        (
            "weight_decay",
            SgdConfig {
                weight_decay: 0.01,
                ..base
            },
        ),
        (
            "momentum",
            SgdConfig {
                momentum: 0.9,
                ..base
            },
        ),
        (
            "momentum+dampening+wd",
            SgdConfig {
                momentum: 0.8,
                dampening: 0.3,
                weight_decay: 1e-3,
                ..base
            },
        ),
        (
            "nesterov+wd",
            SgdConfig {
                momentum: 0.9,
                nesterov: true,
                weight_decay: 0.05,
                ..base
            },
        ),
    ];
    for (what, c) in configs {
        for len in LENGTHS {
            run(Opt::Sgd(c), len, 5, what);
        }
    }
}

#[test]
fn adam_variants() {
    let configs = [
        ("defaults", AdamConfig::adam()),
        (
            "weight_decay",
            AdamConfig {
                weight_decay: 0.01,
                ..AdamConfig::adam()
            },
        ),
        (
            "lr 0.01 betas (0.8, 0.99) eps 1e-6 wd 0.1",
            AdamConfig {
                lr: 0.01,
                betas: (0.8, 0.99),
                eps: 1e-6,
                weight_decay: 0.1,
            },
        ),
    ];
    for (what, c) in configs {
        for len in LENGTHS {
            run(Opt::Adam(c), len, 5, what);
        }
    }
}

#[test]
fn adamw_variants() {
    let configs = [
        ("defaults (wd 1e-2)", AdamConfig::adamw()),
        (
            "no weight decay",
            AdamConfig {
                weight_decay: 0.0,
                ..AdamConfig::adamw()
            },
        ),
        (
            "lr 0.01 wd 0.1",
            AdamConfig {
                lr: 0.01,
                weight_decay: 0.1,
                ..AdamConfig::adamw()
            },
        ),
    ];
    for (what, c) in configs {
        for len in LENGTHS {
            run(Opt::AdamW(c), len, 5, what);
        }
    }
}

/// 65 536·64·2 + 3 elements need 131 073 workgroups of 64: more than the 65 535 allowed in one
/// dimension, so the launch folds them into y and the shader must recover the linear index.
#[test]
fn adamw_folded_dispatch() {
    let c = AdamConfig {
        lr: 0.01,
        weight_decay: 0.1,
        ..AdamConfig::adamw()
    };
    run(Opt::AdamW(c), 65_536 * 64 * 2 + 3, 5, "folded");
}

#[test]
fn bad_calls_are_errors_naming_the_op() {
    for ctx in contexts() {
        let t = |label: &str, n: usize| ctx.zeros(label, [n]).unwrap();
        let (p, g, m, v) = (t("w", 7), t("w.grad", 7), t("w.m", 7), t("w.v", 7));
        let short = t("short", 6);
        let adam = AdamConfig::adam();
        let err = |r: wgrad::Result<Launch>| r.expect_err("expected an error").to_string();

        let e = err(gk::adam_step(ctx, &p, &short, &m, &v, &adam, 1));
        assert!(e.contains("adam_step") && e.contains("'short'"), "{e}");
        let e = err(gk::adamw_step(ctx, &p, &g, &m, &v, &adam, 0));
        assert!(e.contains("adamw_step") && e.contains("step"), "{e}");
        let bad = AdamConfig {
            betas: (1.0, 0.999),
            ..adam
        };
        let e = err(gk::adam_step(ctx, &p, &g, &m, &v, &bad, 1));
        assert!(e.contains("adam_step") && e.contains("betas.0"), "{e}");
        let bad = AdamConfig { eps: -1e-8, ..adam };
        let e = err(gk::adamw_step(ctx, &p, &g, &m, &v, &bad, 1));
        assert!(e.contains("adamw_step") && e.contains("eps"), "{e}");
        let bad = AdamConfig { lr: -1e-3, ..adam };
        let e = err(gk::adam_step(ctx, &p, &g, &m, &v, &bad, 1));
        assert!(e.contains("adam_step") && e.contains("lr"), "{e}");
        let labels = ctx.upload_labels("labels", &[0; 7]).unwrap();
        let e = err(gk::adam_step(ctx, &p, &labels, &m, &v, &adam, 1));
        assert!(e.contains("adam_step") && e.contains("U32"), "{e}");
        let empty = t("empty", 0);
        let e = err(gk::adam_step(ctx, &empty, &empty, &empty, &empty, &adam, 1));
        assert!(e.contains("adam_step") && e.contains("empty"), "{e}");

        let e = err(gk::sgd_step(ctx, &p, &g, None, &SgdConfig::new(-0.1), 1));
        assert!(e.contains("sgd_step") && e.contains("lr"), "{e}");
        let mom = SgdConfig {
            momentum: 0.9,
            ..SgdConfig::new(0.1)
        };
        let e = err(gk::sgd_step(ctx, &p, &g, None, &mom, 1));
        assert!(e.contains("sgd_step") && e.contains("momentum_buf"), "{e}");
        let e = err(gk::sgd_step(ctx, &p, &g, Some(&short), &mom, 2));
        assert!(
            e.contains("sgd_step") && e.contains("momentum_buf 'short'"),
            "{e}"
        );
        let e = err(gk::sgd_step(ctx, &p, &g, Some(&m), &mom, 0));
        assert!(e.contains("sgd_step") && e.contains("step"), "{e}");
        let bad = SgdConfig {
            momentum: -0.5,
            ..SgdConfig::new(0.1)
        };
        let e = err(gk::sgd_step(ctx, &p, &g, Some(&m), &bad, 1));
        assert!(e.contains("sgd_step") && e.contains("momentum"), "{e}");
    }
}
