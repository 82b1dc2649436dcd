//! CPU twins of shaders/batch_norm.wgsl, in f64: batch normalisation over `x = [N, C, …]` (the
//! channel axis second, every axis after it one "plane"), its batch moments, and both backward
//! passes (training, through the batch's moments; evaluation, with the moments constant).

use crate::error::{Error, Result};
use crate::shape::{Shape, nonempty};
use crate::tensor::Tensor;

/// `(batch, channels, plane)` of `x` (`[N, C, spatial…]`, rank ≥ 2), checked non-empty.
pub fn dims(op: &str, x: &Shape) -> Result<(usize, usize, usize)> {
    nonempty(op, "x", x)?;
    match x.dims() {
        [n, c, rest @ ..] => Ok((*n, *c, rest.iter().product())),
        _ => Err(Error::invalid(
            op,
            format!("x must be [N, C, …] (rank ≥ 2), got {x}"),
        )),
    }
}

/// Fails unless `t` (called `name`) is `[len]`.
pub fn check_vector(op: &str, name: &str, t: &Shape, len: usize) -> Result<()> {
    if t.dims() != [len] {
        return Err(Error::invalid(
            op,
            format!("{name} must be [{len}] (one per channel), got {t}"),
        ));
    }
    Ok(())
}

/// Channel `c`'s values of `x`, in the order the kernel sums them.
fn channel(
    x: &[f32],
    (n, c, plane): (usize, usize, usize),
    ch: usize,
) -> impl Iterator<Item = (usize, f64)> + '_ {
    (0..n).flat_map(move |b| {
        let base = (b * c + ch) * plane;
        (base..base + plane).map(move |i| (i, x[i] as f64))
    })
}

/// `[2, C]`: each channel's mean (row 0) and biased variance (row 1) over the batch and plane.
pub fn batch_norm_stats(x: &Tensor) -> Result<Tensor> {
    let d = dims("batch_norm_stats", &x.shape)?;
    let (n, c, plane) = d;
    let count = (n * plane) as f64;
    let mut out = vec![0.0; 2 * c];
    for ch in 0..c {
        let mean = channel(&x.data, d, ch).map(|(_, v)| v).sum::<f64>() / count;
        let var = channel(&x.data, d, ch)
            .map(|(_, v)| (v - mean).powi(2))
            .sum::<f64>()
            / count;
        out[ch] = mean as f32;
        out[c + ch] = var as f32;
    }
    Tensor::new([2, c], out)
}

/// Checks the per-channel operands: `mean`, `var` and each of `others` `[C]`.
fn check_moments(
    op: &str,
    x: &Tensor,
    mean: &Tensor,
    var: &Tensor,
    others: &[(&str, &Tensor)],
) -> Result<(usize, usize, usize)> {
    let d = dims(op, &x.shape)?;
    check_vector(op, "mean", &mean.shape, d.1)?;
    check_vector(op, "var", &var.shape, d.1)?;
    for (name, t) in others {
        check_vector(op, name, &t.shape, d.1)?;
    }
    Ok(d)
}

fn inv_std(var: f32, eps: f32) -> f64 {
    1.0 / (var as f64 + eps as f64).sqrt()
}

/// `y = (x − mean)/sqrt(var + eps)·weight + bias`, per channel.
pub fn batch_norm_forward(
    x: &Tensor,
    mean: &Tensor,
    var: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    eps: f32,
) -> Result<Tensor> {
    let op = "batch_norm_forward";
    let (_, c, plane) = check_moments(op, x, mean, var, &[("weight", weight), ("bias", bias)])?;
    let data = x
        .data
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let ch = (i / plane) % c;
            let xhat = (v as f64 - mean.data[ch] as f64) * inv_std(var.data[ch], eps);
            (xhat * weight.data[ch] as f64 + bias.data[ch] as f64) as f32
        })
        .collect();
    Tensor::new(x.shape.clone(), data)
}

