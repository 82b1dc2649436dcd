//! The one interface between the executor and a device. A [`Backend`] stores a session's
//! parameters and optimizer state, compiles a [`ProgramInfo`] into its own executable form, runs
//! it, and reads values back. The CPU reference (`exec/cpu`) and the GPU (`exec/gpu`) each
//! implement it; [`super::Session`] holds one behind [`DynBackend`] and never matches on which.
//!
//! Adding a backend means implementing this trait (docs/ARCHITECTURE.md says how); the session,
//! the trainer and everything above stay as they are.

use super::feed::Feed;
use super::program::ProgramInfo;
use super::state::{ParamEntry, Stored};
use super::{DispatchTime, Profile};
use crate::error::{Error, Result};
use crate::gpu::GpuTensor;
use crate::graph::NodeId;
use crate::nn::Optimizer;
use crate::tensor::Tensor;
use std::any::Any;
use std::future::Future;
use std::pin::Pin;

/// What one run asks of a backend.
pub(crate) struct RunArgs<'a> {
    pub feeds: &'a [(NodeId, Feed<'a>)],
    /// The optimizer and the step number it takes, when the run is a training step.
    pub update: Option<(Optimizer, u64)>,
    /// The number the run's loss is reported under: the step for a training step, else the
    /// program's run count.
    pub key: u64,
}

/// One run's loss as a backend reports it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LossReport {
    /// The step (or, for other runs, the run) it belongs to.
    pub key: u64,
    pub loss: f32,
    /// Whether the run was a training step.
    pub step: bool,
    /// For a step: the session entry that its update left non-finite first, if any.
    pub nonfinite: Option<usize>,
}

/// A run recorded into a host's command encoder, whose loss read-back starts once the host has
/// submitted it ([`Backend::submitted`]).
#[derive(Debug)]
pub(crate) struct RecordedRun {
    /// The loss read-back slot the run's loss was copied into.
    pub slot: Option<usize>,
}

/// A device's side of a session. `Exe` is what a program compiles to on it. The async methods
/// never block; those that wait for the device resolve when it is done.
#[allow(async_fn_in_trait)]
pub(crate) trait Backend {
    type Exe: 'static;

    /// The adapter and backend, or "CPU reference".
    fn describe(&self) -> String;

    /// Builds everything `info`'s runs need (buffers, pipelines, launches), choosing (and, where
    /// tuning is on, measuring) kernel mappings.
    async fn compile(&self, info: &ProgramInfo, entries: &[ParamEntry]) -> Result<Self::Exe>;

    /// Launches the run (with the optimizer when `run.update` is set). Waits only for a free
    /// loss read-back slot when too many runs are in flight.
    async fn run(
        &mut self,
        exe: &mut Self::Exe,
        info: &ProgramInfo,
        run: &RunArgs<'_>,
    ) -> Result<()>;

    /// Records the run into the host's `encoder` instead of submitting it.
    fn record(
        &mut self,
        _exe: &mut Self::Exe,
        _info: &ProgramInfo,
        _run: &RunArgs<'_>,
        _encoder: &mut wgpu::CommandEncoder,
    ) -> Result<RecordedRun> {
        Err(needs_gpu("record into a command encoder", &self.describe()))
    }

    /// The host has submitted a recorded run: start reading its loss back.
    fn submitted(&mut self, _exe: &mut Self::Exe, _run: RecordedRun) -> Result<()> {
        Ok(())
    }

    /// Whether a run could start now without waiting for a loss read-back slot.
    fn ready(&mut self, _exe: &mut Self::Exe) -> Result<bool> {
        Ok(true)
    }

    /// The losses of finished runs, oldest first, without waiting.
    fn losses(&mut self, exe: &mut Self::Exe) -> Result<Vec<LossReport>>;

    /// Every outstanding loss, once the device has finished the runs that produce them.
    async fn flush_losses(&mut self, exe: &mut Self::Exe) -> Result<Vec<LossReport>>;

    /// A node's value after the latest run (a fetched node, the loss, or a gradient).
    async fn read(&self, exe: &Self::Exe, node: NodeId) -> Result<Tensor>;

