//! loss.wgsl against cpu::loss: MSE and softmax cross-entropy with their gradients on every
//! adapter, on sizes no workgroup divides; numerical stability for large logits; what the GPU does
//! with a label that escaped validation; bit-for-bit repeatability; bad calls.

use crate::common::{check, contexts, data};
use wgrad::compare::Tolerance;
use wgrad::gpu::kernels::loss as k;
use wgrad::spec::PointLoss;
use wgrad::tensor::Rng;
use wgrad::{GpuContext, GpuTensor, Tensor, cpu};

fn scalar(ctx: &GpuContext, name: &str, v: f32) -> GpuTensor {
    ctx.upload(name, &Tensor::new([1], vec![v]).unwrap())
        .unwrap()
}

#[test]
fn mse() {
    let shapes: &[&[usize]] = &[&[1], &[7], &[257], &[100_003], &[4, 1, 28, 28]];
    let g = Tensor::new([1], vec![0.7]).unwrap();
    for shape in shapes {
        let y = data(shape, 11);
        let t = data(shape, 12);
        let n = y.numel();
        let want = cpu::loss::mse_loss(&y, &t).unwrap();
        let want_dy = cpu::loss::mse_loss_backward(&y, &t, &g).unwrap();
        for ctx in contexts() {
            let gy = ctx.upload("y", &y).unwrap();
            let gt = ctx.upload("t", &t).unwrap();
            let gg = ctx.upload("g", &g).unwrap();
            let out = ctx.zeros("loss", [1]).unwrap();
            let dy = ctx.zeros("dy", y.shape.clone()).unwrap();
            let fwd = k::mse_loss(ctx, &gy, &gt, &out).unwrap();
            let bwd = k::mse_loss_backward(ctx, &gy, &gt, &gg, &dy).unwrap();
            ctx.run(&[&fwd, &bwd]).unwrap();
            let loss = ctx.download(&out).unwrap().data;
            let what = format!("mse_loss {}", y.shape);
            check(ctx, &what, &loss, &want.data, Tolerance::reduction(n));
            let grad = ctx.download(&dy).unwrap().data;
            let what = format!("mse_loss_backward {}", y.shape);
            check(ctx, &what, &grad, &want_dy.data, Tolerance::POINTWISE);
        }
    }
}

/// Predictions for `kind`: probabilities strictly inside (0, 1) for BCE, else any value.
fn predictions(kind: PointLoss, shape: &[usize], seed: u64) -> Tensor {
    match kind {
        PointLoss::Bce => Tensor::uniform(shape.to_vec(), 0.01, 0.99, seed),
        PointLoss::BceWithLogits => Tensor::uniform(shape.to_vec(), -6.0, 6.0, seed),
        _ => data(shape, seed),
    }
}

/// L1, BCE and BCE with logits (MSE has its own test above), one pass and sliced, forward and
/// backward, plus the edges: BCE at exact 0 and 1 (PyTorch's −100 clamp), logits of ±1000.
#[test]
fn point_losses() {
    let g = Tensor::new([1], vec![0.7]).unwrap();
    let unit = |shape: &[usize], seed| Tensor::uniform(shape.to_vec(), 0.0, 1.0, seed);
    for kind in [PointLoss::L1, PointLoss::Bce, PointLoss::BceWithLogits] {
        let mut cases: Vec<(Tensor, Tensor)> = [&[7usize][..], &[257], &[100_003]]
            .iter()
            .enumerate()
            .map(|(i, s)| (predictions(kind, s, 31 + i as u64), unit(s, 41 + i as u64)))
            .collect();
        let edges = match kind {
            PointLoss::Bce => vec![0.0, 1.0, 0.0, 1.0, 0.5],
            PointLoss::BceWithLogits => vec![1000.0, -1000.0, -1000.0, 1000.0, 0.0],
            _ => vec![0.25, 0.5, -3.0, 2.0, 0.5],
        };
        let t = Tensor::new([5], vec![1.0, 0.0, 1.0, 0.0, 0.5]).unwrap();
        cases.push((Tensor::new([5], edges).unwrap(), t));
        for (y, t) in &cases {
            let want = cpu::loss::point_loss(kind, y, t).unwrap();
            let want_dy = cpu::loss::point_loss_backward(kind, y, t, &g).unwrap();
            for ctx in contexts() {
                let gy = ctx.upload("y", y).unwrap();
                let gt = ctx.upload("t", t).unwrap();
                let gg = ctx.upload("g", &g).unwrap();
                let out = ctx.zeros("loss", [1]).unwrap();
                let dy = ctx.zeros("dy", y.shape.clone()).unwrap();
                let fwd = k::point_loss(ctx, kind, &gy, &gt, &out).unwrap();
                let bwd = k::point_loss_backward(ctx, kind, &gy, &gt, &gg, &dy).unwrap();
                ctx.run(&[&fwd, &bwd]).unwrap();
                let loss = ctx.download(&out).unwrap().data;
                let what = format!("{} {}", kind.entry(), y.shape);
                check(
                    ctx,
                    &what,
                    &loss,
                    &want.data,
                    Tolerance::reduction(y.numel()),
                );
                let grad = ctx.download(&dy).unwrap().data;
                let what = format!("{} {}", kind.backward_entry(), y.shape);
                check(ctx, &what, &grad, &want_dy.data, Tolerance::POINTWISE);
            }
        }
    }
}

