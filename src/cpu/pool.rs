//! CPU twins of shaders/pool.wgsl: max and average pooling and nearest upsampling of NCHW
//! images, forward and backward, in f64 where they sum. The backward twins scatter each output's
//! gradient into its window (the kernels gather; the sums meet the same terms in the same order).

use crate::error::{Error, Result};
use crate::spec::{PoolKind, PoolSpec};
use crate::tensor::Tensor;

fn check(op: &str, what: &str, t: &Tensor, want: &crate::shape::Shape) -> Result<()> {
    if &t.shape != want {
        return Err(Error::invalid(
            op,
            format!("{what} must be {want}, got {}", t.shape),
        ));
    }
    Ok(())
}

fn check_kind(op: &str, spec: &PoolSpec, kind: PoolKind) -> Result<()> {
    if spec.kind != kind {
        return Err(Error::invalid(op, format!("given a {:?} spec", spec.kind)));
    }
    Ok(())
}

/// The in-bounds input positions `(y, x)` of output `(oy, ox)`'s window, row by row.
fn window(s: &PoolSpec, oy: usize, ox: usize) -> impl Iterator<Item = (usize, usize)> {
    let [_, _, h, w] = s.input;
    let (kh, kw) = (s.kernel[0], s.kernel[1]);
    let y0 = (oy * s.stride[0]) as isize - s.padding[0] as isize;
    let x0 = (ox * s.stride[1]) as isize - s.padding[1] as isize;
    (0..kh).flat_map(move |ky| {
        (0..kw).filter_map(move |kx| {
            let (y, x) = (y0 + ky as isize, x0 + kx as isize);
            (y >= 0 && x >= 0 && (y as usize) < h && (x as usize) < w)
                .then_some((y as usize, x as usize))
        })
    })
}

/// The plane offset of the window's max as PyTorch picks it: the first largest value, or the
/// last NaN.
fn argmax(s: &PoolSpec, plane: &[f32], oy: usize, ox: usize) -> usize {
    let w = s.input[3];
    let mut best: Option<(f32, usize)> = None;
    for (y, x) in window(s, oy, ox) {
        let v = plane[y * w + x];
        let take = match best {
            None => true,
            Some((b, _)) => v.is_nan() || (!b.is_nan() && v > b),
        };
        if take {
            best = Some((v, y * w + x));
        }
    }
    // A valid spec's windows always hold an input pixel (padding ≤ kernel / 2).
    best.map_or(0, |b| b.1)
}

/// Every output pixel `(plane, oy, ox)` in order, with `f` giving its value.
fn per_output(s: &PoolSpec, mut f: impl FnMut(usize, usize, usize) -> f32) -> Result<Tensor> {
    let [n, c, ..] = s.input;
    let [oh, ow] = s.out_hw();
    let mut out = Vec::with_capacity(n * c * oh * ow);
    for plane in 0..n * c {
        for oy in 0..oh {
            for ox in 0..ow {
                out.push(f(plane, oy, ox));
            }
        }
    }
    Tensor::new(s.out_shape(), out)
}

pub fn max_pool2d_forward(s: &PoolSpec, x: &Tensor) -> Result<Tensor> {
    let op = "max_pool2d_forward";
    check_kind(op, s, PoolKind::Max)?;
    check(op, "x", x, &s.in_shape())?;
    let hw = s.input[2] * s.input[3];
    per_output(s, |plane, oy, ox| {
        let p = &x.data[plane * hw..][..hw];
        p[argmax(s, p, oy, ox)]
    })
}

/// `dx`: each output's gradient goes to its window's max (recomputed from `x`).
pub fn max_pool2d_backward(s: &PoolSpec, x: &Tensor, dy: &Tensor) -> Result<Tensor> {
    let op = "max_pool2d_backward";
    check_kind(op, s, PoolKind::Max)?;
    check(op, "x", x, &s.in_shape())?;
    check(op, "dy", dy, &s.out_shape())?;
    scatter(s, dy, |plane, oy, ox, dx: &mut [f64], g| {
        let hw = s.input[2] * s.input[3];
        let at = argmax(s, &x.data[plane * hw..][..hw], oy, ox);
        dx[at] += g;
    })
}

pub fn avg_pool2d_forward(s: &PoolSpec, x: &Tensor) -> Result<Tensor> {
    let op = "avg_pool2d_forward";
    check_kind(op, s, PoolKind::Avg)?;
    check(op, "x", x, &s.in_shape())?;
    let [.., h, w] = s.input;
    let area = (s.kernel[0] * s.kernel[1]) as f64;
    per_output(s, |plane, oy, ox| {
        let p = &x.data[plane * h * w..][..h * w];
        let sum: f64 = window(s, oy, ox).map(|(y, x)| p[y * w + x] as f64).sum();
        (sum / area) as f32
    })
}

/// `dx`: each output's gradient spread evenly over its window (`kh·kw`, padding included).
pub fn avg_pool2d_backward(s: &PoolSpec, dy: &Tensor) -> Result<Tensor> {
    let op = "avg_pool2d_backward";
    check_kind(op, s, PoolKind::Avg)?;
    check(op, "dy", dy, &s.out_shape())?;
    let w = s.input[3];
    let area = (s.kernel[0] * s.kernel[1]) as f64;
    scatter(s, dy, |_, oy, ox, dx: &mut [f64], g| {
        for (y, x) in window(s, oy, ox) {
            dx[y * w + x] += g / area;
        }
    })
}

pub fn upsample_nearest2d_forward(s: &PoolSpec, x: &Tensor) -> Result<Tensor> {
    let op = "upsample_nearest2d_forward";
    check_kind(op, s, PoolKind::UpsampleNearest)?;
    check(op, "x", x, &s.in_shape())?;
    let [.., h, w] = s.input;
    per_output(s, |plane, oy, ox| {
        x.data[(plane * h + oy / s.kernel[0]) * w + ox / s.kernel[1]]
    })
}

