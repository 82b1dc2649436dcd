//! CPU twins of shaders/loss.wgsl, in f64, and the checks both sides share: shapes, and
//! [`check_labels`], which the GPU side runs on the host before uploading labels (the kernels
//! cannot report a bad label; they give such a row zero loss and zero gradient).

use crate::cpu::pointwise::check_binary;
use crate::error::{Error, Result};
use crate::shape::{Shape, nonempty};
use crate::spec::PointLoss;
use crate::tensor::Tensor;

/// Fails unless every label is a class index below `classes`.
pub fn check_labels(labels: &[u32], classes: usize) -> Result<()> {
    if let Some((row, &l)) = labels
        .iter()
        .enumerate()
        .find(|&(_, &l)| l as usize >= classes)
    {
        return Err(Error::invalid(
            "softmax_cross_entropy",
            format!("label {l} of row {row} is out of range for {classes} classes"),
        ));
    }
    Ok(())
}

/// Fails unless `shape` holds exactly one element (a loss value or its upstream gradient).
pub fn check_scalar(op: &str, name: &str, shape: &Shape) -> Result<()> {
    if shape.numel() != 1 {
        return Err(Error::invalid(
            op,
            format!("{name} must hold one element, got shape {shape}"),
        ));
    }
    Ok(())
}

/// `(rows, classes)` of logits `[B, K]` with `labels_len` labels (one per row).
pub fn check_logits(op: &str, logits: &Shape, labels_len: usize) -> Result<(usize, usize)> {
    nonempty(op, "logits", logits)?;
    let &[rows, classes] = logits.dims() else {
        return Err(Error::invalid(
            op,
            format!("logits must be [batch, classes] (rank 2), got {logits}"),
        ));
    };
    if labels_len != rows {
        return Err(Error::invalid(
            op,
            format!("logits {logits} need {rows} labels (one per row), got {labels_len}"),
        ));
    }
    Ok((rows, classes))
}

/// `[mean((y − t)²)]`.
pub fn mse_loss(y: &Tensor, t: &Tensor) -> Result<Tensor> {
    check_binary("mse_loss", "y", &y.shape, "target", &t.shape)?;
    let sum: f64 = y
        .data
        .iter()
        .zip(&t.data)
        .map(|(&a, &b)| (a as f64 - b as f64).powi(2))
        .sum();
    Tensor::new([1], vec![(sum / y.numel() as f64) as f32])
}

/// `dy = 2(y − t)/numel · g[0]`.
pub fn mse_loss_backward(y: &Tensor, t: &Tensor, g: &Tensor) -> Result<Tensor> {
    let op = "mse_loss_backward";
    check_binary(op, "y", &y.shape, "target", &t.shape)?;
    check_scalar(op, "g", &g.shape)?;
    let k = 2.0 * g.data[0] as f64 / y.numel() as f64;
    let data = y
        .data
        .iter()
        .zip(&t.data)
        .map(|(&a, &b)| (k * (a as f64 - b as f64)) as f32)
        .collect();
    Tensor::new(y.shape.clone(), data)
}

/// `[mean(term(y, t))]` for any [`PointLoss`] (PyTorch's `reduction='mean'`); the twin of the
/// kernel named by [`PointLoss::entry`].
pub fn point_loss(kind: PointLoss, y: &Tensor, t: &Tensor) -> Result<Tensor> {
    check_binary(kind.entry(), "y", &y.shape, "target", &t.shape)?;
    let sum: f64 = y
        .data
        .iter()
        .zip(&t.data)
        .map(|(&a, &b)| kind.term(a as f64, b as f64))
        .sum();
    Tensor::new([1], vec![(sum / y.numel() as f64) as f32])
}

/// `dy = grad(y, t)/numel · g[0]`; the twin of [`PointLoss::backward_entry`].
pub fn point_loss_backward(kind: PointLoss, y: &Tensor, t: &Tensor, g: &Tensor) -> Result<Tensor> {
    let op = kind.backward_entry();
    check_binary(op, "y", &y.shape, "target", &t.shape)?;
    check_scalar(op, "g", &g.shape)?;
    let k = g.data[0] as f64 / y.numel() as f64;
    let data = y
        .data
        .iter()
        .zip(&t.data)
        .map(|(&a, &b)| (kind.grad(a as f64, b as f64) * k) as f32)
        .collect();
    Tensor::new(y.shape.clone(), data)
}

