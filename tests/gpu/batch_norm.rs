//! batch_norm.wgsl against cpu::batch_norm on every adapter: the batch moments (channels whose
//! values no workgroup divides, images larger than a workgroup, and `[N, C]` for BatchNorm1d),
//! the normalisation with batch or running moments, both backward passes, and bad calls.

use crate::common::{check, contexts, data};
use wgrad::compare::Tolerance;
use wgrad::cpu::batch_norm as c;
use wgrad::gpu::kernels::batch_norm::{self as k, Moments};
use wgrad::{Tensor, cpu};

const EPS: f32 = 1e-5;

#[test]
fn batch_norm_matches_the_cpu() {
    let shapes: &[&[usize]] = &[&[2, 3, 5, 7], &[16, 4, 14, 14], &[5, 6], &[1, 2, 20, 20]];
    for (s, shape) in shapes.iter().enumerate() {
        let x = Tensor::uniform(shape.to_vec(), -1.0, 3.0, 40 + s as u64);
        let ch = shape[1];
        let count = x.numel() / ch;
        let w = Tensor::uniform([ch], 0.5, 1.5, 50);
        let b = Tensor::uniform([ch], -0.5, 0.5, 51);
        let dy = data(shape, 52);
        let (rm, rv) = (
            Tensor::uniform([ch], -0.3, 0.3, 53),
            Tensor::uniform([ch], 0.5, 2.0, 54),
        );
        // The CPU side, in the order a training step and an evaluation take.
        let stats = c::batch_norm_stats(&x).unwrap();
        let (m, v) = (c::row(&stats, 0).unwrap(), c::row(&stats, 1).unwrap());
        let y = c::batch_norm_forward(&x, &m, &v, &w, &b, EPS).unwrap();
        let sums = c::batch_norm_backward_sums(&x, &m, &v, &dy, EPS).unwrap();
        let dx = c::batch_norm_backward(&x, &m, &v, &w, &dy, &sums, EPS).unwrap();
        let y_eval = c::batch_norm_forward(&x, &rm, &rv, &w, &b, EPS).unwrap();
        let sums_eval = c::batch_norm_backward_sums(&x, &rm, &rv, &dy, EPS).unwrap();
        let dx_eval = c::batch_norm_backward_eval(&dy, &rv, &w, EPS).unwrap();
        for ctx in contexts() {
            let up = |name: &str, t: &Tensor| ctx.upload(name, t).unwrap();
            let (gx, gw, gb, gdy) = (up("x", &x), up("w", &w), up("b", &b), up("dy", &dy));
            let (grm, grv) = (up("running mean", &rm), up("running var", &rv));
            let zeros = |name: &str, s: &wgrad::Shape| ctx.zeros(name, s.clone()).unwrap();
            let (gstats, gsums, gsums_eval) = (
                zeros("stats", &stats.shape),
                zeros("sums", &stats.shape),
                zeros("sums eval", &stats.shape),
            );
            let (gy, gdx, gy_eval, gdx_eval) = (
                zeros("y", &x.shape),
                zeros("dx", &x.shape),
                zeros("y eval", &x.shape),
                zeros("dx eval", &x.shape),
            );
            let batch = Moments::Batch(&gstats);
            let running = Moments::Running {
                mean: &grm,
                var: &grv,
            };
            let launches = [
                k::batch_norm_stats(ctx, &gx, &gstats).unwrap(),
                k::batch_norm_forward(ctx, EPS, &gx, batch, &gw, &gb, &gy).unwrap(),
                k::batch_norm_backward_sums(ctx, EPS, &gx, batch, &gdy, &gsums).unwrap(),
                k::batch_norm_backward(ctx, EPS, &gx, &gstats, &gw, &gdy, &gsums, &gdx).unwrap(),
                k::batch_norm_forward(ctx, EPS, &gx, running, &gw, &gb, &gy_eval).unwrap(),
                k::batch_norm_backward_sums(ctx, EPS, &gx, running, &gdy, &gsums_eval).unwrap(),
                k::batch_norm_backward_eval(ctx, EPS, &gdy, &grv, &gw, &gdx_eval).unwrap(),
            ];
            ctx.run(&launches.iter().collect::<Vec<_>>()).unwrap();
            let got = |t| ctx.download(t).unwrap().data;
            let red = Tolerance::reduction(count);
            // Variances and sums scale with the values: a tolerance relative to the largest.
            let what = |e: &str| format!("{e} {}", x.shape);
            check(
                ctx,
                &what("batch_norm_stats"),
                &got(&gstats),
                &stats.data,
                red,
            );
            check(ctx, &what("batch_norm_forward"), &got(&gy), &y.data, red);
            let sums_tol = scaled(&sums.data, red);
            check(
                ctx,
                &what("batch_norm_backward_sums"),
                &got(&gsums),
                &sums.data,
                sums_tol,
            );
            check(
                ctx,
                &what("batch_norm_backward"),
                &got(&gdx),
                &dx.data,
                scaled(&dx.data, red),
            );
            let pw = Tolerance::POINTWISE;
            check(
                ctx,
                &what("batch_norm_forward (running)"),
                &got(&gy_eval),
                &y_eval.data,
                pw,
            );
            let t = scaled(&sums_eval.data, red);
            check(
                ctx,
                &what("batch_norm_backward_sums (running)"),
                &got(&gsums_eval),
                &sums_eval.data,
                t,
            );
            check(
                ctx,
                &what("batch_norm_backward_eval"),
                &got(&gdx_eval),
                &dx_eval.data,
                pw,
            );
        }
    }
}

/// `tol` with its absolute part scaled by the largest magnitude of `want` (sums of many terms
/// of both signs lose digits relative to their terms, not to their total).
fn scaled(want: &[f32], tol: Tolerance) -> Tolerance {
    let m = want.iter().fold(1f32, |m, v| m.max(v.abs()));
    Tolerance {
        atol: tol.atol * m as f64,
        rtol: tol.rtol,
    }
}

#[test]
fn bad_calls_name_the_operand() {
    for ctx in contexts() {
        let x = ctx.zeros("x", [2, 3, 4, 4]).unwrap();
        let w = ctx.zeros("w", [3]).unwrap();
        let wrong = ctx.zeros("wrong", [4]).unwrap();
        let stats = ctx.zeros("stats", [2, 3]).unwrap();
        let y = ctx.zeros("y", [2, 3, 4, 4]).unwrap();
        let e = k::batch_norm_forward(ctx, EPS, &x, Moments::Batch(&stats), &wrong, &w, &y)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("batch_norm_forward") && e.contains("weight"),
            "{e}"
        );
        let e = k::batch_norm_stats(ctx, &x, &w).unwrap_err().to_string();
        assert!(
            e.contains("batch_norm_stats") && e.contains("[2, 3]"),
            "{e}"
        );
        let e = k::batch_norm_forward(ctx, 0.0, &x, Moments::Batch(&stats), &w, &w, &y)
            .unwrap_err()
            .to_string();
        assert!(e.contains("eps"), "{e}");
        let flat = ctx.zeros("flat", [7]).unwrap();
        assert!(k::batch_norm_stats(ctx, &flat, &stats).is_err());
        let _ = cpu::batch_norm::dims("x", &wgrad::Shape::new([7])).unwrap_err();
    }
}
