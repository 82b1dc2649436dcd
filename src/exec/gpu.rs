//! The GPU executor: parameters, their gradients and optimizer state in flat buffers (one
//! optimizer dispatch updates every trainable parameter), intermediate tensors in a pool of
//! buffers shared by liveness ([`MemoryPlan`]), and every launch built at compile time, so that
//! a run writes its inputs, records one command buffer and submits it, allocating nothing.

use super::ParamEntry;
use super::loss_ring::LossRing;
use super::tier::{self, TierUp};
use crate::error::{Error, Result};
use crate::gpu::kernels::{im2col, loss, matmul, optim, pointwise};
use crate::gpu::{DType, GpuContext, GpuTensor, Launch};
use crate::graph::{Graph, MemoryPlan, NodeId, Op, Storage};
use crate::nn::Optimizer;
use crate::shape::Shape;
use crate::spec::Activation;
use crate::tensor::Tensor;
use std::sync::Arc;

/// How many losses may be in flight before a run waits for the oldest.
const LOSS_SLOTS: usize = 4;

/// Parameters, gradients and optimizer state on the device.
pub(crate) struct GpuStore {
    pub ctx: Arc<GpuContext>,
    pub params: GpuTensor,
    pub grads: GpuTensor,
    pub state: Vec<GpuTensor>,
    /// Elements of the trainable region (the start of `params`; all of `grads` and `state`).
    pub trainable_len: usize,
    pub optim_launch: Option<Launch>,
}

/// Element offsets of each parameter in the flat buffers: trainable ones first, each starting
/// on the device's storage-offset alignment so that it can be bound on its own.
pub(crate) fn layout(ctx: &GpuContext, entries: &mut [ParamEntry]) -> (usize, usize) {
    let align = (ctx.limits.min_storage_buffer_offset_alignment as usize / 4).max(1);
    let mut at = 0;
    let mut trainable_len = 0;
    for pass in [true, false] {
        for e in entries.iter_mut().filter(|e| e.trainable == pass) {
            e.offset = at;
            at = (at + e.shape.numel()).div_ceil(align) * align;
        }
        if pass {
            trainable_len = at;
        }
    }
    (trainable_len, at)
}

fn view(t: &GpuTensor, offset: usize, shape: &Shape, label: &str) -> GpuTensor {
    GpuTensor {
        buffer: t.buffer.clone(),
        offset: t.offset + offset as u64 * 4,
        shape: shape.clone(),
        dtype: DType::F32,
        label: label.into(),
    }
}

impl GpuStore {
    pub fn new(
        ctx: Arc<GpuContext>,
        entries: &mut [ParamEntry],
        values: &[Tensor],
        optimizer: Option<&Optimizer>,
    ) -> Result<Self> {
        let (trainable_len, total) = layout(&ctx, entries);
        let params = ctx.zeros("parameters", [total.max(1)])?;
        let grads = ctx.zeros("parameter gradients", [trainable_len.max(1)])?;
        let mut state = Vec::new();
        for name in optimizer.map_or(&[][..], |o| o.state_names()) {
            state.push(ctx.zeros(&format!("optimizer {name}"), [trainable_len.max(1)])?);
        }
        let mut store = GpuStore {
            ctx,
            params,
            grads,
            state,
            trainable_len,
            optim_launch: None,
        };
        for (e, v) in entries.iter().zip(values) {
            store.write_param(e, v)?;
        }
        if let Some(o) = optimizer
            && trainable_len > 0
        {
            store.optim_launch = Some(store.build_optimizer(o)?);
        }
        Ok(store)
    }

    pub fn param(&self, e: &ParamEntry) -> GpuTensor {
        view(&self.params, e.offset, &e.shape, &e.name)
    }
    pub fn grad(&self, e: &ParamEntry) -> GpuTensor {
        view(&self.grads, e.offset, &e.shape, &format!("{} grad", e.name))
    }
    pub fn state_of(&self, i: usize, e: &ParamEntry) -> GpuTensor {
        view(&self.state[i], e.offset, &e.shape, &e.name)
    }

    pub fn write_param(&self, e: &ParamEntry, v: &Tensor) -> Result<()> {
        self.ctx.write(&self.param(e), &v.data)
    }

    /// The region of every trainable parameter at once, as the optimizer sees it.
    fn region(&self, t: &GpuTensor) -> GpuTensor {
        view(t, 0, &Shape::new([self.trainable_len]), &t.label)
    }

    fn build_optimizer(&self, o: &Optimizer) -> Result<Launch> {
        let (p, g) = (self.region(&self.params), self.region(&self.grads));
        let st: Vec<GpuTensor> = self.state.iter().map(|s| self.region(s)).collect();
        match o {
            Optimizer::Sgd(c) => optim::sgd_step(&self.ctx, &p, &g, st.first(), c, 1),
            Optimizer::Adam(c) => optim::adam_step(&self.ctx, &p, &g, &st[0], &st[1], c, 1),
            Optimizer::AdamW(c) => optim::adamw_step(&self.ctx, &p, &g, &st[0], &st[1], c, 1),
        }
    }

