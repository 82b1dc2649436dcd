//! A session's parameters, their gradients and optimizer state on the GPU, each in one flat
//! buffer, so that one optimizer dispatch updates every trainable parameter.

use crate::error::Result;
use crate::exec::state::{ParamEntry, Stored};
use crate::gpu::kernels::{health, optim};
use crate::gpu::{DType, GpuContext, GpuTensor, Launch};
use crate::nn::Optimizer;
use crate::shape::Shape;
use crate::tensor::Tensor;
use std::sync::Arc;

/// Parameters, gradients and optimizer state on the device.
pub(crate) struct GpuStore {
    pub ctx: Arc<GpuContext>,
    pub params: GpuTensor,
    pub grads: GpuTensor,
    pub state: Vec<GpuTensor>,
    /// Element offset of each entry in the flat buffers, and its length and trainability.
    offsets: Vec<usize>,
    lengths: Vec<(usize, bool)>,
    /// Elements of the trainable region (the start of `params`; all of `grads` and `state`).
    trainable_len: usize,
    pub optim_launch: Option<Launch>,
    /// One u32: 0 while every trainable parameter is finite, else which one is not first (see
    /// shaders/health.wgsl), computed after each optimizer step and read with the step's loss.
    pub health: GpuTensor,
    pub health_launch: Option<Launch>,
}

/// Element offsets of each parameter in the flat buffers: trainable ones first, each starting
/// on the device's storage-offset alignment so that it can be bound on its own. Returns the
/// offsets, the trainable region's length and the total.
fn layout(ctx: &GpuContext, entries: &[ParamEntry]) -> (Vec<usize>, usize, usize) {
    let align = (ctx.limits.min_storage_buffer_offset_alignment as usize / 4).max(1);
    let mut offsets = vec![0; entries.len()];
    let mut at = 0;
    let mut trainable_len = 0;
    for pass in [true, false] {
        for (i, e) in entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.trainable == pass)
        {
            offsets[i] = at;
            at = (at + e.shape.numel()).div_ceil(align) * align;
        }
        if pass {
            trainable_len = at;
        }
    }
    (offsets, trainable_len, at)
}

/// `shape` at element `offset` of `t`'s buffer.
pub(crate) fn view(t: &GpuTensor, offset: usize, shape: &Shape, label: &str) -> GpuTensor {
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
        entries: &[ParamEntry],
        values: &[Tensor],
        optimizer: Option<&Optimizer>,
    ) -> Result<Self> {
        let (offsets, trainable_len, total) = layout(&ctx, entries);
        let params = ctx.zeros("parameters", [total.max(1)])?;
        let grads = ctx.zeros("parameter gradients", [trainable_len.max(1)])?;
        let mut state = Vec::new();
        for name in optimizer.map_or(&[][..], |o| o.state_names()) {
            state.push(ctx.zeros(&format!("optimizer {name}"), [trainable_len.max(1)])?);
        }
        let health = ctx.upload_labels("parameter health", &[0])?;
        let mut store = GpuStore {
            ctx,
            params,
            grads,
            state,
            offsets,
            lengths: entries
                .iter()
                .map(|e| (e.shape.numel(), e.trainable))
                .collect(),
            trainable_len,
            optim_launch: None,
            health,
            health_launch: None,
        };
        for (i, (e, v)) in entries.iter().zip(values).enumerate() {
            store.ctx.write(&store.param(i, e), &v.data)?;
        }
        if let Some(o) = optimizer
            && trainable_len > 0
        {
            store.optim_launch = Some(store.build_optimizer(o)?);
            let region = store.region(&store.params);
            store.health_launch =
                Some(health::first_nonfinite(&store.ctx, &region, &store.health)?);
        }
        Ok(store)
    }

    /// The entry holding element `element` of the trainable region (what the health flag
    /// decodes to), if any (alignment padding holds none).
    pub fn entry_at(&self, element: usize) -> Option<usize> {
        (0..self.lengths.len()).find(|&i| {
            self.lengths[i].1
                && (self.offsets[i]..self.offsets[i] + self.lengths[i].0).contains(&element)
        })
    }

    /// The trainable region's length, in elements.
    pub fn trainable_len(&self) -> usize {
        self.trainable_len
    }

    /// Entry `i`'s value.
    pub fn param(&self, i: usize, e: &ParamEntry) -> GpuTensor {
        view(&self.params, self.offsets[i], &e.shape, &e.name)
    }
    /// Entry `i`'s gradient (trainable entries only).
    pub fn grad(&self, i: usize, e: &ParamEntry) -> GpuTensor {
        view(
            &self.grads,
            self.offsets[i],
            &e.shape,
            &format!("{} grad", e.name),
        )
    }
    /// Optimizer buffer `b` of entry `i` (trainable entries only).
    fn state_of(&self, b: usize, i: usize, e: &ParamEntry) -> GpuTensor {
        view(&self.state[b], self.offsets[i], &e.shape, &e.name)
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

    /// Sets the optimizer launch's uniforms for `step` (they land before the next submission).
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

    /// Every entry's value and optimizer buffers, read back (three read-backs in all).
    pub async fn read(&self, entries: &[ParamEntry]) -> Result<Vec<Stored>> {
        let all = self.ctx.download_async(&self.params).await?;
        let mut bufs = Vec::new();
        for t in &self.state {
            bufs.push(self.ctx.download_async(t).await?);
        }
        let slice = |t: &Tensor, i: usize, e: &ParamEntry| {
            let at = self.offsets[i];
            Tensor::new(e.shape.clone(), t.data[at..at + e.shape.numel()].to_vec())
        };
        let mut out = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            let mut buffers = Vec::new();
            if e.trainable {
                for b in &bufs {
                    buffers.push(slice(b, i, e)?);
                }
            }
            out.push((slice(&all, i, e)?, buffers));
        }
        Ok(out)
    }

    /// Overwrites every entry's value and optimizer buffers.
    pub fn write(&self, entries: &[ParamEntry], stored: &[Stored]) -> Result<()> {
        for (i, (e, (v, buffers))) in entries.iter().zip(stored).enumerate() {
            self.ctx.write(&self.param(i, e), &v.data)?;
            for (b, data) in buffers.iter().enumerate() {
                self.ctx.write(&self.state_of(b, i, e), &data.data)?;
            }
        }
        Ok(())
    }
}