/// `[mean |y − t|]` (`nn.L1Loss`).
pub fn l1_loss(y: &Tensor, t: &Tensor) -> Result<Tensor> {
    point_loss(PointLoss::L1, y, t)
}

/// `dy = sign(y − t)/numel · g[0]`.
pub fn l1_loss_backward(y: &Tensor, t: &Tensor, g: &Tensor) -> Result<Tensor> {
    point_loss_backward(PointLoss::L1, y, t, g)
}

/// Binary cross-entropy of probabilities `y` (`nn.BCELoss`).
pub fn bce_loss(y: &Tensor, t: &Tensor) -> Result<Tensor> {
    point_loss(PointLoss::Bce, y, t)
}

/// `dy = (y − t)/max(y(1 − y), 1e-12)/numel · g[0]`.
pub fn bce_loss_backward(y: &Tensor, t: &Tensor, g: &Tensor) -> Result<Tensor> {
    point_loss_backward(PointLoss::Bce, y, t, g)
}

/// Binary cross-entropy of `σ(y)` from logits `y` (`nn.BCEWithLogitsLoss`).
pub fn bce_with_logits_loss(y: &Tensor, t: &Tensor) -> Result<Tensor> {
    point_loss(PointLoss::BceWithLogits, y, t)
}

/// `dy = (σ(y) − t)/numel · g[0]`.
pub fn bce_with_logits_loss_backward(y: &Tensor, t: &Tensor, g: &Tensor) -> Result<Tensor> {
    point_loss_backward(PointLoss::BceWithLogits, y, t, g)
}

/// The max and `Σ exp(z − max)` of one row.
fn row_stats(row: &[f32]) -> (f64, f64) {
    let m = row.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
    let s = row.iter().map(|&v| (v as f64 - m).exp()).sum();
    (m, s)
}

/// `[mean over rows of logsumexp(z) − z[label]]` for logits `[B, K]` and `B` labels.
pub fn softmax_cross_entropy(logits: &Tensor, labels: &[u32]) -> Result<Tensor> {
    let (rows, classes) = check_logits("softmax_cross_entropy", &logits.shape, labels.len())?;
    check_labels(labels, classes)?;
    let mut sum = 0f64;
    for (row, &label) in logits.data.chunks(classes).zip(labels) {
        let (m, s) = row_stats(row);
        sum += m + s.ln() - row[label as usize] as f64;
    }
    Tensor::new([1], vec![(sum / rows as f64) as f32])
}

/// `dz = (softmax(z) − onehot(label)) / B · g[0]`.
pub fn softmax_cross_entropy_backward(
    logits: &Tensor,
    labels: &[u32],
    g: &Tensor,
) -> Result<Tensor> {
    let op = "softmax_cross_entropy_backward";
    let (rows, classes) = check_logits(op, &logits.shape, labels.len())?;
    check_labels(labels, classes)?;
    check_scalar(op, "g", &g.shape)?;
    let k = g.data[0] as f64 / rows as f64;
    let mut dz = Vec::with_capacity(logits.numel());
    for (row, &label) in logits.data.chunks(classes).zip(labels) {
        let (m, s) = row_stats(row);
        for (c, &v) in row.iter().enumerate() {
            let onehot = if c == label as usize { 1.0 } else { 0.0 };
            dz.push((((v as f64 - m).exp() / s - onehot) * k) as f32);
        }
    }
    Tensor::new(logits.shape.clone(), dz)
}

