//! A graph compiled for one GPU: every node placed (parameters and gradients in the session's
//! flat buffers, intermediates in a pool of buffers shared by liveness per [`MemoryPlan`], fed
//! inputs in buffers of their own) and every launch built, so that a run writes its inputs,
//! records one command buffer and submits it, allocating nothing.
//!
//! [`MemoryPlan`]: crate::graph::MemoryPlan

use super::loss_ring::LossRing;
use super::store::{GpuStore, view};
use crate::error::{Error, Result};
use crate::exec::program::ProgramInfo;
use crate::exec::state::ParamEntry;
use crate::gpu::cpu_driver::tier::{self, TierUp};
use crate::gpu::kernels::{batch_norm as bn, im2col, loss, matmul, noise, pointwise, pool};
use crate::gpu::{GpuContext, GpuTensor, Launch, tune};
use crate::graph::{NodeId, Op, Storage};
use crate::spec::Activation;

/// How many losses may be in flight before a run waits for the oldest.
pub(crate) const LOSS_SLOTS: usize = 4;

/// A graph compiled for one GPU context.
pub(crate) struct GpuProgram {
    pub tensors: Vec<Option<GpuTensor>>,
    pub launches: Vec<Launch>,
    /// The node each launch computes (`layer op`), for profiles.
    pub labels: Vec<String>,
    /// Fed tensors, by node.
    pub fed: Vec<(NodeId, GpuTensor)>,
    pub ring: Option<LossRing>,
    /// Matmuls still on the baseline mapping, and their final pipelines compiling.
    pub tier: Option<TierUp>,
    /// `(value, parameter)`: what a step copies into the session's store after its launches
    /// (batch normalisation's running moments).
    pub updates: Vec<(GpuTensor, GpuTensor)>,
}

impl GpuProgram {
    pub async fn compile(
        store: &GpuStore,
        info: &ProgramInfo,
        entries: &[ParamEntry],
    ) -> Result<Self> {
        let ctx = &store.ctx;
        let (graph, plan) = (&info.graph, &info.plan);
        let pool: Vec<GpuTensor> = plan
            .slot_bytes
            .iter()
            .enumerate()
            .map(|(i, &b)| ctx.zeros(&format!("pool buffer {i}"), [(b / 4) as usize]))
            .collect::<Result<_>>()?;
        let mut tensors: Vec<Option<GpuTensor>> = vec![None; graph.len()];
        let mut fed = Vec::new();
        let mut launches = Vec::new();
        let mut labels = Vec::new();
        // Where programs tier up, an occasional one stays on the baseline for good.
        let tiered = tier::tiered(ctx);
        let mut pending = Vec::new();
        for (i, node) in graph.nodes().iter().enumerate() {
            let id = NodeId(i);
            let label = format!("{} {}", node.name, node.op.name());
            let t = match plan.storage[i] {
                Storage::Skipped => continue,
                Storage::Param => {
                    let e = info.param_of[i].ok_or_else(|| {
                        Error::model(&node.name, "parameter missing from the session")
                    })?;
                    store.param(e, &entries[e])
                }
                Storage::Grad(k) => {
                    let e = info.grads[k].0;
                    store.grad(e, &entries[e])
                }
                Storage::Fed => {
                    let t = match node.op {
                        Op::Labels => {
                            ctx.upload_labels(&node.name, &vec![0; node.shape.numel()])?
                        }
                        _ => ctx.zeros(&node.name, node.shape.clone())?,
                    };
                    fed.push((id, t.clone()));
                    t
                }
                Storage::Const => match &node.op {
                    Op::Const(v) => ctx.upload(&node.name, v)?,
                    _ => {
                        return Err(Error::invalid(
                            &label,
                            "constant storage for a non-constant",
                        ));
                    }
                },
                Storage::Pool(s) => view(&pool[s], 0, &node.shape, &label),
                Storage::View(root) => tensors[root.0]
                    .as_ref()
                    .ok_or_else(|| Error::invalid(&label, "view of a tensor not yet placed"))?
                    .reshaped(node.shape.clone())?,
            };
            let t = GpuTensor {
                shape: node.shape.clone(),
                ..t
            };
            if !node.op.is_leaf() && !node.op.is_view() {
                let ins: Vec<&GpuTensor> = node
                    .inputs
                    .iter()
                    .map(|x| tensors[x.0].as_ref())
                    .collect::<Option<_>>()
                    .ok_or_else(|| Error::invalid(&label, "an input was not placed"))?;
                let built = match &node.op {
                    Op::Matmul(spec) => {
                        let (a, b, bias) = (ins[0], ins[1], ins.get(2).copied());
                        let tile = if tiered {
                            if !info.occasional {
                                pending.push(tier::Pending {
                                    launch: launches.len(),
                                    spec: *spec,
                                    a: a.clone(),
                                    b: b.clone(),
                                    bias: bias.cloned(),
                                    c: t.clone(),
                                });
                            }
                            tier::BASELINE
                        } else {
                            tune::choose_async(ctx, spec).await?
                        };
                        matmul::matmul_tiled(ctx, spec, tile, a, b, bias, &t)
                    }
                    op => launch(ctx, op, &ins, &t),
                };
                launches.push(built.map_err(|e| e.in_layer(&node.name))?);
                labels.push(label.clone());
            }
            tensors[i] = Some(t);
        }
        let updates = info
            .updates
            .iter()
            .map(|&(e, v)| {
                let value = tensors[v.0]
                    .clone()
                    .ok_or_else(|| Error::model(&graph.node(v).name, "state update not placed"))?;
                Ok((value, store.param(e, &entries[e])))
            })
            .collect::<Result<_>>()?;
        Ok(GpuProgram {
            tensors,
            launches,
            labels,
            fed,
            updates,
            ring: info.loss.map(|_| LossRing::new(ctx, LOSS_SLOTS)),
            tier: tier::TierUp::start(ctx, pending),
        })
    }