    /// A node's buffer on the device (valid until the next run), for a host to bind or copy.
    fn output(&self, _exe: &Self::Exe, _node: NodeId) -> Result<GpuTensor> {
        Err(needs_gpu("a GPU-resident output", &self.describe()))
    }

    /// Every parameter's value and optimizer buffers, read back.
    async fn read_state(&self, entries: &[ParamEntry], names: &[&str]) -> Result<Vec<Stored>>;

    /// Overwrites every parameter's value and optimizer buffers.
    fn write_state(&mut self, entries: &[ParamEntry], stored: &[Stored]) -> Result<()>;

    /// One run with every dispatch timed; the run counts as a real one.
    async fn profile(
        &mut self,
        exe: &mut Self::Exe,
        info: &ProgramInfo,
        run: &RunArgs<'_>,
    ) -> Result<Profile> {
        let start = web_time::Instant::now();
        self.run(exe, info, run).await?;
        self.flush_losses(exe).await?;
        Ok(Profile {
            dispatches: vec![DispatchTime {
                label: "whole step".into(),
                kernel: self.describe(),
                seconds: start.elapsed().as_secs_f64(),
            }],
            method: "wall clock around the whole run",
        })
    }

    /// Waits until the program runs its final kernels (see `gpu/cpu_driver/tier.rs`); native only.
    #[cfg(not(target_arch = "wasm32"))]
    fn finish_tier_up(&mut self, _exe: &mut Self::Exe) -> Result<()> {
        Ok(())
    }
}

pub(crate) fn needs_gpu(what: &str, device: &str) -> Error {
    Error::invalid(
        what,
        format!("needs a GPU session; this one runs on the {device}"),
    )
}

type Fut<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + 'a>>;

/// `Send` on native targets, so that a session (and a trainer) can move to another thread;
/// nothing on wasm, where wgpu's types are not `Send`.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) trait MaybeSend: Send {}
#[cfg(not(target_arch = "wasm32"))]
impl<T: Send + ?Sized> MaybeSend for T {}
#[cfg(target_arch = "wasm32")]
pub(crate) trait MaybeSend {}
#[cfg(target_arch = "wasm32")]
impl<T: ?Sized> MaybeSend for T {}

/// A program's executable, its type erased (`Send` where [`MaybeSend`] is).
#[cfg(not(target_arch = "wasm32"))]
pub(crate) type AnyExe = dyn Any + Send;
#[cfg(target_arch = "wasm32")]
pub(crate) type AnyExe = dyn Any;

/// [`Backend`] with its executable type erased, so that a session can hold any backend. Each
/// method downcasts the program's executable to the backend's own type; the session has already
/// checked that the program is its own, so a mismatch here is a bug, reported as an error.
pub(crate) trait DynBackend: MaybeSend {
    fn describe(&self) -> String;
    fn compile<'a>(
        &'a self,
        info: &'a ProgramInfo,
        entries: &'a [ParamEntry],
    ) -> Fut<'a, Box<AnyExe>>;
    fn run<'a>(
        &'a mut self,
        exe: &'a mut dyn Any,
        info: &'a ProgramInfo,
        run: &'a RunArgs<'a>,
    ) -> Fut<'a, ()>;
    fn record(
        &mut self,
        exe: &mut dyn Any,
        info: &ProgramInfo,
        run: &RunArgs<'_>,
        encoder: &mut wgpu::CommandEncoder,
    ) -> Result<RecordedRun>;
    fn submitted(&mut self, exe: &mut dyn Any, run: RecordedRun) -> Result<()>;
    fn ready(&mut self, exe: &mut dyn Any) -> Result<bool>;
    fn losses(&mut self, exe: &mut dyn Any) -> Result<Vec<LossReport>>;
    fn flush_losses<'a>(&'a mut self, exe: &'a mut dyn Any) -> Fut<'a, Vec<LossReport>>;
    fn read<'a>(&'a self, exe: &'a dyn Any, node: NodeId) -> Fut<'a, Tensor>;
    fn output(&self, exe: &dyn Any, node: NodeId) -> Result<GpuTensor>;
    fn read_state<'a>(
        &'a self,
        entries: &'a [ParamEntry],
        names: &'a [&'a str],
    ) -> Fut<'a, Vec<Stored>>;
    fn write_state(&mut self, entries: &[ParamEntry], stored: &[Stored]) -> Result<()>;
    fn profile<'a>(
        &'a mut self,
        exe: &'a mut dyn Any,
        info: &'a ProgramInfo,
        run: &'a RunArgs<'a>,
    ) -> Fut<'a, Profile>;
    #[cfg(not(target_arch = "wasm32"))]
    fn finish_tier_up(&mut self, exe: &mut dyn Any) -> Result<()>;
}

