//! A long run on lavapipe: 10,000 training steps of the default autoencoder on the built-in
//! shapes, with the device's live buffers and bytes (wgpu's internal counters) exactly constant
//! once tier-up is over, and the process's resident memory flat. Ignored by default (about 7
//! minutes on two cores at batch 16, ~24 steps/s):
//!
//! ```text
//! cargo test --test gpu long_run -- --ignored --show-output
//! ```
//!
//! `WGRAD_LONG_STEPS` changes the step count (at least 100) for a quick try, and
//! `WGRAD_LONG_BATCH` the batch size (16 by default); samples are taken every 1/20 of the run.

use std::time::Instant;
use wgrad::data::{BatchOrder, synthetic};
use wgrad::exec::Device;
use wgrad::gpu::{AdapterChoice, BackendKind, list_adapters};
use wgrad::nn::{AutoencoderConfig, Optimizer};
use wgrad::train::Trainer;
use wgrad::{AdamConfig, GpuContext, Options};

const STEPS: u64 = 10_000;
const BATCH: usize = 16;
const SEED: u64 = 11;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v} is not a valid number")),
        Err(_) => default,
    }
}

/// The process's resident set (`VmRSS` of /proc/self/status), in bytes.
fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse().ok())
        .expect("no VmRSS line in /proc/self/status");
    kib * 1024
}

/// lavapipe (Mesa's Vulkan on the CPU), opened on a device of this test's own: wgpu's counters
/// are per device, and nothing else may allocate on it.
fn lavapipe() -> GpuContext {
    let all = list_adapters();
    let summary = all
        .iter()
        .find(|a| a.backend == wgpu::Backend::Vulkan && a.name.contains("llvmpipe"))
        .unwrap_or_else(|| {
            let present: Vec<String> = all.iter().map(|a| format!("#{} {a}", a.index)).collect();
            panic!(
                "this test runs on lavapipe (Vulkan, adapter name containing \"llvmpipe\"; \
                 install mesa-vulkan-drivers), and the machine has none; present: [{}]",
                present.join("; ")
            )
        });
    println!("adapter: #{} {summary}", summary.index);
    let choice = AdapterChoice {
        backend: Some(BackendKind::Vulkan),
        index: Some(summary.index),
    };
    GpuContext::new(&Options::with_adapter(choice)).expect("opening lavapipe")
}

/// One row of the table: the state after `step` steps.
struct Sample {
    step: u64,
    buffers: isize,
    buffer_bytes: isize,
    rss: u64,
    /// Steps per second since the previous sample.
    rate: f64,
    /// Mean loss of the steps since the previous sample.
    loss: f64,
    /// Bytes read back (GPU → host) per step since the previous sample.
    to_host: f64,
}

/// The losses reported so far: checked to come one per step, in order, and finite.
#[derive(Default)]
struct Losses {
    reported: u64,
    first: Option<f32>,
    /// Sum since the previous sample.
    sum: f64,
    nonfinite: Vec<(u64, f32)>,
}

impl Losses {
    fn take(&mut self, losses: Vec<(u64, f32)>) {
        for (step, loss) in losses {
            self.reported += 1;
            assert_eq!(step, self.reported, "losses out of order or missing");
            self.first.get_or_insert(loss);
            if !loss.is_finite() && self.nonfinite.len() < 10 {
                self.nonfinite.push((step, loss));
            }
            self.sum += loss as f64;
        }
    }
}

fn mib(bytes: f64) -> f64 {
    bytes / (1024.0 * 1024.0)
}