fn labels(rows: usize, classes: usize, seed: u64) -> Vec<u32> {
    let mut rng = Rng::new(seed);
    (0..rows)
        .map(|_| rng.below(classes as u64) as u32)
        .collect()
}

fn cross_entropy_case(z: &Tensor, labels: &[u32], what: &str) {
    let (rows, classes) = (z.shape.dim(0), z.shape.dim(1));
    let g = Tensor::new([1], vec![1.3]).unwrap();
    let want = cpu::loss::softmax_cross_entropy(z, labels).unwrap();
    let want_dz = cpu::loss::softmax_cross_entropy_backward(z, labels, &g).unwrap();
    for ctx in contexts() {
        let gz = ctx.upload("logits", z).unwrap();
        let gl = k::upload_labels(ctx, "labels", labels, classes).unwrap();
        let gg = ctx.upload("g", &g).unwrap();
        let out = ctx.zeros("loss", [1]).unwrap();
        let dz = ctx.zeros("dz", z.shape.clone()).unwrap();
        let fwd = k::softmax_cross_entropy(ctx, &gz, &gl, &out).unwrap();
        let bwd = k::softmax_cross_entropy_backward(ctx, &gz, &gl, &gg, &dz).unwrap();
        ctx.run(&[&fwd, &bwd]).unwrap();
        let loss = ctx.download(&out).unwrap().data;
        let tol = Tolerance::reduction(rows * classes);
        check(
            ctx,
            &format!("softmax_cross_entropy {}{what}", z.shape),
            &loss,
            &want.data,
            tol,
        );
        let grad = ctx.download(&dz).unwrap().data;
        check(
            ctx,
            &format!("softmax_cross_entropy_backward {}{what}", z.shape),
            &grad,
            &want_dz.data,
            Tolerance::reduction(classes),
        );
    }
}

#[test]
fn cross_entropy() {
    for (rows, classes) in [(1, 1), (1, 2), (3, 10), (257, 7), (1000, 13), (5, 1000)] {
        let mut z = data(&[rows, classes], 13);
        for v in &mut z.data {
            *v *= 5.0;
        }
        cross_entropy_case(&z, &labels(rows, classes, 14), "");
    }
}

/// Without subtracting the row max, exp(±1000) overflows to inf and the loss becomes NaN.
#[test]
fn cross_entropy_with_large_logits() {
    let z = Tensor::new(
        [3, 3],
        vec![1000.0, 0.0, -1000.0, -500.0, 500.0, 499.0, 88.0, 89.0, 90.0],
    )
    .unwrap();
    cross_entropy_case(&z, &[0, 2, 1], " large logits");
}

