//! The GPU backend: a session's parameters in flat device buffers ([`store`]), programs compiled
//! into prebuilt launches ([`program`]), runs recorded into one command buffer (submitted here,
//! or recorded into a host's encoder), losses read back through a ring of small buffers
//! ([`loss_ring`]), matmuls that tier up on CPU drivers (`gpu::cpu_driver::tier`), and per-dispatch profiles
//! ([`profile`]).

mod loss_ring;
mod profile;
mod program;
mod store;

use super::Profile;
use super::backend::{Backend, LossReport, RecordedRun, RunArgs};
use super::feed::{Feed, feed_of};
use super::program::ProgramInfo;
use super::state::{ParamEntry, Stored};
use crate::error::{Error, Result};
use crate::gpu::{GpuContext, GpuTensor};
use crate::graph::NodeId;
use crate::nn::Optimizer;
use crate::tensor::Tensor;
use loss_ring::Reading;
use program::{GpuProgram, LOSS_SLOTS};
use std::sync::Arc;
use store::GpuStore;

/// A session's side on one GPU context.
pub(crate) struct GpuBackend {
    store: GpuStore,
}

impl GpuBackend {
    pub fn new(
        ctx: Arc<GpuContext>,
        entries: &[ParamEntry],
        values: &[Tensor],
        optimizer: Option<&Optimizer>,
    ) -> Result<Self> {
        Ok(GpuBackend {
            store: GpuStore::new(ctx, entries, values, optimizer)?,
        })
    }

    fn ctx(&self) -> &GpuContext {
        &self.store.ctx
    }

    /// What a run does before its commands are recorded: host feeds and the optimizer's step
    /// uniforms are queued (they land before the next submission), GPU feeds checked.
    fn prepare(&self, exe: &GpuProgram, run: &RunArgs<'_>) -> Result<()> {
        let ctx = self.ctx();
        for (id, t) in &exe.fed {
            match feed_of(run.feeds, id.0) {
                Some(Feed::Data(d)) => ctx.write(t, &d.data)?,
                Some(Feed::Labels(l)) => ctx.write_bytes(t, bytemuck::cast_slice(l)),
                Some(Feed::Gpu(src)) => {
                    if !src.buffer.usage().contains(wgpu::BufferUsages::COPY_SRC) {
                        return Err(Error::invalid(
                            "feed",
                            format!(
                                "the GPU tensor {} is fed by a copy on the device: its buffer needs COPY_SRC usage",
                                src.label
                            ),
                        ));
                    }
                }
                None => return Err(Error::invalid("run", "an input was not fed")),
            }
        }
        if let Some((o, step)) = run.update {
            self.store.prepare_step(&o, step)?;
        }
        Ok(())
    }

    /// Records the run into `enc`: GPU feeds copied into the program's inputs, every launch
    /// (and for a step the optimizer's, then the check that the parameters are still finite)
    /// in one compute pass, and the loss with that check copied into ring slot `slot`.
    fn encode(
        &self,
        exe: &mut GpuProgram,
        info: &ProgramInfo,
        run: &RunArgs<'_>,
        enc: &mut wgpu::CommandEncoder,
        slot: Option<usize>,
    ) {
        copy_gpu_feeds(exe, run, enc);
        let store = &self.store;
        let health = run.update.and(store.health_launch.as_ref());
        if health.is_some() {
            enc.clear_buffer(&store.health.buffer, store.health.offset, Some(4));
        }
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("wgrad run"),
                timestamp_writes: None,
            });
            for l in &exe.launches {
                l.record(&mut pass);
            }
            if run.update.is_some()
                && let Some(l) = &store.optim_launch
            {
                l.record(&mut pass);
            }
            if let Some(l) = health {
                l.record(&mut pass);
            }
        }
        if run.update.is_some() {
            copy_updates(exe, enc);
        }
        if let (Some(i), Some(l), Some(ring)) = (slot, info.loss, exe.ring.as_mut())
            && let Some(t) = &exe.tensors[l.0]
        {
            ring.copy(enc, i, t, &store.health, run.key, run.update.is_some());
        }
    }
}

impl GpuBackend {
    /// What the ring read, with each step's health flag decoded to the parameter it names.
    fn reports(&self, readings: Vec<Reading>) -> Vec<LossReport> {
        let n = self.store.trainable_len();
        readings
            .into_iter()
            .map(|r| LossReport {
                key: r.key,
                loss: r.loss,
                step: r.health.is_some(),
                nonfinite: r
                    .health
                    .and_then(|h| crate::cpu::health::decode_first_nonfinite(h, n))
                    .map(|element| self.store.entry_at(element).unwrap_or(0)),
            })
            .collect()
    }
}

/// Records a step's state updates (batch normalisation's running moments and counts) into the
/// parameter store: after every launch, which read the old values.
fn copy_updates(exe: &GpuProgram, enc: &mut wgpu::CommandEncoder) {
    for (value, param) in &exe.updates {
        let bytes = param.numel() as u64 * 4;
        enc.copy_buffer_to_buffer(
            &value.buffer,
            value.offset,
            &param.buffer,
            param.offset,
            bytes,
        );
    }
}

/// Records the copies of the run's GPU feeds into the program's input buffers.
fn copy_gpu_feeds(exe: &GpuProgram, run: &RunArgs<'_>, enc: &mut wgpu::CommandEncoder) {
    for (id, t) in &exe.fed {
        if let Some(Feed::Gpu(src)) = feed_of(run.feeds, id.0) {
            enc.copy_buffer_to_buffer(&src.buffer, src.offset, &t.buffer, t.offset, t.byte_len());
        }
    }
}

