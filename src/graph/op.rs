//! The op set of a graph. Forward and backward passes use the same ops, so the backward pass
//! needs no executor of its own: every op here runs on the CPU reference and on the GPU, and the
//! tests that hold one to the other cover the gradients too.
//!
//! Ops are kernel-sized on purpose: a conv2d is an [`Op::Im2col`] and an [`Op::Matmul`], so
//! autodiff needs one rule per kernel, and the im2col columns are ordinary tensors that the
//! memory planner reuses like any other.

use crate::shape::ConvGeometry;
use crate::spec::{Activation, MatmulSpec, PointLoss, PoolSpec};
use crate::tensor::Tensor;
use std::sync::Arc;

/// One node's operation. Inputs are listed in the order given.
#[derive(Clone, Debug)]
pub enum Op {
    /// f32 data written before each run (a batch of images). No inputs.
    Input,
    /// u32 class labels written before each run, shape `[N]`. No inputs.
    Labels,
    /// A named, persistent parameter (its name is the node's name). No inputs.
    Param,
    /// A constant known when the graph is built (ones vectors for bias gradients, the loss seed).
    Const(Arc<Tensor>),
    /// `[image] → cols`: `[N, C, H, W] → [N, C·kh·kw, OH·OW]`.
    Im2col(ConvGeometry),
    /// `[cols]` or `[cols, bias]` → image: the adjoint of im2col, plus a per-channel bias.
    Col2im(ConvGeometry),
    /// `[a, b]` or `[a, b, bias]` → `act(op(a)·op(b) + bias)` as the spec describes; the node's
    /// shape is any shape with the spec's `c_len()` elements.
    Matmul(MatmulSpec),
    /// `[x] → y`: a max or average pool, or a nearest upsampling, as the spec describes.
    Pool(PoolSpec),
    /// `[x, dy] → dx` for a max pool (its argmax is recomputed from x), `[dy] → dx` otherwise.
    PoolGrad(PoolSpec),
    /// `[x, step] → clamp(x + std·z, 0, 1)`, `z` standard normal draws of (seed, step, element):
    /// a denoising autoencoder's noisy input. `step` is a fed u32 `[1]`.
    Noise { std: f32, seed: u32 },
    /// `[x, step] → x · mask / (1 − p)`, the mask drawn from (seed, step, element): dropout in
    /// a training graph.
    Dropout { p: f32, seed: u32 },
    /// `[dy, step] → dy · mask / (1 − p)`, the forward's mask drawn again.
    DropoutGrad { p: f32, seed: u32 },
    /// `[h, step] → mu + exp(logvar/2)·eps` for `h = [mu | logvar]` (`[N, 2z]` → `[N, z]`),
    /// `eps` standard normal draws of (seed, step, element): a variational autoencoder's sample.
    Reparameterize { seed: u32 },
    /// `[h, dz, step] → dh`, the forward's draws again.
    ReparameterizeGrad { seed: u32 },
    /// `[h] → [KL(N(mu, exp(logvar)) ‖ N(0, 1))]`, summed over the latent, averaged over rows.
    KlDivergence,
    /// `[h, g] → [mu | (exp(logvar) − 1)/2] / N · g`.
    KlDivergenceGrad,
    /// `[x] → [2, C]`: each channel's mean (row 0) and biased variance (row 1) over the batch
    /// of `x = [N, C, …]` (batch normalisation in training).
    BatchNormStats,
    /// `[x, stats, weight, bias]` (training: the batch's `[2, C]` moments) or
    /// `[x, mean, var, weight, bias]` (evaluation: the running ones) →
    /// `(x − mean)/sqrt(var + eps)·weight + bias`, per channel.
    BatchNorm { eps: f32 },
    /// `[x, stats, dy]` or `[x, mean, var, dy]` → `[2, C]`: Σdy (the bias's gradient) and
    /// Σdy·x̂ (the weight's) per channel.
    BatchNormSums { eps: f32 },
    /// `[x, stats, weight, dy, sums] → dx`: training's gradient, through the batch's moments.
    BatchNormGrad { eps: f32 },
    /// `[dy, var, weight] → dx`: evaluation's gradient, the moments constant.
    BatchNormGradEval { eps: f32 },
    /// `[x] → act(x)`, elementwise.
    Activation(Activation),
    /// `[v, dy] → dx`, the activation's gradient: `v` is the activation's input for ReLU and
    /// LeakyReLU and its output for Sigmoid and Tanh (what the kernels take).
    ActivationGrad(Activation),
    /// `[a, b] → a + b`, same shapes.
    Add,
    /// `[x] → s·x`.
    Scale(f32),
    /// `[x] →` the same elements under the node's shape (a view: no copy, no kernel).
    Reshape,
    /// `[y, target] → [mean(term(y, target))]` (MSE, L1, BCE, BCE with logits).
    PointLoss(PointLoss),
    /// `[y, target, g] → ∂term/∂y (y, target)/numel · g`.
    PointLossGrad(PointLoss),
    /// `[logits, labels] → [mean cross-entropy of softmax(logits)]`.
    CrossEntropy,
    /// `[logits, labels, g] → (softmax(logits) − onehot(labels))/N · g`.
    CrossEntropyGrad,
}

impl Op {
    /// A short name for labels and error messages.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Input => "input",
            Op::Labels => "labels",
            Op::Param => "param",
            Op::Const(_) => "const",
            Op::Im2col(_) => "im2col",
            Op::Col2im(_) => "col2im",
            Op::Matmul(_) => "matmul",
            Op::Pool(s) => s.kind.entry(),
            Op::PoolGrad(s) => s.kind.backward_entry(),
            Op::Noise { .. } => "gaussian_noise",
            Op::Dropout { .. } => "dropout_forward",
            Op::DropoutGrad { .. } => "dropout_backward",
            Op::Reparameterize { .. } => "reparameterize",
            Op::ReparameterizeGrad { .. } => "reparameterize_backward",
            Op::KlDivergence => "kl_divergence",
            Op::KlDivergenceGrad => "kl_divergence_backward",
            Op::BatchNormStats => "batch_norm_stats",
            Op::BatchNorm { .. } => "batch_norm_forward",
            Op::BatchNormSums { .. } => "batch_norm_backward_sums",
            Op::BatchNormGrad { .. } => "batch_norm_backward",
            Op::BatchNormGradEval { .. } => "batch_norm_backward_eval",
            Op::Activation(_) => "activation",
            Op::ActivationGrad(_) => "activation_grad",
            Op::Add => "add",
            Op::Scale(_) => "scale",
            Op::Reshape => "reshape",
            Op::PointLoss(k) => k.entry(),
            Op::PointLossGrad(k) => k.backward_entry(),
            Op::CrossEntropy => "cross_entropy",
            Op::CrossEntropyGrad => "cross_entropy_grad",
        }
    }

    /// Whether the node's value comes from outside the graph's kernels (fed, stored, constant).
    pub fn is_leaf(&self) -> bool {
        matches!(self, Op::Input | Op::Labels | Op::Param | Op::Const(_))
    }

    /// Whether the node shares its input's storage instead of owning a buffer.
    pub fn is_view(&self) -> bool {
        matches!(self, Op::Reshape)
    }
}