/// `[2, C]`: each channel's `Σ dy` (row 0, the bias's gradient) and `Σ dy·x̂` (row 1, the
/// weight's), `x̂ = (x − mean)/sqrt(var + eps)`.
pub fn batch_norm_backward_sums(
    x: &Tensor,
    mean: &Tensor,
    var: &Tensor,
    dy: &Tensor,
    eps: f32,
) -> Result<Tensor> {
    let op = "batch_norm_backward_sums";
    let d = check_moments(op, x, mean, var, &[])?;
    crate::shape::same(op, "x", &x.shape, "dy", &dy.shape)?;
    let c = d.1;
    let mut out = vec![0.0; 2 * c];
    for ch in 0..c {
        let inv = inv_std(var.data[ch], eps);
        let m = mean.data[ch] as f64;
        let (mut s0, mut s1) = (0.0, 0.0);
        for (i, v) in channel(&x.data, d, ch) {
            s0 += dy.data[i] as f64;
            s1 += dy.data[i] as f64 * (v - m) * inv;
        }
        out[ch] = s0 as f32;
        out[c + ch] = s1 as f32;
    }
    Tensor::new([2, c], out)
}

/// Training's `dx = w·inv·(dy − Σdy/M − x̂·Σ(dy·x̂)/M)`, `M = N·plane`, `sums` from
/// [`batch_norm_backward_sums`] with the batch's own moments.
pub fn batch_norm_backward(
    x: &Tensor,
    mean: &Tensor,
    var: &Tensor,
    weight: &Tensor,
    dy: &Tensor,
    sums: &Tensor,
    eps: f32,
) -> Result<Tensor> {
    let op = "batch_norm_backward";
    let (n, c, plane) = check_moments(op, x, mean, var, &[("weight", weight)])?;
    crate::shape::same(op, "x", &x.shape, "dy", &dy.shape)?;
    if sums.shape.dims() != [2, c] {
        return Err(Error::invalid(
            op,
            format!("sums must be [2, {c}], got {}", sums.shape),
        ));
    }
    let count = (n * plane) as f64;
    let data = x
        .data
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let ch = (i / plane) % c;
            let inv = inv_std(var.data[ch], eps);
            let xhat = (v as f64 - mean.data[ch] as f64) * inv;
            let (s0, s1) = (sums.data[ch] as f64, sums.data[c + ch] as f64);
            (weight.data[ch] as f64 * inv * (dy.data[i] as f64 - s0 / count - xhat * s1 / count))
                as f32
        })
        .collect();
    Tensor::new(x.shape.clone(), data)
}

/// Evaluation's `dx = dy·w/sqrt(var + eps)` (the running moments are constants, so neither x
/// nor the mean enters).
pub fn batch_norm_backward_eval(
    dy: &Tensor,
    var: &Tensor,
    weight: &Tensor,
    eps: f32,
) -> Result<Tensor> {
    let op = "batch_norm_backward_eval";
    let (_, c, plane) = dims(op, &dy.shape)?;
    check_vector(op, "var", &var.shape, c)?;
    check_vector(op, "weight", &weight.shape, c)?;
    let data = dy
        .data
        .iter()
        .enumerate()
        .map(|(i, &g)| {
            let ch = (i / plane) % c;
            (g as f64 * weight.data[ch] as f64 * inv_std(var.data[ch], eps)) as f32
        })
        .collect();
    Tensor::new(dy.shape.clone(), data)
}

