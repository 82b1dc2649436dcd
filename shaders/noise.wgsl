// Random draws on the device, from a counter-based generator: each draw is a function of (seed,
// training step, element) alone, the same on every adapter and in the CPU twin (cpu::noise), and
// the same again when a run resumes.
//
// gaussian_noise: a denoising autoencoder's input, y = clamp(x + std·z, 0, 1) with z drawn
// from N(0, 1) by a counter-based generator, so that the noise of element i at training step
// `step` is a function of (seed, step, i) alone: the same on every adapter and in the CPU twin
// (cpu::noise), and the same again when a run resumes. PyTorch's equivalent is
// torch.clamp(x + std * torch.randn_like(x), 0, 1) (with its own generator's numbers).
//
// One invocation per element; the launcher folds a linear workgroup count into (x, y).
// Bindings: 1 = x, 2 = counter (the step, u32 [1], written before each run), 3 = y.

struct Params {
    n: u32,
    sigma: f32, // the noise's standard deviation
    seed: u32,
    latent: u32, // reparameterize: z, the latent width (h is [N, 2z])
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> counter: array<u32>; // the training step
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<storage, read> dz: array<f32>; // reparameterize_backward

const WG: u32 = 256u;

// PCG's output permutation as a hash (Jarzynski & Olano, "Hash Functions for GPU Rendering").
fn pcg(v: u32) -> u32 {
    let state = v * 747796405u + 2891336453u;
    let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
    return (word >> 22u) ^ word;
}

// Box–Muller from two 24-bit uniforms: u1 in (0, 1] (no log of 0), u2 in [0, 1).
fn normal(i: u32) -> f32 {
    let h1 = pcg(pcg(pcg(p.seed) ^ counter[0]) ^ i);
    let h2 = pcg(h1);
    let u1 = f32((h1 >> 8u) + 1u) / 16777216.0;
    let u2 = f32(h2 >> 8u) / 16777216.0;
    return sqrt(-2.0 * log(u1)) * cos(6.28318530717958647 * u2);
}

// Dropout (nn.Dropout(p) in training): element i is kept when its uniform draw is ≥ p, and a
// kept element is scaled by 1/(1 − p); p = 1 drops everything (PyTorch gives zeros). The
// backward draws the same mask again from the step, so nothing is stored between the passes.
// p.sigma holds p. Bindings: 1 = x (forward) or dy (backward), 2 = counter, 3 = out.
fn kept(i: u32) -> bool {
    let h = pcg(pcg(pcg(p.seed) ^ counter[0]) ^ i);
    return f32(h >> 8u) / 16777216.0 >= p.sigma;
}

fn dropout(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * WG + lid;
    if i >= p.n { return; }
    let scale = select(0.0, 1.0 / (1.0 - p.sigma), p.sigma < 1.0);
    y[i] = select(0.0, x[i] * scale, kept(i));
}

@compute @workgroup_size(WG)
fn dropout_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_index) lid: u32) {
    dropout(wid, nwg, lid);
}

// dx = dy · mask / (1 − p): the same map as the forward, applied to dy.
@compute @workgroup_size(WG)
fn dropout_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_index) lid: u32) {
    dropout(wid, nwg, lid);
}

@compute @workgroup_size(WG)
fn gaussian_noise(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * WG + lid;
    if i >= p.n { return; }
    y[i] = clamp(x[i] + p.sigma * normal(i), 0.0, 1.0);
}

// A variational autoencoder's sample: h = [mu | logvar] ([N, 2z], rows of means then
// log-variances) gives z = mu + exp(logvar/2)·eps ([N, z]), eps the standard normal draw of
// (seed, step, b·z + j), unclamped. The backward draws the same eps again:
// dh = [dz | dz·eps·exp(logvar/2)/2]. Bindings: 1 = h, 2 = counter, 3 = z (forward) or dh
// (backward), 4 = dz (backward). p.n counts the output's elements.
@compute @workgroup_size(WG)
fn reparameterize(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * WG + lid;
    if i >= p.n { return; }
    let b = i / p.latent;
    let at = i + b * p.latent; // b·2z + j
    y[i] = x[at] + exp(0.5 * x[at + p.latent]) * normal(i);
}

@compute @workgroup_size(WG)
fn reparameterize_backward(@builtin(workgroup_id) wid: vec3<u32>,
                           @builtin(num_workgroups) nwg: vec3<u32>,
                           @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * WG + lid;
    if i >= p.n { return; }
    let b = i / (2u * p.latent);
    let c = i - b * 2u * p.latent;
    if c < p.latent {
        y[i] = dz[b * p.latent + c];
        return;
    }
    let k = b * p.latent + c - p.latent; // the sample's index
    y[i] = dz[k] * normal(k) * 0.5 * exp(0.5 * x[i]);
}
