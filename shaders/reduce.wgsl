// Sum or mean over a chosen set of axes of a contiguous tensor of rank ≤ 4 (shapes padded with
// leading 1s): axes {0,2,3} of NCHW for a conv bias gradient, {0} of [B, F] for a Linear bias
// gradient, every axis for a scalar.
//
// Deterministic, no atomics: one workgroup per output element — or, for a few outputs of long
// reductions (a whole tensor to a scalar), `slices` workgroups per output, each summing one
// contiguous slice of the reduced index space into a partial, and a second dispatch summing the
// partials in order (src/gpu/kernels/reduce.rs chains the two). A workgroup's invocations stride
// over its index range (adjacent invocations read adjacent reduced elements, so the common case of
// reducing the innermost axes reads memory contiguously), then add their partial sums with
// `tree_sum` (a fixed tree order; tree_sum.wgsl, put in front of this file). Same input, same
// adapter, same bits, with or without subgroup operations.
//
// The output count is dispatched as a linear workgroup count folded into (x, y); groups past the
// end still run every barrier (with nothing to add) and only skip the store, so no return ever
// precedes a barrier.

struct Params {
    out_dims: vec4<u32>,  // padded input dims with the reduced axes set to 1
    red_dims: vec4<u32>,  // padded input dims with the kept axes set to 1
    strides: vec4<u32>,   // element strides of the padded input
    out_count: u32,       // product of out_dims
    red_count: u32,       // product of red_dims
    slices: u32,          // workgroups (and outputs written) per output element
    divisor: f32,         // reduce_mean divides by this: the original reduced count
    // 1 when the reduced axes are the innermost ones (a scalar sum, a row sum): reduced index r
    // is then at offset r, with none of the integer divisions of `offset`, which a CPU driver
    // runs lane by lane.
    red_inner: u32,
    _pad0: u32, _pad1: u32, _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

// Invocations per output element: 64 keeps the tree at six barriers, which matters on lavapipe
// where barriers are expensive, and covers the short reductions (a batch of 64) in one pass.
const WG: u32 = 64u;
var<workgroup> partial: array<f32, WG>;

// Offset in x of index i of the row-major index space `d` (a sub-space of the padded input whose
// other axes have size 1, so they contribute nothing).
fn offset(i: u32, d: vec4<u32>) -> u32 {
    let s = p.strides;
    var r = i;
    var off = (r % d.w) * s.w;
    r /= d.w;
    off += (r % d.z) * s.z;
    r /= d.z;
    off += (r % d.y) * s.y;
    r /= d.y;
    return off + r * s.x;
}

fn reduce(wid: vec3<u32>, nwg: vec3<u32>, l: Lanes, mean: bool) {
    let lid = l.index;
    let g = wid.x + wid.y * nwg.x;
    let in_range = g < p.out_count * p.slices;
    let o = g / p.slices;
    let base = select(0u, offset(o, p.out_dims), in_range);
    // This workgroup's slice [start, end) of the reduced index space.
    let len = (p.red_count + p.slices - 1u) / p.slices;
    let start = (g % p.slices) * len;
    let end = select(0u, min(start + len, p.red_count), in_range);
    var acc = 0.0;
    if p.red_inner == 1u {
        for (var r = start + lid; r < end; r += WG) {
            acc += x[base + r];
        }
    } else {
        for (var r = start + lid; r < end; r += WG) {
            acc += x[base + offset(r, p.red_dims)];
        }
    }
    partial[lid] = acc;
    let total = tree_sum(l);
    if in_range && lid == 0u {
        y[g] = select(total, total / p.divisor, mean);
    }
}

@compute @workgroup_size(WG)
fn reduce_sum(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              l: Lanes) {
    reduce(wid, nwg, l, false);
}

@compute @workgroup_size(WG)
fn reduce_mean(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               l: Lanes) {
    reduce(wid, nwg, l, true);
}