fn what(run: &RunArgs<'_>) -> &'static str {
    if run.update.is_some() {
        "training step"
    } else {
        "run"
    }
}

impl Backend for GpuBackend {
    type Exe = GpuProgram;

    fn describe(&self) -> String {
        self.ctx().describe()
    }

    async fn compile(&self, info: &ProgramInfo, entries: &[ParamEntry]) -> Result<GpuProgram> {
        GpuProgram::compile(&self.store, info, entries).await
    }

    async fn run(
        &mut self,
        exe: &mut GpuProgram,
        info: &ProgramInfo,
        run: &RunArgs<'_>,
    ) -> Result<()> {
        let ctx = self.store.ctx.clone();
        ctx.check_faults()?;
        // One swap per run: each costs its first dispatch a compile on CPU drivers.
        exe.tier_up(&ctx, 1, false)?;
        let slot = match (info.loss, exe.ring.as_mut()) {
            (Some(_), Some(ring)) => Some(ring.claim(&ctx).await?),
            _ => None,
        };
        self.prepare(exe, run)?;
        let scope = ctx.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let mut enc = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("wgrad run"),
            });
        self.encode(exe, info, run, &mut enc, slot);
        ctx.queue.submit([enc.finish()]);
        if let Some(message) = ctx.pop_scope(what(run), scope) {
            return Err(ctx.fault_or(Error::gpu(what(run), message)));
        }
        if let (Some(i), Some(ring)) = (slot, exe.ring.as_mut()) {
            ring.map(&ctx, i)?;
            ring.poll(&ctx)?;
        }
        Ok(())
    }

    fn record(
        &mut self,
        exe: &mut GpuProgram,
        info: &ProgramInfo,
        run: &RunArgs<'_>,
        encoder: &mut wgpu::CommandEncoder,
    ) -> Result<RecordedRun> {
        let ctx = self.store.ctx.clone();
        ctx.check_faults()?;
        exe.tier_up(&ctx, 1, false)?;
        let slot = match (info.loss, exe.ring.as_mut()) {
            (Some(_), Some(ring)) => Some(ring.claim_now(&ctx)?.ok_or_else(|| {
                Error::invalid(
                    "record",
                    format!(
                        "{LOSS_SLOTS} runs are still in flight: wait until ready() says a run can start without waiting"
                    ),
                )
            })?),
            _ => None,
        };
        self.prepare(exe, run)?;
        let scope = ctx.device.push_error_scope(wgpu::ErrorFilter::Validation);
        self.encode(exe, info, run, encoder, slot);
        if let Some(message) = ctx.pop_scope(what(run), scope) {
            return Err(Error::gpu(what(run), message));
        }
        Ok(RecordedRun { slot })
    }

    fn submitted(&mut self, exe: &mut GpuProgram, run: RecordedRun) -> Result<()> {
        if let (Some(i), Some(ring)) = (run.slot, exe.ring.as_mut()) {
            ring.map(&self.store.ctx, i)?;
        }
        Ok(())
    }

    fn ready(&mut self, exe: &mut GpuProgram) -> Result<bool> {
        match exe.ring.as_mut() {
            Some(ring) => ring.ready(&self.store.ctx),
            None => Ok(true),
        }
    }

    fn losses(&mut self, exe: &mut GpuProgram) -> Result<Vec<LossReport>> {
        self.ctx().check_faults()?;
        match exe.ring.as_mut() {
            Some(ring) => {
                ring.poll(&self.store.ctx)?;
                let readings = ring.take();
                Ok(self.reports(readings))
            }
            None => Ok(Vec::new()),
        }
    }

    async fn flush_losses(&mut self, exe: &mut GpuProgram) -> Result<Vec<LossReport>> {
        match exe.ring.as_mut() {
            Some(ring) => {
                ring.flush(&self.store.ctx).await?;
                self.store.ctx.check_faults()?;
                let readings = ring.take();
                Ok(self.reports(readings))
            }
            None => Ok(Vec::new()),
        }
    }

    async fn read(&self, exe: &GpuProgram, node: NodeId) -> Result<Tensor> {
        let t = self.output(exe, node)?;
        self.ctx().download_async(&t).await
    }

    fn output(&self, exe: &GpuProgram, node: NodeId) -> Result<GpuTensor> {
        exe.tensors
            .get(node.0)
            .cloned()
            .flatten()
            .ok_or_else(|| Error::invalid("fetch", format!("node {} is not placed", node.0)))
    }

    async fn read_state(&self, entries: &[ParamEntry], _: &[&str]) -> Result<Vec<Stored>> {
        self.store.read(entries).await
    }

    fn write_state(&mut self, entries: &[ParamEntry], stored: &[Stored]) -> Result<()> {
        self.store.write(entries, stored)
    }

    async fn profile(
        &mut self,
        exe: &mut GpuProgram,
        info: &ProgramInfo,
        run: &RunArgs<'_>,
    ) -> Result<Profile> {
        self.profile_run(exe, info, run).await
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn finish_tier_up(&mut self, exe: &mut GpuProgram) -> Result<()> {
        exe.tier_up(&self.store.ctx, usize::MAX, true).map(|_| ())
    }
}
