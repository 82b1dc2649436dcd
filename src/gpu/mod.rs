//! The GPU side: context (adapters, device, options), tensors in buffers, pipelines, launches,
//! and one launcher per kernel entry point in [`kernels`]; [`future`] turns the device's
//! callbacks into futures (and holds the one blocking wait); [`timer`] times launches
//! (timestamps or wall clock) and [`tune`] picks each matmul shape's mapping (measured once,
//! cached per adapter).

pub mod buffer;
pub mod context;
pub mod cpu_driver;
pub(crate) mod faults;
pub mod future;
pub mod kernels;
pub mod launch;
pub mod pipeline;
#[cfg(not(target_arch = "wasm32"))]
pub mod select;
pub mod shaders;
pub mod timer;
#[cfg(feature = "translate")]
pub mod translate;
pub mod tune;

pub use buffer::{DType, GpuTensor};
#[cfg(not(target_arch = "wasm32"))]
pub use context::list_adapters;
pub use context::{
    AdapterChoice, AdapterSummary, BackendKind, GpuContext, Transfers, backend_name,
    list_adapters_async, tag,
};
pub use launch::{Launch, Workgroups};