/// A label that bypassed upload_labels is ignored: its row adds 0 and gets a zero gradient,
/// and nothing is read out of bounds. The mean still divides by every row.
#[test]
fn unchecked_out_of_range_labels_are_ignored() {
    let z = data(&[2, 3], 15);
    let row0 = Tensor::new([1, 3], z.data[..3].to_vec()).unwrap();
    let g = Tensor::new([1], vec![1.0]).unwrap();
    let loss0 = cpu::loss::softmax_cross_entropy(&row0, &[1]).unwrap().data[0];
    let mut want_dz = cpu::loss::softmax_cross_entropy_backward(&row0, &[1], &g)
        .unwrap()
        .data;
    for v in &mut want_dz {
        *v /= 2.0;
    }
    want_dz.extend([0.0; 3]);
    for ctx in contexts() {
        let gz = ctx.upload("logits", &z).unwrap();
        let gl = ctx.upload_labels("unchecked labels", &[1, 99]).unwrap();
        let gg = scalar(ctx, "g", 1.0);
        let out = ctx.zeros("loss", [1]).unwrap();
        let dz = ctx.zeros("dz", [2, 3]).unwrap();
        let fwd = k::softmax_cross_entropy(ctx, &gz, &gl, &out).unwrap();
        let bwd = k::softmax_cross_entropy_backward(ctx, &gz, &gl, &gg, &dz).unwrap();
        ctx.run(&[&fwd, &bwd]).unwrap();
        let loss = ctx.download(&out).unwrap().data;
        let tol = Tolerance::reduction(6);
        check(
            ctx,
            "softmax_cross_entropy [2, 3] label 99 of 3 ignored",
            &loss,
            &[loss0 / 2.0],
            tol,
        );
        let grad = ctx.download(&dz).unwrap().data;
        check(
            ctx,
            "softmax_cross_entropy_backward [2, 3] label 99 of 3 ignored",
            &grad,
            &want_dz,
            tol,
        );
        let err = k::upload_labels(ctx, "labels", &[1, 99], 3).unwrap_err();
        assert!(err.to_string().contains("label 99"), "{err}");
    }
}

#[test]
fn same_input_same_bits() {
    let y = data(&[50_021], 16);
    let t = data(&[50_021], 17);
    let z = data(&[513, 11], 18);
    let l = labels(513, 11, 19);
    for ctx in contexts() {
        let (gy, gt) = (ctx.upload("y", &y).unwrap(), ctx.upload("t", &t).unwrap());
        let gz = ctx.upload("z", &z).unwrap();
        let gl = k::upload_labels(ctx, "labels", &l, 11).unwrap();
        let bits: Vec<[u32; 2]> = (0..3)
            .map(|_| {
                let a = ctx.zeros("mse", [1]).unwrap();
                let b = ctx.zeros("ce", [1]).unwrap();
                let fa = k::mse_loss(ctx, &gy, &gt, &a).unwrap();
                let fb = k::softmax_cross_entropy(ctx, &gz, &gl, &b).unwrap();
                ctx.run(&[&fa, &fb]).unwrap();
                [a, b].map(|t| ctx.download(&t).unwrap().data[0].to_bits())
            })
            .collect();
        assert_eq!(bits[0], bits[1]);
        assert_eq!(bits[0], bits[2]);
    }
}

#[test]
fn bad_calls_are_errors() {
    for ctx in contexts() {
        let y = ctx.zeros("y", [4, 3]).unwrap();
        let t = ctx.zeros("t", [3, 4]).unwrap();
        let empty = ctx.zeros("empty", [0, 3]).unwrap();
        let out = ctx.zeros("out", [1]).unwrap();
        let two = ctx.zeros("two", [2]).unwrap();
        let g = scalar(ctx, "g", 1.0);
        let lab = k::upload_labels(ctx, "labels", &[0, 1, 2, 0], 3).unwrap();
        let lab3 = k::upload_labels(ctx, "labels3", &[0, 1, 2], 3).unwrap();
        let lab_f32 = ctx.zeros("f32 labels", [4]).unwrap();
        let z3 = ctx.zeros("z3", [4, 3, 1]).unwrap();
        let cases = [
            (k::mse_loss(ctx, &y, &t, &out), "mse_loss", "[3, 4]"),
            (
                k::mse_loss(ctx, &empty, &empty, &out),
                "mse_loss",
                "zero-sized",
            ),
            (k::mse_loss(ctx, &y, &y, &two), "mse_loss", "one element"),
            (
                k::mse_loss_backward(ctx, &y, &y, &two, &y),
                "mse_loss_backward",
                "one element",
            ),
            (
                k::mse_loss_backward(ctx, &y, &y, &g, &t),
                "mse_loss_backward",
                "dy",
            ),
            (
                k::softmax_cross_entropy(ctx, &y, &lab3, &out),
                "softmax_cross_entropy",
                "labels",
            ),
            (
                k::softmax_cross_entropy(ctx, &y, &lab_f32, &out),
                "softmax_cross_entropy",
                "u32",
            ),
            (
                k::softmax_cross_entropy(ctx, &z3, &lab, &out),
                "softmax_cross_entropy",
                "rank 2",
            ),
            (
                k::softmax_cross_entropy(ctx, &y, &lab, &lab),
                "softmax_cross_entropy",
                "one element",
            ),
            (
                k::softmax_cross_entropy_backward(ctx, &y, &lab, &g, &t),
                "softmax_cross_entropy_backward",
                "dz",
            ),
            (
                k::softmax_cross_entropy_backward(ctx, &empty, &lab, &g, &empty),
                "softmax_cross_entropy_backward",
                "zero-sized",
            ),
        ];
        for (launch, op, mentions) in cases {
            let msg = launch.unwrap_err().to_string();
            assert!(
                msg.contains(op) && msg.contains(mentions),
                "error should name {op} and {mentions}: {msg}"
            );
        }
    }
}