/// `[KL(N(mu, exp(logvar)) ‖ N(0, 1))]` summed over the latent and averaged over the batch:
/// `−½ Σ_j (1 + logvar − mu² − exp(logvar))` per row, for `h = [mu | logvar]` (`[N, 2z]`).
pub fn kl_divergence(h: &Tensor) -> Result<Tensor> {
    let (n, z) = crate::cpu::noise::check_latent("kl_divergence", &h.shape)?;
    let mut sum = 0.0f64;
    for b in 0..n {
        for j in 0..z {
            let (mu, lv) = (
                h.data[b * 2 * z + j] as f64,
                h.data[b * 2 * z + z + j] as f64,
            );
            sum += -0.5 * (1.0 + lv - mu * mu - lv.exp());
        }
    }
    Tensor::new([1], vec![(sum / n as f64) as f32])
}

/// `dh = [mu | (exp(logvar) − 1)/2] / N · g[0]`.
pub fn kl_divergence_backward(h: &Tensor, g: &Tensor) -> Result<Tensor> {
    let op = "kl_divergence_backward";
    let (n, z) = crate::cpu::noise::check_latent(op, &h.shape)?;
    check_scalar(op, "g", &g.shape)?;
    let k = g.data[0] as f64 / n as f64;
    let data = h
        .data
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let v = v as f64;
            let d = if i % (2 * z) < z {
                v
            } else {
                0.5 * (v.exp() - 1.0)
            };
            (d * k) as f32
        })
        .collect();
    Tensor::new(h.shape.clone(), data)
}

#[cfg(test)]
mod tests {
    //! The backward twins against central differences of the forward twins, in f64. The losses
    //! are scalars, so `∂L/∂x_i ≈ (L(x + h·e_i) − L(x − h·e_i)) / 2h` directly; the upstream
    //! gradient g scales the analytic result.

    use super::*;
    use crate::cpu::finite_diff::numeric_grad;

    fn assert_close(what: &str, analytic: &[f32], numeric: &[f64], g: f64) {
        for (i, (&a, &n)) in analytic.iter().zip(numeric).enumerate() {
            let n = n * g;
            let err = (a as f64 - n).abs();
            // The forward twins round the loss to f32 (about 1e-7 relative), and dividing by
            // the 2e-2 step turns that into about 1e-5 absolute.
            assert!(
                err <= 5e-5 + 1e-3 * n.abs(),
                "{what}[{i}]: analytic {a} numeric {n} (error {err:e})"
            );
        }
    }

    #[test]
    fn mse_gradient_matches_finite_differences() {
        let y = Tensor::uniform([4, 5], -1.0, 1.0, 21);
        let t = Tensor::uniform([4, 5], -1.0, 1.0, 22);
        let g = Tensor::new([1], vec![0.7]).unwrap();
        let dy = mse_loss_backward(&y, &t, &g).unwrap();
        let numeric = numeric_grad(&y, 1e-2, |y| mse_loss(y, &t).unwrap().data[0] as f64);
        assert_close("mse", &dy.data, &numeric, 0.7);
    }

    #[test]
    fn point_loss_gradients_match_finite_differences() {
        // Predictions inside (0, 1), where BCE's logs are gentle enough for the step, and
        // targets 0.1 away from them (L1 has a kink at y = t).
        let y = Tensor::uniform([4, 5], 0.2, 0.8, 24);
        let t_data = y
            .data
            .iter()
            .enumerate()
            .map(|(i, &v)| if i % 2 == 0 { v + 0.1 } else { v - 0.1 })
            .collect();
        let t = Tensor::new([4, 5], t_data).unwrap();
        let g = Tensor::new([1], vec![0.7]).unwrap();
        for kind in PointLoss::ALL {
            let dy = point_loss_backward(kind, &y, &t, &g).unwrap();
            let numeric = numeric_grad(&y, 1e-3, |y| {
                point_loss(kind, y, &t).unwrap().data[0] as f64
            });
            assert_close(kind.entry(), &dy.data, &numeric, 0.7);
        }
    }

