//! noise.wgsl against cpu::noise: the same draws (integer hashes) on every adapter, within what
//! f32's log and sqrt allow; one step's noise is repeatable, another step's differs.

use crate::common::{check, contexts};
use wgrad::compare::Tolerance;
use wgrad::gpu::kernels::noise as k;
use wgrad::{Tensor, cpu};

/// Box–Muller's sqrt(−2·ln u) for u near 1 magnifies f32's log error (a few 1e-7 absolute) to
/// ~1e-3: the draws agree to that, times the noise's std.
const NOISE: Tolerance = Tolerance {
    atol: 2e-3,
    rtol: 1e-4,
};

#[test]
fn draws_match_the_cpu_and_depend_on_the_step() {
    let x = Tensor::uniform([3, 1, 28, 28], 0.0, 1.0, 80);
    for ctx in contexts() {
        let gx = ctx.upload("x", &x).unwrap();
        let y = ctx.zeros("y", x.shape.clone()).unwrap();
        let mut seen = Vec::new();
        for (std, seed, step) in [(0.3f32, 0u32, 0u32), (0.3, 0, 1), (1.0, 9, 70_000)] {
            let counter = ctx.upload_labels("step", &[step]).unwrap();
            let l = k::gaussian_noise(ctx, std, seed, &gx, &counter, &y).unwrap();
            ctx.run(&[&l]).unwrap();
            let got = ctx.download(&y).unwrap().data;
            let want = cpu::noise::gaussian_noise(&x, std, seed, step).unwrap();
            let what = format!("gaussian_noise std {std} seed {seed} step {step}");
            check(ctx, &what, &got, &want.data, NOISE);
            ctx.run(&[&l]).unwrap();
            assert_eq!(
                ctx.download(&y).unwrap().data,
                got,
                "{what}: not repeatable"
            );
            seen.push(got);
        }
        assert_ne!(seen[0], seen[1], "steps 0 and 1 drew the same noise");
        let bad = k::gaussian_noise(ctx, f32::NAN, 0, &gx, &gx, &y).unwrap_err();
        assert!(bad.to_string().contains("gaussian_noise"), "{bad}");
    }
}

#[test]
fn dropout_masks_match_the_cpu() {
    let x = Tensor::uniform([4, 16, 7, 7], -1.0, 1.0, 81);
    for ctx in contexts() {
        let gx = ctx.upload("x", &x).unwrap();
        let y = ctx.zeros("y", x.shape.clone()).unwrap();
        for (p, seed, step) in [(0.5f32, 1u32, 0u32), (0.1, 2, 3), (1.0, 2, 3), (0.0, 2, 3)] {
            let counter = ctx.upload_labels("step", &[step]).unwrap();
            for (name, gpu, cpu) in [
                (
                    "dropout_forward",
                    k::dropout_forward as fn(_, _, _, _, _, _) -> _,
                    cpu::noise::dropout_forward as fn(_, _, _, _) -> _,
                ),
                (
                    "dropout_backward",
                    k::dropout_backward,
                    cpu::noise::dropout_backward,
                ),
            ] {
                let l = gpu(ctx, p, seed, &gx, &counter, &y).unwrap();
                ctx.run(&[&l]).unwrap();
                let got = ctx.download(&y).unwrap().data;
                let want = cpu(&x, p, seed, step).unwrap();
                let what = format!("{name} p {p} seed {seed} step {step}");
                check(ctx, &what, &got, &want.data, Tolerance::POINTWISE);
            }
        }
    }
}
