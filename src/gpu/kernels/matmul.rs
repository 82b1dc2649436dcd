//! Launcher for shaders/matmul.wgsl.
//!
//! Five mappings live in the shader: [`MatmulTile::Blocks`] (`matmul`, 4×4 blocks per
//! invocation: the original kernel, the tier-up baseline), [`MatmulTile::Rows`]
//! (`matmul_rows`), [`MatmulTile::Reg`] (`matmul_reg4` / `matmul_reg`: up to 32×32 blocks per
//! invocation, every choice a pipeline constant, built for CPU drivers), [`MatmulTile::Shared`]
//! (`matmul_smem`: a fixed workgroup-memory tiling) and [`MatmulTile::Tiled`]
//! (`matmul_tiled*`: workgroup-memory tiles, register tiles and vec4 loads, every shape a
//! pipeline constant: the default off CPU drivers). [`matmul`] picks one per adapter and shape
//! with [`MatmulTile::for_shape`]; [`matmul_tiled`] takes an explicit one.
//!
//! Kernel classes: CPU drivers run the CPU-class mappings (`Reg`) unless the options force the
//! GPU-class ones ([`crate::options::KernelClass::Gpu`]), which every other adapter runs
//! (`Tiled` by default, and the tuner's GPU candidates).

use crate::error::{Error, Result};
use crate::gpu::{GpuContext, GpuTensor, Launch, Workgroups, cpu_driver, shaders};
use crate::options::KernelClass;
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
    chunk: u32,
    chunks: u32,
    _pad: [u32; 2],
}

/// How the product is mapped onto workgroups (all variants live in matmul.wgsl).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum MatmulTile {
    /// `matmul`: a `wg_x × wg_y` workgroup, each invocation a 4×4 block of C. Suits GPUs.
    Blocks { wg_x: u32, wg_y: u32 },
    /// `matmul_rows`: a workgroup of `wg_x` invocations owns 8 rows; each invocation computes
    /// those rows for 4 columns.
    Rows { wg_x: u32 },
    /// `matmul_reg4` / `matmul_reg`: each invocation a `bm × bn` block of C (each 4, 8, 16 or
    /// 32) kept in registers, `wg_x × wg_y` invocations per workgroup (`wg_x` along n). With
    /// `vec4` set and A's and B's contiguous dimensions multiples of 4 (A's k, or m when
    /// transposed; B's n, or k when transposed) the vec4 entry point `matmul_reg4` runs, otherwise
    /// the scalar `matmul_reg` (any shape, 4× the load instructions). Suits CPU drivers.
    Reg {
        bm: u32,
        bn: u32,
        wg_x: u32,
        wg_y: u32,
        vec4: bool,
    },
    /// `matmul_smem`: a 16×16 workgroup computes a 64×64 tile of C, staging 16-deep panels of A
    /// and B in workgroup memory (loads coalesced for either layout). Written for GPUs; one of
    /// the tuner's GPU candidates. Slow on CPU drivers.
    Shared,
    /// `matmul_tiled*`: a `wg_x × wg_y` workgroup (`wg_x` along n) computes a
    /// `(wg_y·tm) × (wg_x·tn)` tile of C, each invocation a `tm × tn` register tile (each 4 or
    /// 8), staging `tk`-deep panels of A and B (`tk` 4, 8, 16 or 32) in workgroup memory
    /// ([`MatmulTile::workgroup`] says how much). With `vec4` set, each operand whose contiguous
    /// dimension is a multiple of 4 is loaded as vec4s (`matmul_tiled_a4`, `_b4`,
    /// `matmul_tiled4`), the other as scalars (`matmul_tiled`). The GPU-class default.
    Tiled {
        tm: u32,
        tn: u32,
        wg_x: u32,
        wg_y: u32,
        tk: u32,
        vec4: bool,
    },
}

