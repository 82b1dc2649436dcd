//! The `wgrad` command. Errors print as one line on stderr and exit non-zero.

mod cli;

use clap::Parser;

fn main() {
    let args = cli::Cli::parse();
    if let Err(e) = cli::run(args) {
        eprintln!("wgrad: {e}");
        std::process::exit(1);
    }
}
