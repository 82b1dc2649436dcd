// Elementwise kernels: activations and their gradients, add / sub / mul, scale, and the two bias
// broadcasts (per channel of NCHW, per column of [rows, cols]).
//
// One invocation per element. The launcher dispatches a linear count of workgroups that it folds
// into (x, y) to stay under the per-dimension limit, so every entry recovers the linear group
// index as wid.x + wid.y * nwg.x and returns past the end (no barriers here, so returning early
// is fine).
//
// Bindings (auto layout: each entry binds exactly the globals it uses):
//   unary entries   (activation forwards, scale):              1 = in1,        2 = out2
//   binary entries  (backwards, add/sub/mul, bias adds):       1 = in1, 2 = in2, 3 = out3
// in2 and out2 share binding 2 but never an entry point; wgpu compiles one entry point at a time.

struct Params {
    n: u32,        // elements
    s: f32,        // leaky relu negative slope, or the scale factor
    inner: u32,    // bias_add_channel: elements per (n, c) plane (product of spatial dims)
    channels: u32, // bias length (bias_add_channel: C, bias_add_column: columns)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> in1: array<f32>;
@group(0) @binding(2) var<storage, read_write> out2: array<f32>;
@group(0) @binding(2) var<storage, read> in2: array<f32>;
@group(0) @binding(3) var<storage, read_write> out3: array<f32>;

// Invocations per workgroup; overridable so a launch can pick it per adapter (and so the tests
// can cross the 65,535-workgroup limit cheaply with small groups).
override WG: u32 = 256u;

// The element this invocation owns, or n (out of range) past the end.
fn element(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    let group = wid.x + wid.y * nwg.x;
    return group * WG + lid;
}

@compute @workgroup_size(WG)
fn relu_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let i = element(wid, nwg, lid);
    if i >= p.n { return; }
    let x = in1[i];
    out2[i] = select(max(x, 0.0), x, is_nan(x));
}

// dx = 0 where x ≤ 0, else dy (PyTorch's threshold_backward: relu'(0) = 0, a NaN x passes dy).
// in1 = x, in2 = dy, out3 = dx.
@compute @workgroup_size(WG)
fn relu_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
    let i = element(wid, nwg, lid);
    if i >= p.n { return; }
    let x = in1[i];
    out3[i] = select(0.0, in2[i], x > 0.0 || is_nan(x));
}

@compute @workgroup_size(WG)
fn leaky_relu_forward(@builtin(workgroup_id) wid: vec3<u32>,
                      @builtin(num_workgroups) nwg: vec3<u32>,
                      @builtin(local_invocation_index) lid: u32) {
    let i = element(wid, nwg, lid);
    if i >= p.n { return; }
    let x = in1[i];
    out2[i] = select(p.s * x, x, x > 0.0);
}

// dx = dy where x > 0, else slope·dy (PyTorch's leaky_relu_backward, slope at 0 included).
@compute @workgroup_size(WG)
fn leaky_relu_backward(@builtin(workgroup_id) wid: vec3<u32>,
                       @builtin(num_workgroups) nwg: vec3<u32>,
                       @builtin(local_invocation_index) lid: u32) {
    let i = element(wid, nwg, lid);
    if i >= p.n { return; }
    let dy = in2[i];
    out3[i] = select(p.s * dy, dy, in1[i] > 0.0);
}

@compute @workgroup_size(WG)
fn sigmoid_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_index) lid: u32) {
    let i = element(wid, nwg, lid);
    if i >= p.n { return; }
    // exp(-x) overflows to +inf for x < -88, giving 1/inf = 0: the right limit, no NaN. A NaN
    // stays NaN (SwiftShader's exp of NaN is a number).
    let x = in1[i];
    out2[i] = select(1.0 / (1.0 + exp(-x)), x, is_nan(x));
}

// Takes the forward output y (cheaper than recomputing σ(x)): dx = dy·y·(1 − y).
@compute @workgroup_size(WG)
fn sigmoid_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_index) lid: u32) {
    let i = element(wid, nwg, lid);
    if i >= p.n { return; }
    let y = in1[i];
    out3[i] = in2[i] * y * (1.0 - y);
}

@compute @workgroup_size(WG)
fn tanh_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let i = element(wid, nwg, lid);
    if i >= p.n { return; }
    // Some backends build tanh from exp(2x) and return NaN once that overflows (|x| > ~44).
    // tanh(±10) already rounds to ±1 in f32, so clamping changes no result and avoids that.
    // clamp() of a NaN may give a bound: keep the NaN.
    let x = in1[i];
    out2[i] = select(tanh(clamp(x, -10.0, 10.0)), x, is_nan(x));
}

