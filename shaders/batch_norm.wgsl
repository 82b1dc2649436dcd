// Batch normalisation (nn.BatchNorm2d, and BatchNorm1d on [N, C]) over x = [N, C, plane]: each
// channel's values are normalised by a mean and a variance, then scaled and shifted by the
// channel's weight and bias.
//
// In training the moments are the batch's own (batch_norm_stats: mean and biased variance, one
// workgroup per channel, summed in tree order, so the same bits on every run); in evaluation they
// are the running statistics. The moments come as two bindings, `mean` and `var`, read from
// `mean_at` and `var_at`: the batch's [2, C] statistics are bound to both (means at 0, variances at
// C), the running ones each to its own.
//
// The backward pass in training is the normalisation's full gradient, through the batch's moments:
//   dx = w·inv·(dy − Σdy/M − x̂·Σ(dy·x̂)/M),  x̂ = (x − mean)·inv,  inv = 1/sqrt(var + eps),
// with M = N·plane and both sums per channel (batch_norm_backward_sums, which also gives the
// bias's gradient Σdy and the weight's Σ(dy·x̂)). In evaluation the moments are constants:
// dx = dy·w·inv (batch_norm_backward_eval).
//
// Bindings (each entry point uses 1..k in order):
//   batch_norm_stats:         1 x, 2 stats out [2, C]
//   batch_norm_forward:       1 x, 2 mean, 3 var, 4 weight, 5 bias, 6 y
//   batch_norm_backward_sums: 1 x, 2 mean, 3 var, 4 dy, 5 sums out [2, C]
//   batch_norm_backward:      1 x, 2 mean, 3 var, 4 weight, 5 dy, 6 sums, 7 dx
//   batch_norm_backward_eval: 1 dy, 2 var, 3 weight, 4 dx
//
// `tree_sum` comes from tree_sum.wgsl (or its subgroup variant), put in front of this file.

struct Params {
    n: u32,        // elements of x
    channels: u32, // C
    plane: u32,    // values of one channel in one image (H·W; 1 for [N, C])
    count: u32,    // M = N·plane, the values a channel's moments are taken over
    eps: f32,
    mean_at: u32,
    var_at: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> mean: array<f32>;
@group(0) @binding(2) var<storage, read_write> stats_out: array<f32>;
@group(0) @binding(3) var<storage, read> var_in: array<f32>;
@group(0) @binding(4) var<storage, read> weight: array<f32>;
@group(0) @binding(4) var<storage, read> dy_in: array<f32>;          // backward_sums
@group(0) @binding(5) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read> dy: array<f32>;             // backward
@group(0) @binding(5) var<storage, read_write> sums_out: array<f32>; // backward_sums
@group(0) @binding(6) var<storage, read_write> out: array<f32>;      // forward
@group(0) @binding(6) var<storage, read> sums: array<f32>;           // backward
@group(0) @binding(7) var<storage, read_write> dx: array<f32>;       // backward
@group(0) @binding(1) var<storage, read> eval_dy: array<f32>;        // backward_eval
@group(0) @binding(2) var<storage, read> eval_var: array<f32>;
@group(0) @binding(3) var<storage, read> eval_weight: array<f32>;
@group(0) @binding(4) var<storage, read_write> eval_dx: array<f32>;

const WG: u32 = 256u;
var<workgroup> partial: array<f32, WG>;

// Where value k (of count) of channel c lies in x.
fn at(c: u32, k: u32) -> u32 {
    let b = k / p.plane;
    return (b * p.channels + c) * p.plane + (k - b * p.plane);
}

fn channel_of(i: u32) -> u32 {
    return (i / p.plane) % p.channels;
}

fn inv_std(c: u32) -> f32 {
    return inverseSqrt(var_in[p.var_at + c] + p.eps);
}

// stats[c] = the mean, stats[C + c] = the biased variance (two passes: the variance sums squared
// deviations from the mean, which keeps it ≥ 0 and accurate). One workgroup per channel.
@compute @workgroup_size(WG)
fn batch_norm_stats(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    l: Lanes) {
    let c = wid.x + wid.y * nwg.x;
    if c >= p.channels {
        return;
    }
    var acc = 0.0;
    for (var k = l.index; k < p.count; k += WG) {
        acc += x[at(c, k)];
    }
    partial[l.index] = acc;
    let m = tree_sum(l) / f32(p.count);
    // Every lane has read the total before partial[] is written again.
    workgroupBarrier();
    var sq = 0.0;
    for (var k = l.index; k < p.count; k += WG) {
        let d = x[at(c, k)] - m;
        sq += d * d;
    }
    partial[l.index] = sq;
    let v = tree_sum(l) / f32(p.count);
    if l.index == 0u {
        stats_out[c] = m;
        stats_out[p.channels + c] = v;
    }
}

// y = (x − mean)·inv·weight + bias. One invocation per element.
@compute @workgroup_size(WG)
fn batch_norm_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                      @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * WG + lid;
    if i >= p.n {
        return;
    }
    let c = channel_of(i);
    out[i] = (x[i] - mean[p.mean_at + c]) * inv_std(c) * weight[c] + bias[c];
}

// sums[c] = Σ dy, sums[C + c] = Σ dy·x̂ over channel c. One workgroup per channel.
@compute @workgroup_size(WG)
fn batch_norm_backward_sums(@builtin(workgroup_id) wid: vec3<u32>,
                            @builtin(num_workgroups) nwg: vec3<u32>, l: Lanes) {
    let c = wid.x + wid.y * nwg.x;
    if c >= p.channels {
        return;
    }
    let m = mean[p.mean_at + c];
    var s0 = 0.0;
    var s1 = 0.0;
    for (var k = l.index; k < p.count; k += WG) {
        let j = at(c, k);
        s0 += dy_in[j];
        s1 += dy_in[j] * (x[j] - m);
    }
    partial[l.index] = s0;
    let sum_dy = tree_sum(l);
    workgroupBarrier();
    partial[l.index] = s1;
    let sum_dy_xc = tree_sum(l);
    if l.index == 0u {
        sums_out[c] = sum_dy;
        sums_out[p.channels + c] = sum_dy_xc * inv_std(c);
    }
}

// dx = w·inv·(dy − Σdy/M − x̂·Σ(dy·x̂)/M): training, through the batch's moments.
@compute @workgroup_size(WG)
fn batch_norm_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                       @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * WG + lid;
    if i >= p.n {
        return;
    }
    let c = channel_of(i);
    let inv = inv_std(c);
    let xhat = (x[i] - mean[p.mean_at + c]) * inv;
    let count = f32(p.count);
    dx[i] = weight[c] * inv * (dy[i] - sums[c] / count - xhat * sums[p.channels + c] / count);
}

// dx = dy·w·inv: evaluation, where the moments are constants.
@compute @workgroup_size(WG)
fn batch_norm_backward_eval(@builtin(workgroup_id) wid: vec3<u32>,
                            @builtin(num_workgroups) nwg: vec3<u32>,
                            @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * WG + lid;
    if i >= p.n {
        return;
    }
    let c = channel_of(i);
    eval_dx[i] = eval_dy[i] * eval_weight[c] * inverseSqrt(eval_var[c] + p.eps);
}
