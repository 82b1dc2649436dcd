//! Layers, models and optimizers.
//!
//! | file | holds |
//! |---|---|
//! | `layer.rs` | [`Layer`]: PyTorch's layers by their argument names, their parameters and graph nodes |
//! | `sequential.rs` | [`Sequential`], with PyTorch state_dict names, and seeded initialisation |
//! | `autoencoder.rs` | [`AutoencoderConfig`]: the default preset and the checks that refuse misfits |
//! | `optimizer.rs` | [`Optimizer`]: SGD, Adam, AdamW and the names of their state |

mod autoencoder;
mod layer;
mod optimizer;
mod sequential;

pub use autoencoder::{AutoencoderConfig, AutoencoderNodes, Noise, Variational};
pub use layer::{Init, Layer, ParamSpec, Size2};
pub use optimizer::Optimizer;
pub use sequential::{Sequential, check_params, init_params};
