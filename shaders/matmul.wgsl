// C[b] = act(op(A)[b] · op(B)[b] + bias)  — matmul with transpose flags, batching, broadcast,
// batch summation (weight gradients) and a fused bias + activation epilogue.
//
// Transposes are expressed as strides (or pipeline constants), so one kernel serves the forward
// pass and both gradients (dA = dC·Bᵀ, dB = Aᵀ·dC) without materialising a transpose.
//
// The entry points, chosen per adapter and shape by src/gpu/kernels/matmul.rs:
//   matmul       4×4 block of C per invocation, runtime flags (the original kernel; the
//                tier-up baseline);
//   matmul_rows  8 rows × 4 columns per invocation, the A loads uniform per workgroup;
//   matmul_reg4  up to 32×32 per invocation, vec4 loads, every flag a pipeline constant — for
//                CPU drivers (lavapipe, llvmpipe GL), where it is 2–7× the 4×4 kernel;
//   matmul_reg   the same with scalar loads, for layouts that vec4 views do not fit;
//   matmul_smem  fixed workgroup-memory tiling (64×64, 4×4 per invocation), a tuner candidate;
//   matmul_tiled, matmul_tiled_a4, matmul_tiled_b4, matmul_tiled4
//                workgroup-memory tiles, a register tile per invocation, vec4 loads where the
//                layout allows, every shape a pipeline constant: the default on GPUs;
//   matmul_split_sum  the ordered second pass of a split batch sum.
//
// matmul / matmul_rows: each invocation computes a 4×4 block of C held in registers, so each
// loaded value of A and B is used four times. No workgroup memory and no barriers: on lavapipe
// (a CPU driver) barriers are expensive and registers cheap. The workgroup shape is a
// pipeline-overridable constant so it can be chosen per adapter.

