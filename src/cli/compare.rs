//! `wgrad compare`: the question the autoencoder is there for, answered on one data split and
//! one budget. Three classifiers with the same head, batch order, optimizer and epochs:
//! (a) the head on the checkpoint's frozen encoder, (b) encoder and head trained jointly from the
//! checkpoint, (c) the same network from scratch (a freshly initialised encoder, trained
//! jointly). A table of test accuracy, training time, images/s and trainable parameters, and a
//! PNG of test accuracy against training time (measured after every epoch; evaluation time is
//! not counted).

use super::classify::{labels_of, load_all};
use super::common::{BackendArg, OptimizerArgs, beside, chunks, config, device};
use clap::Args;
use std::path::PathBuf;
use std::time::Instant;
use wgrad::classify::{Classifier, head};
use wgrad::data::{BatchOrder, DataSpec, Dataset};
use wgrad::exec::Device;
use wgrad::io::load_model;
use wgrad::io::plot::{Curve, write_curves};
use wgrad::nn::{AutoencoderConfig, Optimizer, init_params};
use wgrad::{Error, Result, Tensor};

#[derive(Args, Debug)]
pub struct CompareArgs {
    /// The autoencoder checkpoint whose encoder (a) and (b) start from.
    #[arg(long)]
    pub ckpt: PathBuf,
    /// Labelled data: `builtin`, an IDX images file with its labels beside it, or a PNG folder
    /// with one sub-folder per class.
    #[arg(long, default_value = "builtin")]
    pub data: String,
    /// Test data (same formats); default: the held-out split of --data.
    #[arg(long)]
    pub test: Option<String>,
    /// Hidden units of the two-layer head; 0 for a single Linear layer.
    #[arg(long, default_value_t = 64)]
    pub hidden: usize,
    /// Epochs each of the three trains for (the shared budget).
    #[arg(long, default_value_t = 5)]
    pub epochs: u64,
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    #[command(flatten)]
    pub optim: OptimizerArgs,
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long, value_enum, default_value = "auto")]
    pub backend: BackendArg,
    /// The plot of test accuracy against training time (default: beside the checkpoint,
    /// `<name>.compare.png`).
    #[arg(long)]
    pub plot: Option<PathBuf>,
}

/// One of the three runs, as it ended.
struct Outcome {
    name: &'static str,
    accuracy: f64,
    train_secs: f64,
    images: u64,
    trainable: usize,
    /// `(seconds of training so far, test accuracy %)`, from before the first step.
    curve: Vec<(f64, f64)>,
}

/// What the three runs share.
struct Setup<'a> {
    device: Device,
    config: &'a AutoencoderConfig,
    train: &'a Dataset,
    train_labels: &'a [u32],
    test: &'a Dataset,
    test_labels: &'a [u32],
    classes: usize,
    hidden: Option<usize>,
    batch: usize,
    epochs: u64,
    optimizer: Optimizer,
    seed: u64,
}

fn accuracy(clf: &mut Classifier, s: &Setup) -> Result<f64> {
    let mut correct = 0usize;
    let mut at = 0usize;
    for (x, n) in chunks(s.test, s.batch) {
        let pred = clf.predict(&x)?;
        correct += pred
            .iter()
            .zip(&s.test_labels[at..at + n])
            .filter(|(p, l)| p == l)
            .count();
        at += n;
    }
    Ok(100.0 * correct as f64 / s.test.len().max(1) as f64)
}

/// Trainable elements (buffers, batch normalisation's running moments, are not trained).
fn numel(specs: &[wgrad::nn::ParamSpec]) -> usize {
    specs
        .iter()
        .filter(|p| !p.buffer)
        .map(|p| p.shape.numel())
        .sum()
}