/// `dx`: the sum of each pixel's block of copies.
pub fn upsample_nearest2d_backward(s: &PoolSpec, dy: &Tensor) -> Result<Tensor> {
    let op = "upsample_nearest2d_backward";
    check_kind(op, s, PoolKind::UpsampleNearest)?;
    check(op, "dy", dy, &s.out_shape())?;
    let w = s.input[3];
    scatter(s, dy, |_, oy, ox, dx: &mut [f64], g| {
        dx[(oy / s.kernel[0]) * w + ox / s.kernel[1]] += g;
    })
}

/// The forward twin for any kind.
pub fn forward(s: &PoolSpec, x: &Tensor) -> Result<Tensor> {
    match s.kind {
        PoolKind::Max => max_pool2d_forward(s, x),
        PoolKind::Avg => avg_pool2d_forward(s, x),
        PoolKind::UpsampleNearest => upsample_nearest2d_forward(s, x),
    }
}

/// The backward twin for any kind; `x` (the forward input) is used by the max pool only.
pub fn backward(s: &PoolSpec, x: &Tensor, dy: &Tensor) -> Result<Tensor> {
    match s.kind {
        PoolKind::Max => max_pool2d_backward(s, x, dy),
        PoolKind::Avg => avg_pool2d_backward(s, dy),
        PoolKind::UpsampleNearest => upsample_nearest2d_backward(s, dy),
    }
}

/// `dx` of shape `s.input`, built plane by plane: `add(plane, oy, ox, dx_plane, dy)` for every
/// output pixel in order.
fn scatter(
    s: &PoolSpec,
    dy: &Tensor,
    mut add: impl FnMut(usize, usize, usize, &mut [f64], f64),
) -> Result<Tensor> {
    let [n, c, h, w] = s.input;
    let [oh, ow] = s.out_hw();
    let mut dx = vec![0f64; n * c * h * w];
    for plane in 0..n * c {
        let d = &mut dx[plane * h * w..][..h * w];
        for oy in 0..oh {
            for ox in 0..ow {
                add(
                    plane,
                    oy,
                    ox,
                    d,
                    dy.data[(plane * oh + oy) * ow + ox] as f64,
                );
            }
        }
    }
    Tensor::new(s.in_shape(), dx.into_iter().map(|v| v as f32).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::finite_diff::{dot, numeric_grad};
    use crate::shape::Shape;

    fn specs() -> Vec<PoolSpec> {
        let x = Shape::new([2, 3, 7, 6]);
        let pool = |k, kernel, stride, padding| PoolSpec::pool(k, &x, kernel, stride, padding);
        vec![
            pool(PoolKind::Max, [2, 2], [2, 2], [0, 0]).unwrap(),
            pool(PoolKind::Max, [3, 2], [2, 1], [1, 1]).unwrap(), // overlapping, padded
            pool(PoolKind::Avg, [2, 2], [2, 2], [0, 0]).unwrap(),
            pool(PoolKind::Avg, [3, 3], [2, 2], [1, 1]).unwrap(),
            PoolSpec::upsample(&x, [2, 3]).unwrap(),
        ]
    }

    #[test]
    fn gradients_match_finite_differences() {
        // Distinct values a step apart, so that no max changes under the finite difference.
        let n = 2 * 3 * 7 * 6;
        let mut order: Vec<usize> = (0..n).collect();
        let mut rng = crate::tensor::Rng::new(3);
        for i in (1..n).rev() {
            order.swap(i, rng.below(i as u64 + 1) as usize);
        }
        let x = Tensor::new(
            [2, 3, 7, 6],
            order.iter().map(|&i| i as f32 * 0.1).collect(),
        )
        .unwrap();
        for s in specs() {
            let dy = Tensor::uniform(s.out_shape(), -1.0, 1.0, 9);
            let dx = backward(&s, &x, &dy).unwrap();
            let numeric = numeric_grad(&x, 1e-2, |x| dot(&dy, &forward(&s, x).unwrap()));
            for (i, (&a, &b)) in dx.data.iter().zip(&numeric).enumerate() {
                assert!((a as f64 - b).abs() < 1e-3, "{:?}[{i}]: {a} vs {b}", s.kind);
            }
        }
    }

    #[test]
    fn shapes_and_nan_follow_pytorch() {
        let x = Tensor::new([1, 1, 2, 4], vec![1., 5., f32::NAN, 2., 3., 4., 0., 8.]).unwrap();
        let s = PoolSpec::pool(PoolKind::Max, &x.shape, [2, 2], [2, 2], [0, 0]).unwrap();
        let y = max_pool2d_forward(&s, &x).unwrap();
        assert_eq!(y.shape, Shape::new([1, 1, 1, 2]));
        assert_eq!(y.data[0], 5.0);
        assert!(y.data[1].is_nan(), "a NaN in the window wins");
        // torch: nn.MaxPool2d(3, padding=2) on a 4×4 image: padding more than half the kernel.
        let e = PoolSpec::pool(
            PoolKind::Max,
            &Shape::new([1, 1, 4, 4]),
            [3, 3],
            [3, 3],
            [2, 2],
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("max_pool2d_forward") && e.contains("half"),
            "{e}"
        );
        let e = PoolSpec::pool(
            PoolKind::Avg,
            &Shape::new([1, 1, 1, 5]),
            [2, 2],
            [2, 2],
            [0, 0],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("smaller than the kernel"), "{e}");
        let e = PoolSpec::upsample(&Shape::new([4, 4]), [2, 2])
            .unwrap_err()
            .to_string();
        assert!(e.contains("NCHW"), "{e}");
    }
}
