// 2-D pooling and nearest upsampling of NCHW images, and their gradients: max_pool2d (a NaN in
// the window wins, as in PyTorch), avg_pool2d (padding counts as zeros: count_include_pad) and
// upsample_nearest2d (integer scale factors).
//
// One invocation per output element (forward) or per input element (backward). Every backward
// is a gather, not a scatter: an input element adds up the gradients of the outputs whose window
// holds it, in output order, so there are no atomics and the result is repeatable. The max
// pool's backward recomputes each such window's argmax from x instead of keeping indices: the
// op stays one input, one output, and a window is a few elements.
//
// The launcher dispatches a linear workgroup count folded into (x, y); past the end an
// invocation returns (no barriers here).
//
// Bindings: forward 1 = x, 2 = y. max_pool2d_backward 1 = x, 2 = dy, 3 = dx. avg_pool2d_backward
// and upsample_nearest2d_backward 1 = dy, 2 = dx (read-write).

struct Params {
    planes: u32, // n · c
    h: u32, w: u32,   // input
    oh: u32, ow: u32, // output
    kh: u32, kw: u32, // window (the scale factor when upsampling)
    sh: u32, sw: u32, // stride
    ph: u32, pw: u32, // padding
    count: u32,       // invocations that do work: output elements (forward), inputs (backward)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> in1: array<f32>;
@group(0) @binding(2) var<storage, read_write> out2: array<f32>;
@group(0) @binding(2) var<storage, read> in2: array<f32>;
@group(0) @binding(3) var<storage, read_write> out3: array<f32>;

const WG: u32 = 256u;

fn index(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.x + wid.y * nwg.x) * WG + lid;
}

// The input offset (within its plane) of the max of output (oy, ox)'s window, as PyTorch picks
// it: the first largest value, or the last NaN. Padding is never picked.
fn window_argmax(base: u32, oy: u32, ox: u32) -> u32 {
    var best = 0.0;
    var at = 0xffffffffu;
    for (var ky = 0u; ky < p.kh; ky++) {
        let iy = i32(oy * p.sh + ky) - i32(p.ph);
        if iy < 0 || iy >= i32(p.h) { continue; }
        for (var kx = 0u; kx < p.kw; kx++) {
            let ix = i32(ox * p.sw + kx) - i32(p.pw);
            if ix < 0 || ix >= i32(p.w) { continue; }
            let off = u32(iy) * p.w + u32(ix);
            let v = in1[base + off];
            if at == 0xffffffffu || (v > best && !is_nan(best)) || is_nan(v) {
                best = v;
                at = off;
            }
        }
    }
    return at;
}

@compute @workgroup_size(WG)
fn max_pool2d_forward(@builtin(workgroup_id) wid: vec3<u32>,
                      @builtin(num_workgroups) nwg: vec3<u32>,
                      @builtin(local_invocation_index) lid: u32) {
    let o = index(wid, nwg, lid);
    if o >= p.count { return; }
    let plane = o / (p.oh * p.ow);
    let r = o % (p.oh * p.ow);
    let base = plane * p.h * p.w;
    out2[o] = in1[base + window_argmax(base, r / p.ow, r % p.ow)];
}

// The outputs whose window holds input row (or column) i: [first, last] along one axis, for
// window k, stride s, padding pad and n outputs; empty (first > last) when there are none.
fn covering(i: u32, k: u32, s: u32, pad: u32, n: u32) -> vec2<i32> {
    let hi = i32(i + pad);
    let first = max((hi - i32(k) + i32(s)) / i32(s), 0); // ceil((hi − k + 1) / s), hi − k + 1 ≥ −k
    let last = min(hi / i32(s), i32(n) - 1);
    return vec2<i32>(select(first, 0, hi - i32(k) + 1 <= 0), last);
}