/// The `Tiled` shapes the tuner may try on GPU-class contexts ([`tiled_candidates`] picks those
/// that suit a product) and [`MatmulTile::for_shape`] chooses from. All within 256 invocations
/// (a browser's limit) and under 9 KiB of workgroup memory (a browser grants 16 KiB).
pub const TILED_SHAPES: [MatmulTile; 6] = [
    // 128×128 per workgroup, 8×8 per invocation, 256 invocations, k 8 at a time: 8.3 KiB.
    tiled(8, 8, 16, 16, 8),
    // 64×64, 4×4 per invocation, 256 invocations, k 16 at a time: 8.5 KiB.
    tiled(4, 4, 16, 16, 16),
    // 64×64, 8×8 per invocation, 64 invocations (more work per invocation): 8.5 KiB.
    tiled(8, 8, 8, 8, 16),
    // 32×32, 4×4 per invocation, 64 invocations: 4.5 KiB.
    tiled(4, 4, 8, 8, 16),
    // 4 rows × 256 columns (m ≤ 4: a row vector times a matrix), 64 invocations, k 8 at a
    // time (16 would need 16.75 KiB): 8.4 KiB.
    tiled(4, 4, 64, 1, 8),
    // 256 rows × 4 columns (n ≤ 4), 64 invocations: 8.4 KiB.
    tiled(4, 4, 1, 64, 8),
];

const fn tiled(tm: u32, tn: u32, wg_x: u32, wg_y: u32, tk: u32) -> MatmulTile {
    MatmulTile::Tiled {
        tm,
        tn,
        wg_x,
        wg_y,
        tk,
        vec4: true,
    }
}

impl MatmulTile {
    /// The default mapping for an adapter when the shape is not known: `Reg` 16×16 blocks on
    /// CPU drivers (8×8 on GL), a 64×64 `Tiled` one on GPU-class contexts.
    /// [`MatmulTile::for_shape`] is what [`matmul`] uses.
    pub fn for_adapter(ctx: &GpuContext) -> Self {
        if !cpu_class(ctx) {
            return TILED_SHAPES[1];
        }
        cpu_driver::reg::default_tile(is_gl(ctx))
    }

    /// The mapping [`matmul`] uses for `spec` on this adapter.
    ///
    /// CPU drivers (lavapipe, llvmpipe GL; measured on Mesa 22.3.6, 2 shared cores): every
    /// storage load is a loop over the 8 SIMD lanes, so time ≈ load instructions, and `Reg` is
    /// used with the block that minimises [`cpu_driver::reg::reg_cost`]: big blocks for big products, smaller
    /// ones where a big block would leave a core idle (a 64×32 output) or lanes past the edge
    /// (n = 49). Workgroups are 8 invocations wide (llvmpipe's SIMD width, along x), stacked 4
    /// high where the B panel outgrows the caches. Block sizes are capped by compile time (see
    /// `cpu_driver::reg`), on GL at 8×8: wgpu holds the GL context for the whole compile and
    /// other threads give up after 6 s. Products with m ≤ 4 (a row vector times a matrix) keep
    /// 4×4 blocks and 32 columns per workgroup, as the old default had: wider blocks would need
    /// ~1.5× fewer loads there, but such products are rare in the models.
    ///
    /// Other adapters, and CPU drivers whose options force GPU-class kernels, get a `Tiled`
    /// shape from [`gpu_tile`].
    pub fn for_shape(ctx: &GpuContext, spec: &MatmulSpec) -> Self {
        if !cpu_class(ctx) {
            return gpu_tile(spec);
        }
        cpu_driver::reg::choose(spec, is_gl(ctx))
    }

    /// Whether the mapping is GPU-class (`Tiled`, `Shared`, `Blocks`: what GPU-class contexts
    /// choose from when the options force that class) rather than CPU-class (`Reg`, `Rows`).
    pub fn is_gpu_class(&self) -> bool {
        matches!(
            self,
            MatmulTile::Tiled { .. } | MatmulTile::Shared | MatmulTile::Blocks { .. }
        )
    }
}

/// Whether `ctx` chooses CPU-class matmul mappings: a CPU driver (lavapipe, llvmpipe GL,
/// SwiftShader) whose options do not force GPU-class kernels.
pub fn cpu_class(ctx: &GpuContext) -> bool {
    is_cpu(ctx) && ctx.options().kernels != KernelClass::Gpu
}

/// Output batches of `spec`'s first pass (the chunks of a split batch sum).
fn out_batches(spec: &MatmulSpec) -> u64 {
    if spec.sum_batches {
        spec.batch.div_ceil(split_chunk(spec)) as u64
    } else {
        spec.batch as u64
    }
}

