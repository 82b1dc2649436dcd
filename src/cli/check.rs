//! `wgrad check`: every kernel and one training step on each adapter against the CPU reference,
//! printed as a table (or JSON); non-zero exit when anything fails or nothing could be checked.

use std::time::Instant;
use wgrad::check::{self, Report, Row};
use wgrad::gpu::select::{self, Selection};
use wgrad::{Error, Result};

/// The autoencoder step's batch: small, so the CPU reference stays quick.
const TRAIN_BATCH: usize = 8;

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// Adapters to check: all (every adapter), auto (the preferred one), or backends by name
    /// (vulkan, metal, dx12, gl; comma-separated).
    #[arg(
        long,
        default_value = "all",
        value_name = "auto|all|vulkan|metal|dx12|gl"
    )]
    pub backend: String,
    /// Print the report as JSON on stdout instead of a table.
    #[arg(long)]
    pub json: bool,
}

fn header() {
    println!(
        "{:<44} {:<16} {:<56} {:>9} {:>9}  {:<22} result",
        "op", "adapter", "shape", "max abs", "max rel", "tolerance"
    );
}

fn print_row(r: &Row) {
    let tol = if r.atol.is_nan() {
        "-".to_string()
    } else {
        format!("atol {:.1e} rtol {:.1e}", r.atol, r.rtol)
    };
    let err = |v: f64| {
        if v.is_nan() {
            "-".to_string()
        } else {
            format!("{v:.2e}")
        }
    };
    println!(
        "{:<44} {:<16} {:<56} {:>9} {:>9}  {:<22} {}",
        r.op,
        r.adapter,
        r.shape,
        err(r.max_abs_err),
        err(r.max_rel_err),
        tol,
        if r.passed { "PASS" } else { "FAIL" }
    );
    if let Some(e) = &r.error {
        for line in e.lines() {
            println!("    {line}");
        }
    }
}

fn summary(report: &Report, seconds: f64) -> String {
    let names: Vec<&str> = report.adapters.iter().map(|a| a.adapter.as_str()).collect();
    format!(
        "{} passed, {} failed on {} adapter(s) ({}) in {seconds:.1} s",
        report.passed,
        report.failed,
        report.adapters.len(),
        names.join(", ")
    )
}

pub fn run(args: CheckArgs, engine: &wgrad::Options) -> Result<()> {
    let start = Instant::now();
    let opened = select::open(&Selection::parse(&args.backend)?, engine)?;
    let cases = check::catalogue(TRAIN_BATCH);
    if !args.json {
        for ctx in &opened.contexts {
            let row = check::AdapterRow::of(ctx);
            println!(
                "adapter {}: {} ({}-class matmul kernels, {})",
                select::tag(ctx),
                ctx.describe(),
                row.matmul_kernels,
                if row.subgroups {
                    "subgroup reductions"
                } else {
                    "no subgroups"
                }
            );
        }
        println!();
        header();
    }
    let mut report = check::run(&opened.contexts, &cases, &mut |row| {
        if !args.json {
            print_row(row);
        }
    });
    for (a, e) in &opened.failed {
        let backend = wgrad::gpu::backend_name(a.backend);
        report.push_error("open device", &a.name, backend, e.to_string());
        if !args.json {
            if let Some(row) = report.rows.last() {
                print_row(row);
            }
        }
    }
    let line = summary(&report, start.elapsed().as_secs_f64());
    if args.json {
        let json =
            serde_json::to_string_pretty(&report).map_err(|e| Error::invalid("check --json", e))?;
        println!("{json}");
    } else {
        println!("\n{line}");
    }
    if report.ok() {
        Ok(())
    } else {
        Err(Error::Mismatch(format!("check failed: {line}")))
    }
}
