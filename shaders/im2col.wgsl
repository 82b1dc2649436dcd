// im2col and its adjoint col2im: the data movement that turns a convolution into a matmul.
//
//   im2col: image [N, C, H, W] -> cols [N, C·kh·kw, OH·OW]
//           cols[n, c·kh·kw + i·kw + j, oy·OW + ox] = image[n, c, oy·sh − ph + i·dh, ox·sw − pw + j·dw]
//           (zero where the window reaches into the padding)
//   col2im: cols -> image, each image element the sum of every column entry that im2col copied
//           from it. Written as a gather (each image element summed by one invocation, looping
//           over the kernel offsets that can reach it), so it needs no atomics and is
//           deterministic.
//   col2im_bias: col2im plus bias[c] on channel c (a transposed convolution's bias, added in
//           the same pass instead of a second sweep over the image).
//
// Bindings are named by role, not tensor, so that every entry point reads binding 1 and writes
// binding 2 with one declaration each (no two variables share a binding): im2col reads the image
// and writes cols; col2im reads cols and writes the image. The launchers pass them in that order.
//
// Mapping. Both outputs are a stack of `rows` planes of `plane_h × plane_w` elements (im2col:
// N·C·kh·kw column rows, each an OH × OW plane of window positions; col2im: N·C image planes of
// H × W). A workgroup writes `rows_per_group` consecutive planes, and in each the lines
// [chunk·chunk_h, chunk·chunk_h + chunk_h) (the launcher splits a plane into chunks only when
// one plane is more than a workgroup's share). Its 64 invocations form a tile_w × tile_h tile
// (tile_w = min(plane_w, 64)): invocation ly·tile_w + lx takes columns lx, lx + tile_w, ... and
// lines ly, ly + tile_h, ... of the chunk, and at each such position loops over the workgroup's
// planes, innermost. One step of all invocations writes tile_h whole consecutive lines of one
// plane (contiguous memory; coalesced on GPUs), and whatever depends on the position alone
// (col2im's kernel offsets that reach it) is found once for all the planes.
//
// No integer division per element: divisions by runtime values are scalarized on SIMD CPU
// drivers (lavapipe: AVX2 has no vector divide, so 8 scalar divides per 8-lane step). Only
// workgroup-uniform values are divided (the workgroup's chunk and first plane, the chunk's first
// line), a few times per invocation: a fixed cost per workgroup. An invocation's offset in the
// tile (below 64) is divided by a multiply and shift with constants from the launcher, and the
// rest is stepped: im2col's plane index (n, c, i, j) carries from plane to plane and its source
// position with it; col2im tracks y + ph = qy·sh + ry as y advances by tile_h (and x + pw by sw
// likewise), and finds the kernel offsets that reach (y, x) by stepping i·dh = a·sh + b.
// The launcher folds the linear workgroup index into x and y (per-dimension dispatch limit) and
// precomputes the constants below.

