//! One launcher per kernel entry point, grouped by shader file. Each returns a [`Launch`]
//! (record it with [`GpuContext::run`] or into an executor's command buffer).
//!
//! [`Launch`]: crate::gpu::Launch
//! [`GpuContext::run`]: crate::gpu::GpuContext::run

pub mod batch_norm;
pub mod health;
pub mod im2col;
pub mod loss;
pub mod matmul;
pub mod noise;
pub mod optim;
pub mod pointwise;
pub mod pool;
pub mod reduce;
