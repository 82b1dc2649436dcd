//! Two-tier matmul pipelines, so that a new process trains within a second even where the fast
//! kernels take long to compile.
//!
//! On CPU drivers (lavapipe) the register-blocked matmul pipelines are large straight-line
//! programs: creating one takes 0.1–0.5 s and its first dispatch another 0.5–3 s of LLVM, about
//! 20 s for the training step of the default autoencoder (measured on Mesa 22.3.6, 2 cores).
//! A program therefore starts every matmul on the baseline mapping (`MatmulTile::Blocks`: two
//! small pipelines serve every shape), chooses each final mapping (`gpu::tune`) and creates its
//! pipeline on a background thread, and swaps them in between runs as they become ready, one per run so that no single
//! step stalls for more than one compile. Every mapping computes the same bits
//! (tests/gpu/matmul.rs `every_mapping_gives_the_same_bits`), so a run's numbers never depend on
//! when the swap happened. Real GPUs compile in milliseconds: there the chosen mapping is built
//! up front. On llvmpipe's GL the same scheme applies (first step 5.0 → 1.5–2.9 s): wgpu's GL
//! backend holds the context through a compile and another thread gives up after waiting 6 s,
//! but GL's blocks are capped at 8×8 (`reg::max_block_area`), which compile in well under
//! a second.
//!
//! [`crate::Options::tier_up`] turns it off (chosen mappings built up front) or on elsewhere.
//! Never on wasm: no threads there. Off by default where [`crate::Options::kernels`] forces
//! GPU-class kernels (see [`tiered`]).

use crate::error::{Error, Result};
use crate::gpu::kernels::matmul::{self, MatmulTile};
use crate::gpu::{GpuContext, GpuTensor, Launch};
use crate::spec::MatmulSpec;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::thread::JoinHandle;

/// The mapping every program starts on where it tiers up: two pipelines for every shape.
pub(crate) const BASELINE: MatmulTile = MatmulTile::Blocks { wg_x: 8, wg_y: 8 };

/// Whether programs on `ctx` start on [`BASELINE`] and tier up in the background: as its
/// options say, by default on CPU drivers that run CPU-class kernels; never on wasm.
///
/// Not by default where the options force GPU-class kernels: tier-up exists because the
/// CPU-class pipelines take seconds each to compile, and the forced mode is there to run the
/// GPU-class kernels themselves, from the first step, as a GPU would. Asked for anyway
/// (`tier_up: Some(true)`), it starts on the baseline and swaps in what the tuner chooses,
/// which in the forced mode is GPU-class too (never a `Reg` kernel).
pub(crate) fn tiered(ctx: &GpuContext) -> bool {
    !cfg!(target_arch = "wasm32") && ctx.options().tier_up.unwrap_or(matmul::cpu_class(ctx))
}

/// A matmul launch waiting for its final mapping.
pub(crate) struct Pending {
    /// Index into the program's launches.
    pub launch: usize,
    pub spec: MatmulSpec,
    pub a: GpuTensor,
    pub b: GpuTensor,
    pub bias: Option<GpuTensor>,
    pub c: GpuTensor,
}

/// The background compile of a program's final mappings and the swaps still to do.
pub(crate) struct TierUp {
    pending: Vec<Option<Pending>>,
    /// Indices into `pending` whose final mapping is chosen (by the tuner, which may measure
    /// it there) and compiled, with that mapping (`None`: the baseline is final), or the error.
    ready: Receiver<(usize, Result<Option<MatmulTile>>)>,
    left: usize,
    /// Tells the thread to stop after the pipeline it is building.
    cancel: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for TierUp {
    /// Stops the background thread and waits for it (at most one pipeline compile), so that no
    /// compile is still running when the device, or the process, goes away: llvmpipe's GL
    /// crashed at exit ("double free") when a compile outlived `main`.
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl TierUp {
    /// No threads on wasm: programs there never tier up ([`tiered`] is false).
    #[cfg(target_arch = "wasm32")]
    pub fn start(_: &Arc<GpuContext>, _: Vec<Pending>) -> Option<TierUp> {
        None
    }

    /// Starts creating the pipelines of `pending` on a background thread.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn start(ctx: &Arc<GpuContext>, pending: Vec<Pending>) -> Option<TierUp> {
        if pending.is_empty() {
            return None;
        }
        use crate::gpu::{shaders, tune};
        let (tx, rx) = std::sync::mpsc::channel();
        let jobs: Vec<(usize, MatmulSpec)> = pending
            .iter()
            .enumerate()
            .map(|(i, p)| (i, p.spec))
            .collect();
        let ctx = ctx.clone();
        let cancel = Arc::new(AtomicBool::new(false));
        let stop = cancel.clone();
        let spawned = std::thread::Builder::new()
            .name("wgrad tier-up".into())
            .spawn(move || {
                for (i, spec) in jobs {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let r = tune::choose(&ctx, &spec).and_then(|tile| {
                        if tile == BASELINE {
                            return Ok(None);
                        }
                        let (entry, consts) = matmul::entry_and_constants(&spec, tile);
                        ctx.pipeline(shaders::MATMUL, entry, &consts)?;
                        Ok(Some(tile))
                    });
                    if tx.send((i, r)).is_err() {
                        return; // the program was dropped
                    }
                }
            });
        let left = pending.len();
        let pending = pending.into_iter().map(Some).collect();
        match spawned {
            Ok(thread) => Some(TierUp {
                pending,
                ready: rx,
                left,
                cancel,
                thread: Some(thread),
            }),
            // No thread: stay on the baseline (correct, only slower).
            Err(_) => None,
        }
    }

    /// Swaps in up to `max` launches whose pipelines are ready (all of them when `wait`, blocking
    /// until the background compile is done, for at most the context's wait timeout). Returns
    /// whether anything is left to swap.
    pub fn advance(
        &mut self,
        ctx: &GpuContext,
        launches: &mut [Launch],
        max: usize,
        wait: bool,
    ) -> Result<bool> {
        let mut swapped = 0;
        let timeout = ctx.options().wait_timeout;
        while self.left > 0 && swapped < max {
            let next = if wait {
                match self.ready.recv_timeout(timeout) {
                    Ok(r) => Some(r),
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                        return Err(Error::Timeout {
                            op: "tier-up".into(),
                            seconds: timeout.as_secs_f64(),
                        });
                    }
                    Err(_) => None,
                }
            } else {
                self.ready.try_recv().ok()
            };
            let Some((i, compiled)) = next else { break };
            self.left -= 1;
            let Some(p) = self.pending.get_mut(i).and_then(Option::take) else {
                continue;
            };
            let Some(tile) = compiled? else { continue };
            let launch =
                matmul::matmul_tiled(ctx, &p.spec, tile, &p.a, &p.b, p.bias.as_ref(), &p.c)?;
            let slot = launches
                .get_mut(p.launch)
                .ok_or_else(|| Error::invalid("tier-up", "launch index out of range"))?;
            *slot = launch;
            swapped += 1;
        }
        Ok(self.left > 0)
    }
}
