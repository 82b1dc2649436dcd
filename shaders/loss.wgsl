// Losses and their gradients: the elementwise reconstruction losses (MSE, L1, binary
// cross-entropy on probabilities or on logits) and softmax cross-entropy (classifier head), each
// reducing to one scalar.
//
// The forward losses split their elements (MSE) or rows (cross-entropy) into `slices` contiguous
// slices, one workgroup each, so that a big batch fills a GPU instead of one of its cores: each
// invocation strides over its workgroup's slice in a fixed order, the workgroup adds its
// invocations' sums in a fixed tree order in workgroup memory, and `loss_sum` adds the slices'
// sums the same way and divides. With one slice (small inputs) the first pass writes the mean
// itself. No atomics, so the loss is bit-for-bit repeatable on an adapter.
//
// The gradients take g[1], the upstream gradient of the loss (1 for a plain training step), as
// a tensor so a graph can chain them without a host round trip.
//
// Class labels out of range (>= classes) cannot be reported from here: such a row contributes 0
// to the loss and gets a zero gradient (nothing is read out of bounds). Callers validate labels
// on the host when they upload them (kernels::loss::upload_labels, cpu::loss::check_labels).
//
// Bindings: 1 = y / logits, 2 = targets (MSE) / labels (cross-entropy),
//           3 = loss out[1] (forward) / g[1] (backward), 4 = gradient (backward).

