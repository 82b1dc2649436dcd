//! `wgrad encode`: the codes of a dataset, as a safetensors file.

use super::common::{BackendArg, chunks, device, open_model};
use clap::Args;
use std::path::PathBuf;
use wgrad::data::{DataSpec, Dataset};
use wgrad::io::Checkpoint;
use wgrad::train::Trainer;
use wgrad::{Result, Tensor};

#[derive(Args, Debug)]
pub struct EncodeArgs {
    #[arg(long)]
    pub ckpt: PathBuf,
    #[arg(long, default_value = "builtin")]
    pub data: String,
    /// The safetensors file to write: `train.codes` `[N, code]`, `test.codes`, and when the data
    /// is labelled `train.labels` / `test.labels` (as f32 values).
    #[arg(long, default_value = "codes.safetensors")]
    pub out: PathBuf,
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long, value_enum, default_value = "auto")]
    pub backend: BackendArg,
}

/// The codes of every image of `data`, in order.
pub fn codes(model: &mut Trainer, data: &Dataset, batch: usize) -> Result<Tensor> {
    let mut out = Vec::new();
    let mut width = 0;
    for (x, _) in chunks(data, batch) {
        let (_, _, c) = model.evaluate(&x)?;
        width = c.numel() / c.shape.dim(0).max(1);
        out.extend(c.data);
    }
    Tensor::new([data.len(), width], out)
}

pub fn run(args: EncodeArgs, engine: &wgrad::Options) -> Result<()> {
    let mut model = open_model(
        &args.ckpt,
        args.config.as_deref(),
        device(args.backend, engine)?,
    )?;
    let [c, h, w] = model.config().image;
    let split = DataSpec::parse(&args.data)?.load(c, (h, w), args.seed)?;
    let mut file = Checkpoint::new();
    for (name, d) in [("train", &split.train), ("test", &split.test)] {
        if d.is_empty() {
            continue;
        }
        let codes = codes(&mut model, d, args.batch.max(1))?;
        println!(
            "{name}: {} codes of {} values",
            codes.shape.dim(0),
            codes.shape.dim(1)
        );
        file.insert(format!("{name}.codes"), codes);
        if let Some(l) = &d.labels {
            let v = l.iter().map(|&x| x as f32).collect();
            file.insert(format!("{name}.labels"), Tensor::new([l.len()], v)?);
        }
    }
    file.metadata
        .insert("wgrad.source".into(), args.data.clone());
    file.save(&args.out)?;
    println!("wrote {}", args.out.display());
    Ok(())
}