struct Params {
    m: u32, n: u32, k: u32, batch: u32,
    // strides in elements: A along (batch, m, k), B along (batch, k, n), C along batch
    a_batch: u32, a_m: u32, a_k: u32, b_batch: u32,
    b_k: u32, b_n: u32, c_batch: u32, sum_batches: u32,
    bias_mode: u32,   // 0 none, 1 per row (m), 2 per column (n)
    act: u32,         // 0 none, 1 relu, 2 leaky relu, 3 sigmoid, 4 tanh
    slope: f32,       // leaky relu negative slope
    row_tiles: u32,   // workgroups along m; (row tile, batch) pairs are folded over y and z
    // Split batch sums (sum_batches): output batch t sums batches [t·chunk, (t+1)·chunk) into
    // its own partial C; matmul_split_sum then adds the `chunks` partials in order.
    chunk: u32, chunks: u32, _pad0: u32, _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

// Row tiles and batches share the y and z grid dimensions, so neither is capped at 65,535:
// returns (row tile, batch).
fn tile_and_batch(wid: vec3<u32>, nwg: vec3<u32>) -> vec2<u32> {
    let linear = wid.y + wid.z * nwg.y;
    return vec2<u32>(linear % p.row_tiles, linear / p.row_tiles);
}

fn out_batches() -> u32 {
    return select(p.batch, p.chunks, p.sum_batches == 1u);
}

// The batches output batch `t` accumulates, [x, y): itself, or its chunk of a batch sum.
fn batch_range(t: u32, summed: bool) -> vec2<u32> {
    if summed {
        return vec2<u32>(t * p.chunk, min((t + 1u) * p.chunk, p.batch));
    }
    return vec2<u32>(t, t + 1u);
}

override WG_X: u32 = 8u; // invocations along n
override WG_Y: u32 = 8u; // invocations along m

fn is_nan4(x: vec4<f32>) -> vec4<bool> {
    return (bitcast<vec4<u32>>(x) & vec4<u32>(0x7fffffffu)) > vec4<u32>(0x7f800000u);
}

fn act(x: f32) -> f32 {
    switch p.act {
        case 1u: { return select(max(x, 0.0), x, is_nan(x)); }
        case 2u: { return select(p.slope * x, x, x > 0.0); }
        case 3u: { return select(1.0 / (1.0 + exp(-x)), x, is_nan(x)); }
        // Clamped as in pointwise.wgsl: where tanh is built from exp, ±inf/inf would give NaN.
        case 4u: { return select(tanh(clamp(x, -10.0, 10.0)), x, is_nan(x)); }
        default: { return x; }
    }
}

@compute @workgroup_size(WG_X, WG_Y, 1)
fn matmul(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
          @builtin(num_workgroups) nwg: vec3<u32>) {
    let tile = tile_and_batch(wid, nwg);
    if tile.y >= out_batches() {
        return;
    }
    let row0 = (tile.x * WG_Y + lid.y) * 4u;
    let col0 = (wid.x * WG_X + lid.x) * 4u;
    if row0 >= p.m || col0 >= p.n {
        return;
    }
    // Rows/columns past the edge are clamped for loading (their results are never stored), so
    // the inner loop has no bounds checks.
    let r = min(vec4<u32>(row0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(p.m - 1u));
    let cl = min(vec4<u32>(col0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(p.n - 1u));
    let ar = r * p.a_m;
    let bc = cl * p.b_n;

    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    let summed = p.sum_batches == 1u;
    let br = batch_range(tile.y, summed);
    for (var bt = br.x; bt < br.y; bt++) {
        var ia = ar + vec4<u32>(bt * p.a_batch);
        var ib = bc + vec4<u32>(bt * p.b_batch);
        for (var kk = 0u; kk < p.k; kk++) {
            let av = vec4<f32>(a[ia.x], a[ia.y], a[ia.z], a[ia.w]);
            let bv = vec4<f32>(b[ib.x], b[ib.y], b[ib.z], b[ib.w]);
            acc0 = fma(vec4<f32>(av.x), bv, acc0);
            acc1 = fma(vec4<f32>(av.y), bv, acc1);
            acc2 = fma(vec4<f32>(av.z), bv, acc2);
            acc3 = fma(vec4<f32>(av.w), bv, acc3);
            ia += vec4<u32>(p.a_k);
            ib += vec4<u32>(p.b_k);
        }
    }

    let cbase = tile.y * p.c_batch;
    var rows = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var i = 0u; i < 4u; i++) {
        let row = row0 + i;
        if row >= p.m {
            break;
        }
        var v = rows[i];
        if p.bias_mode == 1u {
            v += vec4<f32>(bias[row]);
        } else if p.bias_mode == 2u {
            v += vec4<f32>(bias[cl.x], bias[cl.y], bias[cl.z], bias[cl.w]);
        }
        for (var j = 0u; j < 4u; j++) {
            let col = col0 + j;
            if col < p.n {
                c[cbase + row * p.n + col] = act(v[j]);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// matmul_rows: the same product, mapped for CPU-style drivers (lavapipe). A workgroup owns 8 rows
// of C and RW_X·4 columns; every invocation of it computes the same 8 rows for its own 4 columns.
// The A loads then depend only on the workgroup id and the loop counter — uniform across the
// workgroup — so a SIMD driver loads each once and broadcasts it, and only the 4 B loads per k
// differ per invocation: 32 FMAs for 4 divergent loads (the 4×4 kernel does 16 for 8).

override RW_X: u32 = 64u;

@compute @workgroup_size(RW_X, 1, 1)
fn matmul_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
               @builtin(num_workgroups) nwg: vec3<u32>) {
    let tile = tile_and_batch(wid, nwg);
    if tile.y >= out_batches() {
        return;
    }
    let row0 = tile.x * 8u;
    let col0 = (wid.x * RW_X + lid.x) * 4u;
    let cl = min(vec4<u32>(col0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(p.n - 1u));
    let bc = cl * p.b_n;
    let last = p.m - 1u;
    let r0 = vec4<u32>(min(row0, last), min(row0 + 1u, last), min(row0 + 2u, last), min(row0 + 3u, last)) * p.a_m;
    let r1 = vec4<u32>(min(row0 + 4u, last), min(row0 + 5u, last), min(row0 + 6u, last), min(row0 + 7u, last)) * p.a_m;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    var acc4 = vec4<f32>(0.0);
    var acc5 = vec4<f32>(0.0);
    var acc6 = vec4<f32>(0.0);
    var acc7 = vec4<f32>(0.0);
    let summed = p.sum_batches == 1u;
    let br = batch_range(tile.y, summed);
    for (var bt = br.x; bt < br.y; bt++) {
        var ib = bc + vec4<u32>(bt * p.b_batch);
        var ia0 = r0 + vec4<u32>(bt * p.a_batch);
        var ia1 = r1 + vec4<u32>(bt * p.a_batch);
        for (var kk = 0u; kk < p.k; kk++) {
            let bv = vec4<f32>(b[ib.x], b[ib.y], b[ib.z], b[ib.w]);
            acc0 = fma(vec4<f32>(a[ia0.x]), bv, acc0);
            acc1 = fma(vec4<f32>(a[ia0.y]), bv, acc1);
            acc2 = fma(vec4<f32>(a[ia0.z]), bv, acc2);
            acc3 = fma(vec4<f32>(a[ia0.w]), bv, acc3);
            acc4 = fma(vec4<f32>(a[ia1.x]), bv, acc4);
            acc5 = fma(vec4<f32>(a[ia1.y]), bv, acc5);
            acc6 = fma(vec4<f32>(a[ia1.z]), bv, acc6);
            acc7 = fma(vec4<f32>(a[ia1.w]), bv, acc7);
            ia0 += vec4<u32>(p.a_k);
            ia1 += vec4<u32>(p.a_k);
            ib += vec4<u32>(p.b_k);
        }
    }
    if col0 >= p.n {
        return;
    }
    let cbase = tile.y * p.c_batch;
    var rows = array<vec4<f32>, 8>(acc0, acc1, acc2, acc3, acc4, acc5, acc6, acc7);
    for (var i = 0u; i < 8u; i++) {
        let row = row0 + i;
        if row >= p.m {
            break;
        }
        var v = rows[i];
        if p.bias_mode == 1u {
            v += vec4<f32>(bias[row]);
        } else if p.bias_mode == 2u {
            v += vec4<f32>(bias[cl.x], bias[cl.y], bias[cl.z], bias[cl.w]);
        }
        for (var j = 0u; j < 4u; j++) {
            let col = col0 + j;
            if col < p.n {
                c[cbase + row * p.n + col] = act(v[j]);
            }
        }
    }
}


// =============================================================================================
// matmul_reg4 / matmul_reg: large register blocks, for CPU drivers (lavapipe, llvmpipe GL).
//
// Mesa's llvmpipe (22.3) runs 8 invocations as the 8 lanes of one AVX2 register and compiles
// every storage-buffer load whose address is not a compile-time constant into a loop over the
// 8 lanes: per lane a mask test, then per component a bounds check, a scalar load and a masked
// insert. A vec4 load is ~400 instructions for 8 invocations, a scalar one ~200; an FMA is 2
// (it is split into a multiply and an add) plus a share of the accumulator spills. Loads are
// ~75% of the time of a 16×16 block, so what wins is the most FMAs per load instruction:
// each invocation keeps a BM×BN block of C (up to 32×32: LLVM spills the accumulators to the
// stack, which costs far less than the loads) and per step of 4 along k loads BM/4 quads of A
// and BN/4 of B (4 loads each), for BM·BN·4 FMAs. The 4×4 kernel above does 2 FMAs per scalar
// load; a 16×16 block does 32 per vec4 load, a 32×32 block 64 (1024³: 4.3 → ~28 GFLOP/s).
//
// llvmpipe vectorises a workgroup along x only: BX must be 8 (or a multiple of 8), or lanes sit
// idle (BX = 4 measured ~0.7×, BX = 1 ~0.2×). The 8 lanes of a SIMD group then share their rows
// of C — all 8 load the same A address — and own consecutive column blocks.
//
// Tried on lavapipe and not kept: workgroup memory (its loads take the same per-lane loop, and
// a barrier costs ~1,000 cycles as the coroutine switch saves the accumulators; broadcasting A
// through constant workgroup addresses, which do take a fast path, gained 13% only without the
// barriers WGSL requires), k-blocking with barriers, software pipelining of the loads, two
// k-steps per loop iteration, and an entry point with vec4 loads for one operand and scalar
// for the other (+13% on one conv shape, 0% on another, 3× the compile time).
//
// Everything in the hot loop is straight-line code over compile-time indices (the same kernel
// written with loops over the block ran at half the speed: Mesa did not turn the loop-indexed
// block into registers). Every choice is a pipeline-overridable constant that the driver folds
// away: block (BM × BN, each 4, 8, 16 or 32), workgroup (BX × BY invocations, BX along n),
// transposes, batch summation, k % 4, bias and activation. The launcher picks them per adapter
// and shape.
//
// matmul_reg4 binds A and B as array<vec4<f32>>: their contiguous dimensions must be multiples
// of 4 (A's k, or m when TRANS_A; B's n, or k when TRANS_B). C is stored as scalars. matmul_reg binds
// them as array<f32> and takes any shape and layout (strides from Params), one scalar load
// per element (~2.4× the time per element of a vec4 load).

override BM: u32 = 16u;          // rows of C per invocation: 4, 8, 16 or 32
override BN: u32 = 16u;          // columns of C per invocation: 4, 8, 16 or 32
override BX: u32 = 8u;           // invocations per workgroup along n (llvmpipe: 8)
override BY: u32 = 1u;           // invocations per workgroup along m
override TRANS_A: bool = false;  // A stored [k, m] (matmul_reg4 only; matmul_reg uses strides)
override TRANS_B: bool = false;  // B stored [n, k] (matmul_reg4 only)
override SUM_BATCHES: bool = false;  // C = Σ over batches (p.sum_batches)
override K_TAIL: bool = false;   // k % 4 != 0: matmul_reg4 masks its last step
override BIAS: u32 = 0u;         // as p.bias_mode: 0 none, 1 per row, 2 per column
override ACT: u32 = 0u;          // as p.act

@group(0) @binding(1) var<storage, read> a4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b4: array<vec4<f32>>;

// A 4×4 tile as four vec4 rows: for A, 4 rows of C × 4 consecutive k; for B, 4 consecutive k ×
// 4 columns of C; for C, 4 rows × 4 columns.
alias Quad = array<vec4<f32>, 4>;
// One side of a step: up to 8 quads (32 rows, or 32 columns). Quads past BM/4 (BN/4) are never
// written or read, and vanish when the constants are folded.
alias Quads = array<Quad, 8>;
// The accumulators: C quad (row quad i, column quad j) at 8i + j.
alias Block = array<Quad, 64>;

fn transpose4(t: Quad) -> Quad {
    return Quad(vec4<f32>(t[0].x, t[1].x, t[2].x, t[3].x),
                vec4<f32>(t[0].y, t[1].y, t[2].y, t[3].y),
                vec4<f32>(t[0].z, t[1].z, t[2].z, t[3].z),
                vec4<f32>(t[0].w, t[1].w, t[2].w, t[3].w));
}

// One row of a 4×4 tile: acc + Σ_q a[q]·b[q] (4 vec4 FMAs, k in order).
fn mac_r(acc: vec4<f32>, a: vec4<f32>, b: Quad) -> vec4<f32> {
    var r = fma(vec4<f32>(a.x), b[0], acc);
    r = fma(vec4<f32>(a.y), b[1], r);
    r = fma(vec4<f32>(a.z), b[2], r);
    return fma(vec4<f32>(a.w), b[3], r);
}

// acc + a·b on one 4×4 tile: 16 vec4 FMAs.
fn mac(acc: Quad, a: Quad, b: Quad) -> Quad {
    return Quad(mac_r(acc[0], a[0], b), mac_r(acc[1], a[1], b), mac_r(acc[2], a[2], b),
                mac_r(acc[3], a[3], b));
}

// Row quad `i` (a constant at every call) of the block += a · b[0..BN/4].
fn mac_row(acc: ptr<function, Block>, i: u32, a: Quad, b: Quads) {
    let o = 8u * i;
    (*acc)[o] = mac((*acc)[o], a, b[0]);
    if BN > 4u { (*acc)[o + 1u] = mac((*acc)[o + 1u], a, b[1]); }
    if BN > 8u {
        (*acc)[o + 2u] = mac((*acc)[o + 2u], a, b[2]);
        (*acc)[o + 3u] = mac((*acc)[o + 3u], a, b[3]);
    }
    if BN > 16u {
        (*acc)[o + 4u] = mac((*acc)[o + 4u], a, b[4]);
        (*acc)[o + 5u] = mac((*acc)[o + 5u], a, b[5]);
        (*acc)[o + 6u] = mac((*acc)[o + 6u], a, b[6]);
        (*acc)[o + 7u] = mac((*acc)[o + 7u], a, b[7]);
    }
}

fn mac_block(acc: ptr<function, Block>, a: Quads, b: Quads) {
    mac_row(acc, 0u, a[0], b);
    if BM > 4u { mac_row(acc, 1u, a[1], b); }
    if BM > 8u { mac_row(acc, 2u, a[2], b); mac_row(acc, 3u, a[3], b); }
    if BM > 16u {
        mac_row(acc, 4u, a[4], b);
        mac_row(acc, 5u, a[5], b);
        mac_row(acc, 6u, a[6], b);
        mac_row(acc, 7u, a[7], b);
    }
}

// The activation, chosen by a constant so the epilogue holds only the one in use. Same
// definitions as act() above.
fn act4(x: vec4<f32>) -> vec4<f32> {
    if ACT == 1u { return select(max(x, vec4<f32>(0.0)), x, is_nan4(x)); }
    if ACT == 2u { return select(p.slope * x, x, x > vec4<f32>(0.0)); }
    if ACT == 3u { return select(1.0 / (1.0 + exp(-x)), x, is_nan4(x)); }
    if ACT == 4u {
        return select(tanh(clamp(x, vec4<f32>(-10.0), vec4<f32>(10.0))), x, is_nan4(x));
    }
    return x;
}

// Bias and activation for C[row, col..col+3]. Indices are clamped into range, so a caller may
// compute this for positions past the edge that it then does not store.
fn epilogue(v: vec4<f32>, row: u32, col: u32) -> vec4<f32> {
    var x = v;
    if BIAS == 1u {
        x += vec4<f32>(bias[min(row, p.m - 1u)]);
    } else if BIAS == 2u {
        let cl = min(vec4<u32>(col) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(p.n - 1u));
        x += vec4<f32>(bias[cl.x], bias[cl.y], bias[cl.z], bias[cl.w]);
    }
    return act4(x);
}

// k indices kk..kk+3, clamped to the last one: the tail step reads valid memory, then masks.
fn k_clamped(kk: u32) -> vec4<u32> {
    return min(vec4<u32>(kk) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(p.k - 1u));
}

// The k ≥ p.k parts of a partial last step, zeroed on both sides (so 0·inf never appears). `live`
// says which of the step's 4 k are in range.
fn mask_a(q: Quad, live: vec4<bool>) -> Quad {
    let z = vec4<f32>(0.0);
    return Quad(select(z, q[0], live), select(z, q[1], live), select(z, q[2], live),
                select(z, q[3], live));
}

fn mask_b(q: Quad, live: vec4<bool>) -> Quad {
    let z = vec4<f32>(0.0);
    return Quad(select(z, q[0], live.x), select(z, q[1], live.y), select(z, q[2], live.z),
                select(z, q[3], live.w));
}

fn mask_step(a: Quads, b: Quads, kk: u32) -> array<Quads, 2> {
    let live = (vec4<u32>(kk) + vec4<u32>(0u, 1u, 2u, 3u)) < vec4<u32>(p.k);
    return array<Quads, 2>(
        Quads(mask_a(a[0], live), mask_a(a[1], live), mask_a(a[2], live), mask_a(a[3], live),
              mask_a(a[4], live), mask_a(a[5], live), mask_a(a[6], live), mask_a(a[7], live)),
        Quads(mask_b(b[0], live), mask_b(b[1], live), mask_b(b[2], live), mask_b(b[3], live),
              mask_b(b[4], live), mask_b(b[5], live), mask_b(b[6], live), mask_b(b[7], live)));
}

// Which C block this invocation owns: (row0, col0, batch, write?) — `write` is false for the
// grid's spare workgroups past the last batch.
struct Origin {
    row0: u32,
    col0: u32,
    batch: u32,
}

fn reg_origin(wid: vec3<u32>, lid: vec3<u32>, nwg: vec3<u32>) -> Origin {
    let t = tile_and_batch(wid, nwg);
    return Origin((t.x * BY + lid.y) * BM, (wid.x * BX + lid.x) * BN, t.y);
}

fn reg_out_batches() -> u32 {
    return select(p.batch, p.chunks, SUM_BATCHES);
}

// ---- matmul_reg4: vec4 views. Batch offsets (`base`) are multiples of 4 elements. ----

// A rows r..r+3 × k kk..kk+3.
fn a4_quad(base: u32, r: u32, kk: u32) -> Quad {
    if TRANS_A {
        // A is [k, m]: one vec4 holds 4 rows at one k (m % 4 == 0; r % 4 == 0).
        let s = p.m / 4u;
        let o = base / 4u + min(r / 4u, s - 1u);
        let kc = k_clamped(kk) * s;
        return transpose4(Quad(a4[o + kc.x], a4[o + kc.y], a4[o + kc.z], a4[o + kc.w]));
    }
    // A is [m, k]: one vec4 holds 4 k of one row (k % 4 == 0, so kk + 3 < k).
    let s = p.k / 4u;
    let o = base / 4u + kk / 4u;
    let rc = min(vec4<u32>(r) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(p.m - 1u)) * s;
    return Quad(a4[o + rc.x], a4[o + rc.y], a4[o + rc.z], a4[o + rc.w]);
}

// B k kk..kk+3 × columns col..col+3.
fn b4_quad(base: u32, col: u32, kk: u32) -> Quad {
    if TRANS_B {
        // B is [n, k]: one vec4 holds 4 k of one column (k % 4 == 0).
        let s = p.k / 4u;
        let o = base / 4u + kk / 4u;
        let cc = min(vec4<u32>(col) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(p.n - 1u)) * s;
        return transpose4(Quad(b4[o + cc.x], b4[o + cc.y], b4[o + cc.z], b4[o + cc.w]));
    }
    // B is [k, n]: one vec4 holds 4 columns at one k (n % 4 == 0; col % 4 == 0).
    let s = p.n / 4u;
    let o = base / 4u + min(col / 4u, s - 1u);
    let kc = k_clamped(kk) * s;
    return Quad(b4[o + kc.x], b4[o + kc.y], b4[o + kc.z], b4[o + kc.w]);
}

fn a4_block(base: u32, row0: u32, kk: u32) -> Quads {
    var q: Quads;
    q[0] = a4_quad(base, row0, kk);
    if BM > 4u { q[1] = a4_quad(base, row0 + 4u, kk); }
    if BM > 8u { q[2] = a4_quad(base, row0 + 8u, kk); q[3] = a4_quad(base, row0 + 12u, kk); }
    if BM > 16u {
        q[4] = a4_quad(base, row0 + 16u, kk);
        q[5] = a4_quad(base, row0 + 20u, kk);
        q[6] = a4_quad(base, row0 + 24u, kk);
        q[7] = a4_quad(base, row0 + 28u, kk);
    }
    return q;
}

fn b4_block(base: u32, col0: u32, kk: u32) -> Quads {
    var q: Quads;
    q[0] = b4_quad(base, col0, kk);
    if BN > 4u { q[1] = b4_quad(base, col0 + 4u, kk); }
    if BN > 8u { q[2] = b4_quad(base, col0 + 8u, kk); q[3] = b4_quad(base, col0 + 12u, kk); }
    if BN > 16u {
        q[4] = b4_quad(base, col0 + 16u, kk);
        q[5] = b4_quad(base, col0 + 20u, kk);
        q[6] = b4_quad(base, col0 + 24u, kk);
        q[7] = b4_quad(base, col0 + 28u, kk);
    }
    return q;
}

// C rows r..r+3 × columns col..col+3, stored as scalars: C's n need not be a multiple of 4
// (a 3×3 conv's weight gradient is 16×9), and the stores are a few percent of the loads.
fn c4_quad(cb: u32, r: u32, col: u32, q: Quad) {
    if col < p.n {
        for (var i = 0u; i < 4u; i++) {
            let row = r + i;
            if row < p.m {
                let v = epilogue(q[i], row, col);
                let o = cb + row * p.n + col;
                c[o] = v.x;
                if col + 1u < p.n { c[o + 1u] = v.y; }
                if col + 2u < p.n { c[o + 2u] = v.z; }
                if col + 3u < p.n { c[o + 3u] = v.w; }
            }
        }
    }
}

// Row quad `i` (a constant at every call) of the block to C.
fn c4_row(acc: ptr<function, Block>, i: u32, cb: u32, o: Origin) {
    let r = o.row0 + 4u * i;
    let a = 8u * i;
    c4_quad(cb, r, o.col0, (*acc)[a]);
    if BN > 4u { c4_quad(cb, r, o.col0 + 4u, (*acc)[a + 1u]); }
    if BN > 8u {
        c4_quad(cb, r, o.col0 + 8u, (*acc)[a + 2u]);
        c4_quad(cb, r, o.col0 + 12u, (*acc)[a + 3u]);
    }
    if BN > 16u {
        c4_quad(cb, r, o.col0 + 16u, (*acc)[a + 4u]);
        c4_quad(cb, r, o.col0 + 20u, (*acc)[a + 5u]);
        c4_quad(cb, r, o.col0 + 24u, (*acc)[a + 6u]);
        c4_quad(cb, r, o.col0 + 28u, (*acc)[a + 7u]);
    }
}

@compute @workgroup_size(BX, BY, 1)
fn matmul_reg4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
               @builtin(num_workgroups) nwg: vec3<u32>) {
    let o = reg_origin(wid, lid, nwg);
    if o.batch >= reg_out_batches() {
        return;
    }
    var acc: Block;
    let br = batch_range(o.batch, SUM_BATCHES);
    for (var bt = br.x; bt < br.y; bt++) {
        let ab = bt * p.a_batch;
        let bb = bt * p.b_batch;
        for (var kk = 0u; kk < p.k; kk += 4u) {
            let qa = a4_block(ab, o.row0, kk);
            let qb = b4_block(bb, o.col0, kk);
            if K_TAIL {
                // Only A transposed and B not can get here (k is A's or B's vector axis
                // otherwise): the masking costs ~1% of a step, and saves a second copy of it.
                let q = mask_step(qa, qb, kk);
                mac_block(&acc, q[0], q[1]);
            } else {
                mac_block(&acc, qa, qb);
            }
        }
    }
    let cb = o.batch * p.c_batch;
    c4_row(&acc, 0u, cb, o);
    if BM > 4u { c4_row(&acc, 1u, cb, o); }
    if BM > 8u { c4_row(&acc, 2u, cb, o); c4_row(&acc, 3u, cb, o); }
    if BM > 16u {
        c4_row(&acc, 4u, cb, o);
        c4_row(&acc, 5u, cb, o);
        c4_row(&acc, 6u, cb, o);
        c4_row(&acc, 7u, cb, o);
    }
}

// ---- matmul_reg: scalar views, any shape; A and B addressed through Params' strides. ----
// One k per step: per invocation bm + bn scalar loads and bm·bn FMAs. (Steps of 4, as above,
// would need 16 scalar loads per quad: the same loads per FMA, 4× the code, and pipelines that
// took 5–10 s to compile on lavapipe.)

// A[r..r+3, kk] as a vec4 (rows clamped).
fn a_vec(base: u32, r: u32, kk: u32) -> vec4<f32> {
    let rows = min(vec4<u32>(r) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(p.m - 1u));
    let o = vec4<u32>(base + kk * p.a_k) + rows * p.a_m;
    return vec4<f32>(a[o.x], a[o.y], a[o.z], a[o.w]);
}

// B[kk, col..col+3] as a vec4 (columns clamped).
fn b_vec(base: u32, col: u32, kk: u32) -> vec4<f32> {
    let cols = min(vec4<u32>(col) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(p.n - 1u));
    let o = vec4<u32>(base + kk * p.b_k) + cols * p.b_n;
    return vec4<f32>(b[o.x], b[o.y], b[o.z], b[o.w]);
}

alias Vecs = array<vec4<f32>, 8>;

fn a_vecs(base: u32, row0: u32, kk: u32) -> Vecs {
    var v: Vecs;
    v[0] = a_vec(base, row0, kk);
    if BM > 4u { v[1] = a_vec(base, row0 + 4u, kk); }
    if BM > 8u { v[2] = a_vec(base, row0 + 8u, kk); v[3] = a_vec(base, row0 + 12u, kk); }
    if BM > 16u {
        v[4] = a_vec(base, row0 + 16u, kk);
        v[5] = a_vec(base, row0 + 20u, kk);
        v[6] = a_vec(base, row0 + 24u, kk);
        v[7] = a_vec(base, row0 + 28u, kk);
    }
    return v;
}

fn b_vecs(base: u32, col0: u32, kk: u32) -> Vecs {
    var v: Vecs;
    v[0] = b_vec(base, col0, kk);
    if BN > 4u { v[1] = b_vec(base, col0 + 4u, kk); }
    if BN > 8u { v[2] = b_vec(base, col0 + 8u, kk); v[3] = b_vec(base, col0 + 12u, kk); }
    if BN > 16u {
        v[4] = b_vec(base, col0 + 16u, kk);
        v[5] = b_vec(base, col0 + 20u, kk);
        v[6] = b_vec(base, col0 + 24u, kk);
        v[7] = b_vec(base, col0 + 28u, kk);
    }
    return v;
}

// acc + a ⊗ b on one 4×4 tile (one k): 4 vec4 FMAs.
fn mac1(acc: Quad, a: vec4<f32>, b: vec4<f32>) -> Quad {
    return Quad(fma(vec4<f32>(a.x), b, acc[0]), fma(vec4<f32>(a.y), b, acc[1]),
                fma(vec4<f32>(a.z), b, acc[2]), fma(vec4<f32>(a.w), b, acc[3]));
}

fn mac1_row(acc: ptr<function, Block>, i: u32, a: vec4<f32>, b: Vecs) {
    let o = 8u * i;
    (*acc)[o] = mac1((*acc)[o], a, b[0]);
    if BN > 4u { (*acc)[o + 1u] = mac1((*acc)[o + 1u], a, b[1]); }
    if BN > 8u {
        (*acc)[o + 2u] = mac1((*acc)[o + 2u], a, b[2]);
        (*acc)[o + 3u] = mac1((*acc)[o + 3u], a, b[3]);
    }
    if BN > 16u {
        (*acc)[o + 4u] = mac1((*acc)[o + 4u], a, b[4]);
        (*acc)[o + 5u] = mac1((*acc)[o + 5u], a, b[5]);
        (*acc)[o + 6u] = mac1((*acc)[o + 6u], a, b[6]);
        (*acc)[o + 7u] = mac1((*acc)[o + 7u], a, b[7]);
    }
}

fn mac1_block(acc: ptr<function, Block>, a: Vecs, b: Vecs) {
    mac1_row(acc, 0u, a[0], b);
    if BM > 4u { mac1_row(acc, 1u, a[1], b); }
    if BM > 8u { mac1_row(acc, 2u, a[2], b); mac1_row(acc, 3u, a[3], b); }
    if BM > 16u {
        mac1_row(acc, 4u, a[4], b);
        mac1_row(acc, 5u, a[5], b);
        mac1_row(acc, 6u, a[6], b);
        mac1_row(acc, 7u, a[7], b);
    }
}

fn c_quad(cb: u32, r: u32, col: u32, q: Quad) {
    for (var i = 0u; i < 4u; i++) {
        let row = r + i;
        if row < p.m {
            let v = epilogue(q[i], row, col);
            for (var j = 0u; j < 4u; j++) {
                if col + j < p.n {
                    c[cb + row * p.n + col + j] = v[j];
                }
            }
        }
    }
}

fn c_row(acc: ptr<function, Block>, i: u32, cb: u32, o: Origin) {
    let r = o.row0 + 4u * i;
    let a = 8u * i;
    c_quad(cb, r, o.col0, (*acc)[a]);
    if BN > 4u { c_quad(cb, r, o.col0 + 4u, (*acc)[a + 1u]); }
    if BN > 8u {
        c_quad(cb, r, o.col0 + 8u, (*acc)[a + 2u]);
        c_quad(cb, r, o.col0 + 12u, (*acc)[a + 3u]);
    }
    if BN > 16u {
        c_quad(cb, r, o.col0 + 16u, (*acc)[a + 4u]);
        c_quad(cb, r, o.col0 + 20u, (*acc)[a + 5u]);
        c_quad(cb, r, o.col0 + 24u, (*acc)[a + 6u]);
        c_quad(cb, r, o.col0 + 28u, (*acc)[a + 7u]);
    }
}

@compute @workgroup_size(BX, BY, 1)
fn matmul_reg(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
              @builtin(num_workgroups) nwg: vec3<u32>) {
    let o = reg_origin(wid, lid, nwg);
    if o.batch >= reg_out_batches() {
        return;
    }
    var acc: Block;
    let br = batch_range(o.batch, SUM_BATCHES);
    for (var bt = br.x; bt < br.y; bt++) {
        let ab = bt * p.a_batch;
        let bb = bt * p.b_batch;
        for (var kk = 0u; kk < p.k; kk++) {
            mac1_block(&acc, a_vecs(ab, o.row0, kk), b_vecs(bb, o.col0, kk));
        }
    }
    let cb = o.batch * p.c_batch;
    c_row(&acc, 0u, cb, o);
    if BM > 4u { c_row(&acc, 1u, cb, o); }
    if BM > 8u { c_row(&acc, 2u, cb, o); c_row(&acc, 3u, cb, o); }
    if BM > 16u {
        c_row(&acc, 4u, cb, o);
        c_row(&acc, 5u, cb, o);
        c_row(&acc, 6u, cb, o);
        c_row(&acc, 7u, cb, o);
    }
}

// =============================================================================================
// matmul_smem: workgroup-memory tiling, for GPUs. A 16×16 workgroup computes a 64×64 tile of C,
// each invocation 4×4 of it (rows ty + 16i, columns tx + 16j: neighbouring invocations touch
// neighbouring addresses, in global and in workgroup memory). Per 16 steps along k the
// workgroup stages a 64×16 panel of A and a 16×64 panel of B in workgroup memory (each
// element loaded once, by invocations adjacent along the operand's contiguous dimension, so
// the loads coalesce), then every invocation reads 16 of each per step from there.
//
// Not chosen on CPU drivers: there its workgroup-memory reads cost as much as storage loads and
// each barrier switches coroutines (see matmul_reg4). Uses TRANS_A / TRANS_B (to pick the
// coalesced loading order), SUM_BATCHES, BIAS and ACT from the constants above.

const SM_T: u32 = 16u;     // invocations per workgroup side
const SM_TILE: u32 = 64u;  // C tile side
const SM_K: u32 = 16u;     // k per stage
const SM_S: u32 = 65u;     // row stride of the staged panels: one past the tile, so that an
                           // order-k-fastest fill does not hit one memory bank 16 times

var<workgroup> sm_a: array<f32, 1040>;  // [k][row], SM_K × SM_S
var<workgroup> sm_b: array<f32, 1040>;  // [k][col], SM_K × SM_S

// Bias and activation for one element (see epilogue()).
fn epilogue1(x: f32, row: u32, col: u32) -> f32 {
    var v = x;
    if BIAS == 1u {
        v += bias[min(row, p.m - 1u)];
    } else if BIAS == 2u {
        v += bias[min(col, p.n - 1u)];
    }
    return act4(vec4<f32>(v)).x;
}

@compute @workgroup_size(16, 16, 1)
fn matmul_smem(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
               @builtin(local_invocation_index) li: u32, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = tile_and_batch(wid, nwg);
    // Uniform per workgroup, so returning before the barriers is allowed.
    if t.y >= reg_out_batches() {
        return;
    }
    let row0 = t.x * SM_TILE;
    let col0 = wid.x * SM_TILE;
    var acc: array<vec4<f32>, 4>;
    let br = batch_range(t.y, SUM_BATCHES);
    for (var bt = br.x; bt < br.y; bt++) {
        let ab = bt * p.a_batch;
        let bb = bt * p.b_batch;
        for (var k0 = 0u; k0 < p.k; k0 += SM_K) {
            // Stage the panels: 1024 elements each, 4 per invocation. Element (kk, r) is loaded
            // by invocation e with r fastest when that operand is contiguous along rows/columns
            // (A transposed, B not), kk fastest otherwise.
            for (var q = 0u; q < 4u; q++) {
                let e = li + 256u * q;
                let fast_k = vec2<u32>(e % SM_K, e / SM_K);        // (kk, r)
                let fast_r = vec2<u32>(e / SM_TILE, e % SM_TILE);  // (kk, r)
                let ea = select(fast_k, fast_r, TRANS_A);
                let row = row0 + ea.y;
                let ka = k0 + ea.x;
                let va = a[ab + min(row, p.m - 1u) * p.a_m + min(ka, p.k - 1u) * p.a_k];
                sm_a[ea.x * SM_S + ea.y] = select(0.0, va, row < p.m && ka < p.k);
                let eb = select(fast_r, fast_k, TRANS_B);
                let col = col0 + eb.y;
                let kb = k0 + eb.x;
                let vb = b[bb + min(kb, p.k - 1u) * p.b_k + min(col, p.n - 1u) * p.b_n];
                sm_b[eb.x * SM_S + eb.y] = select(0.0, vb, col < p.n && kb < p.k);
            }
            workgroupBarrier();
            for (var kk = 0u; kk < SM_K; kk++) {
                let o = kk * SM_S;
                let bv = vec4<f32>(sm_b[o + lid.x], sm_b[o + lid.x + 16u], sm_b[o + lid.x + 32u],
                                   sm_b[o + lid.x + 48u]);
                acc[0] = fma(vec4<f32>(sm_a[o + lid.y]), bv, acc[0]);
                acc[1] = fma(vec4<f32>(sm_a[o + lid.y + 16u]), bv, acc[1]);
                acc[2] = fma(vec4<f32>(sm_a[o + lid.y + 32u]), bv, acc[2]);
                acc[3] = fma(vec4<f32>(sm_a[o + lid.y + 48u]), bv, acc[3]);
            }
            workgroupBarrier();
        }
    }
    let cb = t.y * p.c_batch;
    for (var i = 0u; i < 4u; i++) {
        let row = row0 + lid.y + SM_T * i;
        for (var j = 0u; j < 4u; j++) {
            let col = col0 + lid.x + SM_T * j;
            if row < p.m && col < p.n {
                c[cb + row * p.n + col] = epilogue1(acc[i][j], row, col);
            }
        }
    }
}

// =============================================================================================
// matmul_tiled, matmul_tiled_a4, matmul_tiled_b4, matmul_tiled4: workgroup-memory tiling for
// GPUs, every choice a pipeline constant. A TL_WX × TL_WY workgroup computes a
// (TL_WY·TL_TM) × (TL_WX·TL_TN) tile of C; each invocation holds a TL_TM × TL_TN register tile
// (4 or 8 each) as vec4 quads. Per TL_TK steps along k the workgroup stages a k-major panel of
// A (TL_TK × tile rows) and of B (TL_TK × tile columns) in workgroup memory, each element loaded
// from global memory once; then every invocation reads, per k, TL_TM/4 vec4s of A (the same
// address for a whole row of invocations: a broadcast) and TL_TN/4 vec4s of B (consecutive
// invocations, consecutive vec4s: no bank conflicts), for TL_TM·TL_TN FMAs.
//
// Invocation (tx, ty) owns row quads ty, ty + TL_WY and column quads tx, tx + TL_WX of the tile
// (each quad 4 rows / 4 columns): neighbouring invocations read neighbouring vec4s of B and
// store neighbouring 16-byte runs of C.
//
// Global loads: the `4` entry points read A (`_a4`), B (`_b4`) or both (`matmul_tiled4`) as
// vec4s along the operand's contiguous dimension, which must then be a multiple of 4 (A's k, or
// m when transposed; B's n, or k when transposed); `matmul_tiled` reads scalars (any layout,
// strides from Params). One entry point per combination because one entry point may not use
// both views of a binding (`a` and `a4`). Invocations take consecutive items along the
// operand's contiguous dimension, so a workgroup's loads coalesce. A vec4 along k is stored
// transposed (a 4×4 quad per item), as the panels are k-major.
//
// Bits: each output is one accumulator, one `fma` per k in k order, batches in order, then the
// bias and the activation of epilogue() — exactly what every other entry point computes — so
// this mapping gives the bits the others give (tests/gpu/matmul.rs). The last stage of a k
// range runs only its p.k − k0 steps: nothing is padded with zeros, so no extra `fma(0, 0, acc)`
// can turn a −0 into +0.
//
// Workgroup memory: (TL_TK · (tile rows / 4 + 1) + TL_TK · (tile columns / 4 + 1)) vec4s; the
// launcher checks it against the device (`MatmulTile::workgroup`). Each panel row has one vec4
// of padding, so that invocations storing consecutive k (16-byte stores, one row apart) fall in
// different banks.
//
// Uses TRANS_A / TRANS_B (loading order, and vec4 layouts), SUM_BATCHES, BIAS and ACT from the
// constants above. Not chosen on CPU drivers unless the options force GPU-class kernels: there
// workgroup memory costs what storage loads do and each barrier a coroutine switch (see
// matmul_reg4).

override TL_TM: u32 = 4u;   // rows of C per invocation: 4 or 8
override TL_TN: u32 = 4u;   // columns of C per invocation: 4 or 8
override TL_WX: u32 = 16u;  // invocations along n
override TL_WY: u32 = 16u;  // invocations along m
override TL_TK: u32 = 16u;  // k per stage: 4, 8, 16 or 32
override TL_NT: u32 = TL_WX * TL_WY;
override TL_AQ: u32 = TL_WY * TL_TM / 4u;  // row quads of the tile
override TL_BQ: u32 = TL_WX * TL_TN / 4u;  // column quads of the tile
override TL_SA: u32 = TL_AQ + 1u;          // panel row strides in vec4s (one of padding)
override TL_SB: u32 = TL_BQ + 1u;
override TL_A_LEN: u32 = TL_TK * TL_SA;
override TL_B_LEN: u32 = TL_TK * TL_SB;

// A[row0 + 4q + i, k0 + kk] is tl_a[kk·TL_SA + q][i]; B[k0 + kk, col0 + 4q + j] is
// tl_b[kk·TL_SB + q][j].
var<workgroup> tl_a: array<vec4<f32>, TL_A_LEN>;
var<workgroup> tl_b: array<vec4<f32>, TL_B_LEN>;

// The register tile: quad (row quad i, column quad j) at 2i + j.
alias TlAcc = array<Quad, 4>;

// Items of `count` per invocation, and the items of invocation `li` in its `i`-th round are
// li + i·TL_NT: the loops have uniform bounds (the tail is an `if`).
fn tl_rounds(count: u32) -> u32 {
    return (count + TL_NT - 1u) / TL_NT;
}

// A[row, kk] with both indices clamped into range: rows past m are never stored, k past p.k is
// never multiplied (see tl_compute), so any valid element does.
fn tl_a_at(base: u32, row: u32, kk: u32) -> f32 {
    return a[base + min(row, p.m - 1u) * p.a_m + min(kk, p.k - 1u) * p.a_k];
}

fn tl_b_at(base: u32, kk: u32, col: u32) -> f32 {
    return b[base + min(kk, p.k - 1u) * p.b_k + min(col, p.n - 1u) * p.b_n];
}

// Stages A's panel with scalar loads: an item is one row quad at one k (4 loads, one vec4
// store), consecutive items along A's contiguous dimension (k for A [m, k], rows for Aᵀ).
fn tl_stage_a(base: u32, row0: u32, k0: u32, li: u32) {
    let count = TL_TK * TL_AQ;
    for (var i = 0u; i < tl_rounds(count); i++) {
        let e = li + i * TL_NT;
        if e < count {
            var kk = e % TL_TK;
            var q = e / TL_TK;
            if TRANS_A {
                kk = e / TL_AQ;
                q = e % TL_AQ;
            }
            let r = row0 + 4u * q;
            let k = k0 + kk;
            tl_a[kk * TL_SA + q] = vec4<f32>(tl_a_at(base, r, k), tl_a_at(base, r + 1u, k),
                                             tl_a_at(base, r + 2u, k), tl_a_at(base, r + 3u, k));
        }
    }
}

// Stages A's panel with vec4 loads (`base` is a multiple of 4).
fn tl_stage_a4(base: u32, row0: u32, k0: u32, li: u32) {
    if TRANS_A {
        // Aᵀ is [k, m], m % 4 == 0: a vec4 is a row quad at one k, stored as it is.
        let s = p.m / 4u;
        let count = TL_TK * TL_AQ;
        for (var i = 0u; i < tl_rounds(count); i++) {
            let e = li + i * TL_NT;
            if e < count {
                let kk = e / TL_AQ;
                let q = e % TL_AQ;
                let gq = min(row0 / 4u + q, s - 1u);
                let gk = min(k0 + kk, p.k - 1u);
                tl_a[kk * TL_SA + q] = a4[base / 4u + gk * s + gq];
            }
        }
    } else {
        // A is [m, k], k % 4 == 0: a vec4 is 4 k of one row; an item loads a row quad at 4 k
        // and stores it transposed.
        let s = p.k / 4u;
        let kqs = TL_TK / 4u;
        let count = TL_AQ * kqs;
        for (var i = 0u; i < tl_rounds(count); i++) {
            let e = li + i * TL_NT;
            if e < count {
                let kq = e % kqs;
                let q = e / kqs;
                let gk = min(k0 / 4u + kq, s - 1u);
                let rows = min(vec4<u32>(row0 + 4u * q) + vec4<u32>(0u, 1u, 2u, 3u),
                               vec4<u32>(p.m - 1u));
                let o = rows * s + vec4<u32>(base / 4u + gk);
                let t = transpose4(Quad(a4[o.x], a4[o.y], a4[o.z], a4[o.w]));
                let d = 4u * kq * TL_SA + q;
                tl_a[d] = t[0];
                tl_a[d + TL_SA] = t[1];
                tl_a[d + 2u * TL_SA] = t[2];
                tl_a[d + 3u * TL_SA] = t[3];
            }
        }
    }
}

// Stages B's panel with scalar loads: an item is one column quad at one k, consecutive items
// along B's contiguous dimension (columns for B [k, n], k for Bᵀ).
fn tl_stage_b(base: u32, col0: u32, k0: u32, li: u32) {
    let count = TL_TK * TL_BQ;
    for (var i = 0u; i < tl_rounds(count); i++) {
        let e = li + i * TL_NT;
        if e < count {
            var kk = e / TL_BQ;
            var q = e % TL_BQ;
            if TRANS_B {
                kk = e % TL_TK;
                q = e / TL_TK;
            }
            let c = col0 + 4u * q;
            let k = k0 + kk;
            tl_b[kk * TL_SB + q] = vec4<f32>(tl_b_at(base, k, c), tl_b_at(base, k, c + 1u),
                                             tl_b_at(base, k, c + 2u), tl_b_at(base, k, c + 3u));
        }
    }
}

// Stages B's panel with vec4 loads (`base` is a multiple of 4).
fn tl_stage_b4(base: u32, col0: u32, k0: u32, li: u32) {
    if TRANS_B {
        // Bᵀ is [n, k], k % 4 == 0: a vec4 is 4 k of one column; an item loads a column quad
        // at 4 k and stores it transposed.
        let s = p.k / 4u;
        let kqs = TL_TK / 4u;
        let count = TL_BQ * kqs;
        for (var i = 0u; i < tl_rounds(count); i++) {
            let e = li + i * TL_NT;
            if e < count {
                let kq = e % kqs;
                let q = e / kqs;
                let gk = min(k0 / 4u + kq, s - 1u);
                let cols = min(vec4<u32>(col0 + 4u * q) + vec4<u32>(0u, 1u, 2u, 3u),
                               vec4<u32>(p.n - 1u));
                let o = cols * s + vec4<u32>(base / 4u + gk);
                let t = transpose4(Quad(b4[o.x], b4[o.y], b4[o.z], b4[o.w]));
                let d = 4u * kq * TL_SB + q;
                tl_b[d] = t[0];
                tl_b[d + TL_SB] = t[1];
                tl_b[d + 2u * TL_SB] = t[2];
                tl_b[d + 3u * TL_SB] = t[3];
            }
        }
    } else {
        // B is [k, n], n % 4 == 0: a vec4 is a column quad at one k, stored as it is.
        let s = p.n / 4u;
        let count = TL_TK * TL_BQ;
        for (var i = 0u; i < tl_rounds(count); i++) {
            let e = li + i * TL_NT;
            if e < count {
                let kk = e / TL_BQ;
                let q = e % TL_BQ;
                let gq = min(col0 / 4u + q, s - 1u);
                let gk = min(k0 + kk, p.k - 1u);
                tl_b[kk * TL_SB + q] = b4[base / 4u + gk * s + gq];
            }
        }
    }
}

// The first `kn` steps of the staged panels into the register tile: per k, one fma per
// output (mac1), k in order.
fn tl_compute(acc: ptr<function, TlAcc>, kn: u32, tx: u32, ty: u32) {
    for (var kk = 0u; kk < kn; kk++) {
        let oa = kk * TL_SA + ty;
        let ob = kk * TL_SB + tx;
        let a0 = tl_a[oa];
        let b0 = tl_b[ob];
        var a1 = a0;
        var b1 = b0;
        if TL_TM > 4u { a1 = tl_a[oa + TL_WY]; }
        if TL_TN > 4u { b1 = tl_b[ob + TL_WX]; }
        (*acc)[0] = mac1((*acc)[0], a0, b0);
        if TL_TN > 4u { (*acc)[1] = mac1((*acc)[1], a0, b1); }
        if TL_TM > 4u {
            (*acc)[2] = mac1((*acc)[2], a1, b0);
            if TL_TN > 4u { (*acc)[3] = mac1((*acc)[3], a1, b1); }
        }
    }
}

struct TlOrigin {
    row0: u32,   // the workgroup's first row and column of C
    col0: u32,
    batch: u32,  // output batch (a chunk of a split batch sum)
}

fn tl_origin(wid: vec3<u32>, nwg: vec3<u32>) -> TlOrigin {
    let t = tile_and_batch(wid, nwg);
    return TlOrigin(t.x * TL_WY * TL_TM, wid.x * TL_WX * TL_TN, t.y);
}

// The register tile through the epilogue to C (edges masked by c_quad).
fn tl_store(acc: ptr<function, TlAcc>, o: TlOrigin, tx: u32, ty: u32) {
    let cb = o.batch * p.c_batch;
    let r0 = o.row0 + 4u * ty;
    let r1 = r0 + 4u * TL_WY;
    let c0 = o.col0 + 4u * tx;
    let c1 = c0 + 4u * TL_WX;
    c_quad(cb, r0, c0, (*acc)[0]);
    if TL_TN > 4u { c_quad(cb, r0, c1, (*acc)[1]); }
    if TL_TM > 4u {
        c_quad(cb, r1, c0, (*acc)[2]);
        if TL_TN > 4u { c_quad(cb, r1, c1, (*acc)[3]); }
    }
}

// The four entry points differ only in the staging functions. Everything before a barrier is
// uniform per workgroup: the early return (the grid's spare workgroups past the last batch) and
// both loops depend on the workgroup id and Params only.

@compute @workgroup_size(TL_WX, TL_WY, 1)
fn matmul_tiled(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
                @builtin(local_invocation_index) li: u32, @builtin(num_workgroups) nwg: vec3<u32>) {
    let o = tl_origin(wid, nwg);
    if o.batch >= reg_out_batches() {
        return;
    }
    var acc: TlAcc;
    let br = batch_range(o.batch, SUM_BATCHES);
    for (var bt = br.x; bt < br.y; bt++) {
        for (var k0 = 0u; k0 < p.k; k0 += TL_TK) {
            tl_stage_a(bt * p.a_batch, o.row0, k0, li);
            tl_stage_b(bt * p.b_batch, o.col0, k0, li);
            workgroupBarrier();
            tl_compute(&acc, min(TL_TK, p.k - k0), lid.x, lid.y);
            workgroupBarrier();
        }
    }
    tl_store(&acc, o, lid.x, lid.y);
}

@compute @workgroup_size(TL_WX, TL_WY, 1)
fn matmul_tiled_a4(@builtin(workgroup_id) wid: vec3<u32>,
                   @builtin(local_invocation_id) lid: vec3<u32>,
                   @builtin(local_invocation_index) li: u32,
                   @builtin(num_workgroups) nwg: vec3<u32>) {
    let o = tl_origin(wid, nwg);
    if o.batch >= reg_out_batches() {
        return;
    }
    var acc: TlAcc;
    let br = batch_range(o.batch, SUM_BATCHES);
    for (var bt = br.x; bt < br.y; bt++) {
        for (var k0 = 0u; k0 < p.k; k0 += TL_TK) {
            tl_stage_a4(bt * p.a_batch, o.row0, k0, li);
            tl_stage_b(bt * p.b_batch, o.col0, k0, li);
            workgroupBarrier();
            tl_compute(&acc, min(TL_TK, p.k - k0), lid.x, lid.y);
            workgroupBarrier();
        }
    }
    tl_store(&acc, o, lid.x, lid.y);
}

@compute @workgroup_size(TL_WX, TL_WY, 1)
fn matmul_tiled_b4(@builtin(workgroup_id) wid: vec3<u32>,
                   @builtin(local_invocation_id) lid: vec3<u32>,
                   @builtin(local_invocation_index) li: u32,
                   @builtin(num_workgroups) nwg: vec3<u32>) {
    let o = tl_origin(wid, nwg);
    if o.batch >= reg_out_batches() {
        return;
    }
    var acc: TlAcc;
    let br = batch_range(o.batch, SUM_BATCHES);
    for (var bt = br.x; bt < br.y; bt++) {
        for (var k0 = 0u; k0 < p.k; k0 += TL_TK) {
            tl_stage_a(bt * p.a_batch, o.row0, k0, li);
            tl_stage_b4(bt * p.b_batch, o.col0, k0, li);
            workgroupBarrier();
            tl_compute(&acc, min(TL_TK, p.k - k0), lid.x, lid.y);
            workgroupBarrier();
        }
    }
    tl_store(&acc, o, lid.x, lid.y);
}

@compute @workgroup_size(TL_WX, TL_WY, 1)
fn matmul_tiled4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
                 @builtin(local_invocation_index) li: u32, @builtin(num_workgroups) nwg: vec3<u32>) {
    let o = tl_origin(wid, nwg);
    if o.batch >= reg_out_batches() {
        return;
    }
    var acc: TlAcc;
    let br = batch_range(o.batch, SUM_BATCHES);
    for (var bt = br.x; bt < br.y; bt++) {
        for (var k0 = 0u; k0 < p.k; k0 += TL_TK) {
            tl_stage_a4(bt * p.a_batch, o.row0, k0, li);
            tl_stage_b4(bt * p.b_batch, o.col0, k0, li);
            workgroupBarrier();
            tl_compute(&acc, min(TL_TK, p.k - k0), lid.x, lid.y);
            workgroupBarrier();
        }
    }
    tl_store(&acc, o, lid.x, lid.y);
}

// ---------------------------------------------------------------------------------------------
// matmul_split_sum: the second pass of a split batch sum. C[i] = epilogue(Σ_t partial[t][i]),
// the partials added in order t = 0, 1, ... (so the result is the same on every adapter and for
// every mapping of the first pass). A weight gradient's output is small (16×9 for a 3×3 conv)
// while its sum runs over the whole batch; split into chunks, the first pass has enough
// workgroups to fill a GPU (or lavapipe's threads) instead of one or two.

@group(0) @binding(1) var<storage, read> partial: array<f32>;
@group(0) @binding(2) var<storage, read> split_bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> split_c: array<f32>;

@compute @workgroup_size(64, 1, 1)
fn matmul_split_sum(@builtin(workgroup_id) wid: vec3<u32>,
                    @builtin(local_invocation_id) lid: vec3<u32>,
                    @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = (wid.x + wid.y * nwg.x) * 64u + lid.x;
    let mn = p.m * p.n;
    if i >= mn {
        return;
    }
    var acc = 0.0;
    for (var t = 0u; t < p.chunks; t++) {
        acc += partial[t * mn + i];
    }
    let row = i / p.n;
    let col = i % p.n;
    if p.bias_mode == 1u {
        acc += split_bias[row];
    } else if p.bias_mode == 2u {
        acc += split_bias[col];
    }
    split_c[i] = act(acc);
}
