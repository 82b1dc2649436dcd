//! `wgrad reconstruct`: a PNG grid of images (top) and the model's reconstructions (below).

use super::common::{BackendArg, device, open_model};
use clap::Args;
use std::path::PathBuf;
use wgrad::data::DataSpec;
use wgrad::io::write_grid;
use wgrad::tensor::Rng;
use wgrad::{Result, Tensor};

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
    if model.config().variational.is_some() {
        // Codes drawn from the prior N(0, 1) the KL term pulls the encoder towards.
        let code = model.config().code_shape()?;
        let shape: Vec<usize> = [2 * idx.len()]
            .into_iter()
            .chain(code.dims().to_vec())
            .collect();
        let mut rng = Rng::new(args.seed);
        let numel = shape.iter().product();
        let codes = Tensor::new(shape, (0..numel).map(|_| rng.normal()).collect())?;
        let samples = model.decode(&codes)?;
        // Two rows of `count`.
        let half = samples.numel() / 2;
        let mut dims = samples.shape.dims().to_vec();
        dims[0] = idx.len();
        let top = Tensor::new(dims.clone(), samples.data[..half].to_vec())?;
        let bottom = Tensor::new(dims, samples.data[half..].to_vec())?;
        let out = samples_path(&args.out);
        write_grid(&out, &[&top, &bottom], idx.len(), 4)?;
        println!(
            "wrote {}: {} images decoded from random codes (N(0, 1), seed {})",
            out.display(),
            2 * idx.len(),
            args.seed
        );
    }
    Ok(())
}

/// Where the grid decoded from random codes goes: `x.png` → `x.samples.png`.
pub fn samples_path(out: &std::path::Path) -> PathBuf {
    super::common::beside(out, "samples.png")
}
