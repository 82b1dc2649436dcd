// im2col and its adjoint col2im: the data movement that turns a convolution into a matmul.
//
//   im2col: image [N, C, H, W] -> cols [N, C·kh·kw, OH·OW]
//           cols[n, c·kh·kw + i·kw + j, oy·OW + ox] = image[n, c, oy·sh − ph + i·dh, ox·sw − pw + j·dw]
//           (zero where the window reaches into the padding)
//   col2im: cols -> image, each image element the sum of every column entry that im2col copied
//           from it. Written as a gather (one invocation per image element, looping over the
//           kernel offsets that can reach it), so it needs no atomics and is deterministic.
//   col2im_bias: col2im plus bias[c] on channel c (a transposed convolution's bias, added in
//           the same pass instead of a second sweep over the image).
//
// Bindings are named by role, not tensor, so that every entry point reads binding 1 and writes
// binding 2 with one declaration each (no two variables share a binding): im2col reads the image
// and writes cols; col2im reads cols and writes the image. The launchers pass them in that order.
//
// One invocation per output element, 64 per workgroup; the linear workgroup index is folded into
// x and y by the launcher to respect the per-dimension dispatch limit.

struct Params {
    batch: u32, channels: u32, height: u32, width: u32,
    kh: u32, kw: u32, stride_h: u32, stride_w: u32,
    pad_h: u32, pad_w: u32, dil_h: u32, dil_w: u32,
    out_h: u32, out_w: u32,
    total: u32,   // elements written by this dispatch
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;

const WG: u32 = 64u;

fn linear_index(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.x + wid.y * nwg.x) * WG + lid;
}

@compute @workgroup_size(WG)
fn im2col(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let idx = linear_index(wid, nwg, lid);
    if idx >= p.total {
        return;
    }
    // idx = ((n·rows + row)·OH + oy)·OW + ox, with row = (c·kh + i)·kw + j
    let ox = idx % p.out_w;
    let oy = (idx / p.out_w) % p.out_h;
    let t = idx / (p.out_w * p.out_h);
    let j = t % p.kw;
    let i = (t / p.kw) % p.kh;
    let nc = t / (p.kw * p.kh); // n·C + c, the image plane this row reads
    let iy = i32(oy * p.stride_h + i * p.dil_h) - i32(p.pad_h);
    let ix = i32(ox * p.stride_w + j * p.dil_w) - i32(p.pad_w);
    var v = 0.0;
    if iy >= 0 && iy < i32(p.height) && ix >= 0 && ix < i32(p.width) {
        v = src[(nc * p.height + u32(iy)) * p.width + u32(ix)];
    }
    dst[idx] = v;
}

// The sum of the column entries that im2col took from image element idx = ((n·C + c)·H + y)·W + x.
// Kernel offset i reaches row y from window row oy when oy·sh = y + ph − i·dh, so only offsets
// whose difference is a non-negative multiple of the stride, below OH, contribute. Summed in
// (i, j) order, as the CPU twin does.
fn gather(idx: u32) -> f32 {
    let x = idx % p.width;
    let y = (idx / p.width) % p.height;
    let nc = idx / (p.width * p.height);
    let plane = p.out_h * p.out_w;
    var acc = 0.0;
    for (var i = 0u; i < p.kh; i++) {
        let ty = i32(y + p.pad_h) - i32(i * p.dil_h);
        if ty < 0 || u32(ty) % p.stride_h != 0u {
            continue;
        }
        let oy = u32(ty) / p.stride_h;
        if oy >= p.out_h {
            continue;
        }
        for (var j = 0u; j < p.kw; j++) {
            let tx = i32(x + p.pad_w) - i32(j * p.dil_w);
            if tx < 0 || u32(tx) % p.stride_w != 0u {
                continue;
            }
            let ox = u32(tx) / p.stride_w;
            if ox >= p.out_w {
                continue;
            }
            let row = (nc * p.kh + i) * p.kw + j;
            acc += src[row * plane + oy * p.out_w + ox];
        }
    }
    return acc;
}

@compute @workgroup_size(WG)
fn col2im(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let idx = linear_index(wid, nwg, lid);
    if idx >= p.total {
        return;
    }
    dst[idx] = gather(idx);
}

@compute @workgroup_size(WG)
fn col2im_bias(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let idx = linear_index(wid, nwg, lid);
    if idx >= p.total {
        return;
    }
    let c = (idx / (p.width * p.height)) % p.channels;
    dst[idx] = gather(idx) + bias[c];
}
