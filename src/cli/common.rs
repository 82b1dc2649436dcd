//! What several subcommands share: the engine options (flags and `WGRAD_*` variables),
//! choosing the device, the optimizer flags, opening a model from a checkpoint, and evaluating
//! over a whole dataset.

use clap::{Args, ValueEnum};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use wgrad::data::Dataset;
use wgrad::exec::Device;
use wgrad::gpu::tune::TuneMode;
use wgrad::gpu::{AdapterChoice, BackendKind, GpuContext};
use wgrad::io::{SavedModel, load_model};
use wgrad::nn::{AutoencoderConfig, Optimizer};
use wgrad::train::Trainer;
use wgrad::{AdamConfig, Error, KernelClass, Options, Result, SgdConfig, Tensor};

/// Engine options, for every subcommand. A flag wins over its `WGRAD_*` variable.
#[derive(Args, Debug, Clone)]
pub struct EngineArgs {
    /// Matmul autotuning: on (measure new shapes), cached (use the cache, else the cost model)
    /// or off [env: WGRAD_TUNE; default: cached on CPU drivers, on elsewhere]
    #[arg(long, global = true, value_name = "MODE")]
    pub tune: Option<String>,
    /// Where tune caches are kept [env: WGRAD_CACHE_DIR; default: $XDG_CACHE_HOME/wgrad, else
    /// ~/.cache/wgrad]
    #[arg(long, global = true, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Keep no tune cache on disk (winners live in memory for the run).
    #[arg(long, global = true, conflicts_with = "cache_dir")]
    pub no_cache: bool,
    /// Start matmuls on a quick-to-compile kernel and swap in the final ones from a background
    /// thread: on or off [env: WGRAD_TIERED; default: on for CPU drivers]
    #[arg(long, global = true, value_name = "ON|OFF")]
    pub tier_up: Option<String>,
    /// Matmul kernel class: auto (the adapter's own: register blocks on CPU drivers,
    /// workgroup-memory tiles on GPUs) or gpu (the GPU kernels on every adapter, CPU drivers
    /// included) [env: WGRAD_KERNELS; default: auto]
    #[arg(long, global = true, value_name = "AUTO|GPU")]
    pub kernels: Option<String>,
    /// Subgroup operations in reductions and losses where the device has them: on or off (the
    /// same results either way) [env: WGRAD_SUBGROUPS; default: on GPUs, off on CPU drivers]
    #[arg(long, global = true, value_name = "ON|OFF")]
    pub subgroups: Option<String>,
}

fn env(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.is_empty())
}

/// `on`/`off` (also `1`/`0`, `true`/`false`).
fn switch(name: &str, v: &str) -> Result<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "on" | "1" | "true" => Ok(true),
        "off" | "0" | "false" => Ok(false),
        other => Err(Error::invalid(
            name,
            format!("'{other}': expected on or off"),
        )),
    }
}

/// Where the command keeps tune caches: `$WGRAD_CACHE_DIR`, else `$XDG_CACHE_HOME/wgrad`,
/// else `~/.cache/wgrad` (`None` where none of them is set).
pub fn default_cache_dir() -> Option<PathBuf> {
    env("WGRAD_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| env("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("wgrad")))
        .or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".cache").join("wgrad")))
}

impl EngineArgs {
    /// The engine options: flags, else `WGRAD_TUNE`, `WGRAD_CACHE_DIR`, `WGRAD_TIERED`,
    /// `WGRAD_KERNELS`, `WGRAD_SUBGROUPS` and `WGRAD_BACKEND` (the adapter `--backend auto` takes), else the
    /// defaults.
    pub fn options(&self) -> Result<Options> {
        let tune = match self.tune.clone().or_else(|| env("WGRAD_TUNE")) {
            Some(m) => Some(TuneMode::parse(&m).map_err(|_| {
                Error::invalid(
                    "--tune / WGRAD_TUNE",
                    format!("'{m}': expected on, cached or off"),
                )
            })?),
            None => None,
        };
        let tier_up = match self.tier_up.clone().or_else(|| env("WGRAD_TIERED")) {
            Some(v) => Some(switch("--tier-up / WGRAD_TIERED", &v)?),
            None => None,
        };
        let kernels = match self.kernels.clone().or_else(|| env("WGRAD_KERNELS")) {
            Some(v) => KernelClass::parse(&v).map_err(|_| {
                Error::invalid(
                    "--kernels / WGRAD_KERNELS",
                    format!("'{v}': expected auto or gpu"),
                )
            })?,
            None => KernelClass::Auto,
        };
        let subgroups = match self.subgroups.clone().or_else(|| env("WGRAD_SUBGROUPS")) {
            Some(v) => Some(switch("--subgroups / WGRAD_SUBGROUPS", &v)?),
            None => None,
        };
        let cache_dir = match self.no_cache {
            true => None,
            false => self.cache_dir.clone().or_else(default_cache_dir),
        };
        let adapter = match env("WGRAD_BACKEND") {
            Some(v) if v != "auto" => AdapterChoice::backend(BackendKind::parse(&v)?),
            _ => AdapterChoice::default(),
        };
        Ok(Options {
            adapter,
            tune,
            cache_dir,
            tier_up,
            kernels,
            subgroups,
            ..Options::default()
        })
    }
}

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

/// The device `--backend` names. `auto` takes the options' adapter (`WGRAD_BACKEND`, else the
/// best one), and falls back to the CPU reference, with a one-line warning, when the machine
/// has no GPU adapter.
pub fn device(b: BackendArg, options: &Options) -> Result<Device> {
    let choice = match b {
        BackendArg::Cpu => return Ok(Device::Cpu),
        BackendArg::Auto => options.adapter.clone(),
        BackendArg::Vulkan => AdapterChoice::backend(BackendKind::Vulkan),
        BackendArg::Metal => AdapterChoice::backend(BackendKind::Metal),
        BackendArg::Dx12 => AdapterChoice::backend(BackendKind::Dx12),
        BackendArg::Gl => AdapterChoice::backend(BackendKind::Gl),
    };
    let opts = Options {
        adapter: choice.clone(),
        ..options.clone()
    };
    match GpuContext::new(&opts) {
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