fn run_one(
    name: &'static str,
    s: &Setup,
    encoder: &[(String, Tensor)],
    joint: bool,
) -> Result<Outcome> {
    let mut clf = Classifier::new(
        s.device.clone(),
        s.config,
        encoder,
        s.classes,
        s.hidden,
        joint,
        s.batch,
        s.optimizer,
        s.seed,
    )?;
    let code = s.config.code_shape()?.numel();
    let head_params = numel(&head(code, s.classes, s.hidden).params());
    let trainable = head_params
        + if joint {
            numel(&s.config.encoder().params())
        } else {
            0
        };
    let order = BatchOrder::new(s.train.len(), s.batch, true, s.seed)?;
    let per_epoch = order.batches_per_epoch() as u64;
    let mut curve = vec![(0.0, accuracy(&mut clf, s)?)];
    let (mut train_secs, mut images, mut step) = (0.0, 0u64, 0u64);
    for epoch in 1..=s.epochs {
        let began = Instant::now();
        for _ in 0..per_epoch {
            let idx = order.batch_at(step);
            let (x, _) = s.train.batch(&idx);
            let y: Vec<u32> = idx.iter().map(|&i| s.train_labels[i]).collect();
            clf.step(&x, &y)?;
            clf.losses()?;
            images += idx.len() as u64;
            step += 1;
        }
        let losses = clf.flush_losses()?; // the epoch's work, finished on the device
        train_secs += began.elapsed().as_secs_f64();
        let acc = accuracy(&mut clf, s)?;
        curve.push((train_secs, acc));
        let loss = losses.last().map_or(f32::NAN, |l| l.1);
        eprintln!("{name}: epoch {epoch}, cross-entropy {loss:.4}, test accuracy {acc:.1}%");
    }
    Ok(Outcome {
        name,
        accuracy: curve.last().map_or(0.0, |c| c.1),
        train_secs,
        images,
        trainable,
        curve,
    })
}

pub fn run(args: CompareArgs, engine: &wgrad::Options) -> Result<()> {
    let saved = load_model(&args.ckpt)?;
    let config = config(args.config.as_deref(), Some(&saved))?;
    let [c, h, w] = config.image;
    let split = DataSpec::parse(&args.data)?.load(c, (h, w), args.seed)?;
    let test = match &args.test {
        Some(t) => load_all(t, c, (h, w), args.seed)?,
        None => split.test.clone(),
    };
    if args.epochs == 0 {
        return Err(Error::invalid("--epochs", "must be at least 1"));
    }
    let setup = Setup {
        device: device(args.backend, engine)?,
        config: &config,
        train: &split.train,
        train_labels: labels_of(&split.train, "training")?,
        test: &test,
        test_labels: labels_of(&test, "test")?,
        classes: split.train.num_classes().max(test.num_classes()),
        hidden: (args.hidden > 0).then_some(args.hidden),
        batch: args.batch,
        epochs: args.epochs,
        optimizer: args.optim.build()?,
        seed: args.seed,
    };
    let adapter = setup.device.describe();
    eprintln!(
        "comparing on {adapter}: {} train / {} test images, {} classes, {} epochs of batch {} each",
        split.train.len(),
        test.len(),
        setup.classes,
        args.epochs,
        args.batch
    );
    let trained = &saved.state.params;
    let fresh = init_params(&config.encoder().params(), args.seed);
    let outcomes = [
        run_one("frozen encoder + head", &setup, trained, false)
            .map_err(|e| e.in_file(args.ckpt.display()))?,
        run_one("encoder + head, jointly", &setup, trained, true)
            .map_err(|e| e.in_file(args.ckpt.display()))?,
        run_one("same network from scratch", &setup, &fresh, true)?,
    ];
    println!(
        "{:<28} {:>9} {:>11} {:>10} {:>17}",
        "", "test acc", "train time", "images/s", "trainable params"
    );
    for o in &outcomes {
        println!(
            "{:<28} {:>8.1}% {:>9.1} s {:>10.0} {:>17}",
            o.name,
            o.accuracy,
            o.train_secs,
            o.images as f64 / o.train_secs.max(1e-9),
            o.trainable
        );
    }
    println!(
        "{} test images, {} classes (chance {:.1}%), {} epochs each, on {adapter}",
        test.len(),
        setup.classes,
        100.0 / setup.classes as f64,
        args.epochs
    );
    let plot = args
        .plot
        .clone()
        .unwrap_or_else(|| beside(&args.ckpt, "compare.png"));
    let curves: Vec<Curve> = outcomes
        .iter()
        .map(|o| Curve {
            name: o.name.into(),
            points: o.curve.clone(),
            markers: true,
        })
        .collect();
    let title = format!("test accuracy against training time ({adapter})");
    write_curves(
        &plot,
        &title,
        "training time (s)",
        "test accuracy (%)",
        &curves,
    )?;
    println!("wrote {}", plot.display());
    Ok(())
}
