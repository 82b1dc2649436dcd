//! Command-line interface: argument definitions and one function per subcommand.

mod devices;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "wgrad",
    version,
    about = "A portable GPU training engine: WGSL kernels through wgpu, checked against a CPU reference"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// List every GPU adapter with backend, device type, driver, key limits and optional features.
    Devices,
}

pub fn run(cli: Cli) -> wgrad::Result<()> {
    match cli.command {
        Command::Devices => devices::run(),
    }
}
