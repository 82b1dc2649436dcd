//! Choosing the adapters a cross-backend command runs on (`wgrad check`, `wgrad bench`):
//! `auto` (the one [`GpuContext::new`] prefers), `all` (every adapter of the machine), or named
//! backends. An adapter that is present but refuses to open is reported, not silently dropped:
//! a correctness check must say it did not run there.

use crate::error::{Error, Result};
use crate::gpu::{AdapterChoice, AdapterSummary, BackendKind, GpuContext, backend_name};
use crate::options::Options;
use std::sync::Arc;

/// Which adapters to run on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selection {
    /// The adapter the options choose (by default the best device type present).
    Auto,
    /// Every adapter on every backend wgrad supports.
    All,
    /// Every adapter of these backends.
    Backends(Vec<BackendKind>),
}

impl Selection {
    /// Parses `auto`, `all`, or a comma-separated list of `vulkan|metal|dx12|gl`.
    pub fn parse(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Selection::Auto),
            "all" => Ok(Selection::All),
            list => {
                let mut kinds = Vec::new();
                for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                    let kind = BackendKind::parse(part).map_err(|_| {
                        Error::invalid(
                            "--backend",
                            format!(
                                "unknown backend '{part}': expected auto, all, vulkan, metal, dx12 or gl"
                            ),
                        )
                    })?;
                    if !kinds.contains(&kind) {
                        kinds.push(kind);
                    }
                }
                if kinds.is_empty() {
                    return Err(Error::invalid(
                        "--backend",
                        "empty: expected auto, all, vulkan, metal, dx12 or gl",
                    ));
                }
                Ok(Selection::Backends(kinds))
            }
        }
    }
}

/// The adapters a selection found: those that opened, and those that would not (with why).
pub struct Opened {
    pub contexts: Vec<Arc<GpuContext>>,
    pub failed: Vec<(AdapterSummary, Error)>,
}

/// Opens the adapters `selection` names, each with `options` (whose adapter choice is what
/// `Auto` takes). Fails when it names none that exist, or when none of them opens: a command
/// with no adapter to run on must not report success.
pub fn open(selection: &Selection, options: &Options) -> Result<Opened> {
    let wanted: Vec<AdapterSummary> = match selection {
        Selection::Auto => {
            let ctx = GpuContext::new(options)?;
            return Ok(Opened {
                contexts: vec![Arc::new(ctx)],
                failed: Vec::new(),
            });
        }
        Selection::All => crate::gpu::list_adapters(),
        Selection::Backends(kinds) => crate::gpu::list_adapters()
            .into_iter()
            .filter(|a| {
                kinds
                    .iter()
                    .any(|k| k.to_string() == backend_name(a.backend))
            })
            .collect(),
    };
    if wanted.is_empty() {
        let present: Vec<String> = crate::gpu::list_adapters()
            .iter()
            .map(|a| a.to_string())
            .collect();
        let what = match selection {
            Selection::Backends(k) => {
                let names: Vec<String> = k.iter().map(|k| k.to_string()).collect();
                format!("none for backend {}", names.join(", "))
            }
            _ => "none on this machine".to_string(),
        };
        let present = if present.is_empty() {
            "install a Vulkan driver, e.g. mesa-vulkan-drivers for lavapipe".to_string()
        } else {
            format!("present: {}", present.join("; "))
        };
        return Err(Error::NoAdapter(format!("{what}; {present}")));
    }
    let mut opened = Opened {
        contexts: Vec::new(),
        failed: Vec::new(),
    };
    for a in wanted {
        let choice = AdapterChoice {
            backend: None,
            index: Some(a.index),
        };
        match GpuContext::new(&Options {
            adapter: choice,
            ..options.clone()
        }) {
            Ok(ctx) => opened.contexts.push(Arc::new(ctx)),
            Err(e) => opened.failed.push((a, e)),
        }
    }
    if opened.contexts.is_empty() {
        let why: Vec<String> = opened
            .failed
            .iter()
            .map(|(a, e)| format!("{a}: {e}"))
            .collect();
        return Err(Error::NoAdapter(format!(
            "no selected adapter could be opened: {}",
            why.join("; ")
        )));
    }
    Ok(opened)
}

pub use crate::gpu::context::tag;
