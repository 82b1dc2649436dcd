//! Launchers for shaders/im2col.wgsl: `im2col`, `col2im` and `col2im_bias`.

use crate::error::{Error, Result};
use crate::gpu::{GpuContext, GpuTensor, Launch, Workgroups, shaders};
use crate::shape::{ConvGeometry, Shape, same_numel};

/// The shader's `Params`, field for field.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
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
    tile_w: u32,
    tile_h: u32,
    rows: u32,
    rows_per_group: u32,
    chunk_h: u32,
    chunks: u32,
    groups: u32,
    tile_m: u32,
    tile_s: u32,
    sh_m: u32,
    sh_s: u32,
    sw_m: u32,
    sw_s: u32,
    step_q_h: u32,
    step_r_h: u32,
    step_q_w: u32,
    step_r_w: u32,
    dil_q_h: u32,
    dil_r_h: u32,
    dil_q_w: u32,
    dil_r_w: u32,
    j_period: u32,
    ox_step: u32,
    i_period: u32,
    oy_step: u32,
    _pad: u32,
}

/// Invocations per workgroup (`WG` in the shader).
const WG: usize = 64;

/// Which way the kernel goes: the planes it writes differ.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Dir {
    /// Writes `N·C·kh·kw` planes of `OH × OW` (the cols).
    Im2col,
    /// Writes `N·C` planes of `H × W` (the image).
    Col2im,
}

/// How much output each workgroup writes, in elements (it writes whole lines, so this is rounded
/// to them: at least one line chunk, at most whole planes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GroupShare {
    /// Chosen from the adapter type, as the plain launchers do.
    ///
    /// A CPU adapter (lavapipe, llvmpipe) runs a workgroup as one call that steps through its
    /// invocations 8 (AVX2) or 4 lanes at a time. On lavapipe each workgroup costs a fixed 0.5
    /// to 2 µs (which dominated the old one-element-per-invocation kernels as much as their
    /// divisions did) plus its invocations' setup, which the innermost plane loop amortizes over
    /// the workgroup's planes. So workgroups are long: about 8 per CPU thread
    /// (`available_parallelism`; lavapipe's thread pool has one per CPU), 2048 to 65536 elements.
    ///
    /// A GPU wants many short ones to fill its cores: 256 to 1024 elements (4 to 16 per
    /// invocation), at least 2048 workgroups where the tensor allows.
    #[default]
    Auto,
    /// This many elements (benchmarks and tests, to try or cover other layouts).
    Elements(usize),
}

impl GroupShare {
    fn elements(self, ctx: &GpuContext, total: usize) -> usize {
        match self {
            GroupShare::Elements(n) => n.max(1),
            GroupShare::Auto if ctx.info.device_type == wgpu::DeviceType::Cpu => {
                let threads = std::thread::available_parallelism().map_or(4, |n| n.get());
                (total / (8 * threads)).clamp(2048, 65536)
            }
            GroupShare::Auto => (total / 2048).clamp(256, 1024),
        }
    }
}

/// `(m, s)` with `⌊n / d⌋ = (n·m) >> s` for every `n < WG` (the shader's `div_lane`):
/// `s = 6 + ⌈log₂ d⌉`, `m = ⌈2^s / d⌉`, exact because `n·(m·d − 2^s) < 64·d ≤ 2^s`; `(0, 0)`
/// when `d ≥ WG`, where every quotient is 0.
fn lane_divisor(d: usize) -> (u32, u32) {
    if d >= WG {
        return (0, 0);
    }
    let s = WG.trailing_zeros() + d.next_power_of_two().trailing_zeros();
    ((1usize << s).div_ceil(d) as u32, s)
}

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

