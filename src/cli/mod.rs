//! Command-line interface: argument definitions and one function per subcommand.

mod bench;
mod check;
mod classify;
mod common;
mod compare;
mod devices;
mod encode;
mod profile;
mod reconstruct;
mod train;
mod tune;

use clap::{Parser, Subcommand};
use common::EngineArgs;

#[derive(Parser, Debug)]
#[command(
    name = "wgrad",
    version,
    about = "A portable GPU training engine: WGSL kernels through wgpu, checked against a CPU reference"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub engine: EngineArgs,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train the autoencoder (default: the 28×28 preset on the built-in shapes).
    Train(train::TrainArgs),
    /// Write a PNG grid of images and their reconstructions.
    Reconstruct(reconstruct::ReconstructArgs),
    /// Train a classifier on the encoder's codes and report its test accuracy.
    Classify(classify::ClassifyArgs),
    /// Frozen encoder vs joint training vs the same network from scratch, on one data split and
    /// budget: test accuracy, training time, images/s, trainable parameters, and a plot.
    Compare(compare::CompareArgs),
    /// Write the codes of a dataset to a safetensors file.
    Encode(encode::EncodeArgs),
    /// List every GPU adapter with backend, device type, driver, key limits and optional features.
    Devices,
    /// Cross-backend correctness: every kernel, forward and backward, and one autoencoder training
    /// step on each adapter, compared with the CPU reference. Exits non-zero on any failure.
    Check(check::CheckArgs),
    /// Per-kernel GFLOP/s and GB/s and training images/s on each adapter.
    Bench(bench::BenchArgs),
    /// Measure the matmul mappings of a training step on an adapter and cache the fastest (per
    /// adapter and driver); --list shows the cache, --clear removes it.
    Tune(tune::TuneArgs),
}

/// Runs a subcommand with the engine options its flags and the `WGRAD_*` variables give (the
/// only place wgrad reads the environment).
pub fn run(cli: Cli) -> wgrad::Result<()> {
    let o = cli.engine.options()?;
    match cli.command {
        Command::Train(a) => train::run(a, &o),
        Command::Reconstruct(a) => reconstruct::run(a, &o),
        Command::Classify(a) => classify::run(a, &o),
        Command::Compare(a) => compare::run(a, &o),
        Command::Encode(a) => encode::run(a, &o),
        Command::Devices => devices::run(&o),
        Command::Check(args) => check::run(args, &o),
        Command::Bench(args) => bench::run(args, &o),
        Command::Tune(args) => tune::run(args, &o),
    }
}