    #[test]
    fn kl_gradient_matches_finite_differences_and_vanishes_at_the_prior() {
        let h = Tensor::uniform([3, 6], -1.0, 1.0, 25);
        let g = Tensor::new([1], vec![0.7]).unwrap();
        let dh = kl_divergence_backward(&h, &g).unwrap();
        let numeric = numeric_grad(&h, 1e-2, |h| kl_divergence(h).unwrap().data[0] as f64);
        assert_close("kl", &dh.data, &numeric, 0.7);
        // N(0, 1) itself: no divergence, no gradient.
        let prior = Tensor::zeros([2, 4]);
        assert_eq!(kl_divergence(&prior).unwrap().data, [0.0]);
        assert!(
            kl_divergence_backward(&prior, &g)
                .unwrap()
                .data
                .iter()
                .all(|v| *v == 0.0)
        );
        // mu = 1, logvar = 0 for 1 row and 1 latent: ½.
        let one = Tensor::new([1, 2], vec![1.0, 0.0]).unwrap();
        assert_eq!(kl_divergence(&one).unwrap().data, [0.5]);
        assert!(kl_divergence(&Tensor::zeros([2, 3])).is_err());
    }

    #[test]
    fn point_losses_follow_pytorch_at_the_edges() {
        let t = Tensor::new([3], vec![1.0, 0.0, 0.5]).unwrap();
        // BCE clamps each log at −100: a certain wrong answer costs 100, not infinity.
        let y = Tensor::new([3], vec![0.0, 1.0, 0.5]).unwrap();
        let l = bce_loss(&y, &t).unwrap().data[0] as f64;
        let want = (100.0 + 100.0 + std::f64::consts::LN_2) / 3.0;
        assert!((l - want).abs() < 1e-5, "{l} vs {want}");
        // With logits, large ones do not overflow.
        let z = Tensor::new([3], vec![1000.0, -1000.0, 0.0]).unwrap();
        let l = bce_with_logits_loss(&z, &t).unwrap().data[0] as f64;
        let want = (0.0 + 0.0 + std::f64::consts::LN_2) / 3.0;
        assert!((l - want).abs() < 1e-6, "{l} vs {want}");
        // L1's gradient at y = t is 0.
        let g = Tensor::new([1], vec![1.0]).unwrap();
        let d = l1_loss_backward(&t, &t, &g).unwrap();
        assert_eq!(d.data, [0.0, 0.0, 0.0]);
    }

    #[test]
    fn cross_entropy_gradient_matches_finite_differences() {
        let z = Tensor::uniform([3, 7], -3.0, 3.0, 23);
        let labels = [4, 0, 6];
        let g = Tensor::new([1], vec![1.3]).unwrap();
        let dz = softmax_cross_entropy_backward(&z, &labels, &g).unwrap();
        let numeric = numeric_grad(&z, 1e-2, |z| {
            softmax_cross_entropy(z, &labels).unwrap().data[0] as f64
        });
        assert_close("cross entropy", &dz.data, &numeric, 1.3);
    }

    #[test]
    fn cross_entropy_is_stable_for_large_logits() {
        // Without the row max, exp(1000) overflows; the loss of a confident right answer is ~0.
        let z = Tensor::new([1, 3], vec![1000.0, 0.0, -1000.0]).unwrap();
        let loss = softmax_cross_entropy(&z, &[0]).unwrap().data[0];
        assert!(loss.abs() < 1e-6, "{loss}");
        let loss = softmax_cross_entropy(&z, &[1]).unwrap().data[0];
        assert!((loss - 1000.0).abs() < 1e-3, "{loss}");
    }

    #[test]
    fn bad_calls_are_errors_naming_the_op() {
        let z = Tensor::zeros([2, 3]);
        let g = Tensor::new([1], vec![1.0]).unwrap();
        let err = softmax_cross_entropy(&z, &[0, 3]).unwrap_err().to_string();
        assert!(
            err.contains("softmax_cross_entropy") && err.contains("label 3"),
            "{err}"
        );
        let err = softmax_cross_entropy_backward(&z, &[0], &g).unwrap_err();
        assert!(
            err.to_string().contains("softmax_cross_entropy_backward"),
            "{err}"
        );
        let err = mse_loss(&z, &Tensor::zeros([3, 2])).unwrap_err();
        assert!(err.to_string().contains("mse_loss"), "{err}");
        let err = mse_loss_backward(&z, &z, &Tensor::zeros([2])).unwrap_err();
        assert!(err.to_string().contains("mse_loss_backward"), "{err}");
        assert!(check_labels(&[0, 1, 2], 3).is_ok());
    }
}
