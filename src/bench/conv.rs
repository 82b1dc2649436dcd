//! The convolution items `wgrad bench` times: im2col / col2im for the encoder's two convolutions,
//! and conv2d / conv_transpose2d forward, data gradient and weight gradient at the default
//! preset's four layers, all at batch 64.

use super::kernels::{BATCH, Build, Item, Prepared, item, random};
use crate::error::Result;
use crate::gpu::GpuTensor;
use crate::gpu::kernels::im2col as gi;
use crate::ops::conv::{self as ops, ConvPlan};
use crate::shape::{
    ConvGeometry, ConvParams, Shape, conv_transpose2d_layer, conv2d_geometry, conv2d_layer,
};
use crate::spec::Activation;

fn plan(p: ConvPlan, keep: Vec<GpuTensor>) -> Prepared {
    let mut keep = keep;
    keep.extend(p.scratch);
    Prepared {
        launches: p.launches,
        keep,
    }
}

/// The default preset's convolutions at batch 64: `(name, input, other channels, transposed)`.
const LAYERS: [(&str, [usize; 4], usize, bool); 4] = [
    ("encoder.0", [BATCH, 1, 28, 28], 16, false),
    ("encoder.2", [BATCH, 16, 14, 14], 32, false),
    ("decoder.0", [BATCH, 32, 7, 7], 16, true),
    ("decoder.2", [BATCH, 16, 14, 14], 1, true),
];

fn params(transposed: bool) -> ConvParams {
    let p = ConvParams::square(2, 1, 1);
    if transposed {
        p.with_output_padding(1)
    } else {
        p
    }
}

pub(super) fn im2col_items() -> Result<Vec<Item>> {
    let mut v = Vec::new();
    for (name, x, _, _) in &LAYERS[..2] {
        let g = conv2d_geometry("bench", &Shape::new(*x), [3, 3], params(false))?;
        let shape = format!(
            "{name}: image {} -> cols {}",
            g.image_shape(),
            g.cols_shape()
        );
        let elements = g.image_shape().numel() + g.cols_shape().numel();
        v.push(item(
            "im2col",
            shape.clone(),
            0.0,
            elements,
            Box::new(move |ctx| {
                let image = random(ctx, "image", g.image_shape(), 1)?;
                let cols = ctx.zeros("cols", g.cols_shape())?;
                let launches = vec![gi::im2col(ctx, &g, &image, &cols)?];
                Ok(Prepared {
                    launches,
                    keep: vec![image, cols],
                })
            }),
        ));
        v.push(item(
            "col2im",
            shape,
            0.0,
            elements,
            Box::new(move |ctx| {
                let cols = random(ctx, "cols", g.cols_shape(), 1)?;
                let image = ctx.zeros("image", g.image_shape())?;
                let launches = vec![gi::col2im(ctx, &g, &cols, &image)?];
                Ok(Prepared {
                    launches,
                    keep: vec![image, cols],
                })
            }),
        ));
    }
    Ok(v)
}

/// Elements moved by the three shapes of convolution work (see src/ops/conv.rs): im2col then
/// matmul; matmul then col2im; im2col then the batch-summed matmul.
struct Traffic {
    image_to_windows: usize,
    windows_to_image: usize,
    weight_grad: usize,
}

fn traffic(g: &ConvGeometry, f: usize) -> Traffic {
    let (img, cols) = (g.image_shape().numel(), g.cols_shape().numel());
    let (win, w) = (g.windows_shape(f).numel(), f * g.col_rows());
    Traffic {
        image_to_windows: (img + cols) + (w + cols + win),
        windows_to_image: (w + win + cols) + (cols + img),
        weight_grad: (img + cols) + (win + cols + w),
    }
}

pub(super) fn conv_items() -> Result<Vec<Item>> {
    let mut v = Vec::new();
    for (name, x, c, transposed) in LAYERS {
        let p = params(transposed);
        let xs = Shape::new(x);
        let (ws, (g, f)) = if transposed {
            let ws = Shape::new([x[1], c, 3, 3]);
            let gf = conv_transpose2d_layer("bench", &xs, &ws, p)?;
            (ws, gf)
        } else {
            let ws = Shape::new([c, x[1], 3, 3]);
            let gf = conv2d_layer("bench", &xs, &ws, p)?;
            (ws, gf)
        };
        let flops = 2.0 * (g.batch * f * g.col_rows() * g.col_cols()) as f64;
        let t = traffic(&g, f);
        let ys = if transposed {
            g.image_shape()
        } else {
            g.windows_shape(f)
        };
        let shape = format!("{name}: x{xs} w{ws} -> y{ys}");
        let op = if transposed {
            "conv_transpose2d"
        } else {
            "conv2d"
        };
        let (xs1, ws1, ys1) = (xs.clone(), ws.clone(), ys.clone());
        let fwd: Build = Box::new(move |ctx| {
            let (xg, wg) = (
                random(ctx, "x", xs1.clone(), 1)?,
                random(ctx, "w", ws1.clone(), 2)?,
            );
            let y = ctx.zeros("y", ys1.clone())?;
            let pl = if transposed {
                ops::conv_transpose2d_forward(ctx, &xg, &wg, None, &y, p)?
            } else {
                ops::conv2d_forward(ctx, &xg, &wg, None, &y, p, Activation::None)?
            };
            Ok(plan(pl, vec![xg, wg, y]))
        });
        let (xs2, ws2, ys2) = (xs.clone(), ws.clone(), ys.clone());
        let data: Build = Box::new(move |ctx| {
            let (dy, wg) = (
                random(ctx, "dy", ys2.clone(), 1)?,
                random(ctx, "w", ws2.clone(), 2)?,
            );
            let dx = ctx.zeros("dx", xs2.clone())?;
            let pl = if transposed {
                ops::conv_transpose2d_backward_data(ctx, &dy, &wg, &dx, p)?
            } else {
                ops::conv2d_backward_data(ctx, &dy, &wg, &dx, p)?
            };
            Ok(plan(pl, vec![dy, wg, dx]))
        });
        let (xs3, ws3, ys3) = (xs.clone(), ws.clone(), ys.clone());
        let weight: Build = Box::new(move |ctx| {
            let (xg, dy) = (
                random(ctx, "x", xs3.clone(), 1)?,
                random(ctx, "dy", ys3.clone(), 2)?,
            );
            let dw = ctx.zeros("dw", ws3.clone())?;
            let pl = if transposed {
                ops::conv_transpose2d_backward_weight(ctx, &xg, &dy, &dw, p)?
            } else {
                ops::conv2d_backward_weight(ctx, &xg, &dy, &dw, p)?
            };
            Ok(plan(pl, vec![xg, dy, dw]))
        });
        // conv2d forward and conv_transpose2d's data gradient are image → windows; the other
        // two are windows → image.
        let (fwd_t, data_t) = if transposed {
            (t.windows_to_image, t.image_to_windows)
        } else {
            (t.image_to_windows, t.windows_to_image)
        };
        v.push(item(
            &format!("{op}_forward"),
            shape.clone(),
            flops,
            fwd_t,
            fwd,
        ));
        v.push(item(
            &format!("{op}_backward_data"),
            shape.clone(),
            flops,
            data_t,
            data,
        ));
        v.push(item(
            &format!("{op}_backward_weight"),
            shape,
            flops,
            t.weight_grad,
            weight,
        ));
    }
    Ok(v)
}
