//! What several subcommands share: choosing the device, the optimizer flags, opening a model
//! from a checkpoint, and evaluating over a whole dataset.

use clap::{Args, ValueEnum};
use std::path::Path;
use std::sync::Arc;
use wgrad::data::Dataset;
use wgrad::exec::Device;
use wgrad::gpu::{AdapterChoice, BackendKind, GpuContext};
use wgrad::io::{SavedModel, load_model};
use wgrad::nn::{AutoencoderConfig, Optimizer};
use wgrad::train::Trainer;
use wgrad::{AdamConfig, Error, Result, SgdConfig, Tensor};

/// `--backend`: a GPU backend, `cpu` for the reference, or `auto`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BackendArg {
    Auto,
    Vulkan,
    Metal,
    Dx12,
    Gl,
    Cpu,
}

/// The device `--backend` names. `auto` takes `WGRAD_BACKEND` or the best adapter, and falls
/// back to the CPU reference, with a one-line warning, when the machine has no GPU adapter.
pub fn device(b: BackendArg) -> Result<Device> {
    let choice = match b {
        BackendArg::Cpu => return Ok(Device::Cpu),
        BackendArg::Auto => AdapterChoice::from_env()?,
        BackendArg::Vulkan => AdapterChoice::backend(BackendKind::Vulkan),
        BackendArg::Metal => AdapterChoice::backend(BackendKind::Metal),
        BackendArg::Dx12 => AdapterChoice::backend(BackendKind::Dx12),
        BackendArg::Gl => AdapterChoice::backend(BackendKind::Gl),
    };
    match GpuContext::new(&choice) {
        Ok(ctx) => Ok(Device::Gpu(Arc::new(ctx))),
        Err(Error::NoAdapter(why)) if b == BackendArg::Auto && choice.backend.is_none() => {
            eprintln!(
                "wgrad: warning: no GPU adapter ({why}); running on the CPU reference, which is slow"
            );
            Ok(Device::Cpu)
        }
        Err(e) => Err(e),
    }
}

/// `--optimizer`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OptimizerArg {
    Sgd,
    Adam,
    Adamw,
}

/// Optimizer flags, shared by `train` and `classify`.
#[derive(Args, Debug, Clone)]
pub struct OptimizerArgs {
    /// Optimizer (PyTorch's formulas and defaults).
    #[arg(long, value_enum, default_value = "adam")]
    pub optimizer: OptimizerArg,
    /// Learning rate.
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    /// SGD momentum.
    #[arg(long, default_value_t = 0.0)]
    pub momentum: f64,
    /// Weight decay (L2 for sgd and adam, decoupled for adamw; adamw's default is 0.01).
    #[arg(long)]
    pub weight_decay: Option<f64>,
}

impl OptimizerArgs {
    pub fn build(&self) -> Result<Optimizer> {
        let o = match self.optimizer {
            OptimizerArg::Sgd => Optimizer::Sgd(SgdConfig {
                lr: self.lr,
                momentum: self.momentum,
                weight_decay: self.weight_decay.unwrap_or(0.0),
                ..SgdConfig::default()
            }),
            OptimizerArg::Adam => Optimizer::Adam(AdamConfig {
                lr: self.lr,
                weight_decay: self.weight_decay.unwrap_or(0.0),
                ..AdamConfig::adam()
            }),
            OptimizerArg::Adamw => Optimizer::AdamW(AdamConfig {
                lr: self.lr,
                weight_decay: self.weight_decay.unwrap_or(0.01),
                ..AdamConfig::adamw()
            }),
        };
        if self.momentum != 0.0 && self.optimizer != OptimizerArg::Sgd {
            return Err(Error::invalid(
                "--momentum",
                "only applies to --optimizer sgd",
            ));
        }
        o.check()?;
        Ok(o)
    }
}

/// A config from `--config FILE`, else the checkpoint's, else the default preset.
pub fn config(file: Option<&Path>, saved: Option<&SavedModel>) -> Result<AutoencoderConfig> {
    if let Some(f) = file {
        let text = std::fs::read_to_string(f).map_err(|e| Error::Io {
            path: f.display().to_string(),
            message: e.to_string(),
        })?;
        return AutoencoderConfig::from_toml(&text, &f.display().to_string());
    }
    Ok(saved.and_then(|s| s.config.clone()).unwrap_or_default())
}

/// A trained model from a checkpoint, for inference.
pub fn open_model(ckpt: &Path, config_file: Option<&Path>, device: Device) -> Result<Trainer> {
    let saved = load_model(ckpt)?;
    let config = config(config_file, Some(&saved))?;
    Trainer::for_inference(device, config, saved.state.params)
        .map_err(|e| e.in_file(ckpt.display()))
}

/// The mean reconstruction loss over `data`, `batch` images at a time.
pub fn held_out_loss(t: &mut Trainer, data: &Dataset, batch: usize) -> Result<f32> {
    let mut sum = 0f64;
    for (x, n) in chunks(data, batch) {
        sum += t.evaluate(&x)?.0 as f64 * n as f64;
    }
    Ok((sum / data.len().max(1) as f64) as f32)
}

/// `data` in order, `batch` images at a time (the last chunk may be smaller).
pub fn chunks(data: &Dataset, batch: usize) -> impl Iterator<Item = (Tensor, usize)> + '_ {
    let n = data.len();
    (0..n).step_by(batch.max(1)).map(move |s| {
        let idx: Vec<usize> = (s..(s + batch).min(n)).collect();
        let (x, _) = data.batch(&idx);
        (x, idx.len())
    })
}

/// A path beside `ckpt` with `suffix` in place of its extension: `model.loss.png`.
pub fn beside(ckpt: &Path, suffix: &str) -> std::path::PathBuf {
    let stem = ckpt
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    ckpt.with_file_name(format!("{stem}.{suffix}"))
}
