//! `wgrad bench`: per-kernel GFLOP/s and GB/s and training images/s on each adapter, every
//! figure printed with its adapter, backend and timing method (or all of it as JSON).

use serde::Serialize;
use wgrad::bench::{self, AdapterBench, Measurement, Options, TrainingFigures};
use wgrad::gpu::select::{self, Selection};
use wgrad::{Error, Result};

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Adapters to measure: all (every adapter), auto (the preferred one), or backends by name
    /// (vulkan, metal, dx12, gl; comma-separated).
    #[arg(
        long,
        default_value = "all",
        value_name = "auto|all|vulkan|metal|dx12|gl"
    )]
    pub backend: String,
    /// Print the figures as JSON on stdout instead of tables.
    #[arg(long)]
    pub json: bool,
    /// A smoke run: about 0.03 s per item instead of 0.3 s (figures are noisier).
    #[arg(long)]
    pub quick: bool,
    /// Instead of the kernel table: the GPU time of every dispatch of one training step.
    #[arg(long)]
    pub profile: bool,
    /// The one-shot GPU measurement instead of the kernel table: square matmuls 1024³–8192³,
    /// the preset's convolutions, training at batch 64, 256 and 1024 (capped on CPU drivers).
    /// benches/gpu.sh runs it.
    #[arg(long, conflicts_with = "profile")]
    pub gpu: bool,
    /// The adapter's fp32 peak in GFLOP/s, to report matmuls as a share of it (with --gpu).
    #[arg(long, value_name = "GFLOPS", requires = "gpu")]
    pub peak_gflops: Option<f64>,
}

/// The JSON document: one entry per adapter measured, and the adapters that would not open.
#[derive(Serialize)]
struct Document {
    quick: bool,
    adapters: Vec<AdapterBench>,
    unopened: Vec<String>,
}

fn duration(s: f64) -> String {
    if !s.is_finite() {
        "-".into()
    } else if s >= 1.0 {
        format!("{s:.3} s")
    } else if s >= 1e-3 {
        format!("{:.3} ms", s * 1e3)
    } else {
        format!("{:.1} µs", s * 1e6)
    }
}

fn print_item(m: &Measurement) {
    let gflops = m.gflops.map_or("-".to_string(), |g| format!("{g:.2}"));
    let gbs = if m.gbytes_per_s.is_finite() {
        format!("{:.2}", m.gbytes_per_s)
    } else {
        "-".into()
    };
    println!(
        "{:<34} {:<66} {:>11} {:>9} {:>8}  {}",
        m.op,
        m.shape,
        duration(m.seconds),
        gflops,
        gbs,
        m.adapter
    );
    if let Some(e) = &m.error {
        println!("    could not be measured: {e}");
    }
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1 << 20) as f64)
}

fn print_training(t: &TrainingFigures) {
    println!(
        "training, {} preset, batch {}, {} [{}, wall clock]:",
        t.preset, t.batch, t.optimizer, t.adapter
    );
    println!(
        "    {:.1} images/s with the loss read back every step ({} steps in {:.2} s)",
        t.blocking.images_per_s, t.blocking.steps, t.blocking.seconds
    );
    println!(
        "    {:.1} images/s with losses collected without waiting ({} steps in {:.2} s)",
        t.nonblocking.images_per_s, t.nonblocking.steps, t.nonblocking.seconds
    );
    println!(
        "    {} kernel launches a step; planned peak {} vs naive {} ({:.0}%); last loss {:.5}",
        t.launches_per_step,
        mib(t.peak_bytes),
        mib(t.naive_bytes),
        100.0 * t.peak_bytes as f64 / t.naive_bytes.max(1) as f64,
        t.last_loss
    );
}

