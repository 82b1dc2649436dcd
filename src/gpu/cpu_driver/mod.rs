//! What only CPU drivers (lavapipe, llvmpipe GL, SwiftShader) use, kept apart from the GPU-class
//! code so that either side can change without the other:
//!
//! - [`reg`]: the choice of the register-blocked matmul mapping (`MatmulTile::Reg`): its cost
//!   model (with the machine's thread count), the block caps set by compile time, the ranking
//!   the tuner measures;
//! - [`tier`]: tier-up, starting programs on a quick-to-compile matmul and swapping the chosen
//!   ones in from a background thread, because CPU-class pipelines take seconds to compile.
//!
//! `kernels::matmul` asks here only where `matmul::cpu_class` says the context runs CPU-class
//! kernels; GPU-class contexts (every GPU, and CPU drivers whose options force that class) never
//! do. The `Reg` kernels themselves stay in shaders/matmul.wgsl, in a section of their own:
//! they share its bindings, epilogue and quad helpers with the GPU-class kernels.

pub mod reg;
pub(crate) mod tier;
