//! CPU twins of shaders/reduce.wgsl: sums and means over a [`ReduceSpec`]'s axes, in f64.

use crate::error::Result;
use crate::shape::same;
use crate::spec::ReduceSpec;
use crate::tensor::Tensor;

/// Every input element added, in f64, into the output element its kept coordinates name.
fn reduce(op: &str, spec: &ReduceSpec, x: &Tensor, mean: bool) -> Result<Tensor> {
    spec.check(op)?;
    same(op, "spec shape", &spec.shape, "x", &x.shape)?;
    let (dims, reduced) = spec.padded();
    let out_shape = spec.out_shape();
    let mut acc = vec![0f64; out_shape.numel()];
    let mut i = 0;
    for a in 0..dims[0] {
        for b in 0..dims[1] {
            for c in 0..dims[2] {
                for d in 0..dims[3] {
                    // Row-major index over the kept axes only.
                    let mut o = 0;
                    for (axis, coord) in [a, b, c, d].into_iter().enumerate() {
                        if !reduced[axis] {
                            o = o * dims[axis] + coord;
                        }
                    }
                    acc[o] += x.data[i] as f64;
                    i += 1;
                }
            }
        }
    }
    let count = spec.reduced_count() as f64;
    let data = acc
        .into_iter()
        .map(|s| (if mean { s / count } else { s }) as f32)
        .collect();
    Tensor::new(out_shape, data)
}

/// Sum over `spec.axes`; the output has the kept axes (`[1]` when none is kept).
pub fn reduce_sum(spec: &ReduceSpec, x: &Tensor) -> Result<Tensor> {
    reduce("reduce_sum", spec, x, false)
}

/// Mean over `spec.axes`: the sum divided by the number of elements summed.
pub fn reduce_mean(spec: &ReduceSpec, x: &Tensor) -> Result<Tensor> {
    reduce("reduce_mean", spec, x, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::finite_diff::{dot, numeric_grad};
    use crate::cpu::pointwise::{bias_add_channel, bias_add_column};

    /// The bias gradients of the two bias adds are these reductions of dy (the backward table
    /// in docs/ARCHITECTURE.md: `db = Σ_{n,h,w} dY`), checked against finite differences of the
    /// forward twins.
    #[test]
    fn reduce_sum_is_the_bias_gradient() {
        let x = Tensor::uniform([2, 3, 4, 5], -1.0, 1.0, 1);
        let b = Tensor::uniform([3], -1.0, 1.0, 2);
        let dy = Tensor::uniform([2, 3, 4, 5], -1.0, 1.0, 3);
        let db = reduce_sum(&ReduceSpec::new([2, 3, 4, 5], &[0, 2, 3]).unwrap(), &dy).unwrap();
        let numeric = numeric_grad(&b, 1e-2, |b| dot(&dy, &bias_add_channel(&x, b).unwrap()));
        for (a, n) in db.data.iter().zip(&numeric) {
            assert!((*a as f64 - n).abs() < 1e-3 * (1.0 + n.abs()), "{a} vs {n}");
        }

        let x = Tensor::uniform([6, 5], -1.0, 1.0, 4);
        let b = Tensor::uniform([5], -1.0, 1.0, 5);
        let dy = Tensor::uniform([6, 5], -1.0, 1.0, 6);
        let db = reduce_sum(&ReduceSpec::new([6, 5], &[0]).unwrap(), &dy).unwrap();
        let numeric = numeric_grad(&b, 1e-2, |b| dot(&dy, &bias_add_column(&x, b).unwrap()));
        for (a, n) in db.data.iter().zip(&numeric) {
            assert!((*a as f64 - n).abs() < 1e-3 * (1.0 + n.abs()), "{a} vs {n}");
        }
    }

    #[test]
    fn small_cases_by_hand() {
        // [[1, 2, 3], [4, 5, 6]]
        let x = Tensor::new([2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        let cases: [(&[usize], &[usize], &[f32]); 5] = [
            (&[0], &[3], &[5.0, 7.0, 9.0]),
            (&[1], &[2], &[6.0, 15.0]),
            (&[0, 1], &[1], &[21.0]),
            (&[1, 0], &[1], &[21.0]),
            (&[], &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
        ];
        for (axes, shape, want) in cases {
            let spec = ReduceSpec::new([2, 3], axes).unwrap();
            let got = reduce_sum(&spec, &x).unwrap();
            assert_eq!(got.shape.dims(), shape, "axes {axes:?}");
            assert_eq!(got.data, want, "axes {axes:?}");
        }
        let mean = reduce_mean(&ReduceSpec::new([2, 3], &[0]).unwrap(), &x).unwrap();
        assert_eq!(mean.data, [2.5, 3.5, 4.5]);
    }

    #[test]
    fn bad_specs_are_errors() {
        let cases: [(&[usize], &[usize], &str); 4] = [
            (&[2, 3], &[2], "out of range"),
            (&[2, 3], &[1, 1], "twice"),
            (&[2, 0], &[0], "zero-sized"),
            (&[1, 2, 3, 4, 5], &[0], "rank"),
        ];
        for (shape, axes, what) in cases {
            let err = ReduceSpec::new(shape, axes).unwrap_err().to_string();
            assert!(err.contains("reduce") && err.contains(what), "{err}");
        }
        let spec = ReduceSpec::new([2, 3], &[0]).unwrap();
        let err = reduce_mean(&spec, &Tensor::zeros([3, 2])).unwrap_err();
        assert!(err.to_string().contains("reduce_mean"), "{err}");
    }
}
