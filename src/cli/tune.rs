//! `wgrad tune`: measure the matmul mappings of a model's training step on an adapter and keep
//! the winners in its tune cache (see `wgrad::gpu::tune`), list the cache, or clear it.

use crate::cli::common::{BackendArg, config, device};
use clap::Args;
use std::path::PathBuf;
use wgrad::exec::Device;
use wgrad::gpu::tune::{self, TuneMode};
use wgrad::nn::Optimizer;
use wgrad::train::Trainer;
use wgrad::{AdamConfig, Error, Result, Tensor};

#[derive(Args, Debug)]
pub struct TuneArgs {
    /// Adapter to tune.
    #[arg(long, value_enum, default_value = "auto")]
    pub backend: BackendArg,
    /// Model config (TOML) whose training step is tuned; default: the 28×28 preset.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Images per step (the shapes tuned depend on it).
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Only list what the adapter's cache holds.
    #[arg(long, conflicts_with = "clear")]
    pub list: bool,
    /// Remove every tune cache on this machine (all adapters) and exit.
    #[arg(long)]
    pub clear: bool,
}

pub fn run(args: TuneArgs, engine: &wgrad::Options) -> Result<()> {
    if args.clear {
        match &engine.cache_dir {
            Some(d) => {
                let removed = tune::clear_in(d)?;
                println!(
                    "removed {} tune cache file(s) from {}",
                    removed.len(),
                    d.display()
                )
            }
            None => println!("no cache directory (set --cache-dir, WGRAD_CACHE_DIR or HOME)"),
        }
        return Ok(());
    }
    let ctx = match device(args.backend, engine)? {
        Device::Gpu(ctx) => ctx,
        Device::Cpu => {
            return Err(Error::invalid(
                "tune",
                "the CPU reference has nothing to tune",
            ));
        }
    };
    let path = tune::cache_path(&ctx).map_or_else(
        || "(in memory only)".to_string(),
        |p| p.display().to_string(),
    );
    if !args.list {
        let config = config(args.config.as_deref(), None)?;
        tune::set_mode(&ctx, TuneMode::On);
        // Every shape, however long it takes (a CPU driver compiles each candidate for seconds).
        tune::set_budget(&ctx, None);
        let start = std::time::Instant::now();
        let adam = Optimizer::Adam(AdamConfig::adam());
        let mut t = Trainer::new(Device::Gpu(ctx.clone()), config, args.batch, adam, 0)?;
        // Building the program chooses every matmul's mapping, measuring the new shapes.
        t.finish_tier_up()?;
        let [c, h, w] = t.config().image;
        t.step(&Tensor::zeros([args.batch, c, h, w]))?;
        t.flush_losses()?;
        println!(
            "tuned the training step on {} in {:.1} s",
            ctx.describe(),
            start.elapsed().as_secs_f64()
        );
    }
    if let Some(e) = tune::save_error(&ctx) {
        return Err(Error::invalid(
            "tune",
            format!("could not write the cache: {e}"),
        ));
    }
    println!("tune cache {path}");
    for (shape, tuned) in tune::cached(&ctx) {
        let best = tuned
            .times
            .iter()
            .map(|t| t.1)
            .fold(f64::INFINITY, f64::min);
        let others: Vec<String> = tuned
            .times
            .iter()
            .filter(|t| t.0 != tuned.tile)
            .map(|t| format!("{:.2}×", t.1 / best))
            .collect();
        println!(
            "  {shape:<28} {:<55} {:>9.3} ms  (others {})",
            format!("{:?}", tuned.tile),
            best * 1e3,
            others.join(" ")
        );
    }
    Ok(())
}
