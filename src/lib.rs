//! # wgrad — a portable GPU training engine
//!
//! Hand-written WGSL compute kernels, dispatched through wgpu on any Vulkan, Metal, DX12 or GL
//! GPU (and WebGPU: the engine builds for wasm32), each with a plain-Rust CPU twin that the tests
//! hold it to. Built to be embedded: every wait is `async` (with blocking twins on native
//! targets), the caller passes [`Options`] (the library reads no environment variable), a host
//! hands over its own device, feeds images from its own GPU buffers, records steps into its own
//! command encoder and takes outputs back as GPU tensors. docs/ARCHITECTURE.md tells the design.
//!
//! Features: `cli` (default; the `wgrad` command, and the three below), `images` (PNG folders
//! and grids, resizing), `plot` (loss curves), `translate` (naga's SPIR-V, MSL, HLSL and GLSL back
//! ends). `default-features = false` is the engine alone.
//!
//! ## Module map
//!
//! | module | holds |
//! |---|---|
//! | [`error`] | the one error enum; every variant names the op, file or shape |
//! | [`shape`] | [`Shape`], and the only convolution output-size arithmetic |
//! | [`tensor`] | host [`Tensor`] and the seeded generator [`tensor::Rng`] |
//! | [`spec`] | kernel-call descriptions shared by both sides ([`MatmulSpec`], [`Activation`]) |
//! | [`cpu`] | the reference: one function per GPU entry point, same name, f64 accumulation |
//! | [`options`] | [`Options`]: adapter, tuning, cache directory, tier-up, wait timeout — what the caller decides |
//! | [`gpu`] | context (adapters, device), GPU tensors, pipelines, launches, one launcher per entry point, futures over the device's callbacks, the timer and the matmul autotuner (`gpu::tune`, cache per adapter); what only CPU drivers use (the `Reg` matmul's cost model, tier-up) in `gpu::cpu_driver` |
//! | [`optim_config`] | optimizer hyperparameters shared by both sides ([`SgdConfig`], [`AdamConfig`]) |
//! | [`ops`] | composite ops built from kernels (conv2d, conv_transpose2d: forward and gradients) on both sides |
//! | [`compare`] | tolerances and GPU-versus-CPU comparison reports |
//! | [`graph`] | graphs of kernel-sized ops, shape inference, autodiff, activation fusion, memory planning |
//! | [`nn`] | layers with PyTorch's names and initialisation, the autoencoder config, optimizers |
//! | [`exec`] | sessions (parameters + optimizer state on a device) and compiled programs that run graphs, through one `Backend` trait (CPU reference, GPU) |
//! | [`images`] | [`Images`]: a batch from host memory or already on the GPU |
//! | [`train`] | the autoencoder trainer: batches of any size up to its own in, losses out (or left on the GPU), state for checkpoints |
//! | [`classify`] | a classifier head on the encoder's code, frozen or trained jointly |
//! | [`io`] | files: safetensors checkpoints, PNG image grids and loss plots, the loss-log CSV; all written atomically |
//! | [`data`] | datasets to train on (built-in shapes, IDX, PNG folders), `--data` parsing, seeded batch order |
//! | [`check`] | cross-backend correctness: every kernel and one training step on each adapter against the CPU (`wgrad check`, and the web page's check) |
//! | `bench` | per-kernel GFLOP/s and GB/s and training images/s on each adapter (`wgrad bench`; native only) |
//! | `web` | the web page's bindings (wasm32, feature `web`): the browser's adapter, training, reconstructions, classifiers, the check |
//!
//! Shaders live in `shaders/*.wgsl` (one file per kernel family) and are embedded at build time.

// The `bench` command's engine times with the blocking wrappers: native only.
#[cfg(not(target_arch = "wasm32"))]
pub mod bench;
pub mod check;
pub mod classify;
pub mod compare;
pub mod cpu;
pub mod data;
pub mod error;
pub mod exec;
pub mod gpu;
pub mod graph;
pub mod images;
pub mod io;
pub mod nn;
pub mod ops;
pub mod optim_config;
pub mod options;
pub mod shape;
pub mod spec;
pub mod tensor;
pub mod train;
#[cfg(all(target_arch = "wasm32", feature = "web"))]
pub mod web;

/// The wgpu wgrad is built against: a host hands over a device of this version.
pub use wgpu;

pub use error::{Error, Result};
pub use gpu::{GpuContext, GpuTensor};
pub use images::Images;
pub use optim_config::{AdamConfig, SgdConfig};
pub use options::{KernelClass, Options};
pub use shape::{ConvParams, Shape};
pub use spec::{Activation, BiasMode, MatmulSpec};
pub use tensor::Tensor;
