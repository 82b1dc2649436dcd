//! `wgrad classify`: a classifier head on the autoencoder's code, with the encoder frozen (the
//! default: a feature extractor) or trained jointly (`--joint`), and its test accuracy.

use super::common::{BackendArg, OptimizerArgs, chunks, config, device};
use clap::Args;
use std::path::PathBuf;
use std::time::Instant;
use wgrad::classify::Classifier;
use wgrad::data::{BatchOrder, DataSpec, Dataset, load_idx, load_png_folder};
use wgrad::io::load_model;
use wgrad::{Error, Result};

#[derive(Args, Debug)]
pub struct ClassifyArgs {
    /// The autoencoder checkpoint whose encoder is used.
    #[arg(long)]
    pub ckpt: PathBuf,
    /// Labelled data: `builtin`, an IDX images file with its labels file beside it, or a PNG
    /// folder with one sub-folder per class.
    #[arg(long, default_value = "builtin")]
    pub data: String,
    /// Test data (same formats); default: the held-out split of --data.
    #[arg(long)]
    pub test: Option<String>,
    /// Train the encoder together with the head instead of freezing it.
    #[arg(long)]
    pub joint: bool,
    /// Hidden units of the two-layer head (Linear, ReLU, Linear); 0 for a single Linear layer.
    #[arg(long, default_value_t = 64)]
    pub hidden: usize,
    #[arg(long, default_value_t = 5)]
    pub epochs: u64,
    /// Images per step (the last batch of an epoch holds the remainder unless --drop-last).
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Drop the last, partial batch of each epoch instead of training on it.
    #[arg(long)]
    pub drop_last: bool,
    #[command(flatten)]
    pub optim: OptimizerArgs,
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long, value_enum, default_value = "auto")]
    pub backend: BackendArg,
}

pub fn labels_of<'a>(d: &'a Dataset, role: &str) -> Result<&'a [u32]> {
    d.labels.as_deref().ok_or_else(|| {
        Error::data(
            &d.source,
            format!("the {role} data has no labels: classify needs an IDX labels file beside the images, or class sub-folders of PNGs"),
        )
    })
}

pub fn load_all(spec: &str, c: usize, size: (usize, usize), seed: u64) -> Result<Dataset> {
    match DataSpec::parse(spec)? {
        DataSpec::Builtin => Ok(DataSpec::Builtin.load(c, size, seed)?.test),
        DataSpec::Idx { images, labels } => load_idx(&images, labels.as_deref())?.adapt(c, size),
        DataSpec::PngFolder(p) => load_png_folder(&p, c, size),
    }
}

pub fn run(args: ClassifyArgs, engine: &wgrad::Options) -> Result<()> {
    let saved = load_model(&args.ckpt)?;
    let config = config(args.config.as_deref(), Some(&saved))?;
    let [c, h, w] = config.image;
    let split = DataSpec::parse(&args.data)?.load(c, (h, w), args.seed)?;
    let test = match &args.test {
        Some(t) => load_all(t, c, (h, w), args.seed)?,
        None => split.test.clone(),
    };
    let train_labels = labels_of(&split.train, "training")?;
    let test_labels = labels_of(&test, "test")?;
    let classes = split.train.num_classes().max(test.num_classes());
    let dev = device(args.backend, engine)?;
    let adapter = dev.describe();
    let optimizer = args.optim.build()?;
    let mut clf = Classifier::new(
        dev,
        &config,
        &saved.state.params,
        classes,
        (args.hidden > 0).then_some(args.hidden),
        args.joint,
        args.batch,
        optimizer,
        args.seed,
    )
    .map_err(|e| e.in_file(args.ckpt.display()))?;
    let order = BatchOrder::new(split.train.len(), args.batch, true, args.seed)?
        .dropping_last(args.drop_last);
    let per_epoch = order.batches_per_epoch() as u64;
    let steps = args.epochs.checked_mul(per_epoch).ok_or_else(|| {
        Error::invalid(
            "--epochs",
            format!(
                "{} epochs of {per_epoch} steps is more steps than a u64 counts",
                args.epochs
            ),
        )
    })?;
    let mode = if args.joint {
        "trained jointly"
    } else {
        "frozen"
    };
    eprintln!(
        "classifying {classes} classes: {} train / {} test images, encoder {mode}, {} steps on {adapter}",
        split.train.len(),
        test.len(),
        steps
    );
    let began = Instant::now();
    for step in 0..steps {
        let idx = order.batch_at(step);
        let (x, _) = split.train.batch(&idx);
        let y: Vec<u32> = idx.iter().map(|&i| train_labels[i]).collect();
        clf.step(&x, &y)?;
        clf.losses()?;
        if (step + 1) % order.batches_per_epoch() as u64 == 0 {
            let l = clf.flush_losses()?;
            if let Some((_, loss)) = l.last() {
                eprintln!(
                    "epoch {}: cross-entropy {loss:.4}",
                    (step + 1) / order.batches_per_epoch() as u64
                );
            }
        }
    }
    clf.flush_losses()?;
    let train_secs = began.elapsed().as_secs_f64();
    let mut correct = 0usize;
    let mut at = 0usize;
    for (x, n) in chunks(&test, args.batch) {
        let pred = clf.predict(&x)?;
        correct += pred
            .iter()
            .zip(&test_labels[at..at + n])
            .filter(|(p, l)| p == l)
            .count();
        at += n;
    }
    let acc = correct as f64 / test.len().max(1) as f64;
    println!(
        "accuracy {:.1}% on {} test images ({} classes, chance {:.1}%), encoder {mode}",
        100.0 * acc,
        test.len(),
        classes,
        100.0 / classes as f64
    );
    println!(
        "trained {steps} steps in {train_secs:.1} s, evaluated in {:.1} s, on {adapter}",
        began.elapsed().as_secs_f64() - train_secs
    );
    Ok(())
}
