//! The matmul autotuner: the first time a product shape is met, a few mappings are timed on the
//! adapter and the fastest is kept, in memory and in a cache file per adapter and driver.
//!
//! Every mapping computes the same bits (tests/gpu/matmul.rs), so tuning changes speed only,
//! never a result. Modes ([`crate::Options::tune`], or [`set_mode`]):
//! - `on`: measure shapes the cache does not have. The default on GPUs, where the candidates
//!   compile in milliseconds and a shape is measured in a few more.
//! - `cached`: use what the cache holds, the cost model for the rest (measure nothing). The
//!   default on CPU drivers, where every candidate is an LLVM compile of 0.5–3 s on the queue's
//!   thread (lavapipe), so that tuning the autoencoder's ~20 shapes would cost a minute: there it
//!   runs when asked (`wgrad tune`, or the `On` mode).
//! - `off`: neither read nor write the cache; the cost model decides ([`MatmulTile::for_shape`]).
//!
//! The cache lives in [`crate::Options::cache_dir`] (none by default: winners are then kept in
//! memory only; the `wgrad` command uses `$WGRAD_CACHE_DIR`, else `$XDG_CACHE_HOME/wgrad`, else
//! `~/.cache/wgrad`), one JSON file per adapter, driver, wgrad version and matmul.wgsl source (a
//! changed kernel or driver starts afresh). `wgrad tune --clear` removes the files; so does
//! deleting them.

use crate::error::{Error, Result};
use crate::gpu::kernels::matmul::{self, MatmulTile};
use crate::gpu::timer::{self, Method};
use crate::gpu::{GpuContext, shaders};
use crate::spec::{Activation, BiasMode, MatmulSpec};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;
use web_time::Instant;

/// Whether shapes are measured, read from the cache, or left to the cost model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TuneMode {
    Off,
    Cached,
    On,
}

impl TuneMode {
    /// Parses `on`, `cached` or `off` (also `1` and `0`).
    pub fn parse(s: &str) -> Result<TuneMode> {
        match s.trim().to_ascii_lowercase().as_str() {
            "on" | "1" => Ok(TuneMode::On),
            "cached" => Ok(TuneMode::Cached),
            "off" | "0" => Ok(TuneMode::Off),
            other => Err(Error::invalid(
                "tune mode",
                format!("unknown mode '{other}': expected on, cached or off"),
            )),
        }
    }

    /// The mode `ctx` runs in: its options' choice, else `Cached` on CPU drivers and `On`
    /// elsewhere.
    pub fn for_context(ctx: &GpuContext) -> TuneMode {
        ctx.options().tune.unwrap_or(if ctx.is_cpu_driver() {
            TuneMode::Cached
        } else {
            TuneMode::On
        })
    }
}

/// One tuned shape: the winner and what each candidate took.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Tuned {
    pub tile: MatmulTile,
    /// (candidate, seconds per run), in the order tried.
    pub times: Vec<(MatmulTile, f64)>,
    /// Candidates that failed (a pipeline the driver refused, a launch error), with why:
    /// skipped here, and never tried again on this adapter.
    #[serde(default)]
    pub failed: Vec<(MatmulTile, String)>,
}

#[derive(Default, Serialize, Deserialize)]
struct CacheFile {
    adapter: String,
    shapes: BTreeMap<String, Tuned>,
    /// Mappings that failed on this adapter and driver, with why: never tried again.
    #[serde(default)]
    failed: Vec<(MatmulTile, String)>,
}

/// A context's tuner state: its mode and the cache, loaded on first use.
#[derive(Default)]
pub(crate) struct TuneState {
    inner: Mutex<Option<Loaded>>,
}

struct Loaded {
    mode: TuneMode,
    path: Option<PathBuf>,
    file: CacheFile,
    /// The last failure to write the cache file: tuning goes on without it (the winners stay
    /// in memory), and `wgrad tune` reports it.
    save_error: Option<String>,
    /// How long measuring may take in all on this context (`None`: no limit), and how long
    /// it has taken so far.
    budget: Option<Duration>,
    spent: Duration,
}

