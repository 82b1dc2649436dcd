//! CPU twin of shaders/optim.wgsl: one in-place optimizer step per function, PyTorch's formulas
//! (`torch.optim`, single-tensor path) evaluated in f64 per element and stored as f32.

use crate::error::{Error, Result};
use crate::optim_config::{AdamConfig, SgdConfig, check_lengths};

/// One `torch.optim.SGD` step on `param`, in place. `momentum_buf` is required when
/// `config.momentum != 0` (it is overwritten with `d` at step 1, as PyTorch clones `d` into a
/// fresh buffer) and left untouched otherwise.
pub fn sgd_step(
    param: &mut [f32],
    grad: &[f32],
    momentum_buf: Option<&mut [f32]>,
    config: &SgdConfig,
    step: u64,
) -> Result<()> {
    let op = "sgd_step";
    config.check(op, step)?;
    let mut lens = vec![
        ("param".to_string(), param.len()),
        ("grad".to_string(), grad.len()),
    ];
    if let Some(b) = &momentum_buf {
        lens.push(("momentum_buf".to_string(), b.len()));
    }
    check_lengths(op, &lens)?;
    let (lr, mom, damp, wd) = (
        config.lr,
        config.momentum,
        config.dampening,
        config.weight_decay,
    );
    match momentum_buf {
        None if config.uses_momentum() => Err(Error::invalid(
            op,
            format!("momentum is {mom} but no momentum_buf was given"),
        )),
        None => {
            for (p, &g) in param.iter_mut().zip(grad) {
                let d = g as f64 + wd * *p as f64;
                *p = (*p as f64 - lr * d) as f32;
            }
            Ok(())
        }
        Some(buf) => {
            for ((p, &g), b) in param.iter_mut().zip(grad).zip(buf.iter_mut()) {
                let mut d = g as f64 + wd * *p as f64;
                if config.uses_momentum() {
                    let nb = if step == 1 {
                        d
                    } else {
                        mom * *b as f64 + (1.0 - damp) * d
                    };
                    *b = nb as f32;
                    d = if config.nesterov { d + mom * nb } else { nb };
                }
                *p = (*p as f64 - lr * d) as f32;
            }
            Ok(())
        }
    }
}

/// One `torch.optim.Adam` step (L2 weight decay: `g += wd·p`) on `param`, `m` (exp_avg) and `v`
/// (exp_avg_sq), in place. `step` counts from 1; `m` and `v` start at zero.
pub fn adam_step(
    param: &mut [f32],
    grad: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    config: &AdamConfig,
    step: u64,
) -> Result<()> {
    adam_like("adam_step", param, grad, m, v, config, step, false)
}

/// One `torch.optim.AdamW` step (decoupled weight decay: `p *= 1 − lr·wd`, then the Adam update
/// without the L2 term), in place.
pub fn adamw_step(
    param: &mut [f32],
    grad: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    config: &AdamConfig,
    step: u64,
) -> Result<()> {
    adam_like("adamw_step", param, grad, m, v, config, step, true)
}

