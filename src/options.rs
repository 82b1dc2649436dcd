//! What the caller decides about the engine, in one value: which adapter to open, whether matmul
//! mappings are measured and where the winners are kept, which class of matmul kernels runs,
//! whether CPU drivers tier up, and how long a blocking wait may last.
//!
//! The library reads no environment variable and writes no file unless these say so. The
//! `wgrad` command maps its flags and the `WGRAD_*` variables onto an [`Options`]; a host
//! application fills one in itself (or takes [`Options::default`]: the best adapter, the
//! adapter's default tuning, no disk cache, tier-up on CPU drivers).

use crate::error::{Error, Result};
use crate::gpu::AdapterChoice;
use crate::gpu::tune::TuneMode;
use std::path::PathBuf;
use std::time::Duration;

/// Engine options; see the module docs. Every field has a default that needs nothing from the
/// machine's environment.
#[derive(Clone, Debug)]
pub struct Options {
    /// Which adapter [`crate::GpuContext::new`] opens.
    pub adapter: AdapterChoice,
    /// Matmul autotuning: `None` takes the adapter's default (`Cached` on CPU drivers, where
    /// every candidate is a long LLVM compile; `On` elsewhere).
    pub tune: Option<TuneMode>,
    /// Where tune caches are read and written (one JSON file per adapter and driver). `None`:
    /// no disk cache at all; measured winners live in memory for the context's lifetime.
    pub cache_dir: Option<PathBuf>,
    /// How long automatic tuning (mode `On`) may spend measuring, in all, per context: shapes
    /// met after that take the cost model's choice and are measured in a later run. `None`:
    /// no limit (what `wgrad tune` uses). Default: 1 s — on a GPU each shape costs some tens of
    /// milliseconds, so a model's shapes fit; a CPU driver spends it on its first candidates.
    pub tune_budget: Option<Duration>,
    /// Which class of matmul kernels runs: `Auto` (the default) takes the adapter's own
    /// (register-blocked kernels on CPU drivers, workgroup-tiled ones elsewhere); `Gpu` runs the
    /// GPU-class kernels on every adapter, CPU drivers included (to test them there). Results
    /// are the same bits either way on a given adapter.
    pub kernels: KernelClass,
    /// Whether reductions and losses use subgroup operations where the device has them (wgpu's
    /// `SUBGROUP` feature: Vulkan, Metal, DX12; not GL, not yet the browser). They give the same
    /// bits either way. `None` (the default): on GPU-class contexts, off on CPU drivers running
    /// CPU-class kernels, where they measured no faster (lavapipe's sliced reductions were
    /// slower). `Some(true)`: wherever the device has them; `Some(false)`: never.
    pub subgroups: Option<bool>,
    /// Whether programs start their matmuls on a quick-to-compile mapping and swap in the final
    /// ones from a background thread (see `gpu/cpu_driver/tier.rs`). `None`: on CPU drivers that run
    /// CPU-class kernels only (not where `kernels` forces GPU-class ones). Never on wasm, which
    /// has no threads.
    pub tier_up: Option<bool>,
    /// The longest a blocking call (the native wrappers of the `*_async` methods) waits for the
    /// device before it gives up with [`crate::Error::Timeout`]. The async methods themselves
    /// never block.
    pub wait_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            adapter: AdapterChoice::default(),
            tune: None,
            cache_dir: None,
            tune_budget: Some(Duration::from_secs(1)),
            kernels: KernelClass::Auto,
            subgroups: None,
            tier_up: None,
            // Generous: a cold first step on a CPU driver compiles every pipeline inside one
            // wait (about 30 s on lavapipe with 2 cores).
            wait_timeout: Duration::from_secs(600),
        }
    }
}

impl Options {
    /// The default options with `adapter` as the adapter choice.
    pub fn with_adapter(adapter: AdapterChoice) -> Self {
        Options {
            adapter,
            ..Options::default()
        }
    }
}

/// Which class of matmul kernels an adapter runs ([`Options::kernels`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KernelClass {
    /// The adapter's own class: CPU-class (register blocks, no workgroup memory) on CPU drivers,
    /// GPU-class (workgroup-memory tiles) on every other adapter.
    #[default]
    Auto,
    /// GPU-class kernels on every adapter: the default mapping, the tuner's candidates and the
    /// tune cache entries used are all GPU-class (`MatmulTile::is_gpu_class`).
    Gpu,
}

impl KernelClass {
    /// Parses `auto` or `gpu`.
    pub fn parse(s: &str) -> Result<KernelClass> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(KernelClass::Auto),
            "gpu" => Ok(KernelClass::Gpu),
            other => Err(Error::invalid(
                "kernel class",
                format!("unknown class '{other}': expected auto or gpu"),
            )),
        }
    }
}
