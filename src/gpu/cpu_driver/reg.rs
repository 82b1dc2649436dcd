//! The `Reg` matmul mapping's choice on CPU drivers: which register block (`bm × bn`
//! accumulators per invocation, shaders/matmul.wgsl `matmul_reg4` / `matmul_reg`) and workgroup
//! a product runs with, from a cost model fitted on lavapipe, capped by compile time.

use crate::gpu::kernels::matmul::{MatmulTile, split_chunk, vec4_aligned};
use crate::spec::MatmulSpec;
use std::sync::OnceLock;

/// The mapping for a CPU driver when the shape is not known: 16×16 blocks (8×8 on GL, see
/// `max_block_area`), 8-wide workgroups.
pub fn default_tile(gl: bool) -> MatmulTile {
    let b = if gl { 8 } else { 16 };
    MatmulTile::Reg {
        bm: b,
        bn: b,
        wg_x: 8,
        wg_y: 1,
        vec4: true,
    }
}

/// Threads a CPU driver runs workgroups on: one per core of this machine, as llvmpipe (lavapipe,
/// llvmpipe GL) and SwiftShader size their pools (llvmpipe's `LP_NUM_THREADS` can change it;
/// wgrad reads no environment variable), read once; 2 where the machine cannot say. The cost
/// model's fits were measured with 2.
pub fn threads() -> u64 {
    static THREADS: OnceLock<u64> = OnceLock::new();
    *THREADS.get_or_init(|| std::thread::available_parallelism().map_or(2, |n| n.get() as u64))
}

/// Register blocks (accumulators per invocation) allowed by product size (FLOPs), because the
/// pipelines' compile time grows with the block: on an idle lavapipe ~0.4 s for 8×8, ~0.9 s for
/// 16×16, ~3 s for 32×16 and ~6 s for 32×32 (2–3× that on a busy machine). The vec4 path gets
/// 16×16 always, 32×16 from 4·10⁶ FLOPs (64×32×1568 Bᵀ: 1.1×, 32×64×1568 Aᵀ: 1.2–1.4× the
/// speed of 16×16) and 32×32 from 3·10⁷ (256³: 1.5×, 1024³: 1.3–1.4×); the scalar path (which
/// compiles ~1.5× slower) 16×8, and 32×8 from 4·10⁶ (batched 32×144×49: 1.1× 16×8).
fn max_block_area(spec: &MatmulSpec, gl: bool) -> u32 {
    let f = spec.flops();
    match (gl, vec4_aligned(spec)) {
        (true, _) => 64,
        (false, true) if f >= 3.0e7 => 1024,
        (false, true) if f >= 4.0e6 => 512,
        (false, true) => 256,
        (false, false) if f >= 4.0e6 => 256,
        (false, false) => 128,
    }
}

/// Estimated time of `spec` with `bm × bn` blocks and workgroups of 8 × `wg_y` invocations on
/// a CPU driver, in units of one vec4 load of 8 lanes (~400 instructions on lavapipe).
///
/// llvmpipe vectorises a workgroup along x only (8 lanes; the rest of x and all of y are
/// loops), so workgroups are 8 wide and a SIMD group is 8 consecutive column blocks of one row
/// block; lanes past the edge cost as much as real ones (measured: 4-wide workgroups ran at
/// ~0.7× and 1-wide at ~0.2× the speed). Per SIMD group and step of 4 along k: `bm` vec4 loads
/// of A, all 8 lanes at one address (~0.7 of a load: one cache line), and `bn` of B, 8
/// addresses (scalar path: 4 scalar loads per vec4, ~2.4× as slow); `4·bm·bn` FMAs at ~1/128
/// of a load each (a multiply, an add and a share of the accumulator spills); then `bm·bn/4`
/// stores and some setup. Workgroups run [`threads`] at a time, but fewer than 4 are
/// counted as if run one after another: on the shared machine two workgroups rarely got both
/// cores (64×1568×32: 4 workgroups of 16×4 blocks 12 GFLOP/s, 2 of 32×4 9). Fitted to
/// measurements on lavapipe (Mesa 22.3.6): it ranks the measured candidates of the benchmark's
/// shapes in order, though it exaggerates their differences.
pub fn reg_cost(spec: &MatmulSpec, bm: u32, bn: u32, wg_y: u32) -> f64 {
    let (bm64, bn64) = (bm as u64, bn as u64);
    // A batch sum runs as chunks (see `split_chunk`): one output batch per chunk.
    let chunk = split_chunk(spec) as u64;
    let (out_batches, k_total) = if spec.sum_batches {
        ((spec.batch as u64).div_ceil(chunk), spec.k as u64 * chunk)
    } else {
        (spec.batch as u64, spec.k as u64)
    };
    let steps = k_total.div_ceil(4) as f64;
    let load = if vec4_aligned(spec) { 1.0 } else { 2.4 };
    let per_step = load * (0.7 * bm as f64 + bn as f64) + (4 * bm64 * bn64) as f64 / 128.0;
    let epilogue = load * (bm64 * bn64) as f64 / 4.0;
    let row_blocks = (spec.m as u64).div_ceil(bm64);
    let col_groups = (spec.n as u64).div_ceil(bn64).div_ceil(8);
    let workgroups = row_blocks.div_ceil(wg_y as u64) * col_groups * out_batches;
    let rounds = if workgroups < 4 {
        workgroups
    } else {
        workgroups.div_ceil(threads())
    };
    let group = steps * per_step + epilogue + 50.0;
    rounds as f64 * wg_y as f64 * group
}