#[test]
#[ignore = "10,000 steps on lavapipe, several minutes: run with --ignored (WGRAD_LONG_STEPS=n for fewer)"]
fn ten_thousand_steps_keep_buffers_and_memory_flat() {
    let steps: u64 = env_or("WGRAD_LONG_STEPS", STEPS);
    let batch: usize = env_or("WGRAD_LONG_BATCH", BATCH);
    assert!(steps >= 100, "WGRAD_LONG_STEPS={steps}: take at least 100");
    // Samples every 1/20 of the run (500 steps of 10,000). Buffers are compared from the first
    // sample on (tier-up forced to its end just before it), memory from the second.
    let every = steps / 20;
    let memory_from = 2 * every;

    let ctx = std::sync::Arc::new(lavapipe());
    assert_eq!(ctx.backend(), wgpu::Backend::Vulkan);
    println!(
        "driver: {} {} ({:?})",
        ctx.info.driver, ctx.info.driver_info, ctx.info.device_type
    );
    let data = synthetic(6000, 0, 28, SEED).train;
    let order = BatchOrder::new(data.len(), batch, true, SEED).unwrap();
    let mut t = Trainer::new(
        Device::Gpu(ctx.clone()),
        AutoencoderConfig::default(),
        batch,
        Optimizer::Adam(AdamConfig::adam()),
        SEED,
    )
    .unwrap();
    println!(
        "{steps} Adam steps of the default autoencoder at batch {batch} on {} (built-in shapes, \
         {} images, shuffled), a sample every {every} steps",
        t.device().describe(),
        data.len()
    );

    let began = Instant::now();
    let mut mark = (Instant::now(), 0u64, ctx.transfers().to_host);
    let mut losses = Losses::default();
    let mut samples: Vec<Sample> = Vec::with_capacity(20);
    for step in 0..steps {
        let (x, _) = data.batch(&order.batch_at(step));
        t.step(&x).unwrap();
        // Drained every step (without waiting), as a training loop does: the ring of read-back
        // buffers is reused, and the list of reported losses never builds up.
        losses.take(t.losses().unwrap());
        let done = step + 1;
        if done % every != 0 {
            continue;
        }
        if done == every {
            // Tier-up (CPU drivers) swaps each matmul's final kernel in, one per step, as its
            // background compile finishes; a swap replaces a launch and its uniform buffer. By
            // now it is normally over; this waits for the rest, so that every later step runs
            // the same launches.
            let w = Instant::now();
            t.finish_tier_up().unwrap();
            println!(
                "tier-up finished {:.2} s after step {done}",
                w.elapsed().as_secs_f64()
            );
        }
        // Every step submitted so far has finished: staging buffers of the queue's writes
        // (images, Adam's step uniform) are freed once their submission is done.
        losses.take(t.flush_losses().unwrap());
        ctx.wait().unwrap();
        assert_eq!(
            losses.reported, done,
            "a loss per step, all reported by now"
        );
        let c = ctx.device.get_internal_counters();
        let now = Instant::now();
        let to_host = ctx.transfers().to_host;
        let n = (done - mark.1) as f64;
        samples.push(Sample {
            step: done,
            buffers: c.hal.buffers.read(),
            buffer_bytes: c.hal.buffer_memory.read(),
            rss: resident_bytes(),
            rate: n / (now - mark.0).as_secs_f64(),
            loss: losses.sum / n,
            to_host: (to_host - mark.2) as f64 / n,
        });
        mark = (now, done, to_host);
        losses.sum = 0.0;
    }
    let wall = began.elapsed().as_secs_f64();

    println!("  step  buffers  buffer MiB  RSS MiB  steps/s  mean loss  read-back B/step");
    for s in &samples {
        println!(
            "{:>6}  {:>7}  {:>10.3}  {:>7.1}  {:>7.1}  {:>9.5}  {:>16.1}",
            s.step,
            s.buffers,
            mib(s.buffer_bytes as f64),
            mib(s.rss as f64),
            s.rate,
            s.loss,
            s.to_host
        );
    }
    let base = samples
        .iter()
        .find(|s| s.step == memory_from)
        .expect("a sample at the memory baseline");
    let last = samples.last().unwrap();
    let growth = last.rss as i64 - base.rss as i64;
    println!(
        "{steps} steps in {wall:.0} s ({:.1} steps/s, {:.0} images/s); resident memory {:+.2} MiB \
         from step {memory_from} to {}; peak {:.1} MiB",
        steps as f64 / wall,
        (steps as usize * batch) as f64 / wall,
        mib(growth as f64),
        last.step,
        mib(samples.iter().map(|s| s.rss).max().unwrap() as f64),
    );

    assert!(samples[0].buffers > 0, "the counters are not counting");
    // After tier-up a step allocates nothing that outlives it: the same buffers, to the byte.
    let counts: Vec<(u64, isize, isize)> = samples
        .iter()
        .map(|s| (s.step, s.buffers, s.buffer_bytes))
        .collect();
    assert!(
        counts
            .windows(2)
            .all(|w| (w[0].1, w[0].2) == (w[1].1, w[1].2)),
        "live buffers (count, bytes) changed after tier-up: {counts:?}"
    );
    // The only read-back of a step is its loss and health flag, 8 bytes: the loss ring works and
    // nothing else comes back to the host.
    for s in &samples[1..] {
        assert_eq!(
            s.to_host, 8.0,
            "bytes read back per step by step {}",
            s.step
        );
    }
    // Resident memory: the GPU buffers are constant (above), so what could grow is host-side
    // (wgpu's trackers and staging, lavapipe's command and descriptor pools, our own lists).
    // Measured on lavapipe (Mesa 22.3.6, 2 cores, batch 16): 279.4 MiB at every sample from
    // step 500 to 10,000, +0.05 MiB from step 1,000 to the end. The bound leaves room for
    // allocator noise (glibc's per-thread arenas, lavapipe's threads) yet is ~450 bytes a step
    // over 9,000 steps, which a per-step leak of anything real (a command buffer, a bind group,
    // a staging buffer, a loss kept) exceeds.
    const RSS_BOUND: i64 = 4 << 20;
    assert!(
        growth < RSS_BOUND,
        "resident memory grew {:.2} MiB from step {memory_from} to {} (bound {} MiB)",
        mib(growth as f64),
        last.step,
        RSS_BOUND >> 20
    );

    assert!(
        losses.nonfinite.is_empty(),
        "non-finite losses (step, loss): {:?}",
        losses.nonfinite
    );
    let first = losses.first.unwrap() as f64;
    assert!(
        last.loss < 0.5 * first,
        "the loss did not fall: step 1 {first:.5}, mean of the last {every} steps {:.5}",
        last.loss
    );
}