struct Params {
    n: u32,        // MSE: elements; cross-entropy: rows (batch); loss_sum: slices
    classes: u32,  // cross-entropy: columns of the logits
    slices: u32,   // forward losses: workgroups of the first pass
    divisor: u32,  // loss_sum: the count the total is divided by (elements or rows)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> z: array<f32>; // y (MSE) or logits (cross-entropy)
@group(0) @binding(2) var<storage, read> tgt: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<u32>;
@group(0) @binding(3) var<storage, read_write> loss: array<f32>;
@group(0) @binding(3) var<storage, read> g: array<f32>;
@group(0) @binding(4) var<storage, read_write> grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> mean_out: array<f32>; // loss_sum, kl_divergence
@group(0) @binding(2) var<storage, read> kl_g: array<f32>;          // kl_divergence_backward
@group(0) @binding(3) var<storage, read_write> kl_grad: array<f32>; // kl_divergence_backward

const WG: u32 = 256u;
var<workgroup> partial: array<f32, WG>;

// `tree_sum` (a fixed tree order over partial[]) comes from tree_sum.wgsl, put in front of this
// file.

// This workgroup's slice [x, y) of `n` items: the whole range when there is one slice.
fn slice(w: u32, n: u32) -> vec2<u32> {
    let len = (n + p.slices - 1u) / p.slices;
    let start = min(w * len, n);
    return vec2<u32>(start, start + min(len, n - start));
}

// The elementwise losses (codes as spec::PointLoss): 0 MSE, 1 L1, 2 BCE on probabilities, 3 BCE
// on logits. One element's term; a NaN prediction gives NaN (max() and clamps may drop one).
fn point_term(kind: u32, y: f32, t: f32) -> f32 {
    var v: f32;
    switch kind {
        case 1u: { v = abs(y - t); }
        // PyTorch clamps each log at −100, so a certain wrong answer costs 100.
        case 2u: { v = -(t * clamped_log(y) + (1.0 - t) * clamped_log(1.0 - y)); }
        // log(1 + e^(−|y|)) never overflows; the lost log1p digits are below 1e-7 absolute.
        case 3u: { v = max(y, 0.0) - y * t + log(1.0 + exp(-abs(y))); }
        default: { let d = y - t; v = d * d; }
    }
    return select(v, y, is_nan(y));
}

// max(log(x), −100), PyTorch's clamp in BCELoss. Below the smallest normal float the answer is
// −100 without asking log(): drivers differ there (SwiftShader's log(0) is about −88, not −inf).
// Between e^−100 and that (denormals) this gives −100 where PyTorch gives log(x) ≥ −100.
fn clamped_log(x: f32) -> f32 {
    return select(max(log(x), -100.0), -100.0, x < 1.17549435e-38);
}

// ∂ term / ∂y: L1's sign(0) is 0; BCE divides by max(y(1 − y), 1e-12) as PyTorch does.
fn point_grad(kind: u32, y: f32, t: f32) -> f32 {
    switch kind {
        case 1u: { return select(sign(y - t), y, is_nan(y)); }
        case 2u: { return (y - t) / max((1.0 - y) * y, 1e-12); }
        case 3u: { return 1.0 / (1.0 + exp(-y)) - t; }
        default: { return 2.0 * (y - t); }
    }
}

// With one slice, out[0] = mean of the terms; with several, out[w] = Σ over slice w.
fn point_loss(wid: vec3<u32>, l: Lanes, kind: u32) {
    let lid = l.index;
    let r = slice(wid.x, p.n);
    var acc = 0.0;
    for (var i = r.x + lid; i < r.y; i += WG) {
        acc += point_term(kind, z[i], tgt[i]);
    }
    partial[lid] = acc;
    let total = tree_sum(l);
    if lid == 0u {
        loss[wid.x] = select(total, total / f32(p.n), p.slices == 1u);
    }
}

// dy = grad(y, t)/numel · g[0]. One invocation per element.
fn point_loss_backward(wid: vec3<u32>, nwg: vec3<u32>, l: Lanes, kind: u32) {
    let i = (wid.x + wid.y * nwg.x) * WG + l.index;
    if i >= p.n {
        return;
    }
    grad[i] = point_grad(kind, z[i], tgt[i]) / f32(p.n) * g[0];
}

@compute @workgroup_size(WG)
fn mse_loss(@builtin(workgroup_id) wid: vec3<u32>, l: Lanes) {
    point_loss(wid, l, 0u);
}

@compute @workgroup_size(WG)
fn l1_loss(@builtin(workgroup_id) wid: vec3<u32>, l: Lanes) {
    point_loss(wid, l, 1u);
}

@compute @workgroup_size(WG)
fn bce_loss(@builtin(workgroup_id) wid: vec3<u32>, l: Lanes) {
    point_loss(wid, l, 2u);
}

@compute @workgroup_size(WG)
fn bce_with_logits_loss(@builtin(workgroup_id) wid: vec3<u32>, l: Lanes) {
    point_loss(wid, l, 3u);
}

// The second pass of a sliced loss: out[0] = Σ of the n slice sums (in tree order) / divisor.
// One workgroup.
@compute @workgroup_size(WG)
fn loss_sum(l: Lanes) {
    let lid = l.index;
    var acc = 0.0;
    for (var i = lid; i < p.n; i += WG) {
        acc += z[i];
    }
    partial[lid] = acc;
    let total = tree_sum(l);
    if lid == 0u {
        mean_out[0] = total / f32(p.divisor);
    }
}

@compute @workgroup_size(WG)
fn mse_loss_backward(@builtin(workgroup_id) wid: vec3<u32>,
                     @builtin(num_workgroups) nwg: vec3<u32>, l: Lanes) {
    point_loss_backward(wid, nwg, l, 0u);
}

@compute @workgroup_size(WG)
fn l1_loss_backward(@builtin(workgroup_id) wid: vec3<u32>,
                    @builtin(num_workgroups) nwg: vec3<u32>, l: Lanes) {
    point_loss_backward(wid, nwg, l, 1u);
}

@compute @workgroup_size(WG)
fn bce_loss_backward(@builtin(workgroup_id) wid: vec3<u32>,
                     @builtin(num_workgroups) nwg: vec3<u32>, l: Lanes) {
    point_loss_backward(wid, nwg, l, 2u);
}

@compute @workgroup_size(WG)
fn bce_with_logits_loss_backward(@builtin(workgroup_id) wid: vec3<u32>,
                                 @builtin(num_workgroups) nwg: vec3<u32>, l: Lanes) {
    point_loss_backward(wid, nwg, l, 3u);
}

// Row max and Σ exp(z − max) of one row of the logits: subtracting the max keeps every exp ≤ 1.
// A row with a NaN has a NaN max, so that its loss and gradient are NaN as in PyTorch (max()
// may drop a NaN, and some exp() of NaN return a number).
fn row_stats(base: u32) -> vec2<f32> {
    var m = z[base];
    var any_nan = false;
    var a_nan = 0.0;
    for (var k = 0u; k < p.classes; k++) {
        let v = z[base + k];
        m = max(m, v);
        if is_nan(v) {
            any_nan = true;
            a_nan = v;
        }
    }
    var s = 0.0;
    for (var k = 0u; k < p.classes; k++) {
        s += exp(z[base + k] - m);
    }
    return vec2<f32>(select(m, a_nan, any_nan), s);
}

// out[0] = mean over rows of logsumexp(z) − z[label] with one slice; with several, out[w] = the
// sum over slice w of the rows.
@compute @workgroup_size(WG)
fn softmax_cross_entropy(@builtin(workgroup_id) wid: vec3<u32>,
                         l: Lanes) {
    let lid = l.index;
    let rows = slice(wid.x, p.n);
    var acc = 0.0;
    for (var r = rows.x + lid; r < rows.y; r += WG) {
        let label = labels[r];
        if label < p.classes {
            let base = r * p.classes;
            let st = row_stats(base);
            // (max − z[label]) + log Σ: the difference first, so no large terms cancel.
            acc += select((st.x - z[base + label]) + log(st.y), st.x, is_nan(st.x));
        }
    }
    partial[lid] = acc;
    let total = tree_sum(l);
    if lid == 0u {
        loss[wid.x] = select(total, total / f32(p.n), p.slices == 1u);
    }
}

// dz = (softmax(z) − onehot(label)) / rows · g[0]. One invocation per row.
@compute @workgroup_size(WG)
fn softmax_cross_entropy_backward(@builtin(workgroup_id) wid: vec3<u32>,
                                  @builtin(num_workgroups) nwg: vec3<u32>,
                                  l: Lanes) {
    let lid = l.index;
    let r = (wid.x + wid.y * nwg.x) * WG + lid;
    if r >= p.n {
        return;
    }
    let label = labels[r];
    let valid = label < p.classes;
    let base = r * p.classes;
    let st = row_stats(base);
    let scale = g[0] / f32(p.n);
    for (var k = 0u; k < p.classes; k++) {
        let softmax = exp(z[base + k] - st.x) / st.y;
        let d = select((softmax - select(0.0, 1.0, k == label)) * scale, st.x, is_nan(st.x));
        grad[base + k] = select(0.0, d, valid);
    }
}

// A variational autoencoder's KL term: for h = [mu | logvar] ([N, 2z]), the divergence of
// N(mu, exp(logvar)) from N(0, 1), −½ Σ_j (1 + logvar − mu² − exp(logvar)), summed over the
// latent and averaged over the rows (p.n = N·z terms, p.classes = z, p.divisor = N). Sliced as the
// point losses are, but with one input: out (binding 2) is the mean, or slice w's sum.
fn kl_term(i: u32) -> f32 {
    let at = i + (i / p.classes) * p.classes; // b·2z + j
    let mu = z[at];
    let lv = z[at + p.classes];
    return -0.5 * (1.0 + lv - mu * mu - exp(lv));
}

@compute @workgroup_size(WG)
fn kl_divergence(@builtin(workgroup_id) wid: vec3<u32>, l: Lanes) {
    let lid = l.index;
    let r = slice(wid.x, p.n);
    var acc = 0.0;
    for (var i = r.x + lid; i < r.y; i += WG) {
        acc += kl_term(i);
    }
    partial[lid] = acc;
    let total = tree_sum(l);
    if lid == 0u {
        mean_out[wid.x] = select(total, total / f32(p.divisor), p.slices == 1u);
    }
}

// dh = [mu | (exp(logvar) − 1)/2] / N · g[0]. One invocation per element of h (p.n = N·2z).
// Bindings: 1 = h, 2 = g, 3 = dh.
@compute @workgroup_size(WG)
fn kl_divergence_backward(@builtin(workgroup_id) wid: vec3<u32>,
                          @builtin(num_workgroups) nwg: vec3<u32>, l: Lanes) {
    let i = (wid.x + wid.y * nwg.x) * WG + l.index;
    if i >= p.n {
        return;
    }
    let v = z[i];
    let d = select(0.5 * (exp(v) - 1.0), v, i % (2u * p.classes) < p.classes);
    kl_grad[i] = d / f32(p.divisor) * kl_g[0];
}
