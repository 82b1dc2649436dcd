//! Launcher for shaders/matmul.wgsl.

use crate::error::Result;
use crate::gpu::{GpuContext, GpuTensor, Launch, Workgroups, shaders};
use crate::spec::{BiasMode, MatmulSpec};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    m: u32,
    n: u32,
    k: u32,
    batch: u32,
    a_batch: u32,
    a_m: u32,
    a_k: u32,
    b_batch: u32,
    b_k: u32,
    b_n: u32,
    c_batch: u32,
    sum_batches: u32,
    bias_mode: u32,
    act: u32,
    slope: f32,
    row_tiles: u32,
}

/// How the product is mapped onto workgroups (both variants live in matmul.wgsl).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatmulTile {
    /// `matmul`: a `wg_x × wg_y` workgroup, each invocation a 4×4 block of C. Suits GPUs.
    Blocks { wg_x: u32, wg_y: u32 },
    /// `matmul_rows`: a workgroup of `wg_x` invocations owns 8 rows; each invocation computes
    /// those rows for 4 columns, so A loads are uniform. Suits CPU drivers (lavapipe).
    Rows { wg_x: u32 },
}

impl MatmulTile {
    /// The default mapping. On lavapipe (Mesa 22.3.6, 2 cores, idle) the two measured within noise
    /// of each other at 1024³ (3.3 vs 3.1 GFLOP/s) and `Rows` lost 6× on the encoder's
    /// 64×1568×32, so `Blocks { 8, 8 }` it is until the autotuner chooses per shape and adapter.
    pub fn for_adapter(_ctx: &GpuContext) -> Self {
        MatmulTile::Blocks { wg_x: 8, wg_y: 8 }
    }
}

/// `c ← act(op(a)·op(b) + bias)` as `spec` describes (see [`MatmulSpec`] for layouts).
pub fn matmul(
    ctx: &GpuContext,
    spec: &MatmulSpec,
    a: &GpuTensor,
    b: &GpuTensor,
    bias: Option<&GpuTensor>,
    c: &GpuTensor,
) -> Result<Launch> {
    matmul_tiled(ctx, spec, MatmulTile::for_adapter(ctx), a, b, bias, c)
}

/// [`matmul`] with an explicit workgroup shape.
pub fn matmul_tiled(
    ctx: &GpuContext,
    spec: &MatmulSpec,
    tile: MatmulTile,
    a: &GpuTensor,
    b: &GpuTensor,
    bias: Option<&GpuTensor>,
    c: &GpuTensor,
) -> Result<Launch> {
    spec.check(
        a.numel(),
        b.numel(),
        bias.map_or(0, |t| t.numel()),
        c.numel(),
    )?;
    let (sa, sb) = spec.strides();
    let u = |x: usize| x as u32;
    let mut params = Params {
        m: u(spec.m),
        n: u(spec.n),
        k: u(spec.k),
        batch: u(spec.batch),
        a_batch: u(sa[0]),
        a_m: u(sa[1]),
        a_k: u(sa[2]),
        b_batch: u(sb[0]),
        b_k: u(sb[1]),
        b_n: u(sb[2]),
        c_batch: u(spec.m * spec.n),
        sum_batches: spec.sum_batches as u32,
        bias_mode: match spec.bias {
            BiasMode::None => 0,
            BiasMode::PerRow => 1,
            BiasMode::PerCol => 2,
        },
        act: spec.act.code(),
        slope: spec.act.slope(),
        row_tiles: 0, // set below, once the mapping is known
    };
    let placeholder = ctx.placeholder()?;
    let bias = bias.unwrap_or(&placeholder);
    let gz = if spec.sum_batches {
        1
    } else {
        spec.batch as u32
    };
    let (entry, consts, gx, gy): (&'static str, Vec<(&'static str, f64)>, usize, usize) = match tile
    {
        MatmulTile::Blocks { wg_x, wg_y } => (
            "matmul",
            vec![("WG_X", wg_x as f64), ("WG_Y", wg_y as f64)],
            spec.n.div_ceil(4 * wg_x as usize),
            spec.m.div_ceil(4 * wg_y as usize),
        ),
        MatmulTile::Rows { wg_x } => (
            "matmul_rows",
            vec![("RW_X", wg_x as f64)],
            spec.n.div_ceil(4 * wg_x as usize),
            spec.m.div_ceil(8),
        ),
    };
    // Row tiles × output batches are folded over y and z; columns must fit x.
    params.row_tiles = u32::try_from(gy).unwrap_or(u32::MAX);
    let max = ctx.limits.max_compute_workgroups_per_dimension;
    let [fy, fz, _] = crate::gpu::launch::fold_workgroups("matmul", gy as u64 * gz as u64, max)?;
    let gx = u32::try_from(gx).unwrap_or(u32::MAX);
    ctx.launch(
        shaders::MATMUL,
        entry,
        &consts,
        bytemuck::bytes_of(&params),
        &[a, b, bias, c],
        Workgroups::Grid([gx, fy.max(1), fz.max(1)]),
    )
}