pub fn run(args: BenchArgs, engine: &wgrad::Options) -> Result<()> {
    let opened = select::open(&Selection::parse(&args.backend)?, engine)?;
    let opts = if args.quick {
        Options::quick()
    } else {
        Options::full()
    };
    let unopened: Vec<String> = opened
        .failed
        .iter()
        .map(|(a, e)| format!("{a}: {e}"))
        .collect();
    if args.profile {
        let mut all = Vec::new();
        for ctx in &opened.contexts {
            let p = super::profile::profile(ctx)?;
            if !args.json {
                super::profile::print(&p);
            }
            all.push(p);
        }
        if args.json {
            let json = serde_json::to_string_pretty(&all)
                .map_err(|e| Error::invalid("bench --profile --json", e))?;
            println!("{json}");
        }
        return Ok(());
    }
    if args.gpu {
        return gpu(&args, &opts, &opened.contexts, &unopened);
    }
    let mut adapters = Vec::new();
    for ctx in &opened.contexts {
        if !args.json {
            let method = bench::Method::for_context(ctx);
            println!(
                "\n== {} — backend {}, {:?}; kernels timed by {}",
                ctx.info.name,
                wgrad::gpu::backend_name(ctx.backend()),
                ctx.info.device_type,
                method.describe()
            );
            println!(
                "{:<34} {:<66} {:>11} {:>9} {:>8}  adapter",
                "op", "shape", "median", "GFLOP/s", "GB/s"
            );
        }
        let result = bench::bench_adapter(ctx, &opts, &mut |m| {
            if !args.json {
                print_item(m);
            }
        });
        if !args.json {
            match (&result.training, &result.training_error) {
                (Some(t), _) => print_training(t),
                (None, Some(e)) => println!("training could not be measured: {e}"),
                (None, None) => {}
            }
        }
        adapters.push(result);
    }
    if !args.json {
        for u in &unopened {
            println!("not measured (would not open): {u}");
        }
    }
    let errors: Vec<String> = adapters
        .iter()
        .flat_map(|a| {
            let items = a.items.iter().filter_map(|m| {
                m.error
                    .as_ref()
                    .map(|e| format!("{} {} on {}: {e}", m.op, m.shape, m.adapter))
            });
            let training = a
                .training_error
                .as_ref()
                .map(|e| format!("training on {}: {e}", a.adapter.adapter));
            items.chain(training).collect::<Vec<_>>()
        })
        .collect();
    if args.json {
        let doc = Document {
            quick: args.quick,
            adapters,
            unopened,
        };
        let json =
            serde_json::to_string_pretty(&doc).map_err(|e| Error::invalid("bench --json", e))?;
        println!("{json}");
    }
    match errors.first() {
        None => Ok(()),
        Some(first) => Err(Error::invalid(
            "bench",
            format!(
                "{} figure(s) could not be measured; first: {first}",
                errors.len()
            ),
        )),
    }
}

/// `wgrad bench --gpu`: [`bench::gpu_report`] on each adapter, as tables or JSON.
fn gpu(
    args: &BenchArgs,
    opts: &Options,
    contexts: &[std::sync::Arc<wgrad::GpuContext>],
    unopened: &[String],
) -> Result<()> {
    if let Some(p) = args.peak_gflops
        && !(p.is_finite() && p > 0.0)
    {
        return Err(Error::invalid(
            "--peak-gflops",
            format!("{p} is not a positive number"),
        ));
    }
    let mut reports = Vec::new();
    for ctx in contexts {
        if !args.json {
            println!(
                "\n== {} — backend {}, {:?}, driver {} {}; kernels timed by {}",
                ctx.info.name,
                wgrad::gpu::backend_name(ctx.backend()),
                ctx.info.device_type,
                ctx.info.driver,
                ctx.info.driver_info,
                bench::Method::for_context(ctx).describe()
            );
            println!(
                "{:<34} {:<66} {:>11} {:>9} {:>8}  adapter",
                "op", "shape", "median", "GFLOP/s", "GB/s"
            );
        }
        let peak = args.peak_gflops;
        let r = bench::gpu_report(
            ctx,
            opts,
            peak,
            &mut |m| {
                if !args.json {
                    print_item(m);
                    if let (Some(g), Some(p), "matmul") = (m.gflops, peak, m.op.as_str()) {
                        println!(
                            "    {:.1}% of the fp32 peak ({p:.0} GFLOP/s)",
                            100.0 * g / p
                        );
                    }
                }
            },
            &mut |t| {
                if !args.json {
                    print_training(t);
                }
            },
        );
        if !args.json {
            for (batch, e) in &r.training_errors {
                println!("training at batch {batch} could not be measured: {e}");
            }
            for s in &r.skipped {
                println!("skipped: {s}");
            }
        }
        reports.push(r);
    }
    if args.json {
        let json = serde_json::to_string_pretty(&reports)
            .map_err(|e| Error::invalid("bench --gpu --json", e))?;
        println!("{json}");
    } else {
        for u in unopened {
            println!("not measured (would not open): {u}");
        }
    }
    let failed = reports.iter().flat_map(|r| {
        r.matmul
            .iter()
            .chain(&r.conv)
            .filter_map(|m| {
                m.error
                    .as_ref()
                    .map(|e| format!("{} {}: {e}", m.op, m.shape))
            })
            .chain(
                r.training_errors
                    .iter()
                    .map(|(b, e)| format!("training at batch {b}: {e}")),
            )
    });
    match failed.collect::<Vec<_>>().first() {
        None => Ok(()),
        Some(first) => Err(Error::invalid(
            "bench --gpu",
            format!("not every figure could be measured; first: {first}"),
        )),
    }
}
