//! Where a session runs: the CPU reference or a GPU context.

use super::backend::DynBackend;
use super::cpu::CpuBackend;
use super::gpu::GpuBackend;
use super::state::ParamEntry;
use crate::error::Result;
use crate::gpu::GpuContext;
use crate::nn::Optimizer;
use crate::tensor::Tensor;
use std::sync::Arc;

/// Where a session runs.
#[derive(Clone, Debug)]
pub enum Device {
    /// The CPU reference: every kernel's plain-Rust twin.
    Cpu,
    Gpu(Arc<GpuContext>),
}

impl Device {
    /// The adapter and backend, or "CPU reference".
    pub fn describe(&self) -> String {
        match self {
            Device::Cpu => "CPU reference".into(),
            Device::Gpu(ctx) => ctx.describe(),
        }
    }

    /// The GPU context, if the device is one.
    pub fn gpu(&self) -> Option<&Arc<GpuContext>> {
        match self {
            Device::Cpu => None,
            Device::Gpu(ctx) => Some(ctx),
        }
    }

    /// Runs `fut` to completion on this thread (the native wrapper of the `*_async` methods):
    /// on a GPU, waiting in `Device::poll` for at most the context's
    /// [`crate::Options::wait_timeout`]; the CPU reference's futures are ready at once.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn block_on<T>(
        &self,
        op: &str,
        fut: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        match self {
            Device::Cpu => crate::gpu::future::ready_now(fut),
            Device::Gpu(ctx) => ctx.block_on(op, fut),
        }
    }

    /// The backend that stores `values` (one per entry) on this device.
    pub(crate) fn backend(
        &self,
        entries: &[ParamEntry],
        values: Vec<Tensor>,
        optimizer: Option<&Optimizer>,
    ) -> Result<Box<dyn DynBackend>> {
        Ok(match self {
            Device::Cpu => {
                let buffers = optimizer.map_or(0, |o| o.state_names().len());
                Box::new(CpuBackend::new(entries, values, buffers))
            }
            Device::Gpu(ctx) => {
                Box::new(GpuBackend::new(ctx.clone(), entries, &values, optimizer)?)
            }
        })
    }
}
