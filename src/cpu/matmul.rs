//! CPU twin of shaders/matmul.wgsl.

use crate::error::Result;
use crate::spec::{BiasMode, MatmulSpec};

/// `C[b] = act(op(A)[b] · op(B)[b] + bias)` as described by [`MatmulSpec`], accumulated in f64.
///
/// ```
/// use wgrad::{MatmulSpec, cpu::matmul::matmul};
/// // [[1,2],[3,4]]·[[5,6],[7,8]] = [[19,22],[43,50]] (by hand)
/// let c = matmul(&MatmulSpec::new(2, 2, 2), &[1.0, 2.0, 3.0, 4.0], &[5.0, 6.0, 7.0, 8.0], &[])?;
/// assert_eq!(c, vec![19.0, 22.0, 43.0, 50.0]);
/// # Ok::<(), wgrad::Error>(())
/// ```
pub fn matmul(spec: &MatmulSpec, a: &[f32], b: &[f32], bias: &[f32]) -> Result<Vec<f32>> {
    spec.check(a.len(), b.len(), bias.len(), spec.c_len())?;
    let (sa, sb) = spec.strides();
    let (m, n, k) = (spec.m, spec.n, spec.k);
    let mut c = vec![0f32; spec.c_len()];
    let out_batches = if spec.sum_batches { 1 } else { spec.batch };
    for ob in 0..out_batches {
        let batches: Vec<usize> = if spec.sum_batches {
            (0..spec.batch).collect()
        } else {
            vec![ob]
        };
        for i in 0..m {
            for j in 0..n {
                let mut acc = 0f64;
                for &bt in &batches {
                    for p in 0..k {
                        let av = a[bt * sa[0] + i * sa[1] + p * sa[2]] as f64;
                        let bv = b[bt * sb[0] + p * sb[1] + j * sb[2]] as f64;
                        acc += av * bv;
                    }
                }
                acc += match spec.bias {
                    BiasMode::None => 0.0,
                    BiasMode::PerRow => bias[i] as f64,
                    BiasMode::PerCol => bias[j] as f64,
                };
                c[ob * m * n + i * n + j] = spec.act.apply(acc) as f32;
            }
        }
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Activation;
    use crate::tensor::Tensor;

    /// The matmul gradients as the design gives them — dA = dC·Bᵀ and dB = Aᵀ·dC, both computed
    /// by this same function with transpose flags — against central differences of
    /// L = Σ C ⊙ G in f64.
    #[test]
    fn gradients_match_finite_differences() {
        let (m, k, n) = (3, 4, 5);
        let a = Tensor::uniform([m * k], -1.0, 1.0, 11).data;
        let b = Tensor::uniform([k * n], -1.0, 1.0, 12).data;
        let g = Tensor::uniform([m * n], -1.0, 1.0, 13).data;
        let spec = MatmulSpec::new(m, k, n);
        let loss = |a: &[f32], b: &[f32]| -> f64 {
            let c = matmul(&spec, a, b, &[]).unwrap();
            c.iter().zip(&g).map(|(&c, &g)| c as f64 * g as f64).sum()
        };
        // dA [m,k] = G[m,n] · Bᵀ (B stored [k,n], so trans_b)
        let mut s = MatmulSpec::new(m, n, k);
        s.trans_b = true;
        let da = matmul(&s, &g, &b, &[]).unwrap();
        // dB [k,n] = Aᵀ · G (A stored [m,k], so trans_a)
        let mut s = MatmulSpec::new(k, m, n);
        s.trans_a = true;
        let db = matmul(&s, &a, &g, &[]).unwrap();
        let h = 1e-2f32; // the loss is bilinear, so the central difference is exact up to rounding
        for i in 0..a.len() {
            let (mut p, mut q) = (a.clone(), a.clone());
            p[i] += h;
            q[i] -= h;
            let fd = (loss(&p, &b) - loss(&q, &b)) / (2.0 * h as f64);
            assert!(
                (fd - da[i] as f64).abs() < 1e-4,
                "dA[{i}]: fd {fd} analytic {}",
                da[i]
            );
        }
        for i in 0..b.len() {
            let (mut p, mut q) = (b.clone(), b.clone());
            p[i] += h;
            q[i] -= h;
            let fd = (loss(&a, &p) - loss(&a, &q)) / (2.0 * h as f64);
            assert!(
                (fd - db[i] as f64).abs() < 1e-4,
                "dB[{i}]: fd {fd} analytic {}",
                db[i]
            );
        }
    }

    /// Values computed by hand: [[1,2],[3,4]]·[[5,6],[7,8]] = [[19,22],[43,50]], + column bias
    /// [1,-100], then ReLU.
    #[test]
    fn small_product_by_hand() {
        let mut s = MatmulSpec::new(2, 2, 2);
        s.bias = BiasMode::PerCol;
        s.act = Activation::Relu;
        let c = matmul(
            &s,
            &[1.0, 2.0, 3.0, 4.0],
            &[5.0, 6.0, 7.0, 8.0],
            &[1.0, -100.0],
        )
        .unwrap();
        assert_eq!(c, vec![20.0, 0.0, 44.0, 0.0]);
    }

    #[test]
    fn bad_lengths_are_errors_naming_the_op() {
        let s = MatmulSpec::new(2, 3, 4);
        let e = matmul(&s, &[0.0; 5], &[0.0; 12], &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("matmul:") && e.contains("A has 5 elements"),
            "{e}"
        );
        let e = matmul(&MatmulSpec::new(0, 3, 4), &[], &[0.0; 12], &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("zero-sized"), "{e}");
    }
}