    /// Swaps in up to `max` matmuls whose final pipelines are ready; with `wait`, waits for the
    /// background compile (native only). Returns whether any matmul is still on the baseline.
    pub fn tier_up(&mut self, ctx: &GpuContext, max: usize, wait: bool) -> Result<bool> {
        let Some(t) = &mut self.tier else {
            return Ok(false);
        };
        let more = t.advance(ctx, &mut self.launches, max, wait)?;
        if !more {
            self.tier = None;
        }
        Ok(more)
    }
}

/// The moments a batch-norm node reads: the running mean and variance when it has `running`
/// inputs, else the batch's `[2, C]` moments.
fn moments<'a>(ins: &[&'a GpuTensor], running: usize) -> bn::Moments<'a> {
    if ins.len() == running {
        bn::Moments::Running {
            mean: ins[1],
            var: ins[2],
        }
    } else {
        bn::Moments::Batch(ins[1])
    }
}

/// The launch that computes `out` from `ins` for `op`.
fn launch(ctx: &GpuContext, op: &Op, ins: &[&GpuTensor], out: &GpuTensor) -> Result<Launch> {
    use pointwise as pw;
    let x = |i: usize| ins[i];
    match op {
        Op::Im2col(g) => im2col::im2col(ctx, g, x(0), out),
        Op::Col2im(g) => match ins.get(1) {
            Some(b) => im2col::col2im_bias(ctx, g, x(0), b, out),
            None => im2col::col2im(ctx, g, x(0), out),
        },
        Op::Noise { std, seed } => noise::gaussian_noise(ctx, *std, *seed, x(0), x(1), out),
        Op::Dropout { p, seed } => noise::dropout_forward(ctx, *p, *seed, x(0), x(1), out),
        Op::DropoutGrad { p, seed } => noise::dropout_backward(ctx, *p, *seed, x(0), x(1), out),
        Op::Reparameterize { seed } => noise::reparameterize(ctx, *seed, x(0), x(1), out),
        Op::ReparameterizeGrad { seed } => {
            noise::reparameterize_backward(ctx, *seed, x(0), x(1), x(2), out)
        }
        Op::KlDivergence => loss::kl_divergence(ctx, x(0), out),
        Op::KlDivergenceGrad => loss::kl_divergence_backward(ctx, x(0), x(1), out),
        Op::BatchNormStats => bn::batch_norm_stats(ctx, x(0), out),
        Op::BatchNorm { eps } => {
            let n = ins.len();
            bn::batch_norm_forward(ctx, *eps, x(0), moments(ins, 5), x(n - 2), x(n - 1), out)
        }
        Op::BatchNormSums { eps } => {
            let n = ins.len();
            bn::batch_norm_backward_sums(ctx, *eps, x(0), moments(ins, 4), x(n - 1), out)
        }
        Op::BatchNormGrad { eps } => {
            bn::batch_norm_backward(ctx, *eps, x(0), x(1), x(2), x(3), x(4), out)
        }
        Op::BatchNormGradEval { eps } => {
            bn::batch_norm_backward_eval(ctx, *eps, x(0), x(1), x(2), out)
        }
        Op::Pool(s) => pool::forward(ctx, s, x(0), out),
        // dy comes last; x (first) only for a max pool, which alone reads it.
        Op::PoolGrad(s) => pool::backward(ctx, s, x(0), x(ins.len() - 1), out),
        Op::Activation(act) => match act {
            Activation::None => pw::scale(ctx, 1.0, x(0), out),
            Activation::Relu => pw::relu_forward(ctx, x(0), out),
            Activation::LeakyRelu(s) => pw::leaky_relu_forward(ctx, *s, x(0), out),
            Activation::Sigmoid => pw::sigmoid_forward(ctx, x(0), out),
            Activation::Tanh => pw::tanh_forward(ctx, x(0), out),
            Activation::Gelu => pw::gelu_forward(ctx, x(0), out),
            Activation::Silu => pw::silu_forward(ctx, x(0), out),
        },
        Op::ActivationGrad(act) => match act {
            Activation::None => pw::scale(ctx, 1.0, x(1), out),
            Activation::Relu => pw::relu_backward(ctx, x(0), x(1), out),
            Activation::LeakyRelu(s) => pw::leaky_relu_backward(ctx, *s, x(0), x(1), out),
            Activation::Sigmoid => pw::sigmoid_backward(ctx, x(0), x(1), out),
            Activation::Tanh => pw::tanh_backward(ctx, x(0), x(1), out),
            Activation::Gelu => pw::gelu_backward(ctx, x(0), x(1), out),
            Activation::Silu => pw::silu_backward(ctx, x(0), x(1), out),
        },
        Op::Add => pw::add(ctx, x(0), x(1), out),
        Op::Scale(s) => pw::scale(ctx, *s, x(0), out),
        Op::PointLoss(k) => loss::point_loss(ctx, *k, x(0), x(1), out),
        Op::PointLossGrad(k) => loss::point_loss_backward(ctx, *k, x(0), x(1), x(2), out),
        Op::CrossEntropy => loss::softmax_cross_entropy(ctx, x(0), x(1), out),
        Op::CrossEntropyGrad => loss::softmax_cross_entropy_backward(ctx, x(0), x(1), x(2), out),
        Op::Matmul(_) | Op::Input | Op::Labels | Op::Param | Op::Const(_) | Op::Reshape => {
            Err(Error::invalid(
                op.name(),
                "has no kernel here (the executor places it, or chooses its mapping)",
            ))
        }
    }
}
