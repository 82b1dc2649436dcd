//! What the caller decides about the engine, in one value: which adapter to open, whether matmul
//! mappings are measured and where the winners are kept, whether CPU drivers tier up, and how
//! long a blocking wait may last.
//!
//! The library reads no environment variable and writes no file unless these say so. The
//! `wgrad` command maps its flags and the `WGRAD_*` variables onto an [`Options`]; a host
//! application fills one in itself (or takes [`Options::default`]: the best adapter, the
//! adapter's default tuning, no disk cache, tier-up on CPU drivers).

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
    /// Whether programs start their matmuls on a quick-to-compile mapping and swap in the final
    /// ones from a background thread (see `exec/gpu/tier.rs`). `None`: on CPU drivers only.
    /// Never on wasm, which has no threads.
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
