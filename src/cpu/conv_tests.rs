//! Tests of the CPU convolution references: hand-worked examples of PyTorch's semantics, central
//! finite differences in f64 for every gradient, and the im2col decomposition the GPU uses.

use super::*;
use crate::cpu::{im2col, matmul};
use crate::shape::conv2d_geometry;
use crate::spec::{BiasMode, MatmulSpec};
use crate::tensor::Rng;

fn rand64(len: usize, seed: u64) -> Vec<f64> {
    let mut r = Rng::new(seed);
    (0..len).map(|_| r.uniform(-1.0, 1.0) as f64).collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Checks `grad` against the central differences of `x ↦ <forward(x), r>` at `x`. Every op is
/// linear in the argument being differentiated, so the differences are exact up to rounding.
fn check_fd(what: &str, x: &[f64], r: &[f64], grad: &[f64], forward: impl Fn(&[f64]) -> Vec<f64>) {
    assert_eq!(x.len(), grad.len(), "{what}: gradient length");
    let h = 1e-3;
    let mut xp = x.to_vec();
    for i in 0..x.len() {
        xp[i] = x[i] + h;
        let up = dot(&forward(&xp), r);
        xp[i] = x[i] - h;
        let down = dot(&forward(&xp), r);
        xp[i] = x[i];
        let fd = (up - down) / (2.0 * h);
        assert!(
            (fd - grad[i]).abs() <= 1e-9 * (1.0 + fd.abs()),
            "{what}: element {i}: finite difference {fd} vs backward {}",
            grad[i]
        );
    }
}

/// (input shape, filters, kernel, params) for conv2d; for conv_transpose2d the input shape's
/// channels are the filters and `filters` the output channels.
fn cases() -> Vec<([usize; 4], usize, [usize; 2], ConvParams)> {
    let mut asym = ConvParams::square(2, 1, 1);
    asym.stride = [2, 1];
    asym.padding = [1, 0];
    asym.dilation = [1, 2];
    vec![
        ([2, 3, 5, 4], 2, [3, 2], ConvParams::square(1, 1, 1)),
        ([1, 2, 7, 8], 3, [2, 2], ConvParams::square(3, 0, 1)),
        ([2, 2, 6, 7], 2, [3, 3], ConvParams::square(1, 2, 2)),
        ([1, 1, 5, 5], 2, [1, 1], ConvParams::square(2, 0, 1)),
        ([2, 2, 5, 6], 3, [3, 2], asym),
    ]
}

#[test]
fn conv2d_gradients_match_finite_differences() {
    for (s, f, k, p) in cases() {
        let (g, f2) =
            conv2d_layer("t", &Shape::new(s), &Shape::new([f, s[1], k[0], k[1]]), p).unwrap();
        assert_eq!(f, f2);
        let x = rand64(g.image_shape().numel(), 1);
        let w = rand64(f * g.col_rows(), 2);
        let b = rand64(f, 3);
        let r = rand64(g.windows_shape(f).numel(), 4);
        let what = format!("conv2d {s:?} k{k:?} {p:?}");
        let dx = conv2d_backward_data_f64(&g, f, &r, &w);
        check_fd(&format!("{what} dx"), &x, &r, &dx, |x| {
            conv2d_forward_f64(&g, f, x, &w, Some(&b))
        });
        let dw = conv2d_backward_weight_f64(&g, f, &x, &r);
        check_fd(&format!("{what} dw"), &w, &r, &dw, |w| {
            conv2d_forward_f64(&g, f, &x, w, Some(&b))
        });
        let dims = [g.batch, f, g.out_h, g.out_w];
        let db = bias_grad_f64(dims, &r);
        check_fd(&format!("{what} db"), &b, &r, &db, |b| {
            conv2d_forward_f64(&g, f, &x, &w, Some(b))
        });
    }
}

#[test]
fn conv_transpose2d_gradients_match_finite_differences() {
    let mut cases = cases();
    // output_padding: 1 below the stride, and 1 at the stride but below the dilation.
    cases.push((
        [2, 2, 3, 4],
        3,
        [3, 3],
        ConvParams::square(2, 1, 1).with_output_padding(1),
    ));
    cases.push((
        [1, 2, 4, 3],
        2,
        [2, 3],
        ConvParams::square(1, 0, 2).with_output_padding(1),
    ));
    for (s, c, k, p) in cases {
        let (g, f) =
            conv_transpose2d_layer("t", &Shape::new(s), &Shape::new([s[1], c, k[0], k[1]]), p)
                .unwrap();
        let x = rand64(g.windows_shape(f).numel(), 5);
        let w = rand64(f * g.col_rows(), 6);
        let b = rand64(c, 7);
        let r = rand64(g.image_shape().numel(), 8);
        let what = format!("conv_transpose2d {s:?} k{k:?} {p:?}");
        let fwd =
            |x: &[f64], w: &[f64], b: &[f64]| conv_transpose2d_forward_f64(&g, f, x, w, Some(b));
        let dx = conv_transpose2d_backward_data_f64(&g, f, &r, &w);
        check_fd(&format!("{what} dx"), &x, &r, &dx, |x| fwd(x, &w, &b));
        let dw = conv_transpose2d_backward_weight_f64(&g, f, &x, &r);
        check_fd(&format!("{what} dw"), &w, &r, &dw, |w| fwd(&x, w, &b));
        let db = bias_grad_f64([g.batch, c, g.height, g.width], &r);
        check_fd(&format!("{what} db"), &b, &r, &db, |b| fwd(&x, &w, b));
    }
}

/// Worked by hand from PyTorch's definitions, so the references are anchored to PyTorch's
/// semantics and not only to each other.
#[test]
fn hand_worked_examples() {
    // conv2d: 1×1×3×3 image 1..9, 2×2 kernel of ones, stride 1, padding 0: sums of 2×2 blocks.
    let x = Tensor::new([1, 1, 3, 3], (1..=9).map(|v| v as f32).collect()).unwrap();
    let w = Tensor::full([1, 1, 2, 2], 1.0);
    let y = conv2d_forward(&x, &w, None, ConvParams::default(), Activation::None).unwrap();
    assert_eq!(y.shape, Shape::new([1, 1, 2, 2]));
    assert_eq!(y.data, [12.0, 16.0, 24.0, 28.0]);
    // Padding 1, stride 2: windows start at rows/columns −1 and 1; the first sees only x[0][0].
    let y = conv2d_forward(&x, &w, None, ConvParams::square(2, 1, 1), Activation::None).unwrap();
    assert_eq!(y.data, [1.0, 5.0, 11.0, 28.0]);

    // conv_transpose2d: 1×1×2×2 input [[1, 2], [3, 4]], 3×3 kernel of ones, stride 2, padding 1,
    // output_padding 1 → 4×4. Output row Y receives input row h when Y = 2h − 1 + i, i in 0..3:
    // Y0 ← h0; Y1 ← h0, h1; Y2 ← h1; Y3 ← h1 (the output_padding row). Columns likewise.
    let x = Tensor::new([1, 1, 2, 2], vec![1.0, 2.0, 3.0, 4.0]).unwrap();
    let w = Tensor::full([1, 1, 3, 3], 1.0);
    let b = Tensor::new([1], vec![0.5]).unwrap();
    let p = ConvParams::square(2, 1, 1).with_output_padding(1);
    let y = conv_transpose2d_forward(&x, &w, Some(&b), p).unwrap();
    assert_eq!(y.shape, Shape::new([1, 1, 4, 4]));
    #[rustfmt::skip]
    let want = [
        1.0, 3.0, 2.0, 2.0,
        4.0, 10.0, 6.0, 6.0,
        3.0, 7.0, 4.0, 4.0,
        3.0, 7.0, 4.0, 4.0,
    ];
    let want: Vec<f32> = want.iter().map(|v| v + 0.5).collect();
    assert_eq!(y.data, want);
}

#[test]
fn im2col_then_matmul_is_the_direct_conv() {
    for (s, f, k, p) in cases() {
        let x = Tensor::uniform(s, -1.0, 1.0, 9);
        let w = Tensor::uniform([f, s[1], k[0], k[1]], -1.0, 1.0, 10);
        let b = Tensor::uniform([f], -1.0, 1.0, 11);
        let direct = conv2d_forward(&x, &w, Some(&b), p, Activation::Tanh).unwrap();
        let g = conv2d_geometry("t", &x.shape, k, p).unwrap();
        let cols = im2col::im2col(&g, &x.data).unwrap();
        let mut spec = MatmulSpec::new(f, g.col_rows(), g.col_cols());
        spec.batch = g.batch;
        spec.broadcast_a = true;
        spec.bias = BiasMode::PerRow;
        spec.act = Activation::Tanh;
        let y = matmul::matmul(&spec, &w.data, &cols, &b.data).unwrap();
        for (a, b) in y.iter().zip(&direct.data) {
            assert!((a - b).abs() <= 1e-6, "{s:?} k{k:?} {p:?}: {a} vs {b}");
        }
    }
}

#[test]
fn col2im_is_the_adjoint_of_im2col() {
    let geoms = cases()
        .into_iter()
        .map(|(s, _, k, p)| conv2d_geometry("t", &Shape::new(s), k, p).unwrap());
    // A transposed geometry whose window count is below what a conv of its image would give
    // (output_padding ≥ stride, allowed because it is below the dilation).
    let t = Shape::new([1, 2, 4, 3]);
    let p = ConvParams::square(1, 0, 2).with_output_padding(1);
    let tg = crate::shape::conv_transpose2d_geometry("t", &t, 3, [2, 3], p).unwrap();
    for g in geoms.chain([tg]) {
        let x = Tensor::uniform(g.image_shape(), -1.0, 1.0, 12);
        let c = Tensor::uniform(g.cols_shape(), -1.0, 1.0, 13);
        let left = dot(&wide(&im2col::im2col(&g, &x.data).unwrap()), &wide(&c.data));
        let right = dot(&wide(&x.data), &wide(&im2col::col2im(&g, &c.data).unwrap()));
        assert!(
            (left - right).abs() <= 1e-5 * (1.0 + left.abs()),
            "{g:?}: {left} vs {right}"
        );
        let b = Tensor::uniform([g.channels], -1.0, 1.0, 14);
        let biased = im2col::col2im_bias(&g, &c.data, &b.data).unwrap();
        let plain = im2col::col2im(&g, &c.data).unwrap();
        let plane = g.height * g.width;
        for (e, (u, v)) in biased.iter().zip(&plain).enumerate() {
            assert!((u - v - b.data[(e / plane) % g.channels]).abs() <= 1e-6);
        }
    }
}
