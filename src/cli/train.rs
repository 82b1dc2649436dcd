//! `wgrad train`: train the autoencoder on a dataset, with checkpoints, a loss log and curve,
//! and a reconstruction grid beside the checkpoint.

use super::common::{BackendArg, OptimizerArgs, beside, config, device, held_out_loss};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::time::Instant;
use wgrad::data::{BatchOrder, DataSpec};
use wgrad::io::{LossLog, LossRow, load_model, save_model, write_grid};
use wgrad::nn::init_params;
use wgrad::spec::PointLoss;
use wgrad::train::Trainer;
use wgrad::{Error, Result};

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// `builtin` (synthetic shapes), an IDX images file (MNIST format, raw or .gz), or a folder
    /// of PNG images (sub-folders = classes).
    #[arg(long, default_value = "builtin")]
    pub data: String,
    /// Model config (TOML: image, encoder and decoder layer lists); default: the 28×28 preset,
    /// or the resumed checkpoint's.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Reconstruction loss, overriding the config's: mse, l1, bce (decoder ends in a Sigmoid,
    /// as the preset's does) or bce_with_logits (it must not).
    #[arg(long, value_name = "LOSS")]
    pub loss: Option<String>,
    /// Train until this many epochs in total (default 3, unless --steps is given).
    #[arg(long, conflicts_with = "steps")]
    pub epochs: Option<u64>,
    /// Train until this many optimizer steps in total (a resumed run counts its earlier steps).
    #[arg(long)]
    pub steps: Option<u64>,
    /// Images per step. The last batch of an epoch holds the remainder (fewer images) unless
    /// --drop-last; a data set smaller than this is one batch.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Drop the last, partial batch of each epoch (a different remainder each epoch when
    /// shuffling) instead of training on it.
    #[arg(long)]
    pub drop_last: bool,
    #[command(flatten)]
    pub optim: OptimizerArgs,
    /// Seed of the initial weights, the data split and the batch order.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Take batches in file order instead of a seeded shuffle per epoch.
    #[arg(long)]
    pub no_shuffle: bool,
    /// Where to run: a GPU backend, `cpu` (the reference), or `auto`.
    #[arg(long, value_enum, default_value = "auto")]
    pub backend: BackendArg,
    /// Checkpoint to write (safetensors, PyTorch state_dict names); the loss log, loss curve and
    /// reconstruction grid are written beside it.
    #[arg(long, default_value = "wgrad-out/autoencoder.safetensors")]
    pub save: PathBuf,
    /// Continue from this checkpoint (exactly: the same bits as an uninterrupted run).
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Also write the checkpoint every N steps.
    #[arg(long)]
    pub every: Option<u64>,
}

const META_SEED: &str = "wgrad.seed";
const META_BATCH: &str = "wgrad.batch";
const META_SHUFFLE: &str = "wgrad.shuffle";
const META_DROP_LAST: &str = "wgrad.drop_last";

/// Writes the checkpoint, the loss log and curve, and (when `grid`) the reconstruction grid.
fn save(
    args: &TrainArgs,
    t: &mut Trainer,
    log: &LossLog,
    test: &wgrad::data::Dataset,
    grid: bool,
) -> Result<()> {
    if let Some(dir) = args.save.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::Io {
            path: dir.display().to_string(),
            message: e.to_string(),
        })?;
    }
    let opt = t.session().optimizer().map(|o| o.name());
    let extra = [
        (META_SEED, args.seed.to_string()),
        (META_BATCH, args.batch.to_string()),
        (META_SHUFFLE, (!args.no_shuffle).to_string()),
        (META_DROP_LAST, args.drop_last.to_string()),
    ];
    let state = t.state()?;
    // The loss log before the checkpoint: a run killed between the two leaves a log one step
    // ahead, which --resume trims to the checkpoint's step (`retain_through`); the other order
    // would leave a log one step behind, and the resumed log would lack that step's row.
    if !log.rows.is_empty() {
        log.write_csv(beside(&args.save, "loss.csv"))?;
        log.write_plot(
            beside(&args.save, "loss.png"),
            "autoencoder reconstruction loss (MSE)",
        )?;
    }
    save_model(&args.save, t.config(), &state, opt, &extra)?;
    if grid && !test.is_empty() {
        let idx: Vec<usize> = (0..test.len().min(8)).collect();
        let (x, _) = test.batch(&idx);
        let (_, recon, _) = t.evaluate(&x)?;
        write_grid(
            beside(&args.save, "reconstructions.png"),
            &[&x, &recon],
            idx.len(),
            4,
        )?;
    }
    Ok(())
}