/// What identifies a cache: adapter, driver, backend, wgrad version, the matmul kernels and the
/// kernel class the options ask for (a run forcing GPU-class kernels keeps its own winners).
fn adapter_key(ctx: &GpuContext) -> String {
    let i = &ctx.info;
    let class = match ctx.options().kernels {
        crate::options::KernelClass::Auto => "",
        crate::options::KernelClass::Gpu => " | kernels gpu",
    };
    format!(
        "{} | {} {} | {:?} | {:04x}:{:04x} | wgrad {} | matmul.wgsl {:016x}{class}",
        i.name,
        i.driver,
        i.driver_info,
        i.backend,
        i.vendor,
        i.device,
        env!("CARGO_PKG_VERSION"),
        fnv1a(shaders::MATMUL.source.as_bytes())
    )
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// This adapter's cache file in the options' cache directory (`None`: no disk cache).
pub fn cache_path(ctx: &GpuContext) -> Option<PathBuf> {
    Some(ctx.options().cache_dir.as_ref()?.join(format!(
        "tune-{:016x}.json",
        fnv1a(adapter_key(ctx).as_bytes())
    )))
}

/// The shape class a tuned mapping is kept under: the product's dimensions and layout. Bias and
/// activation are left out (they run once per output, after the sum).
pub fn shape_key(spec: &MatmulSpec) -> String {
    let f = |b: bool, c: char| if b { c } else { '-' };
    format!(
        "b{} m{} n{} k{} {}{}{}{}{}",
        spec.batch,
        spec.m,
        spec.n,
        spec.k,
        f(spec.trans_a, 'A'),
        f(spec.trans_b, 'B'),
        f(spec.broadcast_a, 'a'),
        f(spec.broadcast_b, 'b'),
        f(spec.sum_batches, 's'),
    )
}

/// Sets the tuner's mode on `ctx` (overriding its options').
pub fn set_mode(ctx: &GpuContext, mode: TuneMode) {
    with_state(ctx, |l| l.mode = mode);
}

/// Sets how long measuring may take in all on `ctx` from now on (`None`: no limit), overriding
/// [`crate::Options::tune_budget`]; `wgrad tune` measures every shape with no limit.
pub fn set_budget(ctx: &GpuContext, budget: Option<Duration>) {
    with_state(ctx, |l| {
        l.budget = budget;
        l.spent = Duration::ZERO;
    });
}

/// Mappings that failed on this adapter (remembered in the cache), with why.
pub fn failed(ctx: &GpuContext) -> Vec<(MatmulTile, String)> {
    with_state(ctx, |l| l.file.failed.clone())
}

/// The tuner's mode on `ctx`.
pub fn mode(ctx: &GpuContext) -> TuneMode {
    with_state(ctx, |l| l.mode)
}

/// Every shape the cache holds for this adapter.
pub fn cached(ctx: &GpuContext) -> Vec<(String, Tuned)> {
    with_state(ctx, |l| {
        l.file
            .shapes
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    })
}

/// Runs `f` on `ctx`'s tuner state, loading it (mode and cache directory from the options) on
/// first use.
fn with_state<R>(ctx: &GpuContext, f: impl FnOnce(&mut Loaded) -> R) -> R {
    let mut g = ctx.tune.inner.lock().unwrap_or_else(|p| p.into_inner());
    f(g.get_or_insert_with(|| load(ctx)))
}

fn load(ctx: &GpuContext) -> Loaded {
    load_from(ctx, TuneMode::for_context(ctx), cache_path(ctx))
}

fn load_from(ctx: &GpuContext, mode: TuneMode, path: Option<PathBuf>) -> Loaded {
    let key = adapter_key(ctx);
    // An unreadable or foreign file is treated as empty and replaced on the next write.
    let file = path
        .as_ref()
        .filter(|_| mode != TuneMode::Off)
        .and_then(|p| std::fs::read(p).ok())
        .and_then(|b| serde_json::from_slice::<CacheFile>(&b).ok())
        .filter(|f| f.adapter == key)
        .unwrap_or(CacheFile {
            adapter: key,
            shapes: BTreeMap::new(),
            failed: Vec::new(),
        });
    Loaded {
        mode,
        path,
        file,
        save_error: None,
        budget: ctx.options().tune_budget,
        spent: Duration::ZERO,
    }
}

/// Points `ctx`'s tuner at the cache file `path` (`None`: keep winners in memory only) instead
/// of the adapter's file in the options' cache directory, and reads it.
pub fn set_cache_file(ctx: &GpuContext, path: Option<PathBuf>) {
    let mut g = ctx.tune.inner.lock().unwrap_or_else(|p| p.into_inner());
    let mode = g
        .as_ref()
        .map_or_else(|| TuneMode::for_context(ctx), |l| l.mode);
    *g = Some(load_from(ctx, mode, path));
}

/// Why the cache file could not be written last time, if it could not.
pub fn save_error(ctx: &GpuContext) -> Option<String> {
    with_state(ctx, |l| l.save_error.clone())
}

/// The mapping `spec` runs with on `ctx` without measuring anything: the cached winner, else the
/// cost model's choice. What a lone launcher uses ([`matmul::matmul`]).
pub fn choose_now(ctx: &GpuContext, spec: &MatmulSpec) -> MatmulTile {
    let key = shape_key(spec);
    with_state(ctx, |l| {
        (l.mode != TuneMode::Off)
            .then(|| l.file.shapes.get(&key).map(|t| t.tile))
            .flatten()
    })
    .filter(|t| t.usable(ctx).is_ok())
    .unwrap_or_else(|| MatmulTile::for_shape(ctx, spec))
}

/// The mapping `spec` runs with on `ctx`: the cached winner, else (mode `on`) the winner of a
/// measurement now, else the cost model's choice.
pub async fn choose_async(ctx: &GpuContext, spec: &MatmulSpec) -> Result<MatmulTile> {
    let key = shape_key(spec);
    let (mode, hit) = with_state(ctx, |l| {
        let hit = (l.mode != TuneMode::Off)
            .then(|| l.file.shapes.get(&key).map(|t| t.tile))
            .flatten();
        (l.mode, hit)
    });
    // A hand-edited or foreign cache entry the kernels cannot run is measured again.
    if let Some(tile) = hit.filter(|t| t.usable(ctx).is_ok()) {
        return Ok(tile);
    }
    // Out of budget: the cost model's choice, and the shape is measured in a later run.
    let spent = with_state(ctx, |l| l.budget.is_some_and(|b| l.spent >= b));
    if mode != TuneMode::On || spent {
        return Ok(MatmulTile::for_shape(ctx, spec));
    }
    let start = Instant::now();
    let measured = measure_async(ctx, spec).await;
    let tuned = match measured {
        Ok(t) => t,
        // Every candidate failed: the cost model's choice, whose launch reports the error.
        Err(Error::Invalid { .. }) => return Ok(MatmulTile::for_shape(ctx, spec)),
        Err(e) => return Err(e),
    };
    let tile = tuned.tile;
    with_state(ctx, |l| {
        l.spent += start.elapsed();
        l.file.shapes.insert(key, tuned);
        if let Some(path) = &l.path {
            l.save_error = save(path, &l.file).err().map(|e| e.to_string());
        }
    });
    Ok(tile)
}

/// Blocking [`choose_async`] (native only).
#[cfg(not(target_arch = "wasm32"))]
pub fn choose(ctx: &GpuContext, spec: &MatmulSpec) -> Result<MatmulTile> {
    ctx.block_on("tune", choose_async(ctx, spec))
}

#[cfg(target_arch = "wasm32")]
fn save(_: &std::path::Path, _: &CacheFile) -> Result<()> {
    Err(Error::invalid("tune", "no file system on wasm"))
}

#[cfg(not(target_arch = "wasm32"))]
fn save(path: &std::path::Path, file: &CacheFile) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::invalid("tune", format!("cannot create {}: {e}", dir.display())))?;
    }
    let json = serde_json::to_vec_pretty(file)
        .map_err(|e| Error::invalid("tune", format!("cannot encode the cache: {e}")))?;
    crate::io::write_atomic(path, |w| {
        w.write_all(&json)
            .map_err(|e| Error::invalid("tune", format!("{}: {e}", path.display())))
    })
}