/// The `Tiled` shape GPU-class contexts use for `spec` (one of [`TILED_SHAPES`]).
///
/// Not measured on a real GPU (none was available when this was written): the choice follows
/// the usual reasoning for workgroup-tiled matmuls. Bigger tiles reuse each staged element more
/// (a 128×128 tile with 8×8 per invocation does 64 FMAs per 4 vec4 reads of workgroup memory; a
/// 64×64 tile with 4×4 does 16 per 2), but a product needs enough workgroups to fill a GPU (tens
/// of compute units, a few workgroups each), and a tile much larger than the output computes
/// padding. So the largest of 128×128 and 64×64 (256 invocations each) that gives at least 128
/// workgroups (one for each compute unit of a large GPU) with at least half of each tile inside
/// C, else 32×32 (64 invocations: small
/// outputs, like the autoencoder's convolutions per image, where many workgroups matter more
/// than reuse); thin tiles for a row or column vector (m or n ≤ 4). The tuner (`gpu::tune`, on by
/// default on GPUs) measures the other candidates where it runs.
pub fn gpu_tile(spec: &MatmulSpec) -> MatmulTile {
    let [big, mid, _, small, wide, tall] = TILED_SHAPES;
    if spec.m <= 4 {
        return wide;
    }
    if spec.n <= 4 {
        return tall;
    }
    let (m, n) = (spec.m as u64, spec.n as u64);
    for t in [big, mid] {
        let [r, c] = t.c_tile().map(u64::from);
        let (gy, gx) = (m.div_ceil(r), n.div_ceil(c));
        if out_batches(spec) * gy * gx >= 128 && 2 * m * n >= gy * r * gx * c {
            return t;
        }
    }
    small
}

/// The `Tiled` shapes worth timing for `spec` (the tuner's candidates): those whose tile is not
/// far larger than the product (thin tiles only for thin products, 128×128 only where both m
/// and n reach 64).
pub fn tiled_candidates(spec: &MatmulSpec) -> Vec<MatmulTile> {
    let [big, mid, mid8, small, wide, tall] = TILED_SHAPES;
    let mut v = Vec::new();
    if spec.m >= 64 && spec.n >= 64 {
        v.push(big);
    }
    if spec.m > 16 && spec.n > 16 {
        v.extend([mid, mid8]);
    }
    v.push(small);
    if spec.m <= 16 {
        v.push(wide);
    }
    if spec.n <= 16 {
        v.push(tall);
    }
    v
}

impl MatmulTile {
    /// The rows and columns of C one workgroup computes (for a mapping that is
    /// [`MatmulTile::runnable`]: the products do not overflow then).
    pub fn c_tile(&self) -> [u32; 2] {
        match *self {
            MatmulTile::Blocks { wg_x, wg_y } => [4 * wg_y, 4 * wg_x],
            MatmulTile::Rows { wg_x } => [8, 4 * wg_x],
            MatmulTile::Shared => [64, 64],
            MatmulTile::Reg {
                bm, bn, wg_x, wg_y, ..
            } => [bm * wg_y, bn * wg_x],
            MatmulTile::Tiled {
                tm, tn, wg_x, wg_y, ..
            } => [tm * wg_y, tn * wg_x],
        }
    }

    /// The workgroup's invocations along x and y, and the workgroup memory it declares (bytes).
    pub fn workgroup(&self) -> ([u32; 2], u32) {
        match *self {
            MatmulTile::Blocks { wg_x, wg_y } => ([wg_x, wg_y], 0),
            MatmulTile::Rows { wg_x } => ([wg_x, 1], 0),
            // matmul_smem: 16×16 invocations, two 1,040-float panels.
            MatmulTile::Shared => ([16, 16], 2 * 1040 * 4),
            MatmulTile::Reg { wg_x, wg_y, .. } => ([wg_x, wg_y], 0),
            // matmul_tiled*: two k-major panels of vec4s, tk rows each, a row being the tile's
            // quads plus one of padding (TL_A_LEN and TL_B_LEN in the shader).
            MatmulTile::Tiled {
                tm,
                tn,
                wg_x,
                wg_y,
                tk,
                ..
            } => {
                let quads = |w: u32, t: u32| (w as u64 * t as u64) / 4 + 1;
                let vec4s = tk as u64 * (quads(wg_y, tm) + quads(wg_x, tn));
                ([wg_x, wg_y], u32::try_from(16 * vec4s).unwrap_or(u32::MAX))
            }
        }
    }

