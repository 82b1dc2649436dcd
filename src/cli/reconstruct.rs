//! `wgrad reconstruct`: a PNG grid of images (top) and the model's reconstructions (below).

use super::common::{BackendArg, device, open_model};
use clap::Args;
use std::path::PathBuf;
use wgrad::Result;
use wgrad::data::DataSpec;
use wgrad::io::write_grid;

#[derive(Args, Debug)]
pub struct ReconstructArgs {
    /// A checkpoint written by `wgrad train` (or a PyTorch state_dict with --config).
    #[arg(long)]
    pub ckpt: PathBuf,
    /// `builtin`, an IDX images file or a PNG folder; its held-out images are shown.
    #[arg(long, default_value = "builtin")]
    pub data: String,
    /// The PNG to write.
    #[arg(long, default_value = "reconstructions.png")]
    pub out: PathBuf,
    /// How many images.
    #[arg(long, default_value_t = 8)]
    pub count: usize,
    /// Model config when the checkpoint has none (a PyTorch export).
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long, value_enum, default_value = "auto")]
    pub backend: BackendArg,
}

pub fn run(args: ReconstructArgs, engine: &wgrad::Options) -> Result<()> {
    let mut model = open_model(
        &args.ckpt,
        args.config.as_deref(),
        device(args.backend, engine)?,
    )?;
    let [c, h, w] = model.config().image;
    let split = DataSpec::parse(&args.data)?.load(c, (h, w), args.seed)?;
    let data = if split.test.is_empty() {
        &split.train
    } else {
        &split.test
    };
    let idx: Vec<usize> = (0..data.len().min(args.count.max(1))).collect();
    let (x, _) = data.batch(&idx);
    let (loss, recon, _) = model.evaluate(&x)?;
    write_grid(&args.out, &[&x, &recon], idx.len(), 4)?;
    println!(
        "wrote {}: {} images (top) and their reconstructions (below), loss {loss:.7}",
        args.out.display(),
        idx.len()
    );
    Ok(())
}
