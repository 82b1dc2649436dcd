// Optimizer steps, in place, one element per invocation: SGD (momentum, dampening, Nesterov,
// weight decay), Adam (L2 weight decay) and AdamW (decoupled weight decay). PyTorch's formulas
// (torch.optim, single-tensor path).
//
// Every step-dependent or cancellation-prone factor (1 − dampening, 1 − β, lr / (1 − β1^t),
// sqrt(1 − β2^t), 1 − lr·wd) is computed on the host in f64 and arrives here rounded once to
// f32: computing 1.0 − 0.999 in f32 here would be off by 5e-5 relative.
//
// Dispatch: Workgroups::Linear, folded into (x, y) past the per-dimension limit; the linear
// workgroup index is wid.x + wid.y * nwg.x, and invocations past the end return.

const WG: u32 = 64u;

// ---- SGD -----------------------------------------------------------------------------------

struct SgdParams {
    n: u32,
    lr: f32,
    momentum: f32,
    one_minus_dampening: f32,
    weight_decay: f32,
    use_momentum: u32, // momentum != 0: a buffer is kept
    first_step: u32,   // step == 1: the buffer is initialised with d
    nesterov: u32,
}

@group(0) @binding(0) var<uniform> sp: SgdParams;
@group(0) @binding(1) var<storage, read_write> sgd_param: array<f32>;
@group(0) @binding(2) var<storage, read> sgd_grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> sgd_buf: array<f32>;

@compute @workgroup_size(WG)
fn sgd_step(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = (wid.x + wid.y * nwg.x) * WG + lid;
    if i >= sp.n {
        return;
    }
    let p = sgd_param[i];
    var d = sgd_grad[i] + sp.weight_decay * p;
    if sp.use_momentum != 0u {
        var b = d;
        if sp.first_step == 0u {
            b = sp.momentum * sgd_buf[i] + sp.one_minus_dampening * d;
        }
        sgd_buf[i] = b;
        d = select(b, d + sp.momentum * b, sp.nesterov != 0u);
    }
    sgd_param[i] = p - sp.lr * d;
}

// ---- Adam / AdamW --------------------------------------------------------------------------

struct AdamParams {
    n: u32,
    beta1: f32,
    one_minus_beta1: f32,
    beta2: f32,
    one_minus_beta2: f32,
    step_size: f32,    // lr / (1 − β1^t)
    bc2_sqrt: f32,     // sqrt(1 − β2^t)
    eps: f32,
    l2: f32,           // Adam: weight_decay added to the gradient; AdamW: 0
    decay: f32,        // AdamW: 1 − lr·weight_decay applied to p first; Adam: 1
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> ap: AdamParams;
@group(0) @binding(1) var<storage, read_write> adam_param: array<f32>;
@group(0) @binding(2) var<storage, read> adam_grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> adam_m: array<f32>;
@group(0) @binding(4) var<storage, read_write> adam_v: array<f32>;

// The shared Adam update of element i; p0 is the parameter after any decoupled decay.
fn adam_update(i: u32, p0: f32, g: f32) {
    let m = ap.beta1 * adam_m[i] + ap.one_minus_beta1 * g;
    let v = ap.beta2 * adam_v[i] + ap.one_minus_beta2 * g * g;
    adam_m[i] = m;
    adam_v[i] = v;
    let denom = sqrt(v) / ap.bc2_sqrt + ap.eps;
    adam_param[i] = p0 - ap.step_size * m / denom;
}

@compute @workgroup_size(WG)
fn adam_step(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = (wid.x + wid.y * nwg.x) * WG + lid;
    if i >= ap.n {
        return;
    }
    let p = adam_param[i];
    adam_update(i, p, adam_grad[i] + ap.l2 * p);
}

@compute @workgroup_size(WG)
fn adamw_step(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = (wid.x + wid.y * nwg.x) * WG + lid;
    if i >= ap.n {
        return;
    }
    adam_update(i, adam_param[i] * ap.decay, adam_grad[i]);
}