    /// Sets the optimizer launch's uniforms for `step`.
    pub fn prepare_step(&self, o: &Optimizer, step: u64) -> Result<()> {
        let Some(launch) = &self.optim_launch else {
            return Ok(());
        };
        let n = self.trainable_len as u32;
        let bytes = match o {
            Optimizer::Sgd(c) => {
                c.check("sgd_step", step)?;
                optim::sgd_uniforms(c, step, n)
            }
            Optimizer::Adam(c) => {
                c.check("adam_step", step)?;
                optim::adam_uniforms(false, c, step, n)
            }
            Optimizer::AdamW(c) => {
                c.check("adamw_step", step)?;
                optim::adam_uniforms(true, c, step, n)
            }
        };
        launch.write_params(&self.ctx, &bytes)
    }
}

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
}

impl GpuProgram {
    pub fn compile(
        store: &GpuStore,
        graph: &Graph,
        plan: &MemoryPlan,
        entries: &[ParamEntry],
        param_of: &[Option<usize>],
        grad_entries: &[usize],
        has_loss: bool,
    ) -> Result<Self> {
        let ctx = &store.ctx;
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
        let tiered = tier::tiered(ctx);
        let mut pending = Vec::new();
        for (i, node) in graph.nodes().iter().enumerate() {
            let id = NodeId(i);
            let label = format!("{} {}", node.name, node.op.name());
            let t = match plan.storage[i] {
                Storage::Skipped => continue,
                Storage::Param => {
                    let e = param_of[i].map(|k| &entries[k]).ok_or_else(|| {
                        Error::model(&node.name, "parameter missing from the session")
                    })?;
                    store.param(e)
                }
                Storage::Grad(k) => store.grad(&entries[grad_entries[k]]),
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
                    Op::Matmul(spec) if tiered => {
                        let (a, b, bias) = (ins[0], ins[1], ins.get(2).copied());
                        pending.push(tier::Pending {
                            launch: launches.len(),
                            spec: *spec,
                            a: a.clone(),
                            b: b.clone(),
                            bias: bias.cloned(),
                            c: t.clone(),
                        });
                        matmul::matmul_tiled(ctx, spec, tier::BASELINE, a, b, bias, &t)
                    }
                    op => launch(ctx, op, &ins, &t),
                };
                launches.push(built.map_err(|e| e.in_layer(&node.name))?);
                labels.push(label.clone());
            }
            tensors[i] = Some(t);
        }
        Ok(GpuProgram {
            tensors,
            launches,
            labels,
            fed,
            ring: has_loss.then(|| LossRing::new(ctx, LOSS_SLOTS)),
            tier: tier::TierUp::start(ctx, pending),
        })
    }
}

impl GpuProgram {
    /// Swaps in up to `max` matmuls whose final pipelines are ready; with `wait`, waits for the
    /// background compile. Returns whether any matmul is still on the baseline mapping.
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

    /// Writes every fed input (images, labels) into its buffer before a run.
    pub fn write_feeds(&self, ctx: &GpuContext, feeds: &[(NodeId, super::Feed)]) -> Result<()> {
        for (id, t) in &self.fed {
            match feeds.iter().find(|f| f.0 == *id).map(|f| f.1) {
                Some(super::Feed::Data(d)) => ctx.write(t, &d.data)?,
                Some(super::Feed::Labels(l)) => {
                    ctx.queue
                        .write_buffer(&t.buffer, t.offset, bytemuck::cast_slice(l))
                }
                None => return Err(Error::invalid("run", "an input was not fed")),
            }
        }
        Ok(())
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
        Op::Matmul(spec) => matmul::matmul(ctx, spec, x(0), x(1), ins.get(2).copied(), out),
        Op::Activation(act) => match act {
            Activation::None => pw::scale(ctx, 1.0, x(0), out),
            Activation::Relu => pw::relu_forward(ctx, x(0), out),
            Activation::LeakyRelu(s) => pw::leaky_relu_forward(ctx, *s, x(0), out),
            Activation::Sigmoid => pw::sigmoid_forward(ctx, x(0), out),
            Activation::Tanh => pw::tanh_forward(ctx, x(0), out),
        },
        Op::ActivationGrad(act) => match act {
            Activation::None => pw::scale(ctx, 1.0, x(1), out),
            Activation::Relu => pw::relu_backward(ctx, x(0), x(1), out),
            Activation::LeakyRelu(s) => pw::leaky_relu_backward(ctx, *s, x(0), x(1), out),
            Activation::Sigmoid => pw::sigmoid_backward(ctx, x(0), x(1), out),
            Activation::Tanh => pw::tanh_backward(ctx, x(0), x(1), out),
        },
        Op::Add => pw::add(ctx, x(0), x(1), out),
        Op::Scale(s) => pw::scale(ctx, *s, x(0), out),
        Op::MseLoss => loss::mse_loss(ctx, x(0), x(1), out),
        Op::MseLossGrad => loss::mse_loss_backward(ctx, x(0), x(1), x(2), out),
        Op::CrossEntropy => loss::softmax_cross_entropy(ctx, x(0), x(1), out),
        Op::CrossEntropyGrad => loss::softmax_cross_entropy_backward(ctx, x(0), x(1), x(2), out),
        Op::Input | Op::Labels | Op::Param | Op::Const(_) | Op::Reshape => Err(Error::invalid(
            op.name(),
            "has no kernel (the executor places it)",
        )),
    }
}