/// A big loss runs as slices summed by workgroups of their own and a second pass over the
/// slices' sums: a NaN in the last slice, or in the last rows, still makes the loss NaN.
#[test]
fn sliced_losses_keep_a_nan_in_any_slice() {
    let mut y = data(&[50_000], 21);
    let t = data(&[50_000], 22);
    y.data[49_999] = f32::NAN;
    let mut z = data(&[1000, 5], 23);
    z.data[999 * 5 + 2] = f32::NAN;
    let l = labels(1000, 5, 24);
    for ctx in contexts() {
        let (gy, gt) = (ctx.upload("y", &y).unwrap(), ctx.upload("t", &t).unwrap());
        let out = ctx.zeros("loss", [1]).unwrap();
        ctx.run(&[&k::mse_loss(ctx, &gy, &gt, &out).unwrap()])
            .unwrap();
        let got = ctx.download(&out).unwrap().data[0];
        assert!(got.is_nan(), "mse_loss on {}: {got}", ctx.describe());
        let gz = ctx.upload("logits", &z).unwrap();
        let gl = k::upload_labels(ctx, "labels", &l, 5).unwrap();
        ctx.run(&[&k::softmax_cross_entropy(ctx, &gz, &gl, &out).unwrap()])
            .unwrap();
        let got = ctx.download(&out).unwrap().data[0];
        assert!(
            got.is_nan(),
            "softmax_cross_entropy on {}: {got}",
            ctx.describe()
        );
    }
}

/// The variational autoencoder's KL term and its gradient: one pass and sliced (a batch of
/// latents large enough for several workgroups), against the CPU twin.
#[test]
fn kl_divergence() {
    let g = Tensor::new([1], vec![0.7]).unwrap();
    for (rows, latent) in [(1, 1), (5, 3), (300, 40)] {
        let h = Tensor::uniform([rows, 2 * latent], -2.0, 2.0, 26);
        let want = cpu::loss::kl_divergence(&h).unwrap();
        let want_dh = cpu::loss::kl_divergence_backward(&h, &g).unwrap();
        for ctx in contexts() {
            let gh = ctx.upload("h", &h).unwrap();
            let gg = ctx.upload("g", &g).unwrap();
            let out = ctx.zeros("kl", [1]).unwrap();
            let dh = ctx.zeros("dh", h.shape.clone()).unwrap();
            let fwd = k::kl_divergence(ctx, &gh, &out).unwrap();
            let bwd = k::kl_divergence_backward(ctx, &gh, &gg, &dh).unwrap();
            ctx.run(&[&fwd, &bwd]).unwrap();
            let what = format!("kl_divergence {}", h.shape);
            let got = ctx.download(&out).unwrap().data;
            check(
                ctx,
                &what,
                &got,
                &want.data,
                Tolerance::reduction(rows * latent),
            );
            let what = format!("kl_divergence_backward {}", h.shape);
            let got = ctx.download(&dh).unwrap().data;
            check(ctx, &what, &got, &want_dh.data, Tolerance::POINTWISE);
            let odd = ctx.zeros("odd", [2, 3]).unwrap();
            let bad = k::kl_divergence(ctx, &odd, &out).unwrap_err();
            assert!(bad.to_string().contains("kl_divergence"), "{bad}");
        }
    }
}
