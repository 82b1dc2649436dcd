//! Files a training run reads and writes: checkpoints (safetensors), image grids and loss
//! curves (PNG; features `images` and `plot`), the loss log (CSV), and model checkpoints with
//! their optimizer state (`model.rs`). Every writer goes through [`write_atomic`], so a run
//! killed mid-write leaves the previous file intact.

pub mod atomic;
pub mod checkpoint;
#[cfg(feature = "images")]
pub mod image_grid;
pub mod loss_log;
pub mod model;
#[cfg(feature = "plot")]
pub mod plot;

pub use atomic::write_atomic;
pub use checkpoint::Checkpoint;
#[cfg(feature = "images")]
pub use image_grid::write_grid;
pub use loss_log::{LossLog, LossRow};
pub use model::{SavedModel, load_model, save_model};

use crate::error::Error;
use std::fmt;
use std::path::Path;

/// An [`Error::Io`] for `path`: "{path}: {doing}: {err}". For closures given to
/// [`write_atomic`], whose `std::io::Write` errors need a file name.
pub fn io_error(path: &Path, doing: &str, err: impl fmt::Display) -> Error {
    Error::Io {
        path: path.display().to_string(),
        message: format!("{doing}: {err}"),
    }
}