fn mismatch() -> Error {
    Error::invalid(
        "run",
        "internal: the program's executable belongs to another backend",
    )
}

fn exe_mut<B: Backend>(exe: &mut dyn Any) -> Result<&mut B::Exe> {
    exe.downcast_mut::<B::Exe>().ok_or_else(mismatch)
}

fn exe_ref<B: Backend>(exe: &dyn Any) -> Result<&B::Exe> {
    exe.downcast_ref::<B::Exe>().ok_or_else(mismatch)
}

impl<B: Backend + MaybeSend> DynBackend for B
where
    B::Exe: MaybeSend,
{
    fn describe(&self) -> String {
        Backend::describe(self)
    }
    fn compile<'a>(
        &'a self,
        info: &'a ProgramInfo,
        entries: &'a [ParamEntry],
    ) -> Fut<'a, Box<AnyExe>> {
        Box::pin(async move {
            let exe = Backend::compile(self, info, entries).await?;
            Ok(Box::new(exe) as Box<AnyExe>)
        })
    }
    fn run<'a>(
        &'a mut self,
        exe: &'a mut dyn Any,
        info: &'a ProgramInfo,
        run: &'a RunArgs<'a>,
    ) -> Fut<'a, ()> {
        Box::pin(async move { Backend::run(self, exe_mut::<B>(exe)?, info, run).await })
    }
    fn record(
        &mut self,
        exe: &mut dyn Any,
        info: &ProgramInfo,
        run: &RunArgs<'_>,
        encoder: &mut wgpu::CommandEncoder,
    ) -> Result<RecordedRun> {
        Backend::record(self, exe_mut::<B>(exe)?, info, run, encoder)
    }
    fn submitted(&mut self, exe: &mut dyn Any, run: RecordedRun) -> Result<()> {
        Backend::submitted(self, exe_mut::<B>(exe)?, run)
    }
    fn ready(&mut self, exe: &mut dyn Any) -> Result<bool> {
        Backend::ready(self, exe_mut::<B>(exe)?)
    }
    fn losses(&mut self, exe: &mut dyn Any) -> Result<Vec<LossReport>> {
        Backend::losses(self, exe_mut::<B>(exe)?)
    }
    fn flush_losses<'a>(&'a mut self, exe: &'a mut dyn Any) -> Fut<'a, Vec<LossReport>> {
        Box::pin(async move { Backend::flush_losses(self, exe_mut::<B>(exe)?).await })
    }
    fn read<'a>(&'a self, exe: &'a dyn Any, node: NodeId) -> Fut<'a, Tensor> {
        Box::pin(async move { Backend::read(self, exe_ref::<B>(exe)?, node).await })
    }
    fn output(&self, exe: &dyn Any, node: NodeId) -> Result<GpuTensor> {
        Backend::output(self, exe_ref::<B>(exe)?, node)
    }
    fn read_state<'a>(
        &'a self,
        entries: &'a [ParamEntry],
        names: &'a [&'a str],
    ) -> Fut<'a, Vec<Stored>> {
        Box::pin(Backend::read_state(self, entries, names))
    }
    fn write_state(&mut self, entries: &[ParamEntry], stored: &[Stored]) -> Result<()> {
        Backend::write_state(self, entries, stored)
    }
    fn profile<'a>(
        &'a mut self,
        exe: &'a mut dyn Any,
        info: &'a ProgramInfo,
        run: &'a RunArgs<'a>,
    ) -> Fut<'a, Profile> {
        Box::pin(async move { Backend::profile(self, exe_mut::<B>(exe)?, info, run).await })
    }
    #[cfg(not(target_arch = "wasm32"))]
    fn finish_tier_up(&mut self, exe: &mut dyn Any) -> Result<()> {
        Backend::finish_tier_up(self, exe_mut::<B>(exe)?)
    }
}