/// Removes the tune cache files (`tune-*.json`) in `dir`; returns them.
pub fn clear_in(dir: &std::path::Path) -> Result<Vec<PathBuf>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(Vec::new());
    };
    let mut removed = Vec::new();
    for e in entries.flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("tune-") && name.ends_with(".json") {
            std::fs::remove_file(&p).map_err(|err| {
                Error::invalid("tune", format!("cannot remove {}: {err}", p.display()))
            })?;
            removed.push(p);
        }
    }
    Ok(removed)
}

/// The mappings tried for `spec`: the cost model's choice first, then a few others that suit
/// the adapter's kind. GPU-class contexts (GPUs, and CPU drivers whose options force GPU-class
/// kernels) try the `Tiled` shapes that suit the product, `Blocks` and `Shared`, and on GPUs
/// whose options leave the class to the adapter two `Reg` blocks too.
pub fn candidates(ctx: &GpuContext, spec: &MatmulSpec) -> Vec<MatmulTile> {
    let mut out = vec![MatmulTile::for_shape(ctx, spec)];
    let extra: Vec<MatmulTile> = if matmul::cpu_class(ctx) {
        crate::gpu::cpu_driver::reg::ranked(spec, ctx.info.backend == wgpu::Backend::Gl)
            .into_iter()
            .take(3)
            .collect()
    } else {
        let reg = |bm, bn, wg_x, wg_y| MatmulTile::Reg {
            bm,
            bn,
            wg_x,
            wg_y,
            vec4: true,
        };
        let mut v = matmul::tiled_candidates(spec);
        v.extend([
            MatmulTile::Blocks { wg_x: 8, wg_y: 8 },
            MatmulTile::Blocks { wg_x: 16, wg_y: 16 },
            MatmulTile::Shared,
            reg(4, 4, 16, 4),
            reg(8, 8, 8, 8),
        ]);
        v
    };
    for t in extra {
        if !out.contains(&t) {
            out.push(t);
        }
    }
    // Never try what the device cannot run (a browser allows 256 invocations a workgroup), what
    // the context's kernel class excludes (`Reg` where GPU-class kernels are forced), nor what
    // failed here before.
    let failed = failed(ctx);
    out.retain(|t| t.usable(ctx).is_ok() && !failed.iter().any(|f| f.0 == *t));
    out
}

