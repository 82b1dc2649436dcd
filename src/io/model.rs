//! Model checkpoints as a training run saves and resumes them.
//!
//! The checkpoint file holds exactly the model's state_dict (`encoder.0.weight`, ...), so that
//! `model.load_state_dict(safetensors.torch.load_file(path))` works in PyTorch for the same
//! `nn.Sequential`s; its metadata holds the config (TOML), the step count, the optimizer and
//! the run's data order (seed, batch, shuffle). The optimizer state (`{param}.exp_avg`, ...)
//! lives in a sidecar file named after the step, `{stem}.optim-{step}.safetensors`, which the
//! checkpoint's metadata names: the sidecar is written first, then the checkpoint, then the
//! previous sidecar is removed, so a crash at any point leaves a checkpoint whose sidecar
//! exists. A checkpoint without one (a PyTorch export) starts with fresh optimizer state.

use super::Checkpoint;
use super::checkpoint::{META_CONFIG, META_OPTIMIZER};
use crate::error::{Error, Result};
use crate::exec::State;
use crate::nn::AutoencoderConfig;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Metadata key naming the optimizer-state sidecar file (a name in the same folder).
pub const META_OPTIMIZER_STATE: &str = "wgrad.optimizer_state";

/// A loaded checkpoint.
#[derive(Clone, Debug)]
pub struct SavedModel {
    /// The config from the metadata, when the file has one (wgrad wrote it).
    pub config: Option<AutoencoderConfig>,
    /// Parameters; optimizer state when a matching sidecar was found; the step count (0 when
    /// the file has none).
    pub state: State,
    /// The optimizer name recorded with the state (`sgd`, `adam`, `adamw`).
    pub optimizer: Option<String>,
    pub metadata: BTreeMap<String, String>,
}

fn sidecar_path(path: &Path, step: u64) -> PathBuf {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    path.with_file_name(format!("{stem}.optim-{step}.safetensors"))
}

/// Saves `state` (model tensors in the checkpoint, optimizer state in its sidecar) with
/// `config`, the optimizer's name and `extra` metadata.
pub fn save_model(
    path: &Path,
    config: &AutoencoderConfig,
    state: &State,
    optimizer: Option<&str>,
    extra: &[(&str, String)],
) -> Result<()> {
    // A diverged run must not replace the last good checkpoint: refuse before touching a file.
    for (name, t) in state.params.iter().chain(&state.optimizer) {
        if let Some(i) = t.data.iter().position(|v| !v.is_finite()) {
            return Err(Error::data(
                path.display(),
                format!(
                    "refusing to write {name}: element {i} is {} (the run diverged); the file on disk is left as it was",
                    t.data[i]
                ),
            ));
        }
    }
    let mut model = Checkpoint::new();
    for (n, t) in &state.params {
        model.insert(n.clone(), t.clone());
    }
    model.set_step(state.step);
    model.metadata.insert(META_CONFIG.into(), config.to_toml());
    for (k, v) in extra {
        model.metadata.insert((*k).into(), v.clone());
    }
    let mut written = None;
    if let Some(o) = optimizer {
        model.metadata.insert(META_OPTIMIZER.into(), o.into());
        if !state.optimizer.is_empty() {
            let side = sidecar_path(path, state.step);
            let mut opt = Checkpoint::new();
            for (n, t) in &state.optimizer {
                opt.insert(n.clone(), t.clone());
            }
            opt.set_step(state.step);
            opt.metadata.insert(META_OPTIMIZER.into(), o.into());
            opt.save(&side)?;
            let name = side
                .file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            model
                .metadata
                .insert(META_OPTIMIZER_STATE.into(), name.clone());
            written = Some(name);
        }
    }
    model.save(path)?;
    remove_other_sidecars(path, written.as_deref());
    Ok(())
}

/// Removes the sidecars of `path` (`{stem}.optim-{step}.safetensors`) other than `keep`, which
/// the checkpoint now names: the previous one, and any that a run killed between writing a
/// sidecar and its checkpoint (or before removing the old one) left behind. Best effort: a
/// leftover sidecar wastes space but breaks nothing.
fn remove_other_sidecars(path: &Path, keep: Option<&str>) {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    let prefix = format!("{stem}.optim-");
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let step = name
            .strip_prefix(&prefix)
            .and_then(|r| r.strip_suffix(".safetensors"));
        let is_sidecar =
            step.is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()));
        if is_sidecar && Some(name.as_str()) != keep {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Loads a checkpoint and, when its metadata names one, its optimizer-state sidecar.
pub fn load_model(path: &Path) -> Result<SavedModel> {
    let ckpt = Checkpoint::load(path)?;
    let shown = path.display().to_string();
    let config = match ckpt.metadata.get(META_CONFIG) {
        Some(text) => Some(AutoencoderConfig::from_toml(
            text,
            &format!("{shown} (metadata {META_CONFIG})"),
        )?),
        None => None,
    };
    let step = ckpt.step()?.unwrap_or(0);
    let mut state = State {
        params: ckpt.tensors.clone(),
        optimizer: Vec::new(),
        step,
    };
    let optimizer = ckpt.metadata.get(META_OPTIMIZER).cloned();
    if let Some(side) = ckpt.metadata.get(META_OPTIMIZER_STATE) {
        let side_path = path.with_file_name(side);
        let opt = Checkpoint::load(&side_path).map_err(|e| {
            Error::data(
                &shown,
                format!("its optimizer state {side} could not be read: {e}"),
            )
        })?;
        if opt.step()? != Some(step) {
            return Err(Error::data(
                side_path.display(),
                format!(
                    "optimizer state is for step {:?}, the checkpoint for step {step}",
                    opt.step()?
                ),
            ));
        }
        state.optimizer = opt.tensors;
    }
    Ok(SavedModel {
        config,
        state,
        optimizer,
        metadata: ckpt.metadata,
    })
}