/// `--loss`: the names a config's `loss` takes.
fn parse_loss(s: &str) -> Result<PointLoss> {
    PointLoss::ALL
        .into_iter()
        .find(|k| k.entry().strip_suffix("_loss") == Some(s.trim()))
        .ok_or_else(|| {
            Error::invalid(
                "--loss",
                format!("'{s}': expected mse, l1, bce or bce_with_logits"),
            )
        })
}

pub fn run(args: TrainArgs, engine: &wgrad::Options) -> Result<()> {
    let process_start = Instant::now();
    let optimizer = args.optim.build()?;
    let saved = match &args.resume {
        Some(p) => Some(load_model(p)?),
        None => None,
    };
    let mut config = config(args.config.as_deref(), saved.as_ref())?;
    if let Some(l) = &args.loss {
        config.loss = parse_loss(l)?;
        config.check()?;
    }
    let [c, h, w] = config.image;
    let split = DataSpec::parse(&args.data)?.load(c, (h, w), args.seed)?;
    if split.train.is_empty() {
        return Err(Error::data(&args.data, "no training images"));
    }
    let dev = device(args.backend, engine)?;
    let adapter = dev.describe();
    let params = match &saved {
        Some(s) => s.state.params.clone(),
        None => init_params(&config.params(), args.seed),
    };
    let mut t =
        Trainer::with_params(dev, config.clone(), args.batch, optimizer, params).map_err(|e| {
            match &args.resume {
                Some(p) => e.in_file(p.display()),
                None => e,
            }
        })?;
    let mut log = LossLog::new();
    if let (Some(s), Some(path)) = (&saved, &args.resume) {
        let mut state = s.state.clone();
        if s.optimizer.as_deref() != Some(optimizer.name()) && !state.optimizer.is_empty() {
            eprintln!(
                "wgrad: warning: {} holds {} state but this run uses {}; starting fresh optimizer state",
                path.display(),
                s.optimizer.as_deref().unwrap_or("no optimizer"),
                optimizer.name()
            );
            state.optimizer.clear();
        }
        t.load_state(&state)?;
        if let Ok(old) = LossLog::read_csv(beside(path, "loss.csv")) {
            log = old;
            log.retain_through(state.step);
        }
    }
    let order = BatchOrder::new(split.train.len(), args.batch, !args.no_shuffle, args.seed)?
        .dropping_last(args.drop_last);
    let per_epoch = order.batches_per_epoch() as u64;
    let total = match args.steps {
        Some(steps) => steps,
        None => {
            let epochs = args.epochs.unwrap_or(3);
            epochs.checked_mul(per_epoch).ok_or_else(|| {
                Error::invalid(
                    "--epochs",
                    format!("{epochs} epochs of {per_epoch} steps is more steps than a u64 counts"),
                )
            })?
        }
    };
    let start = t.step_count();
    eprintln!(
        "training {} parameters on {} ({} train / {} test images from {}), batch {}, {}, steps {}..{total}",
        config
            .params()
            .iter()
            .filter(|p| !p.buffer)
            .map(|p| p.shape.numel())
            .sum::<usize>(),
        adapter,
        split.train.len(),
        split.test.len(),
        split.train.source,
        args.batch,
        optimizer.name(),
        start
    );
    let bar = ProgressBar::new(total.saturating_sub(start));
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:30} step {pos}/{len} {msg} [{elapsed_precise}, {eta} left]",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let began = Instant::now();
    let mut last_loss = f32::NAN;
    let mut first_step = None;
    // Images trained on so far (the last batch of an epoch may be smaller).
    let mut images = 0usize;
    let record = |t: &mut Trainer, log: &mut LossLog, flush: bool, images: usize| {
        drain(t, log, flush, images, per_epoch, &began)
    };
    for step in start..total {
        let idx = order.batch_at(step);
        let (x, _) = split.train.batch(&idx);
        t.step(&x)?;
        images += idx.len();
        if step == start {
            // Start-up cost (adapter, pipelines, data): the time until the first step is done.
            if let Some(l) = record(&mut t, &mut log, true, images)? {
                last_loss = l;
            }
            first_step = Some(process_start.elapsed().as_secs_f64());
        } else if let Some(l) = record(&mut t, &mut log, false, images)? {
            last_loss = l;
        }
        bar.set_position(step + 1 - start);
        bar.set_message(format!(
            "epoch {} loss {last_loss:.5}",
            step / per_epoch + 1
        ));
        let end_of_epoch = (step + 1) % per_epoch == 0;
        let checkpoint = args.every.is_some_and(|n| n > 0 && (step + 1) % n == 0);
        if end_of_epoch || checkpoint {
            if let Some(l) = record(&mut t, &mut log, true, images)? {
                last_loss = l;
            }
            let test_loss = held_out_loss(&mut t, &split.test, args.batch)?;
            if let Some(row) = log.rows.last_mut() {
                row.test_loss = Some(test_loss);
            }
            if !bar.is_hidden() {
                bar.println(format!(
                    "step {}: train loss {last_loss:.5}, held-out {test_loss:.5}",
                    step + 1
                ));
            } else {
                eprintln!(
                    "step {}: train loss {last_loss:.5}, held-out {test_loss:.5}",
                    step + 1
                );
            }
            if checkpoint {
                save(&args, &mut t, &log, &split.test, false)?;
            }
        }
    }
    record(&mut t, &mut log, true, images)?;
    bar.finish_and_clear();
    let secs = began.elapsed().as_secs_f64();
    let test_loss = held_out_loss(&mut t, &split.test, args.batch)?;
    if let Some(row) = log.rows.last_mut() {
        row.test_loss = Some(test_loss);
    }
    save(&args, &mut t, &log, &split.test, true)?;
    let steps = t.step_count() - start;
    let recent: Vec<f32> = log
        .rows
        .iter()
        .rev()
        .take(10)
        .map(|r| r.train_loss)
        .collect();
    let final_loss = if recent.is_empty() {
        f32::NAN
    } else {
        recent.iter().sum::<f32>() / recent.len() as f32
    };
    println!(
        "trained {steps} steps in {secs:.1} s ({:.0} images/s) on {adapter}",
        images as f64 / secs.max(1e-9)
    );
    if let Some(f) = first_step {
        println!("first step done {f:.2} s after start (adapter, pipelines and data included)");
    }
    println!(
        "final train loss {final_loss:.5} (mean of the last {} steps), held-out loss {test_loss:.5}",
        recent.len()
    );
    print_outputs(&args.save);
    Ok(())
}

/// Moves the losses the device has finished into the log; returns the latest.
fn drain(
    t: &mut Trainer,
    log: &mut LossLog,
    flush: bool,
    images: usize,
    per_epoch: u64,
    began: &Instant,
) -> Result<Option<f32>> {
    let ips = (images as f64 / began.elapsed().as_secs_f64().max(1e-9)) as f32;
    let losses = if flush {
        t.flush_losses()?
    } else {
        t.losses()?
    };
    let mut last = None;
    for (step, loss) in losses {
        last = Some(loss);
        log.push(LossRow {
            step,
            epoch: (step - 1) / per_epoch,
            train_loss: loss,
            test_loss: None,
            images_per_s: ips,
        });
    }
    Ok(last)
}

fn print_outputs(save: &Path) {
    println!("wrote {}", save.display());
    for s in ["loss.csv", "loss.png", "reconstructions.png"] {
        let p = beside(save, s);
        if p.exists() {
            println!("wrote {}", p.display());
        }
    }
}
