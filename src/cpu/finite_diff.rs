//! Test helpers shared by the CPU twins' gradient checks: central differences in f64.

use crate::tensor::Tensor;

/// Central-difference gradient of the scalar `loss` at `x`: `(L(x + h·e_i) − L(x − h·e_i))`
/// divided by the step actually taken (x ± h rounded to f32), so the only error left is the
/// forward twin's own rounding.
pub fn numeric_grad(x: &Tensor, h: f32, loss: impl Fn(&Tensor) -> f64) -> Vec<f64> {
    (0..x.numel())
        .map(|i| {
            let (mut plus, mut minus) = (x.clone(), x.clone());
            plus.data[i] += h;
            minus.data[i] -= h;
            let step = plus.data[i] as f64 - minus.data[i] as f64;
            (loss(&plus) - loss(&minus)) / step
        })
        .collect()
}

/// `Σ a·b` in f64 (the loss `L = Σ dy·f(x)` whose gradient is the backward twin's `dx`).
pub fn dot(a: &Tensor, b: &Tensor) -> f64 {
    a.data
        .iter()
        .zip(&b.data)
        .map(|(&u, &v)| u as f64 * v as f64)
        .sum()
}
