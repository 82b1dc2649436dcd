//! Launchers for shaders/im2col.wgsl: `im2col`, `col2im` and `col2im_bias`.

use crate::error::{Error, Result};
use crate::gpu::{GpuContext, GpuTensor, Launch, Workgroups, shaders};
use crate::shape::{ConvGeometry, Shape, same_numel};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    batch: u32,
    channels: u32,
    height: u32,
    width: u32,
    kh: u32,
    kw: u32,
    stride_h: u32,
    stride_w: u32,
    pad_h: u32,
    pad_w: u32,
    dil_h: u32,
    dil_w: u32,
    out_h: u32,
    out_w: u32,
    total: u32,
    _pad: u32,
}

/// Invocations per workgroup (`WG` in the shader).
const WG: u64 = 64;

fn params(op: &str, g: &ConvGeometry, total: usize) -> Result<Params> {
    g.check(op)?;
    // Every index the shader forms is below the larger tensor's length; the buffer limits keep
    // that within u32, but a hand-built geometry could still overflow, so check here.
    let u = |x: usize| {
        u32::try_from(x).map_err(|_| {
            Error::invalid(op, format!("{x} does not fit the shader's 32-bit indices"))
        })
    };
    let k = &g.params;
    Ok(Params {
        batch: u(g.batch)?,
        channels: u(g.channels)?,
        height: u(g.height)?,
        width: u(g.width)?,
        kh: u(g.kernel[0])?,
        kw: u(g.kernel[1])?,
        stride_h: u(k.stride[0])?,
        stride_w: u(k.stride[1])?,
        pad_h: u(k.padding[0])?,
        pad_w: u(k.padding[1])?,
        dil_h: u(k.dilation[0])?,
        dil_w: u(k.dilation[1])?,
        out_h: u(g.out_h)?,
        out_w: u(g.out_w)?,
        total: u(total)?,
        _pad: 0,
    })
}

fn check_pair(op: &str, g: &ConvGeometry, image: &GpuTensor, cols: &GpuTensor) -> Result<()> {
    same_numel(op, "image", &image.shape, &g.image_shape())?;
    same_numel(op, "cols", &cols.shape, &g.cols_shape())
}

/// `cols ← im2col(image)`: image `[N, C, H, W]`, cols `[N, C·kh·kw, OH·OW]` as `g` describes.
pub fn im2col(
    ctx: &GpuContext,
    g: &ConvGeometry,
    image: &GpuTensor,
    cols: &GpuTensor,
) -> Result<Launch> {
    let op = "im2col";
    let p = params(op, g, g.cols_shape().numel())?;
    check_pair(op, g, image, cols)?;
    ctx.launch(
        shaders::IM2COL,
        op,
        &[],
        bytemuck::bytes_of(&p),
        &[image, cols],
        Workgroups::Linear((p.total as u64).div_ceil(WG)),
    )
}

/// `image ← col2im(cols)`, the adjoint of [`im2col`]: each image element is the sum of the
/// column entries taken from it.
pub fn col2im(
    ctx: &GpuContext,
    g: &ConvGeometry,
    cols: &GpuTensor,
    image: &GpuTensor,
) -> Result<Launch> {
    let op = "col2im";
    let p = params(op, g, g.image_shape().numel())?;
    check_pair(op, g, image, cols)?;
    ctx.launch(
        shaders::IM2COL,
        op,
        &[],
        bytemuck::bytes_of(&p),
        &[cols, image],
        Workgroups::Linear((p.total as u64).div_ceil(WG)),
    )
}

/// `image ← col2im(cols) + bias[c]` on every channel c (bias has `C` elements).
pub fn col2im_bias(
    ctx: &GpuContext,
    g: &ConvGeometry,
    cols: &GpuTensor,
    bias: &GpuTensor,
    image: &GpuTensor,
) -> Result<Launch> {
    let op = "col2im_bias";
    let p = params(op, g, g.image_shape().numel())?;
    check_pair(op, g, image, cols)?;
    same_numel(op, "bias", &bias.shape, &Shape::new([g.channels]))?;
    ctx.launch(
        shaders::IM2COL,
        op,
        &[],
        bytemuck::bytes_of(&p),
        &[cols, image, bias],
        Workgroups::Linear((p.total as u64).div_ceil(WG)),
    )
}