/// Blocking [`measure_async`] (native only).
#[cfg(not(target_arch = "wasm32"))]
pub fn measure(ctx: &GpuContext, spec: &MatmulSpec) -> Result<Tuned> {
    ctx.block_on("tune", measure_async(ctx, spec))
}

/// Times every candidate on scratch tensors of `spec`'s sizes (never the program's own buffers,
/// which a running step may be using) and returns the fastest.
pub async fn measure_async(ctx: &GpuContext, spec: &MatmulSpec) -> Result<Tuned> {
    measure_candidates_async(ctx, spec, &candidates(ctx, spec)).await
}

/// Times each of `tiles` on `spec` (as [`measure_async`] does its candidates). A candidate that
/// fails — the driver refuses its pipeline, its launch is invalid or over a limit — is skipped,
/// listed in [`Tuned::failed`] and remembered for the adapter ([`failed`]: never a candidate
/// again, and kept in the cache file with the next write) instead of failing the measurement; a
/// lost device, a timeout or an allocation the device cannot make still ends it. An
/// [`Error::Invalid`] when none ran.
pub async fn measure_candidates_async(
    ctx: &GpuContext,
    spec: &MatmulSpec,
    tiles: &[MatmulTile],
) -> Result<Tuned> {
    let mut plain = *spec;
    plain.bias = BiasMode::None;
    plain.act = Activation::None;
    let a = ctx.zeros("tune a", [plain.a_len().max(1)])?;
    let b = ctx.zeros("tune b", [plain.b_len().max(1)])?;
    let c = ctx.zeros("tune c", [plain.c_len().max(1)])?;
    let method = Method::for_context(ctx);
    let (mut times, mut failed) = (Vec::new(), Vec::new());
    for &tile in tiles {
        let timed = async {
            let l = matmul::matmul_tiled(ctx, &plain, tile, &a, &b, None, &c)?;
            timer::time_async(ctx, Method::WallClock, &[&l], 1).await?; // compile, first touch
            let once = timer::time_async(ctx, method, &[&l], 1).await?;
            // About 2 ms per timing, best of two: a shape costs a GPU some tens of
            // milliseconds (it is tuned while a program compiles, before the first step).
            let reps = ((2e-3 / once.max(1e-6)) as usize).clamp(1, 50);
            let mut best = once;
            for _ in 0..2 {
                best = best.min(timer::time_async(ctx, method, &[&l], reps).await? / reps as f64);
            }
            Ok::<f64, Error>(best)
        };
        match timed.await {
            Ok(t) => times.push((tile, t)),
            Err(
                e @ (Error::DeviceLost { .. } | Error::Timeout { .. } | Error::OutOfMemory { .. }),
            ) => {
                return Err(e);
            }
            Err(e) => failed.push((tile, e.to_string())),
        }
    }
    with_state(ctx, |l| {
        for f in &failed {
            if !l.file.failed.iter().any(|(t, _)| *t == f.0) {
                l.file.failed.push(f.clone());
            }
        }
    });
    let tile = times
        .iter()
        .min_by(|x, y| x.1.total_cmp(&y.1))
        .map(|t| t.0)
        .ok_or_else(|| Error::invalid("tune", format!("no candidate mapping ran: {failed:?}")))?;
    Ok(Tuned {
        tile,
        times,
        failed,
    })
}

/// Blocking [`measure_candidates_async`] (native only).
#[cfg(not(target_arch = "wasm32"))]
pub fn measure_candidates(
    ctx: &GpuContext,
    spec: &MatmulSpec,
    tiles: &[MatmulTile],
) -> Result<Tuned> {
    ctx.block_on("tune", measure_candidates_async(ctx, spec, tiles))
}