#[allow(clippy::too_many_arguments)]
fn adam_like(
    op: &str,
    param: &mut [f32],
    grad: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    config: &AdamConfig,
    step: u64,
    decoupled: bool,
) -> Result<()> {
    config.check(op, step)?;
    check_lengths(
        op,
        &[
            ("param".into(), param.len()),
            ("grad".into(), grad.len()),
            ("m".into(), m.len()),
            ("v".into(), v.len()),
        ],
    )?;
    let (b1, b2) = config.betas;
    let (lr, eps, wd) = (config.lr, config.eps, config.weight_decay);
    let t = step as f64;
    let bc1 = 1.0 - b1.powf(t);
    let bc2 = 1.0 - b2.powf(t);
    let step_size = lr / bc1;
    let bc2_sqrt = bc2.sqrt();
    for i in 0..param.len() {
        let mut p = param[i] as f64;
        let mut g = grad[i] as f64;
        if decoupled {
            p *= 1.0 - lr * wd;
        } else {
            g += wd * p;
        }
        let mi = b1 * m[i] as f64 + (1.0 - b1) * g;
        let vi = b2 * v[i] as f64 + (1.0 - b2) * g * g;
        let denom = vi.sqrt() / bc2_sqrt + eps;
        p -= step_size * mi / denom;
        m[i] = mi as f32;
        v[i] = vi as f32;
        param[i] = p as f32;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! Expected numbers come from PyTorch's formulas worked by hand (in the comments) or written
    //! out as scalar arithmetic here, never from the functions under test.
    use super::*;

    fn close(got: f32, want: f64) {
        let tol = 1e-6 + 1e-6 * want.abs();
        assert!(
            (got as f64 - want).abs() <= tol,
            "got {got}, want {want} (diff {:e})",
            (got as f64 - want).abs()
        );
    }

    #[test]
    fn sgd_plain_and_weight_decay() {
        // lr 0.1, no momentum: p = 1 - 0.1·0.5 = 0.95; then p = 0.95 - 0.1·(-1) = 1.05.
        let cfg = SgdConfig::new(0.1);
        let mut p = [1.0f32];
        sgd_step(&mut p, &[0.5], None, &cfg, 1).unwrap();
        close(p[0], 0.95);
        sgd_step(&mut p, &[-1.0], None, &cfg, 2).unwrap();
        close(p[0], 1.05);
        // weight_decay 0.5: d = g + 0.5·p. p = [2, -1], g = [0, 1]:
        // d = [1, 0.5], p = [2 - 0.1, -1 - 0.05] = [1.9, -1.05].
        let cfg = SgdConfig {
            weight_decay: 0.5,
            ..SgdConfig::new(0.1)
        };
        let mut p = [2.0f32, -1.0];
        sgd_step(&mut p, &[0.0, 1.0], None, &cfg, 1).unwrap();
        close(p[0], 1.9);
        close(p[1], -1.05);
    }

    #[test]
    fn sgd_momentum_three_steps() {
        // lr 0.1, momentum 0.9, g = 0.5 each step, p0 = 1:
        // step 1: buf = 0.5 (clone of d);         p = 1 - 0.05 = 0.95
        // step 2: buf = 0.9·0.5 + 0.5 = 0.95;     p = 0.95 - 0.095 = 0.855
        // step 3: buf = 0.9·0.95 + 0.5 = 1.355;   p = 0.855 - 0.1355 = 0.7195
        let cfg = SgdConfig {
            momentum: 0.9,
            ..SgdConfig::new(0.1)
        };
        let mut p = [1.0f32];
        let mut buf = [123.0f32]; // stale contents must be ignored at step 1
        let want = [(0.5, 0.95), (0.95, 0.855), (1.355, 0.7195)];
        for (t, (b, pw)) in want.into_iter().enumerate() {
            sgd_step(&mut p, &[0.5], Some(&mut buf), &cfg, t as u64 + 1).unwrap();
            close(buf[0], b);
            close(p[0], pw);
        }
    }

    #[test]
    fn sgd_dampening_and_nesterov() {
        // momentum 0.9, dampening 0.5, lr 0.1, g = [1, -2] then [0.5, 0.5], p0 = [0, 0]:
        // step 1: buf = d = [1, -2] (dampening not applied to the first step, as in PyTorch);
        //         p = [-0.1, 0.2]
        // step 2: buf = 0.9·[1, -2] + 0.5·[0.5, 0.5] = [1.15, -1.55]; p = [-0.215, 0.355]
        let cfg = SgdConfig {
            momentum: 0.9,
            dampening: 0.5,
            ..SgdConfig::new(0.1)
        };
        let mut p = [0.0f32, 0.0];
        let mut buf = [0.0f32; 2];
        sgd_step(&mut p, &[1.0, -2.0], Some(&mut buf), &cfg, 1).unwrap();
        close(p[0], -0.1);
        close(p[1], 0.2);
        sgd_step(&mut p, &[0.5, 0.5], Some(&mut buf), &cfg, 2).unwrap();
        close(buf[0], 1.15);
        close(buf[1], -1.55);
        close(p[0], -0.215);
        close(p[1], 0.355);

        // Nesterov, momentum 0.9, lr 0.1, g = 0.5, p0 = 1:
        // step 1: buf = 0.5;  d = 0.5 + 0.9·0.5 = 0.95;   p = 1 - 0.095 = 0.905
        // step 2: buf = 0.95; d = 0.5 + 0.9·0.95 = 1.355; p = 0.905 - 0.1355 = 0.7695
        let cfg = SgdConfig {
            momentum: 0.9,
            nesterov: true,
            ..SgdConfig::new(0.1)
        };
        let mut p = [1.0f32];
        let mut buf = [0.0f32];
        sgd_step(&mut p, &[0.5], Some(&mut buf), &cfg, 1).unwrap();
        close(p[0], 0.905);
        sgd_step(&mut p, &[0.5], Some(&mut buf), &cfg, 2).unwrap();
        close(buf[0], 0.95);
        close(p[0], 0.7695);
    }

    #[test]
    fn adam_first_step_moves_by_lr_sign_g() {
        // Step 1 with m = v = 0: m = 0.1g, v = 0.001g², bc1 = 0.1, bc2 = 0.001, so
        // p -= (lr/0.1)·0.1g / (|g| + eps) = lr·g/(|g| + eps) ≈ lr·sign(g), whatever |g| is.
        let cfg = AdamConfig::adam();
        let mut p = [1.0f32, -2.0];
        let (mut m, mut v) = ([0.0f32; 2], [0.0f32; 2]);
        adam_step(&mut p, &[0.5, -3.0], &mut m, &mut v, &cfg, 1).unwrap();
        close(p[0], 1.0 - 1e-3);
        close(p[1], -2.0 + 1e-3);
        close(m[0], 0.05);
        close(m[1], -0.3);
        close(v[0], 0.001 * 0.25);
        close(v[1], 0.001 * 9.0);
    }

    #[test]
    fn adam_three_steps_with_l2() {
        // Adam, lr 0.01, betas (0.9, 0.999), eps 1e-8, weight_decay 0.1, p0 = 1,
        // grads 0.5, -0.25, 1.0. Each step written out from PyTorch's formula in scalars.
        let (lr, b1, b2, eps, wd) = (0.01f64, 0.9f64, 0.999f64, 1e-8f64, 0.1f64);
        let cfg = AdamConfig {
            lr,
            betas: (b1, b2),
            eps,
            weight_decay: wd,
        };
        let grads = [0.5f64, -0.25, 1.0];
        let (mut pe, mut me, mut ve) = (1.0f64, 0.0f64, 0.0f64);
        let mut p = [1.0f32];
        let (mut m, mut v) = ([0.0f32], [0.0f32]);
        for (i, &g0) in grads.iter().enumerate() {
            let t = (i + 1) as i32;
            let g = g0 + wd * pe;
            me = b1 * me + (1.0 - b1) * g;
            ve = b2 * ve + (1.0 - b2) * g * g;
            let bc1 = 1.0 - b1.powi(t);
            let bc2 = 1.0 - b2.powi(t);
            pe -= (lr / bc1) * me / (ve.sqrt() / bc2.sqrt() + eps);
            adam_step(&mut p, &[g0 as f32], &mut m, &mut v, &cfg, t as u64).unwrap();
            close(m[0], me);
            close(v[0], ve);
            close(p[0], pe);
        }
        // The same three steps worked separately (Python floats): after step 1, g = 0.5 + 0.1·1
        // = 0.6 and p = 1 - 0.01·0.6/(0.6 + 1e-8) ≈ 0.99; after step 2 (g = -0.151, but m stays
        // positive) p ≈ 0.98531920; after step 3 (g ≈ 1.0985) p ≈ 0.97797755.
        close(p[0], 0.977_977_554_763_922_5);
    }

    #[test]
    fn adamw_decays_before_the_update() {
        // AdamW, lr 0.1, weight_decay 0.5, p0 = 2, g = 0 at step 1:
        // p = 2·(1 - 0.05) = 1.9; m = v = 0, so the Adam part moves nothing (0 / (0 + eps)).
        let cfg = AdamConfig {
            lr: 0.1,
            weight_decay: 0.5,
            ..AdamConfig::adamw()
        };
        let mut p = [2.0f32];
        let (mut m, mut v) = ([0.0f32], [0.0f32]);
        adamw_step(&mut p, &[0.0], &mut m, &mut v, &cfg, 1).unwrap();
        close(p[0], 1.9);
        // Step 2, g = 1: p = 1.9·0.95 = 1.805; m = 0.1, v = 0.001; bc1 = 0.19, bc2 = 0.001999;
        // p -= (0.1/0.19)·0.1 / (sqrt(0.001)/sqrt(0.001999) + 1e-8).
        adamw_step(&mut p, &[1.0], &mut m, &mut v, &cfg, 2).unwrap();
        let want = 1.805 - (0.1 / 0.19) * 0.1 / ((0.001f64).sqrt() / (0.001999f64).sqrt() + 1e-8);
        close(p[0], want);
        // Adam with the same weight decay adds it to the gradient instead: at step 1 with g = 0,
        // g' = 0.5·2 = 1, so p moves by lr·sign(g') = 0.1, to 1.9 as well, but m and v are not 0.
        let cfg = AdamConfig {
            lr: 0.1,
            weight_decay: 0.5,
            ..AdamConfig::adam()
        };
        let mut p = [2.0f32];
        let (mut m, mut v) = ([0.0f32], [0.0f32]);
        adam_step(&mut p, &[0.0], &mut m, &mut v, &cfg, 1).unwrap();
        close(p[0], 1.9);
        close(m[0], 0.1);
        close(v[0], 0.001);
    }

    fn message(r: Result<()>) -> String {
        r.expect_err("expected an error").to_string()
    }

    #[test]
    fn bad_calls_name_the_op() {
        let mut p = [1.0f32; 3];
        let (mut m, mut v) = ([0.0f32; 3], [0.0f32; 3]);
        let g = [0.5f32; 3];
        let cfg = AdamConfig::adam();
        let e = message(adam_step(&mut p, &g[..2], &mut m, &mut v, &cfg, 1));
        assert!(e.contains("adam_step") && e.contains("grad has 2"), "{e}");
        let e = message(adam_step(&mut p, &g, &mut m, &mut v, &cfg, 0));
        assert!(e.contains("adam_step") && e.contains("step"), "{e}");
        let bad = AdamConfig {
            betas: (0.9, 1.0),
            ..cfg
        };
        let e = message(adamw_step(&mut p, &g, &mut m, &mut v, &bad, 1));
        assert!(e.contains("adamw_step") && e.contains("betas.1"), "{e}");
        let bad = AdamConfig { eps: 0.0, ..cfg };
        let e = message(adam_step(&mut p, &g, &mut m, &mut v, &bad, 1));
        assert!(e.contains("adam_step") && e.contains("eps"), "{e}");
        let bad = AdamConfig { lr: -1.0, ..cfg };
        let e = message(adam_step(&mut p, &g, &mut m, &mut v, &bad, 1));
        assert!(e.contains("adam_step") && e.contains("lr"), "{e}");
        let e = message(adam_step(&mut [], &[], &mut [], &mut [], &cfg, 1));
        assert!(e.contains("empty"), "{e}");

        let e = message(sgd_step(&mut p, &g, None, &SgdConfig::new(-0.1), 1));
        assert!(e.contains("sgd_step") && e.contains("lr"), "{e}");
        let mom = SgdConfig {
            momentum: 0.9,
            ..SgdConfig::new(0.1)
        };
        let e = message(sgd_step(&mut p, &g, None, &mom, 1));
        assert!(e.contains("sgd_step") && e.contains("momentum_buf"), "{e}");
        let e = message(sgd_step(&mut p, &g, Some(&mut m[..1]), &mom, 1));
        assert!(e.contains("momentum_buf has 1"), "{e}");
        let nest = SgdConfig {
            nesterov: true,
            ..SgdConfig::new(0.1)
        };
        let e = message(sgd_step(&mut p, &g, None, &nest, 1));
        assert!(e.contains("sgd_step") && e.contains("Nesterov"), "{e}");
        let e = message(sgd_step(&mut p, &g, None, &SgdConfig::new(f64::NAN), 1));
        assert!(e.contains("sgd_step") && e.contains("lr"), "{e}");
        // Nothing was written by any of the failed calls.
        assert_eq!(p, [1.0; 3]);
    }
}