    /// Whether the tuner and the tune cache may choose the mapping on `ctx`: one the kernels
    /// implement that fits the device ([`MatmulTile::runnable`]), of a class the context
    /// chooses from ([`MatmulTile::is_gpu_class`]): CPU-class mappings only on a CPU driver that
    /// runs CPU-class kernels, GPU-class ones only where the options force GPU-class kernels,
    /// either on a GPU left to its own class. The tune cache is keyed by adapter, not by class,
    /// so a winner cached by a run of the other class is ignored (measured again, or the cost
    /// model's choice taken) rather than run; and a tune cache is a file anyone can edit, so
    /// its entries pass through this too.
    pub fn usable(&self, ctx: &GpuContext) -> Result<()> {
        self.runnable(ctx)?;
        let forced = ctx.options().kernels == KernelClass::Gpu;
        if forced && !self.is_gpu_class() {
            return Err(Error::invalid(
                "matmul",
                format!("{self:?} is a CPU-driver mapping; the options force GPU-class kernels"),
            ));
        }
        if cpu_class(ctx) && self.is_gpu_class() {
            return Err(Error::invalid(
                "matmul",
                format!("{self:?} is a GPU-class mapping; this CPU driver runs CPU-class ones"),
            ));
        }
        Ok(())
    }

    /// Whether the mapping is one the kernels implement (Reg blocks of 4, 8, 16 or 32; Tiled
    /// register tiles of 4 or 8 and stages of 4, 8, 16 or 32; no empty workgroup) and fits the
    /// device ([`MatmulTile::fits`]): what [`matmul_tiled`] checks before it launches.
    pub fn runnable(&self, ctx: &GpuContext) -> Result<()> {
        let ([x, y], _) = self.workgroup();
        let blocks_ok = match *self {
            MatmulTile::Reg { bm, bn, .. } => {
                let ok = |b: u32| matches!(b, 4 | 8 | 16 | 32);
                ok(bm) && ok(bn)
            }
            MatmulTile::Tiled { tm, tn, tk, .. } => {
                let ok = |t: u32| matches!(t, 4 | 8);
                ok(tm) && ok(tn) && matches!(tk, 4 | 8 | 16 | 32)
            }
            _ => true,
        };
        if !blocks_ok || x == 0 || y == 0 {
            return Err(Error::invalid(
                "matmul",
                format!(
                    "{self:?}: Reg blocks must be 4, 8, 16 or 32, Tiled register tiles 4 or 8 \
                     and stages 4, 8, 16 or 32, and the workgroup non-empty"
                ),
            ));
        }
        self.fits(ctx)
    }

    /// Whether the mapping fits the device's limits (invocations per workgroup, per dimension,
    /// and workgroup memory): an error naming the limit when it does not. A browser's WebGPU,
    /// for one, allows 256 invocations where lavapipe allows 1,024.
    pub fn fits(&self, ctx: &GpuContext) -> Result<()> {
        let l = &ctx.limits;
        let ([x, y], memory) = self.workgroup();
        let over = |what: String, needed: u64, limit_name: &'static str, limit: u32| {
            Err(Error::Limit {
                op: "matmul".into(),
                what,
                needed,
                limit_name,
                limit: limit as u64,
            })
        };
        let invocations = x as u64 * y as u64;
        if invocations > l.max_compute_invocations_per_workgroup as u64 {
            return over(
                format!("{self:?}: a workgroup of {x}×{y} invocations"),
                invocations,
                "max_compute_invocations_per_workgroup",
                l.max_compute_invocations_per_workgroup,
            );
        }
        if x > l.max_compute_workgroup_size_x {
            return over(
                format!("{self:?}"),
                x as u64,
                "max_compute_workgroup_size_x",
                l.max_compute_workgroup_size_x,
            );
        }
        if y > l.max_compute_workgroup_size_y {
            return over(
                format!("{self:?}"),
                y as u64,
                "max_compute_workgroup_size_y",
                l.max_compute_workgroup_size_y,
            );
        }
        if memory > l.max_compute_workgroup_storage_size {
            return over(
                format!("{self:?}: {memory} bytes of workgroup memory"),
                memory as u64,
                "max_compute_workgroup_storage_size",
                l.max_compute_workgroup_storage_size,
            );
        }
        Ok(())
    }
}

