//! The one error type of the crate. Every variant says which op, file or shape went wrong, so a
//! message read alone (in a log, on a CLI's one line) is enough to find the cause.

use std::fmt;

/// Everything that can go wrong in wgrad.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No adapter matched the request (or the machine has none).
    #[error("no GPU adapter found: {0}")]
    NoAdapter(String),

    /// The adapter refused to create a device.
    #[error("adapter '{adapter}' refused to create a device: {message}")]
    DeviceRequest { adapter: String, message: String },

    /// A shader or pipeline failed wgpu/naga validation.
    #[error("shader {file}, entry point '{entry}': {message}")]
    Shader {
        file: String,
        entry: String,
        message: String,
    },

    /// An op was called with arguments that cannot work (shapes, strides, lengths).
    #[error("{op}: {message}")]
    Invalid { op: String, message: String },

    /// A tensor or dispatch is larger than the device allows.
    #[error("{op}: {what} needs {needed}, over the device limit {limit_name} = {limit}")]
    Limit {
        op: String,
        what: String,
        needed: u64,
        limit_name: &'static str,
        limit: u64,
    },

    /// wgpu reported an error while running work (validation, out of memory, device lost).
    #[error("GPU error in {op}: {message}")]
    Gpu { op: String, message: String },

    /// The device could not allocate a buffer: it ran out of memory.
    #[error(
        "{op}: out of GPU memory allocating {what} ({bytes} bytes; the device allows buffers up to {max_buffer_size} bytes, but its memory ran out first)"
    )]
    OutOfMemory {
        op: String,
        what: String,
        bytes: u64,
        max_buffer_size: u64,
    },

    /// The device is gone: removed, reset, its driver crashed, or it was destroyed.
    #[error("the GPU device was lost: {reason}")]
    DeviceLost { reason: String },

    /// Training diverged: a step's loss, or a parameter its update produced, is an infinity or
    /// a NaN. Training stops there; nothing non-finite is written to a checkpoint.
    #[error(
        "training diverged at step {step}: {what} is not finite (NaN or infinite); lower the learning rate"
    )]
    Diverged { step: u64, what: String },

    /// A blocking wait for the device gave up ([`crate::Options::wait_timeout`]).
    #[error("{op}: the device did not finish within {seconds} s (Options::wait_timeout)")]
    Timeout { op: String, seconds: f64 },

    /// A GPU result differs from its CPU reference beyond tolerance.
    #[error("{0}")]
    Mismatch(String),

    /// A file could not be read or written.
    #[error("{path}: {message}")]
    Io { path: String, message: String },

    /// A data file, folder or checkpoint is malformed (wrong magic number, truncated, counts
    /// that differ, a missing or misshapen tensor); `path` names the file and `message` the field.
    #[error("{path}: {message}")]
    Data { path: String, message: String },

    /// A model or graph cannot be built as described: `layer` names the layer (or node) and
    /// `message` the op and the shapes that do not fit.
    #[error("{layer}: {message}")]
    Model { layer: String, message: String },
}

impl Error {
    /// An invalid-argument error for `op`.
    pub fn invalid(op: impl fmt::Display, message: impl fmt::Display) -> Self {
        Error::Invalid {
            op: op.to_string(),
            message: message.to_string(),
        }
    }

    /// A malformed-data error for the file at `path`.
    pub fn data(path: impl fmt::Display, message: impl fmt::Display) -> Self {
        Error::Data {
            path: path.to_string(),
            message: message.to_string(),
        }
    }

    /// A model-building error for `layer`.
    pub fn model(layer: impl fmt::Display, message: impl fmt::Display) -> Self {
        Error::Model {
            layer: layer.to_string(),
            message: message.to_string(),
        }
    }

    /// This error as one naming the model layer it happened in: an invalid-argument error from
    /// a kernel or shape check becomes [`Error::Model`] for `layer` (keeping the op's name);
    /// every other error is returned as it is.
    pub fn in_layer(self, layer: impl fmt::Display) -> Self {
        match self {
            Error::Invalid { op, message } => Error::model(layer, format!("{op}: {message}")),
            other => other,
        }
    }

    /// This error as a data error for the file at `path` where it is a model error (a
    /// checkpoint whose tensors do not fit the model); every other error as it is.
    pub fn in_file(self, path: impl fmt::Display) -> Self {
        match self {
            Error::Model { layer, message } => Error::data(path, format!("{layer}: {message}")),
            other => other,
        }
    }

    /// A GPU-side error for `op`.
    pub fn gpu(op: impl fmt::Display, message: impl fmt::Display) -> Self {
        Error::Gpu {
            op: op.to_string(),
            message: message.to_string(),
        }
    }
}

/// `Result` with wgrad's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