@compute @workgroup_size(WG)
fn max_pool2d_backward(@builtin(workgroup_id) wid: vec3<u32>,
                       @builtin(num_workgroups) nwg: vec3<u32>,
                       @builtin(local_invocation_index) lid: u32) {
    let i = index(wid, nwg, lid);
    if i >= p.count { return; }
    let plane = i / (p.h * p.w);
    let off = i % (p.h * p.w);
    let iy = off / p.w;
    let ix = off % p.w;
    let base = plane * p.h * p.w;
    let ys = covering(iy, p.kh, p.sh, p.ph, p.oh);
    let xs = covering(ix, p.kw, p.sw, p.pw, p.ow);
    var acc = 0.0;
    for (var oy = ys.x; oy <= ys.y; oy++) {
        for (var ox = xs.x; ox <= xs.y; ox++) {
            if window_argmax(base, u32(oy), u32(ox)) == off {
                acc += in2[(plane * p.oh + u32(oy)) * p.ow + u32(ox)];
            }
        }
    }
    out3[i] = acc;
}

@compute @workgroup_size(WG)
fn avg_pool2d_forward(@builtin(workgroup_id) wid: vec3<u32>,
                      @builtin(num_workgroups) nwg: vec3<u32>,
                      @builtin(local_invocation_index) lid: u32) {
    let o = index(wid, nwg, lid);
    if o >= p.count { return; }
    let plane = o / (p.oh * p.ow);
    let r = o % (p.oh * p.ow);
    let oy = r / p.ow;
    let ox = r % p.ow;
    let base = plane * p.h * p.w;
    var acc = 0.0;
    for (var ky = 0u; ky < p.kh; ky++) {
        let iy = i32(oy * p.sh + ky) - i32(p.ph);
        if iy < 0 || iy >= i32(p.h) { continue; }
        for (var kx = 0u; kx < p.kw; kx++) {
            let ix = i32(ox * p.sw + kx) - i32(p.pw);
            if ix < 0 || ix >= i32(p.w) { continue; }
            acc += in1[base + u32(iy) * p.w + u32(ix)];
        }
    }
    out2[o] = acc / f32(p.kh * p.kw);
}

// in1 = dy, out2 = dx: each output's gradient spread evenly over its whole window.
@compute @workgroup_size(WG)
fn avg_pool2d_backward(@builtin(workgroup_id) wid: vec3<u32>,
                       @builtin(num_workgroups) nwg: vec3<u32>,
                       @builtin(local_invocation_index) lid: u32) {
    let i = index(wid, nwg, lid);
    if i >= p.count { return; }
    let plane = i / (p.h * p.w);
    let off = i % (p.h * p.w);
    let ys = covering(off / p.w, p.kh, p.sh, p.ph, p.oh);
    let xs = covering(off % p.w, p.kw, p.sw, p.pw, p.ow);
    var acc = 0.0;
    for (var oy = ys.x; oy <= ys.y; oy++) {
        for (var ox = xs.x; ox <= xs.y; ox++) {
            acc += in1[(plane * p.oh + u32(oy)) * p.ow + u32(ox)];
        }
    }
    out2[i] = acc / f32(p.kh * p.kw);
}

@compute @workgroup_size(WG)
fn upsample_nearest2d_forward(@builtin(workgroup_id) wid: vec3<u32>,
                              @builtin(num_workgroups) nwg: vec3<u32>,
                              @builtin(local_invocation_index) lid: u32) {
    let o = index(wid, nwg, lid);
    if o >= p.count { return; }
    let plane = o / (p.oh * p.ow);
    let r = o % (p.oh * p.ow);
    out2[o] = in1[(plane * p.h + (r / p.ow) / p.kh) * p.w + (r % p.ow) / p.kw];
}

// in1 = dy, out2 = dx: the sum of the kh × kw block of copies, row by row.
@compute @workgroup_size(WG)
fn upsample_nearest2d_backward(@builtin(workgroup_id) wid: vec3<u32>,
                               @builtin(num_workgroups) nwg: vec3<u32>,
                               @builtin(local_invocation_index) lid: u32) {
    let i = index(wid, nwg, lid);
    if i >= p.count { return; }
    let plane = i / (p.h * p.w);
    let off = i % (p.h * p.w);
    let y0 = (off / p.w) * p.kh;
    let x0 = (off % p.w) * p.kw;
    var acc = 0.0;
    for (var a = 0u; a < p.kh; a++) {
        for (var b = 0u; b < p.kw; b++) {
            acc += in1[(plane * p.oh + y0 + a) * p.ow + x0 + b];
        }
    }
    out2[i] = acc;
}