fn is_cpu(ctx: &GpuContext) -> bool {
    ctx.info.device_type == wgpu::DeviceType::Cpu
}

fn is_gl(ctx: &GpuContext) -> bool {
    ctx.info.backend == wgpu::Backend::Gl
}

/// Whether `matmul_reg4`'s vec4 views fit `spec`: A's contiguous dimension (k, or m when
/// transposed) and B's (n, or k when transposed) are multiples of 4.
pub fn vec4_aligned(spec: &MatmulSpec) -> bool {
    vec4_a(spec) && vec4_b(spec)
}

/// Whether A's contiguous dimension (k, or m when transposed) is a multiple of 4.
pub fn vec4_a(spec: &MatmulSpec) -> bool {
    (if spec.trans_a { spec.m } else { spec.k }).is_multiple_of(4)
}

/// Whether B's contiguous dimension (n, or k when transposed) is a multiple of 4.
pub fn vec4_b(spec: &MatmulSpec) -> bool {
    (if spec.trans_b { spec.k } else { spec.n }).is_multiple_of(4)
}

/// `c ← act(op(a)·op(b) + bias)` as `spec` describes (see [`MatmulSpec`] for layouts), with the
/// tune cache's mapping for the shape, else the one [`MatmulTile::for_shape`] picks (never
/// measuring: executors tune with [`crate::gpu::tune::choose_async`] when they compile).
pub fn matmul(
    ctx: &GpuContext,
    spec: &MatmulSpec,
    a: &GpuTensor,
    b: &GpuTensor,
    bias: Option<&GpuTensor>,
    c: &GpuTensor,
) -> Result<Launch> {
    matmul_tiled(
        ctx,
        spec,
        crate::gpu::tune::choose_now(ctx, spec),
        a,
        b,
        bias,
        c,
    )
}

/// The entry point and pipeline constants `tile` runs `spec` with (for reports and benches).
pub fn entry_and_constants(
    spec: &MatmulSpec,
    tile: MatmulTile,
) -> (&'static str, Vec<(&'static str, f64)>) {
    let flag = |b: bool| if b { 1.0 } else { 0.0 };
    match tile {
        MatmulTile::Blocks { wg_x, wg_y } => {
            ("matmul", vec![("WG_X", wg_x as f64), ("WG_Y", wg_y as f64)])
        }
        MatmulTile::Rows { wg_x } => ("matmul_rows", vec![("RW_X", wg_x as f64)]),
        MatmulTile::Shared => (
            "matmul_smem",
            vec![
                ("TRANS_A", flag(spec.trans_a)),
                ("TRANS_B", flag(spec.trans_b)),
                ("SUM_BATCHES", flag(spec.sum_batches)),
                ("BIAS", bias_code(spec.bias) as f64),
                ("ACT", spec.act.code() as f64),
            ],
        ),
        MatmulTile::Reg {
            bm,
            bn,
            wg_x,
            wg_y,
            vec4,
        } => {
            let v4 = vec4 && vec4_aligned(spec);
            let mut consts = vec![
                ("BM", bm as f64),
                ("BN", bn as f64),
                ("BX", wg_x as f64),
                ("BY", wg_y as f64),
                ("SUM_BATCHES", flag(spec.sum_batches)),
                ("BIAS", bias_code(spec.bias) as f64),
                ("ACT", spec.act.code() as f64),
            ];
            if v4 {
                consts.push(("TRANS_A", flag(spec.trans_a)));
                consts.push(("TRANS_B", flag(spec.trans_b)));
                consts.push(("K_TAIL", flag(!spec.k.is_multiple_of(4))));
            }
            (if v4 { "matmul_reg4" } else { "matmul_reg" }, consts)
        }
        MatmulTile::Tiled {
            tm,
            tn,
            wg_x,
            wg_y,
            tk,
            vec4,
        } => {
            let entry = match (vec4 && vec4_a(spec), vec4 && vec4_b(spec)) {
                (false, false) => "matmul_tiled",
                (true, false) => "matmul_tiled_a4",
                (false, true) => "matmul_tiled_b4",
                (true, true) => "matmul_tiled4",
            };
            let consts = vec![
                ("TL_TM", tm as f64),
                ("TL_TN", tn as f64),
                ("TL_WX", wg_x as f64),
                ("TL_WY", wg_y as f64),
                ("TL_TK", tk as f64),
                ("TRANS_A", flag(spec.trans_a)),
                ("TRANS_B", flag(spec.trans_b)),
                ("SUM_BATCHES", flag(spec.sum_batches)),
                ("BIAS", bias_code(spec.bias) as f64),
                ("ACT", spec.act.code() as f64),
            ];
            (entry, consts)
        }
    }
}

