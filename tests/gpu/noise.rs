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

/// A variational autoencoder's sample and its gradient: the same draws as the CPU twin, a
/// sample that follows the step, bad shapes refused.
#[test]
fn reparameterize_matches_the_cpu() {
    let h = Tensor::uniform([37, 2 * 11], -1.5, 1.5, 82);
    let dz = Tensor::uniform([37, 11], -1.0, 1.0, 83);
    for ctx in contexts() {
        let gh = ctx.upload("h", &h).unwrap();
        let gdz = ctx.upload("dz", &dz).unwrap();
        let z = ctx.zeros("z", [37, 11]).unwrap();
        let dh = ctx.zeros("dh", h.shape.clone()).unwrap();
        let mut seen = Vec::new();
        for (seed, step) in [(0u32, 0u32), (0, 1), (5, 123_456)] {
            let counter = ctx.upload_labels("step", &[step]).unwrap();
            let fwd = k::reparameterize(ctx, seed, &gh, &counter, &z).unwrap();
            let bwd = k::reparameterize_backward(ctx, seed, &gh, &gdz, &counter, &dh).unwrap();
            ctx.run(&[&fwd, &bwd]).unwrap();
            let what = format!("reparameterize seed {seed} step {step}");
            let got = ctx.download(&z).unwrap().data;
            let want = cpu::noise::reparameterize(&h, seed, step).unwrap();
            check(ctx, &what, &got, &want.data, NOISE);
            let what = format!("reparameterize_backward seed {seed} step {step}");
            let got_dh = ctx.download(&dh).unwrap().data;
            let want = cpu::noise::reparameterize_backward(&h, &dz, seed, step).unwrap();
            check(ctx, &what, &got_dh, &want.data, NOISE);
            seen.push(got);
        }
        assert_ne!(seen[0], seen[1], "steps 0 and 1 drew the same sample");
        let counter = ctx.upload_labels("step", &[0]).unwrap();
        let bad = k::reparameterize(ctx, 0, &gh, &counter, &dh).unwrap_err();
        assert!(bad.to_string().contains("reparameterize"), "{bad}");
    }
}