fn params(
    ctx: &GpuContext,
    op: &str,
    g: &ConvGeometry,
    dir: Dir,
    share: GroupShare,
) -> Result<Params> {
    g.check(op)?;
    // Every index the shader forms is below the larger tensor's length; the buffer limits keep
    // that within u32, but a hand-built geometry could still overflow, so check here.
    let u = |x: usize| {
        u32::try_from(x).map_err(|_| {
            Error::invalid(op, format!("{x} does not fit the shader's 32-bit indices"))
        })
    };
    u(g.cols_shape().numel().max(g.image_shape().numel()))?;
    let k = &g.params;
    let [kh, kw] = g.kernel;
    let [sh, sw] = k.stride;
    let [dh, dw] = k.dilation;
    let (rows, plane_h, plane_w) = match dir {
        Dir::Im2col => (g.batch * g.channels * kh * kw, g.out_h, g.out_w),
        Dir::Col2im => (g.batch * g.channels, g.height, g.width),
    };
    let tile_w = plane_w.min(WG);
    let tile_h = (WG / tile_w).min(plane_h);
    let share = share.elements(ctx, rows * plane_h * plane_w);
    let lines = plane_h.next_multiple_of(tile_h); // a whole plane, in whole tiles
    let (chunk_h, rows_per_group) = if plane_h * plane_w >= share {
        let chunk = share.div_ceil(plane_w).next_multiple_of(tile_h).min(lines);
        (chunk, 1)
    } else {
        (lines, (share / (plane_h * plane_w)).clamp(1, rows))
    };
    let chunks = plane_h.div_ceil(chunk_h);
    let groups = chunks * rows.div_ceil(rows_per_group);
    let gw = gcd(sw, dw);
    let gh = gcd(sh, dh);
    Ok(Params {
        batch: u(g.batch)?,
        channels: u(g.channels)?,
        height: u(g.height)?,
        width: u(g.width)?,
        kh: u(kh)?,
        kw: u(kw)?,
        stride_h: u(sh)?,
        stride_w: u(sw)?,
        pad_h: u(k.padding[0])?,
        pad_w: u(k.padding[1])?,
        dil_h: u(dh)?,
        dil_w: u(dw)?,
        out_h: u(g.out_h)?,
        out_w: u(g.out_w)?,
        tile_w: u(tile_w)?,
        tile_h: u(tile_h)?,
        rows: u(rows)?,
        rows_per_group: u(rows_per_group)?,
        chunk_h: u(chunk_h)?,
        chunks: u(chunks)?,
        groups: u(groups)?,
        tile_m: lane_divisor(tile_w).0,
        tile_s: lane_divisor(tile_w).1,
        sh_m: lane_divisor(sh).0,
        sh_s: lane_divisor(sh).1,
        sw_m: lane_divisor(sw).0,
        sw_s: lane_divisor(sw).1,
        step_q_h: u(tile_h / sh)?,
        step_r_h: u(tile_h % sh)?,
        step_q_w: u(tile_w / sw)?,
        step_r_w: u(tile_w % sw)?,
        dil_q_h: u(dh / sh)?,
        dil_r_h: u(dh % sh)?,
        dil_q_w: u(dw / sw)?,
        dil_r_w: u(dw % sw)?,
        j_period: u(sw / gw)?,
        ox_step: u(dw / gw)?,
        i_period: u(sh / gh)?,
        oy_step: u(dh / gh)?,
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
    im2col_with(ctx, g, image, cols, GroupShare::Auto)
}

/// [`im2col`] with each workgroup's share of the output given.
pub fn im2col_with(
    ctx: &GpuContext,
    g: &ConvGeometry,
    image: &GpuTensor,
    cols: &GpuTensor,
    share: GroupShare,
) -> Result<Launch> {
    let op = "im2col";
    let p = params(ctx, op, g, Dir::Im2col, share)?;
    check_pair(op, g, image, cols)?;
    ctx.launch(
        shaders::IM2COL,
        op,
        &[],
        bytemuck::bytes_of(&p),
        &[image, cols],
        Workgroups::Linear(p.groups as u64),
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
    col2im_with(ctx, g, cols, None, image, GroupShare::Auto)
}

/// `image ← col2im(cols) + bias[c]` on every channel c (bias has `C` elements).
pub fn col2im_bias(
    ctx: &GpuContext,
    g: &ConvGeometry,
    cols: &GpuTensor,
    bias: &GpuTensor,
    image: &GpuTensor,
) -> Result<Launch> {
    col2im_with(ctx, g, cols, Some(bias), image, GroupShare::Auto)
}

/// [`col2im`] or, with a bias, [`col2im_bias`], with each workgroup's share of the image given.
pub fn col2im_with(
    ctx: &GpuContext,
    g: &ConvGeometry,
    cols: &GpuTensor,
    bias: Option<&GpuTensor>,
    image: &GpuTensor,
    share: GroupShare,
) -> Result<Launch> {
    let op = if bias.is_some() {
        "col2im_bias"
    } else {
        "col2im"
    };
    let p = params(ctx, op, g, Dir::Col2im, share)?;
    check_pair(op, g, image, cols)?;
    let tensors = match bias {
        Some(b) => {
            same_numel(op, "bias", &b.shape, &Shape::new([g.channels]))?;
            vec![cols, image, b]
        }
        None => vec![cols, image],
    };
    ctx.launch(
        shaders::IM2COL,
        op,
        &[],
        bytemuck::bytes_of(&p),
        &tensors,
        Workgroups::Linear(p.groups as u64),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lane_division_is_exact() {
        for d in 1..=300 {
            let (m, s) = lane_divisor(d);
            for n in 0..WG as u32 {
                assert_eq!((n * m) >> s, n / d as u32, "{n} / {d}");
            }
        }
    }
}
