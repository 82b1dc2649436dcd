//! CPU references of the composite convolution ops in [`crate::ops::conv`], written directly as
//! loops over the terms of the convolution sum, not through im2col and matmul, so that they check
//! the GPU's decomposition independently. Accumulation is in f64 (every public function converts
//! to f64, runs an `_f64` twin, and rounds once; the tests differentiate the `_f64` twins).
//!
//! Both ops are described by the geometry of a convolution ([`ConvGeometry`]): an image
//! `[N, C, H, W]`, window positions `[N, F, OH, OW]` and a weight `[F, C, kh, kw]`. For conv2d
//! the image is the input and the windows the output (weight `[out, in, kh, kw]`); for
//! conv_transpose2d it is the other way round (weight `[in, out, kh, kw]`), exactly as PyTorch
//! defines the transposed convolution as the gradient of a convolution with respect to its input.

use crate::error::Result;
use crate::shape::{
    ConvGeometry, ConvParams, Shape, conv_transpose2d_layer, conv2d_layer, rank4, same_numel,
};
use crate::spec::Activation;
use crate::tensor::Tensor;

/// Calls `visit(image_index, window_index, weight_index)` for every term of
/// `windows[n, f, oy, ox] = Σ_{c, i, j} weight[f, c, i, j] · image[n, c, oy·sh − ph + i·dh, ox·sw − pw + j·dw]`
/// whose image position lies inside the image (terms in the padding are zero and skipped).
fn for_each_term(g: &ConvGeometry, f: usize, mut visit: impl FnMut(usize, usize, usize)) {
    let p = &g.params;
    let [kh, kw] = g.kernel;
    // The image row (column) that window row oy (column ox) reads at kernel offset i (j).
    let tap = |axis: usize, o: usize, k: usize, size: usize| {
        (o * p.stride[axis] + k * p.dilation[axis])
            .checked_sub(p.padding[axis])
            .filter(|&v| v < size)
    };
    for n in 0..g.batch {
        for fi in 0..f {
            for oy in 0..g.out_h {
                for ox in 0..g.out_w {
                    let window = ((n * f + fi) * g.out_h + oy) * g.out_w + ox;
                    for c in 0..g.channels {
                        for i in 0..kh {
                            let Some(y) = tap(0, oy, i, g.height) else {
                                continue;
                            };
                            for j in 0..kw {
                                let Some(x) = tap(1, ox, j, g.width) else {
                                    continue;
                                };
                                let image = ((n * g.channels + c) * g.height + y) * g.width + x;
                                let weight = ((fi * g.channels + c) * kh + i) * kw + j;
                                visit(image, window, weight);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Adds `bias[ch]` to every element of channel `ch` of an NCHW tensor with `plane = H·W`.
fn add_bias(t: &mut [f64], bias: Option<&[f64]>, plane: usize) {
    if let Some(b) = bias {
        for (e, v) in t.iter_mut().enumerate() {
            *v += b[(e / plane) % b.len()];
        }
    }
}

fn conv2d_forward_f64(
    g: &ConvGeometry,
    f: usize,
    x: &[f64],
    w: &[f64],
    b: Option<&[f64]>,
) -> Vec<f64> {
    let mut y = vec![0.0; g.windows_shape(f).numel()];
    for_each_term(g, f, |xi, yi, wi| y[yi] += w[wi] * x[xi]);
    add_bias(&mut y, b, g.col_cols());
    y
}

fn conv2d_backward_data_f64(g: &ConvGeometry, f: usize, dy: &[f64], w: &[f64]) -> Vec<f64> {
    let mut dx = vec![0.0; g.image_shape().numel()];
    for_each_term(g, f, |xi, yi, wi| dx[xi] += dy[yi] * w[wi]);
    dx
}

fn conv2d_backward_weight_f64(g: &ConvGeometry, f: usize, x: &[f64], dy: &[f64]) -> Vec<f64> {
    let mut dw = vec![0.0; f * g.col_rows()];
    for_each_term(g, f, |xi, yi, wi| dw[wi] += dy[yi] * x[xi]);
    dw
}

fn conv_transpose2d_forward_f64(
    g: &ConvGeometry,
    f: usize,
    x: &[f64],
    w: &[f64],
    b: Option<&[f64]>,
) -> Vec<f64> {
    let mut y = vec![0.0; g.image_shape().numel()];
    for_each_term(g, f, |yi, xi, wi| y[yi] += x[xi] * w[wi]);
    add_bias(&mut y, b, g.height * g.width);
    y
}

fn conv_transpose2d_backward_data_f64(
    g: &ConvGeometry,
    f: usize,
    dy: &[f64],
    w: &[f64],
) -> Vec<f64> {
    let mut dx = vec![0.0; g.windows_shape(f).numel()];
    for_each_term(g, f, |yi, xi, wi| dx[xi] += w[wi] * dy[yi]);
    dx
}

fn conv_transpose2d_backward_weight_f64(
    g: &ConvGeometry,
    f: usize,
    x: &[f64],
    dy: &[f64],
) -> Vec<f64> {
    let mut dw = vec![0.0; f * g.col_rows()];
    for_each_term(g, f, |yi, xi, wi| dw[wi] += x[xi] * dy[yi]);
    dw
}

/// `db[c] = Σ_{n, h, w} dy[n, c, h, w]`.
fn bias_grad_f64(dims: [usize; 4], dy: &[f64]) -> Vec<f64> {
    let [_, c, h, w] = dims;
    let mut db = vec![0.0; c];
    for (e, v) in dy.iter().enumerate() {
        db[(e / (h * w)) % c] += v;
    }
    db
}

fn wide(t: &[f32]) -> Vec<f64> {
    t.iter().map(|&v| v as f64).collect()
}

fn narrow(shape: Shape, v: Vec<f64>, act: Activation) -> Result<Tensor> {
    Tensor::new(shape, v.into_iter().map(|x| act.apply(x) as f32).collect())
}

fn check_bias(op: &str, b: Option<&Tensor>, channels: usize) -> Result<Option<Vec<f64>>> {
    b.map(|b| {
        same_numel(op, "bias", &b.shape, &Shape::new([channels]))?;
        Ok(wide(&b.data))
    })
    .transpose()
}

/// `y = act(conv2d(x, w) + b)`: x `[N, C, H, W]`, w `[F, C, kh, kw]`, b `[F]`, y `[N, F, OH, OW]`.
pub fn conv2d_forward(
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    p: ConvParams,
    act: Activation,
) -> Result<Tensor> {
    let op = "conv2d_forward";
    let (g, f) = conv2d_layer(op, &x.shape, &w.shape, p)?;
    let b = check_bias(op, b, f)?;
    let y = conv2d_forward_f64(&g, f, &wide(&x.data), &wide(&w.data), b.as_deref());
    narrow(g.windows_shape(f), y, act)
}

/// `dx` of [`conv2d_forward`] (before its activation) from `dy`; `input` is x's shape.
pub fn conv2d_backward_data(
    dy: &Tensor,
    w: &Tensor,
    input: &Shape,
    p: ConvParams,
) -> Result<Tensor> {
    let op = "conv2d_backward_data";
    let (g, f) = conv2d_layer(op, input, &w.shape, p)?;
    same_numel(op, "dy", &dy.shape, &g.windows_shape(f))?;
    let dx = conv2d_backward_data_f64(&g, f, &wide(&dy.data), &wide(&w.data));
    narrow(g.image_shape(), dx, Activation::None)
}

/// `dw` of [`conv2d_forward`] from its input and `dy`; `weight` is w's shape.
pub fn conv2d_backward_weight(
    x: &Tensor,
    dy: &Tensor,
    weight: &Shape,
    p: ConvParams,
) -> Result<Tensor> {
    let op = "conv2d_backward_weight";
    let (g, f) = conv2d_layer(op, &x.shape, weight, p)?;
    same_numel(op, "dy", &dy.shape, &g.windows_shape(f))?;
    let dw = conv2d_backward_weight_f64(&g, f, &wide(&x.data), &wide(&dy.data));
    narrow(weight.clone(), dw, Activation::None)
}

/// `db[f] = Σ_{n, h, w} dy[n, f, h, w]`.
pub fn conv2d_backward_bias(dy: &Tensor) -> Result<Tensor> {
    let dims = rank4("conv2d_backward_bias", "dy", &dy.shape)?;
    narrow(
        Shape::new([dims[1]]),
        bias_grad_f64(dims, &wide(&dy.data)),
        Activation::None,
    )
}

/// `y = conv_transpose2d(x, w) + b`: x `[N, F, h, w]`, w `[F, C, kh, kw]` (`[in, out, kh, kw]`),
/// b `[C]`, y `[N, C, H, W]` with `H = (h − 1)·s − 2p + d·(kh − 1) + output_padding + 1`.
pub fn conv_transpose2d_forward(
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    p: ConvParams,
) -> Result<Tensor> {
    let op = "conv_transpose2d_forward";
    let (g, f) = conv_transpose2d_layer(op, &x.shape, &w.shape, p)?;
    let b = check_bias(op, b, g.channels)?;
    let y = conv_transpose2d_forward_f64(&g, f, &wide(&x.data), &wide(&w.data), b.as_deref());
    narrow(g.image_shape(), y, Activation::None)
}

/// `dx` of [`conv_transpose2d_forward`] from `dy`; `input` is x's shape.
pub fn conv_transpose2d_backward_data(
    dy: &Tensor,
    w: &Tensor,
    input: &Shape,
    p: ConvParams,
) -> Result<Tensor> {
    let op = "conv_transpose2d_backward_data";
    let (g, f) = conv_transpose2d_layer(op, input, &w.shape, p)?;
    same_numel(op, "dy", &dy.shape, &g.image_shape())?;
    let dx = conv_transpose2d_backward_data_f64(&g, f, &wide(&dy.data), &wide(&w.data));
    narrow(g.windows_shape(f), dx, Activation::None)
}

/// `dw` of [`conv_transpose2d_forward`] from its input and `dy`; `weight` is w's shape.
pub fn conv_transpose2d_backward_weight(
    x: &Tensor,
    dy: &Tensor,
    weight: &Shape,
    p: ConvParams,
) -> Result<Tensor> {
    let op = "conv_transpose2d_backward_weight";
    let (g, f) = conv_transpose2d_layer(op, &x.shape, weight, p)?;
    same_numel(op, "dy", &dy.shape, &g.image_shape())?;
    let dw = conv_transpose2d_backward_weight_f64(&g, f, &wide(&x.data), &wide(&dy.data));
    narrow(weight.clone(), dw, Activation::None)
}

/// `db[c] = Σ_{n, h, w} dy[n, c, h, w]`.
pub fn conv_transpose2d_backward_bias(dy: &Tensor) -> Result<Tensor> {
    let dims = rank4("conv_transpose2d_backward_bias", "dy", &dy.shape)?;
    narrow(
        Shape::new([dims[1]]),
        bias_grad_f64(dims, &wide(&dy.data)),
        Activation::None,
    )
}

#[cfg(test)]
#[path = "conv_tests.rs"]
mod tests;
