//! CPU twins of shaders/noise.wgsl: the same counter-based generator (integer hashes, so the
//! same draws), Box–Muller in f64; dropout's mask.

use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// PCG's output permutation as a hash, as noise.wgsl has it.
pub fn pcg(v: u32) -> u32 {
    let state = v.wrapping_mul(747796405).wrapping_add(2891336453);
    let word = ((state >> ((state >> 28) + 4)) ^ state).wrapping_mul(277803737);
    (word >> 22) ^ word
}

/// The standard normal draw of element `i` at `step` for `seed`.
pub fn normal(seed: u32, step: u32, i: u32) -> f64 {
    let h1 = pcg(pcg(pcg(seed) ^ step) ^ i);
    let h2 = pcg(h1);
    let u1 = ((h1 >> 8) + 1) as f64 / 16777216.0;
    let u2 = (h2 >> 8) as f64 / 16777216.0;
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// `y = clamp(x + std·z, 0, 1)`, `z` the draws of `step`.
pub fn gaussian_noise(x: &Tensor, std: f32, seed: u32, step: u32) -> Result<Tensor> {
    if !(std.is_finite() && std >= 0.0) {
        return Err(Error::invalid(
            "gaussian_noise",
            format!("std {std} must be finite and at least 0"),
        ));
    }
    let data = x
        .data
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            (v as f64 + std as f64 * normal(seed, step, i as u32)).clamp(0.0, 1.0) as f32
        })
        .collect();
    Tensor::new(x.shape.clone(), data)
}

/// Whether dropout keeps element `i` at `step` (its uniform draw is ≥ `p`).
pub fn kept(seed: u32, step: u32, i: u32, p: f32) -> bool {
    let h = pcg(pcg(pcg(seed) ^ step) ^ i);
    ((h >> 8) as f32 / 16777216.0) >= p
}

fn check_p(op: &str, p: f32) -> Result<()> {
    if !(0.0..=1.0).contains(&p) {
        return Err(Error::invalid(op, format!("p {p} must be in [0, 1]")));
    }
    Ok(())
}

fn dropout(op: &str, x: &Tensor, p: f32, seed: u32, step: u32) -> Result<Tensor> {
    check_p(op, p)?;
    let scale = if p < 1.0 { 1.0 / (1.0 - p as f64) } else { 0.0 };
    let data = x
        .data
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            if kept(seed, step, i as u32, p) {
                (v as f64 * scale) as f32
            } else {
                0.0
            }
        })
        .collect();
    Tensor::new(x.shape.clone(), data)
}

/// `y = x · mask / (1 − p)` (`nn.Dropout(p)` in training), the mask drawn from the step.
pub fn dropout_forward(x: &Tensor, p: f32, seed: u32, step: u32) -> Result<Tensor> {
    dropout("dropout_forward", x, p, seed, step)
}

/// `dx = dy · mask / (1 − p)`, the forward's mask drawn again.
pub fn dropout_backward(dy: &Tensor, p: f32, seed: u32, step: u32) -> Result<Tensor> {
    dropout("dropout_backward", dy, p, seed, step)
}

/// `(batch, z)` of a variational encoder's output `h = [N, 2z]`: means, then log-variances.
pub fn check_latent(op: &str, h: &crate::shape::Shape) -> Result<(usize, usize)> {
    match h.dims() {
        &[n, w] if n > 0 && w > 0 && w % 2 == 0 => Ok((n, w / 2)),
        _ => Err(Error::invalid(
            op,
            format!(
                "h must be [batch, 2·latent] (means then log-variances, an even width), got {h}"
            ),
        )),
    }
}

/// `z = mu + exp(logvar / 2)·eps` for `h = [mu | logvar]` (`[N, 2z]` → `[N, z]`), `eps` the
/// standard normal draws of (`seed`, `step`, `b·z + j`): a variational autoencoder's sample.
pub fn reparameterize(h: &Tensor, seed: u32, step: u32) -> Result<Tensor> {
    let (n, z) = check_latent("reparameterize", &h.shape)?;
    let mut out = Vec::with_capacity(n * z);
    for b in 0..n {
        for j in 0..z {
            let (mu, lv) = (
                h.data[b * 2 * z + j] as f64,
                h.data[b * 2 * z + z + j] as f64,
            );
            let eps = normal(seed, step, (b * z + j) as u32);
            out.push((mu + (0.5 * lv).exp() * eps) as f32);
        }
    }
    Tensor::new([n, z], out)
}

