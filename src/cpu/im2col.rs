//! CPU twins of shaders/im2col.wgsl.

use crate::error::Result;
use crate::shape::{ConvGeometry, Shape, same_numel};

/// The image position `(y, x)` that kernel offset `(i, j)` of window `(oy, ox)` reads, or
/// `None` in the padding.
fn source(g: &ConvGeometry, oy: usize, ox: usize, i: usize, j: usize) -> Option<(usize, usize)> {
    let p = &g.params;
    let y = (oy * p.stride[0] + i * p.dilation[0]).checked_sub(p.padding[0])?;
    let x = (ox * p.stride[1] + j * p.dilation[1]).checked_sub(p.padding[1])?;
    (y < g.height && x < g.width).then_some((y, x))
}

fn check(op: &str, g: &ConvGeometry, what: &str, len: usize, want: Shape) -> Result<()> {
    g.check(op)?;
    same_numel(op, what, &Shape::new([len]), &want)
}

/// `cols[n, (c·kh + i)·kw + j, oy·OW + ox] = image[n, c, y, x]` for the position `(y, x)` that
/// offset `(i, j)` of window `(oy, ox)` reads; zero in the padding.
pub fn im2col(g: &ConvGeometry, image: &[f32]) -> Result<Vec<f32>> {
    check("im2col", g, "image", image.len(), g.image_shape())?;
    let [kh, kw] = g.kernel;
    let mut cols = Vec::with_capacity(g.cols_shape().numel());
    for nc in 0..g.batch * g.channels {
        let plane = &image[nc * g.height * g.width..][..g.height * g.width];
        for i in 0..kh {
            for j in 0..kw {
                for oy in 0..g.out_h {
                    for ox in 0..g.out_w {
                        let v =
                            source(g, oy, ox, i, j).map_or(0.0, |(y, x)| plane[y * g.width + x]);
                        cols.push(v);
                    }
                }
            }
        }
    }
    Ok(cols)
}

/// The adjoint of [`im2col`]: every column entry is added to the image element it was taken
/// from, summed in f64.
pub fn col2im(g: &ConvGeometry, cols: &[f32]) -> Result<Vec<f32>> {
    check("col2im", g, "cols", cols.len(), g.cols_shape())?;
    Ok(col2im_f64(g, cols).into_iter().map(|v| v as f32).collect())
}

/// [`col2im`] plus `bias[c]` on every element of channel c.
pub fn col2im_bias(g: &ConvGeometry, cols: &[f32], bias: &[f32]) -> Result<Vec<f32>> {
    let op = "col2im_bias";
    check(op, g, "cols", cols.len(), g.cols_shape())?;
    same_numel(
        op,
        "bias",
        &Shape::new([bias.len()]),
        &Shape::new([g.channels]),
    )?;
    let plane = g.height * g.width;
    Ok(col2im_f64(g, cols)
        .into_iter()
        .enumerate()
        .map(|(e, v)| (v + bias[(e / plane) % g.channels] as f64) as f32)
        .collect())
}

/// Scatters every column entry back (a different order from the shader's gather; the sums agree
/// to rounding, which f64 makes negligible).
fn col2im_f64(g: &ConvGeometry, cols: &[f32]) -> Vec<f64> {
    let [kh, kw] = g.kernel;
    let plane = g.height * g.width;
    let mut image = vec![0f64; g.image_shape().numel()];
    let mut e = 0;
    for nc in 0..g.batch * g.channels {
        for i in 0..kh {
            for j in 0..kw {
                for oy in 0..g.out_h {
                    for ox in 0..g.out_w {
                        if let Some((y, x)) = source(g, oy, ox, i, j) {
                            image[nc * plane + y * g.width + x] += cols[e] as f64;
                        }
                        e += 1;
                    }
                }
            }
        }
    }
    image
}