struct Params {
    batch: u32, channels: u32, height: u32, width: u32,
    kh: u32, kw: u32, stride_h: u32, stride_w: u32,
    pad_h: u32, pad_w: u32, dil_h: u32, dil_w: u32,
    out_h: u32, out_w: u32,
    // The launch layout (see above).
    tile_w: u32, tile_h: u32,
    rows: u32, rows_per_group: u32,
    chunk_h: u32, chunks: u32,  // lines per workgroup (a multiple of tile_h); chunks per plane
    groups: u32,                // chunks · ⌈rows / rows_per_group⌉
    // ⌊n / d⌋ = (n·m) >> s for every n < 64, for d = tile_w, sh and sw (see `div_lane`).
    tile_m: u32, tile_s: u32,
    sh_m: u32, sh_s: u32,
    sw_m: u32, sw_s: u32,
    // col2im's stepping constants, as quotient and remainder by the stride:
    step_q_h: u32, step_r_h: u32,  // tile_h = step_q_h·sh + step_r_h
    step_q_w: u32, step_r_w: u32,  // tile_w = step_q_w·sw + step_r_w
    dil_q_h: u32, dil_r_h: u32,    // dh = dil_q_h·sh + dil_r_h
    dil_q_w: u32, dil_r_w: u32,    // dw = dil_q_w·sw + dil_r_w
    // With g = gcd(sw, dw): the kernel columns j that reach one image column x recur every
    // j_period = sw / g, and each next one reads window column ox_step = dw / g further left.
    j_period: u32, ox_step: u32,
    i_period: u32, oy_step: u32,   // the same for the rows: sh / gcd(sh, dh), dh / gcd(sh, dh)
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;

const WG: u32 = 64u;

// ⌊n / d⌋ for n < 64, with m = ⌈2^s / d⌉ and s = 6 + ⌈log₂ d⌉ (m = 0 for d ≥ 64): exact, since
// n·(m·d − 2^s) < 64·d ≤ 2^s. A multiply vectorizes where a divide does not.
fn div_lane(n: u32, m: u32, s: u32) -> u32 {
    return (n * m) >> s;
}

// This invocation's place: its workgroup's planes [r0, r1), its chunk's lines [first, y_end),
// its position (ly, lx) in the tile and so its first line y0 = first + ly. `ok` is false for
// invocations outside the tile and workgroups past the end of a folded dispatch.
struct Place {
    ok: bool,
    lx: u32,
    ly: u32,
    first: u32,
    y0: u32,
    y_end: u32,
    r0: u32,
    r1: u32,
}

fn place(wid: vec3<u32>, nwg: vec3<u32>, lid: u32, plane_h: u32) -> Place {
    var pl: Place;
    let w = wid.x + wid.y * nwg.x;
    pl.ok = w < p.groups && lid < p.tile_w * p.tile_h;
    pl.ly = div_lane(lid, p.tile_m, p.tile_s);
    pl.lx = lid - pl.ly * p.tile_w;
    // Workgroup-uniform divisions.
    let chunk = w % p.chunks;
    pl.first = chunk * p.chunk_h;
    pl.y0 = pl.first + pl.ly;
    pl.y_end = min(pl.first + p.chunk_h, plane_h);
    pl.r0 = (w / p.chunks) * p.rows_per_group;
    pl.r1 = min(pl.r0 + p.rows_per_group, p.rows);
    return pl;
}

@compute @workgroup_size(WG)
fn im2col(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let pl = place(wid, nwg, lid, p.out_h);
    if !pl.ok {
        return;
    }
    // Column row r0 = (nc·kh + i)·kw + j (workgroup-uniform); later rows carry j → i → nc.
    let j0 = pl.r0 % p.kw;
    let t = pl.r0 / p.kw;
    let i0 = t % p.kh;
    let plane0 = (t / p.kh) * p.height * p.width;
    let plane = p.out_h * p.out_w;
    let hw = p.height * p.width;
    let x_back = p.kw * p.dil_w; // from j = kw back to j = 0
    let y_back = p.kh * p.dil_h;
    for (var ox = pl.lx; ox < p.out_w; ox += p.tile_w) {
        for (var oy = pl.y0; oy < pl.y_end; oy += p.tile_h) {
            // Source coordinates wrap below zero (u32), so one `<` tests both ends.
            var ix = ox * p.stride_w + j0 * p.dil_w - p.pad_w;
            var iy = oy * p.stride_h + i0 * p.dil_h - p.pad_h;
            var j = j0;
            var i = i0;
            var src_plane = plane0;
            var d = pl.r0 * plane + oy * p.out_w + ox;
            for (var r = pl.r0; r < pl.r1; r++) {
                var v = 0.0;
                if ix < p.width && iy < p.height {
                    v = src[src_plane + iy * p.width + ix];
                }
                dst[d] = v;
                d += plane;
                j += 1u;
                ix += p.dil_w;
                if j == p.kw {
                    j = 0u;
                    ix -= x_back;
                    i += 1u;
                    iy += p.dil_h;
                    if i == p.kh {
                        i = 0u;
                        iy -= y_back;
                        src_plane += hw;
                    }
                }
            }
        }
    }
}

// A quotient and remainder by a stride, t = q·s + r.
struct QR {
    q: u32,
    r: u32,
}

// t + n by s, from t's (workgroup-uniform: divided) and a lane offset n < 64 (multiplied).
fn qr_lane(t: u32, n: u32, s: u32, m: u32, sh: u32) -> QR {
    var a = QR(t / s, t % s);
    let nq = div_lane(n, m, sh);
    a.q += nq;
    a.r += n - nq * s;
    if a.r >= s {
        a.r -= s;
        a.q += 1u;
    }
    return a;
}

// Adds (dq, dr) with dr < s to a quotient and remainder by s.
fn qr_step(a: QR, dq: u32, dr: u32, s: u32) -> QR {
    var b = QR(a.q + dq, a.r + dr);
    if b.r >= s {
        b.r -= s;
        b.q += 1u;
    }
    return b;
}

// The kernel offsets along one axis that reach image coordinate y, where y + pad = qy·s + ry:
// offset i reads window position o = (y + pad − i·dil) / s when the division is exact, i.e.
// when i·dil = a·s + ry (stepped: dil = dil_q·s + dil_r), then o = qy − a. These recur every
// `period` offsets, each `o_step` positions further back; the valid ones (o < out, wrapping
// below zero) are consecutive. Returns the first valid offset and its position, and how many.
struct Reach {
    first: u32,
    o: u32,
    count: u32,
}

fn reach(qy: u32, ry: u32, k: u32, s: u32, dil_q: u32, dil_r: u32, period: u32, o_step: u32,
         out: u32) -> Reach {
    var re = Reach(0u, 0u, 0u);
    var a = 0u;
    var b = 0u;
    var i0 = k;
    let search = min(period, k);
    for (var i = 0u; i < search; i++) {
        if b == ry {
            i0 = i;
            break;
        }
        a += dil_q;
        b += dil_r;
        if b >= s {
            b -= s;
            a += 1u;
        }
    }
    var o = qy - a; // wraps when the window would start before position 0: never valid
    for (var i = i0; i < k; i += period) {
        if o < out {
            if re.count == 0u {
                re.first = i;
                re.o = o;
            }
            re.count += 1u;
        }
        o -= o_step;
    }
    return re;
}

// The sum of the column entries that reach one image element, in (i, j) order: `base` is the
// first column row of its image plane, (n·C + c)·kh·kw·OH·OW; `x_base` the offset of its first
// reaching (j, ox), j·OH·OW + ox.
fn gather(base: u32, rx: Reach, x_base: u32, ry: Reach) -> f32 {
    let plane = p.out_h * p.out_w;
    let i_step = p.i_period * p.kw * plane - p.oy_step * p.out_w; // wraps; exact mod 2^32
    let x_step = p.j_period * plane - p.ox_step;
    var acc = 0.0;
    var row = base + (ry.first * p.kw * plane + ry.o * p.out_w) + x_base;
    for (var a = 0u; a < ry.count; a++) {
        var e = row;
        for (var n = 0u; n < rx.count; n++) {
            acc += src[e];
            e += x_step;
        }
        row += i_step;
    }
    return acc;
}

// What col2im finds once per invocation and column x, and steps from one column to the next.
struct Start {
    x: QR,  // x + pw by sw
    y: QR,  // y0 + ph by sh
}

fn start(pl: Place) -> Start {
    return Start(
        qr_lane(p.pad_w, pl.lx, p.stride_w, p.sw_m, p.sw_s),
        qr_lane(pl.first + p.pad_h, pl.ly, p.stride_h, p.sh_m, p.sh_s),
    );
}

fn reach_x(x: QR) -> Reach {
    return reach(x.q, x.r, p.kw, p.stride_w, p.dil_q_w, p.dil_r_w, p.j_period, p.ox_step,
        p.out_w);
}

fn reach_y(y: QR) -> Reach {
    return reach(y.q, y.r, p.kh, p.stride_h, p.dil_q_h, p.dil_r_h, p.i_period, p.oy_step,
        p.out_h);
}

// col2im and col2im_bias: for each of this invocation's columns x and lines y, every image plane
// [r0, r1) of the workgroup, innermost. (Two entry points rather than one with a flag, so that
// col2im does not bind the bias.)
@compute @workgroup_size(WG)
fn col2im(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let pl = place(wid, nwg, lid, p.height);
    if !pl.ok {
        return;
    }
    let hw = p.height * p.width;
    let plane = p.out_h * p.out_w;
    let nc_step = p.kh * p.kw * plane;
    let st = start(pl);
    var qx = st.x;
    for (var x = pl.lx; x < p.width; x += p.tile_w) {
        let rx = reach_x(qx);
        let x_base = rx.first * plane + rx.o;
        var qy = st.y;
        for (var y = pl.y0; y < pl.y_end; y += p.tile_h) {
            let ry = reach_y(qy);
            var d = pl.r0 * hw + y * p.width + x;
            var base = pl.r0 * nc_step;
            for (var r = pl.r0; r < pl.r1; r++) {
                dst[d] = gather(base, rx, x_base, ry);
                d += hw;
                base += nc_step;
            }
            qy = qr_step(qy, p.step_q_h, p.step_r_h, p.stride_h);
        }
        qx = qr_step(qx, p.step_q_w, p.step_r_w, p.stride_w);
    }
}

@compute @workgroup_size(WG)
fn col2im_bias(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let pl = place(wid, nwg, lid, p.height);
    if !pl.ok {
        return;
    }
    let hw = p.height * p.width;
    let plane = p.out_h * p.out_w;
    let nc_step = p.kh * p.kw * plane;
    let c0 = pl.r0 % p.channels; // plane r is channel r mod C (workgroup-uniform)
    let st = start(pl);
    var qx = st.x;
    for (var x = pl.lx; x < p.width; x += p.tile_w) {
        let rx = reach_x(qx);
        let x_base = rx.first * plane + rx.o;
        var qy = st.y;
        for (var y = pl.y0; y < pl.y_end; y += p.tile_h) {
            let ry = reach_y(qy);
            var d = pl.r0 * hw + y * p.width + x;
            var base = pl.r0 * nc_step;
            var c = c0;
            for (var r = pl.r0; r < pl.r1; r++) {
                dst[d] = gather(base, rx, x_base, ry) + bias[c];
                d += hw;
                base += nc_step;
                c += 1u;
                if c == p.channels {
                    c = 0u;
                }
            }
            qy = qr_step(qy, p.step_q_h, p.step_r_h, p.stride_h);
        }
        qx = qr_step(qx, p.step_q_w, p.step_r_w, p.stride_w);
    }
}
