//! CPU twin of shaders/matmul.wgsl.

use crate::error::Result;
use crate::spec::{BiasMode, MatmulSpec};

/// `C[b] = act(op(A)[b] · op(B)[b] + bias)` as described by [`MatmulSpec`], accumulated in f64.
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