/// `dh = [dz | dz·eps·exp(logvar / 2)/2]`, the same draws again.
pub fn reparameterize_backward(h: &Tensor, dz: &Tensor, seed: u32, step: u32) -> Result<Tensor> {
    let op = "reparameterize_backward";
    let (n, z) = check_latent(op, &h.shape)?;
    if dz.shape.dims() != [n, z] {
        return Err(Error::invalid(
            op,
            format!("dz must be [{n}, {z}] for h {}, got {}", h.shape, dz.shape),
        ));
    }
    let mut out = vec![0.0; n * 2 * z];
    for b in 0..n {
        for j in 0..z {
            let d = dz.data[b * z + j] as f64;
            let lv = h.data[b * 2 * z + z + j] as f64;
            let eps = normal(seed, step, (b * z + j) as u32);
            out[b * 2 * z + j] = d as f32;
            out[b * 2 * z + z + j] = (d * eps * 0.5 * (0.5 * lv).exp()) as f32;
        }
    }
    Tensor::new(h.shape.clone(), out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_standard_normal_and_differ_by_step() {
        let n = 200_000u32;
        let z: Vec<f64> = (0..n).map(|i| normal(7, 3, i)).collect();
        let mean = z.iter().sum::<f64>() / n as f64;
        let var = z.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(
            mean.abs() < 0.01 && (var - 1.0).abs() < 0.01,
            "mean {mean} var {var}"
        );
        let within = z.iter().filter(|v| v.abs() < 1.0).count() as f64 / n as f64;
        assert!((within - 0.6827).abs() < 0.005, "P(|z| < 1) = {within}");
        assert_ne!(normal(7, 3, 0), normal(7, 4, 0));
        assert_ne!(normal(7, 3, 0), normal(8, 3, 0));
        assert_eq!(normal(7, 3, 5), normal(7, 3, 5));
    }

    #[test]
    fn dropout_keeps_one_minus_p_and_its_gradient_is_its_mask() {
        let x = Tensor::uniform([100_000], 0.5, 1.5, 2);
        let y = dropout_forward(&x, 0.25, 5, 9).unwrap();
        let kept = y.data.iter().filter(|v| **v != 0.0).count() as f64 / 1e5;
        assert!((kept - 0.75).abs() < 0.01, "kept {kept}");
        let i = y.data.iter().position(|v| *v != 0.0).unwrap();
        assert!((y.data[i] - x.data[i] / 0.75).abs() < 1e-6);
        // Linear in x: the gradient of dot(dy, y) is dy through the same mask and scale.
        let dy = Tensor::uniform([100_000], -1.0, 1.0, 3);
        let dx = dropout_backward(&dy, 0.25, 5, 9).unwrap();
        let y_of_dy = dropout_forward(&dy, 0.25, 5, 9).unwrap();
        assert_eq!(dx.data, y_of_dy.data);
        assert_ne!(dropout_forward(&x, 0.25, 5, 10).unwrap().data, y.data);
        assert!(
            dropout_forward(&x, 1.0, 5, 9)
                .unwrap()
                .data
                .iter()
                .all(|v| *v == 0.0)
        );
        assert_eq!(dropout_forward(&x, 0.0, 5, 9).unwrap().data, x.data);
        assert!(dropout_forward(&x, 1.5, 5, 9).is_err());
    }

    #[test]
    fn reparameterize_gradient_matches_finite_differences() {
        use crate::cpu::finite_diff::{dot, numeric_grad};
        let h = Tensor::uniform([3, 8], -1.0, 1.0, 4);
        let dz = Tensor::uniform([3, 4], -1.0, 1.0, 5);
        let z = reparameterize(&h, 2, 7).unwrap();
        assert_eq!(z.shape.dims(), [3, 4]);
        let dh = reparameterize_backward(&h, &dz, 2, 7).unwrap();
        let numeric = numeric_grad(&h, 1e-2, |h| dot(&dz, &reparameterize(h, 2, 7).unwrap()));
        for (i, (n, a)) in numeric.iter().zip(&dh.data).enumerate() {
            assert!(
                (n - *a as f64).abs() < 1e-3 * (1.0 + n.abs()),
                "{i}: {n} vs {a}"
            );
        }
        // A variance of e^−30 leaves the mean; another step draws another sample.
        let mut sure = h.clone();
        (0..3).for_each(|b| (4..8).for_each(|j| sure.data[b * 8 + j] = -60.0));
        let z = reparameterize(&sure, 2, 7).unwrap();
        assert!((z.data[5] - sure.data[9]).abs() < 1e-6);
        assert_ne!(
            reparameterize(&h, 2, 8).unwrap().data,
            reparameterize(&h, 2, 7).unwrap().data
        );
        assert!(reparameterize(&Tensor::zeros([2, 3]), 0, 0).is_err());
        assert!(reparameterize_backward(&h, &Tensor::zeros([3, 8]), 0, 0).is_err());
    }

    #[test]
    fn noisy_images_stay_in_range() {
        let x = Tensor::uniform([2, 1, 4, 4], 0.0, 1.0, 1);
        let y = gaussian_noise(&x, 0.5, 1, 0).unwrap();
        assert!(y.data.iter().all(|v| (0.0..=1.0).contains(v)));
        assert_ne!(x.data, y.data);
        assert_eq!(gaussian_noise(&x, 0.0, 1, 0).unwrap().data, x.data);
        assert!(gaussian_noise(&x, f32::NAN, 1, 0).is_err());
    }
}
