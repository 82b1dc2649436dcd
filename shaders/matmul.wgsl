// C[b] = act(op(A)[b] · op(B)[b] + bias)  — matmul with transpose flags, batching, broadcast,
// batch summation (weight gradients) and a fused bias + activation epilogue.
//
// Transposes are expressed as strides, so one kernel serves the forward pass and both gradients
// (dA = dC·Bᵀ, dB = Aᵀ·dC) without materialising a transpose.
//
// Register blocking: each invocation computes a TM×TN = 4×4 block of C held in registers, so each
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
    return select(p.batch, 1u, p.sum_batches == 1u);
}

override WG_X: u32 = 8u; // invocations along n
override WG_Y: u32 = 8u; // invocations along m

fn act(x: f32) -> f32 {
    switch p.act {
        case 1u: { return max(x, 0.0); }
        case 2u: { return select(p.slope * x, x, x > 0.0); }
        case 3u: { return 1.0 / (1.0 + exp(-x)); }
        // Clamped as in pointwise.wgsl: where tanh is built from exp, ±inf/inf would give NaN.
        case 4u: { return tanh(clamp(x, -10.0, 10.0)); }
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
    let nb = select(1u, p.batch, summed);
    for (var bi = 0u; bi < nb; bi++) {
        let bt = select(tile.y, bi, summed);
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

    let cbase = select(tile.y * p.c_batch, 0u, summed);
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
    let nb = select(1u, p.batch, summed);
    for (var bi = 0u; bi < nb; bi++) {
        let bt = select(tile.y, bi, summed);
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
    let cbase = select(tile.y * p.c_batch, 0u, summed);
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