// Takes the forward output y: dx = dy·(1 − y²).
@compute @workgroup_size(WG)
fn tanh_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
    let i = element(wid, nwg, lid);
    if i >= p.n { return; }
    let y = in1[i];
    out3[i] = in2[i] * (1.0 - y * y);
}

// erfc(x), with a relative error below 1.2e-7 everywhere in exact arithmetic (Numerical
// Recipes' Chebyshev fit, `erfcc`), so the lower tail of Φ keeps its digits. WGSL has no erf.
fn erfc(x: f32) -> f32 {
    let z = abs(x);
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418
        + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587
        + t * (-0.82215223 + t * 0.17087277))))))));
    let r = t * exp(-z * z + poly);
    return select(2.0 - r, r, x >= 0.0);
}

// Φ(x), the standard normal CDF, as erfc(−x/√2)/2.
fn std_normal_cdf(x: f32) -> f32 {
    return 0.5 * erfc(-x * 0.70710678);
}

// y = x·Φ(x): PyTorch's GELU (approximate='none'). A NaN stays NaN.
@compute @workgroup_size(WG)
fn gelu_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let i = element(wid, nwg, lid);
    if i >= p.n { return; }
    let x = in1[i];
    out2[i] = select(x * std_normal_cdf(x), x, is_nan(x));
}

// Takes the input x: dx = dy·(Φ(x) + x·φ(x)), φ(x) = e^(−x²/2)/√(2π). in1 = x, in2 = dy.
@compute @workgroup_size(WG)
fn gelu_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
    let i = element(wid, nwg, lid);
    if i >= p.n { return; }
    let x = in1[i];
    let pdf = exp(-0.5 * x * x) * 0.39894228;
    out3[i] = select(in2[i] * (std_normal_cdf(x) + x * pdf), x, is_nan(x));
}

// y = x·σ(x) (SiLU): x / (1 + e^(−x)), which for x < −88 divides by +inf and gives −0, the
// right limit. A NaN stays NaN.
@compute @workgroup_size(WG)
fn silu_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let i = element(wid, nwg, lid);
    if i >= p.n { return; }
    let x = in1[i];
    out2[i] = select(x / (1.0 + exp(-x)), x, is_nan(x));
}

// Takes the input x: dx = dy·σ(x)·(1 + x·(1 − σ(x))). in1 = x, in2 = dy.
@compute @workgroup_size(WG)
fn silu_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
    let i = element(wid, nwg, lid);
    if i >= p.n { return; }
    let x = in1[i];
    let s = 1.0 / (1.0 + exp(-x));
    out3[i] = select(in2[i] * s * (1.0 + x * (1.0 - s)), x, is_nan(x));
}

@compute @workgroup_size(WG)
fn add(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
       @builtin(local_invocation_index) lid: u32) {
    let i = element(wid, nwg, lid);
    if i >= p.n { return; }
    out3[i] = in1[i] + in2[i];
}

@compute @workgroup_size(WG)
fn sub(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
       @builtin(local_invocation_index) lid: u32) {
    let i = element(wid, nwg, lid);
    if i >= p.n { return; }
    out3[i] = in1[i] - in2[i];
}

@compute @workgroup_size(WG)
fn mul(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
       @builtin(local_invocation_index) lid: u32) {
    let i = element(wid, nwg, lid);
    if i >= p.n { return; }
    out3[i] = in1[i] * in2[i];
}

@compute @workgroup_size(WG)
fn scale(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
    let i = element(wid, nwg, lid);
    if i >= p.n { return; }
    out2[i] = p.s * in1[i];
}

// x [N, C, spatial...] + b[C] (in2) broadcast over batch and spatial positions.
@compute @workgroup_size(WG)
fn bias_add_channel(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_index) lid: u32) {
    let i = element(wid, nwg, lid);
    if i >= p.n { return; }
    out3[i] = in1[i] + in2[(i / p.inner) % p.channels];
}

// x [rows, cols] + b[cols] (in2) broadcast over rows.
@compute @workgroup_size(WG)
fn bias_add_column(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_index) lid: u32) {
    let i = element(wid, nwg, lid);
    if i >= p.n { return; }
    out3[i] = in1[i] + in2[i % p.channels];
}
