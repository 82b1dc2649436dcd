// Whether a tensor — a session's parameters after an optimizer step — is still finite, found on
// the device, so that a training step reports divergence together with its loss (the executor
// reads both through its loss read-back ring) instead of a read-back of every parameter.
//
// first_nonfinite: flag[0] = the largest (n − i) over the non-finite elements i, so 0 when every
// element is finite and otherwise n minus the index of the first non-finite one (from which the
// host names its tensor). An integer atomic max: the result does not depend on the order in
// which invocations run. The caller clears flag[0] first.

struct Params {
    n: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> flag: array<atomic<u32>>;

const WG: u32 = 256u;

@compute @workgroup_size(WG)
fn first_nonfinite(@builtin(workgroup_id) wid: vec3<u32>,
                   @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * WG + lid;
    if i >= p.n {
        return;
    }
    // All exponent bits set: an infinity or a NaN. Tested on the bits, because WGSL lets a
    // compiler assume floats are finite.
    if (bitcast<u32>(x[i]) & 0x7f800000u) == 0x7f800000u {
        atomicMax(&flag[0], p.n - i);
    }
}