/// Row `r` of a `[rows, C]` tensor, as `[C]`.
pub fn row(t: &Tensor, r: usize) -> Result<Tensor> {
    match *t.shape.dims() {
        [rows, c] if r < rows && t.data.len() == rows * c => {
            Tensor::new([c], t.data[r * c..(r + 1) * c].to_vec())
        }
        _ => Err(Error::invalid(
            "row",
            format!("row {r} of a tensor of shape {}", t.shape),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::finite_diff::{dot, numeric_grad};

    fn close(what: &str, analytic: &[f32], numeric: &[f64]) {
        let scale = numeric.iter().fold(1e-3f64, |m, v| m.max(v.abs()));
        for (i, (&a, &n)) in analytic.iter().zip(numeric).enumerate() {
            assert!(
                (a as f64 - n).abs() < 2e-3 * scale,
                "{what}[{i}]: analytic {a} numeric {n}"
            );
        }
    }

    /// Training mode as one function of x, w, b: the batch's moments, then the normalisation.
    fn train(x: &Tensor, w: &Tensor, b: &Tensor) -> Tensor {
        let s = batch_norm_stats(x).unwrap();
        let (m, v) = (row(&s, 0).unwrap(), row(&s, 1).unwrap());
        batch_norm_forward(x, &m, &v, w, b, 1e-5).unwrap()
    }

    #[test]
    fn training_gradients_match_finite_differences() {
        let x = Tensor::uniform([3, 2, 2, 3], -1.0, 2.0, 1);
        let w = Tensor::uniform([2], 0.5, 1.5, 2);
        let b = Tensor::uniform([2], -0.5, 0.5, 3);
        let dy = Tensor::uniform([3, 2, 2, 3], -1.0, 1.0, 4);
        let s = batch_norm_stats(&x).unwrap();
        let (m, v) = (row(&s, 0).unwrap(), row(&s, 1).unwrap());
        let sums = batch_norm_backward_sums(&x, &m, &v, &dy, 1e-5).unwrap();
        let dx = batch_norm_backward(&x, &m, &v, &w, &dy, &sums, 1e-5).unwrap();
        close(
            "dx",
            &dx.data,
            &numeric_grad(&x, 1e-2, |x| dot(&dy, &train(x, &w, &b))),
        );
        let dw = numeric_grad(&w, 1e-2, |w| dot(&dy, &train(&x, w, &b)));
        close("dweight", &sums.data[2..], &dw);
        let db = numeric_grad(&b, 1e-2, |b| dot(&dy, &train(&x, &w, b)));
        close("dbias", &sums.data[..2], &db);
        // The output is normalised: mean bias, variance w² (biased), per channel.
        let y = train(&x, &Tensor::full([2], 1.0), &Tensor::zeros([2]));
        let ys = batch_norm_stats(&y).unwrap();
        assert!(ys.data[..2].iter().all(|m| m.abs() < 1e-6), "{ys:?}");
        assert!(
            ys.data[2..].iter().all(|v| (v - 1.0).abs() < 1e-4),
            "{ys:?}"
        );
    }

    #[test]
    fn evaluation_gradient_matches_finite_differences() {
        let x = Tensor::uniform([2, 3, 5], -1.0, 1.0, 5);
        let (m, v) = (
            Tensor::uniform([3], -0.2, 0.2, 6),
            Tensor::uniform([3], 0.5, 2.0, 7),
        );
        let (w, b) = (Tensor::uniform([3], 0.5, 1.5, 8), Tensor::zeros([3]));
        let dy = Tensor::uniform([2, 3, 5], -1.0, 1.0, 9);
        let dx = batch_norm_backward_eval(&dy, &v, &w, 1e-5).unwrap();
        let f = |x: &Tensor| dot(&dy, &batch_norm_forward(x, &m, &v, &w, &b, 1e-5).unwrap());
        close("dx", &dx.data, &numeric_grad(&x, 1e-2, f));
        let sums = batch_norm_backward_sums(&x, &m, &v, &dy, 1e-5).unwrap();
        let dw = numeric_grad(&w, 1e-2, |w| {
            dot(&dy, &batch_norm_forward(&x, &m, &v, w, &b, 1e-5).unwrap())
        });
        close("dweight", &sums.data[3..], &dw);
        assert!(batch_norm_forward(&x, &m, &v, &Tensor::zeros([2]), &b, 1e-5).is_err());
        assert!(batch_norm_stats(&Tensor::zeros([4])).is_err());
    }
}