fn bias_code(b: BiasMode) -> u32 {
    match b {
        BiasMode::None => 0,
        BiasMode::PerRow => 1,
        BiasMode::PerCol => 2,
    }
}

/// Partial outputs a split batch sum aims for (chunks × m × n): enough to give a GPU, or each of
/// lavapipe's threads, many workgroups.
const SPLIT_TARGET: usize = 1 << 16;

/// How a batch-summed product (a weight gradient: C = Σ_b op(A_b)·op(B_b)) is split: batches
/// per chunk. The first pass writes one partial C per chunk, `matmul_split_sum` adds them in
/// order. Small outputs with long sums are split (a 3×3 conv's weight gradient is 16×9 summed
/// over 64 images: unsplit, one workgroup does all of it); returns `spec.batch` (one chunk)
/// otherwise. Depends on the shape only — never on the adapter or the mapping — so every
/// adapter and every mapping adds in the same order and gets the same bits.
pub fn split_chunk(spec: &MatmulSpec) -> usize {
    let mn = (spec.m * spec.n).max(1);
    if !spec.sum_batches || spec.batch < 2 || mn >= SPLIT_TARGET / 2 {
        return spec.batch;
    }
    // Each chunk keeps at least 32 multiply-adds per output.
    let by_work = (spec.batch * spec.k / 32).max(1);
    let chunks = (SPLIT_TARGET / mn).clamp(1, spec.batch).min(by_work);
    spec.batch.div_ceil(chunks)
}

/// [`matmul`] with an explicit mapping.
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
    tile.runnable(ctx)?;
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
        bias_mode: bias_code(spec.bias),
        act: spec.act.code(),
        slope: spec.act.slope(),
        row_tiles: 0, // set below, once the mapping is known
        chunk: u(spec.batch),
        chunks: 1,
        _pad: [0; 2],
    };
    let placeholder = ctx.placeholder()?;
    let bias = bias.unwrap_or(&placeholder);
    let chunk = split_chunk(spec);
    if chunk < spec.batch {
        // First pass: one partial C per chunk, no epilogue; then the ordered sum with it.
        let chunks = spec.batch.div_ceil(chunk);
        params.chunk = u(chunk);
        params.chunks = u(chunks);
        let mut first = *spec;
        first.bias = BiasMode::None;
        first.act = crate::spec::Activation::None;
        let partial = ctx.zeros("matmul split partials", [chunks * spec.m * spec.n])?;
        let mut p1 = params;
        p1.bias_mode = 0;
        p1.act = 0;
        let pass1 = dispatch(
            ctx,
            &first,
            tile,
            p1,
            chunks as u32,
            [a, b, &placeholder, &partial],
        )?;
        let pass2 = ctx.launch(
            shaders::MATMUL,
            "matmul_split_sum",
            &[],
            bytemuck::bytes_of(&params),
            &[&partial, bias, c],
            Workgroups::Linear((spec.m * spec.n).div_ceil(64) as u64),
        )?;
        return Ok(pass1.followed_by(pass2));
    }
    let gz = if spec.sum_batches {
        1
    } else {
        spec.batch as u32
    };
    dispatch(ctx, spec, tile, params, gz, [a, b, bias, c])
}

/// One dispatch of `spec`'s product with `tile`, `gz` output batches (chunks of a split sum).
fn dispatch(
    ctx: &GpuContext,
    spec: &MatmulSpec,
    tile: MatmulTile,
    mut params: Params,
    gz: u32,
    [a, b, bias, c]: [&GpuTensor; 4],
) -> Result<Launch> {
    let (entry, consts) = entry_and_constants(spec, tile);
    let [rows_per_wg, cols_per_wg] = tile.c_tile().map(|x| x as usize);
    let gx = spec.n.div_ceil(cols_per_wg);
    let gy = spec.m.div_ceil(rows_per_wg);
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