/// The `Reg` mapping for `spec` on a CPU driver (`gl`: llvmpipe's GL, where blocks are capped
/// at 8×8); see [`MatmulTile::for_shape`] for how it is chosen.
pub fn choose(spec: &MatmulSpec, gl: bool) -> MatmulTile {
    let vec4 = true;
    if spec.m <= 4 {
        return MatmulTile::Reg {
            bm: 4,
            bn: 4,
            wg_x: 8,
            wg_y: 1,
            vec4,
        };
    }
    let (bm, bn) = ranked_blocks(spec, gl)[0];
    reg_tile(spec, bm, bn)
}

/// Register blocks allowed for `spec`, best first: the first is the cheapest by [`reg_cost`],
/// where a block only counts as cheaper when it is clearly so (3%), so that near-ties keep the
/// smaller block (it compiles faster); the rest follow by cost.
fn ranked_blocks(spec: &MatmulSpec, gl: bool) -> Vec<(u32, u32)> {
    let max_area = max_block_area(spec, gl);
    // A block may overhang a dimension by less than half a block.
    let fits = |b: u32, dim: usize| b == 4 || (b / 2) < dim as u32;
    let mut all = Vec::new();
    let mut best: Option<(f64, u32, u32)> = None;
    for bm in [4u32, 8, 16, 32] {
        for bn in [4u32, 8, 16, 32] {
            if bm * bn > max_area || !fits(bm, spec.m) || !fits(bn, spec.n) {
                continue;
            }
            let cost = reg_cost(spec, bm, bn, 1);
            all.push((cost, bm, bn));
            if best.is_none_or(|b| cost < b.0 * 0.97) {
                best = Some((cost, bm, bn));
            }
        }
    }
    let Some((_, bm, bn)) = best else {
        return vec![(4, 4)];
    };
    all.sort_by(|x, y| x.0.total_cmp(&y.0));
    let mut out = vec![(bm, bn)];
    out.extend(all.iter().map(|c| (c.1, c.2)).filter(|&b| b != (bm, bn)));
    out
}

/// The register-block mappings for `spec` on a CPU driver, best first by the cost model (the
/// autotuner's candidates there).
pub fn ranked(spec: &MatmulSpec, gl: bool) -> Vec<MatmulTile> {
    if spec.m <= 4 {
        return vec![choose(spec, gl)];
    }
    ranked_blocks(spec, gl)
        .into_iter()
        .map(|(bm, bn)| reg_tile(spec, bm, bn))
        .collect()
}

/// `Reg` with `bm × bn` blocks, 8-wide workgroups, stacked where the B panel is large.
fn reg_tile(spec: &MatmulSpec, bm: u32, bn: u32) -> MatmulTile {
    let vec4 = true;
    // Where a SIMD group's B panel (k × 8·bn floats) outgrows the caches, stack 4 groups along
    // m in a workgroup: they run one after the other on the same core and share the panel
    // (1024³, a 1 MiB panel: +10–25%; 256³, 256 KiB: no gain). Only when the row blocks divide
    // evenly, as a partial workgroup wastes whole SIMD groups (b64 144×32×49: stacked 0.8×).
    let row_blocks = spec.m.div_ceil(bm as usize);
    let k_total = spec.k
        * if spec.sum_batches {
            split_chunk(spec)
        } else {
            1
        };
    let panel_bytes = k_total * 8 * bn as usize * 4;
    let wg_y = if row_blocks.is_multiple_of(4) && panel_bytes >= 512 << 10 {
        4
    } else {
        1
    };
    MatmulTile::Reg {
        bm,
        bn,
        wg_x: 8,
        wg_y,
        vec4,
    }
}
