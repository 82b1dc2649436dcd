//! Embedding wgrad in an application that owns its wgpu device.
//!
//! The host creates its own instance, adapter, device and queue (as a renderer or a game would),
//! hands clones of the device and queue to wgrad, trains the default autoencoder for a few steps
//! on images it draws itself, and encodes images to their codes.
//!
//! Run: `cargo run --release --example host_device`

use std::sync::Arc;
use wgrad::exec::Device;
use wgrad::nn::{AutoencoderConfig, Optimizer};
use wgrad::train::Trainer;
use wgrad::{AdamConfig, GpuContext, Tensor};

/// The host's own images: a bright disc on a dark ground, moving with `seed`.
fn draw(batch: usize, seed: usize) -> Tensor {
    let mut data = vec![0f32; batch * 28 * 28];
    for n in 0..batch {
        let (cy, cx, r) = (
            8 + (n + seed) % 12,
            8 + (3 * n + seed) % 12,
            3 + (n + seed) % 5,
        );
        for y in 0..28 {
            for x in 0..28 {
                let d2 = (y as isize - cy as isize).pow(2) + (x as isize - cx as isize).pow(2);
                if d2 <= (r * r) as isize {
                    data[n * 784 + y * 28 + x] = 1.0;
                }
            }
        }
    }
    Tensor {
        shape: wgrad::Shape::new([batch, 1, 28, 28]),
        data,
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // --- The host application's own setup ------------------------------------------------
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
    let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
        power_preference: wgpu::PowerPreference::HighPerformance,
        ..Default::default()
    }))?;
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        label: Some("host device"),
        // wgrad works within whatever limits the host asked for; the adapter's own are best.
        required_limits: adapter.limits(),
        ..Default::default()
    }))?;

    // --- Hand the device to wgrad ----------------------------------------------------------
    let ctx = Arc::new(GpuContext::from_device(
        device.clone(),
        queue.clone(),
        adapter.get_info(),
        wgrad::Options::default(),
    ));
    println!("training on {}", ctx.describe());
    let batch = 16;
    let adam = AdamConfig {
        lr: 3e-3,
        ..AdamConfig::adam()
    };
    let mut trainer = Trainer::new(
        Device::Gpu(ctx),
        AutoencoderConfig::default(),
        batch,
        Optimizer::Adam(adam),
        42,
    )?;
    println!(
        "step plan: {} kernels, {:.2} MiB planned peak vs {:.2} MiB naive",
        trainer.program().map_or(0, |p| p.launch_count()),
        trainer.memory().map_or(0, |m| m.peak_bytes()) as f64 / 1048576.0,
        trainer.memory().map_or(0, |m| m.naive_bytes) as f64 / 1048576.0
    );
    for step in 0..30 {
        trainer.step(&draw(batch, step))?;
        // Losses arrive a few steps late: reading them never stalls the host.
        for (s, loss) in trainer.losses()? {
            if s % 10 == 0 {
                println!("step {s:3}  loss {loss:.5}");
            }
        }
    }
    for (s, loss) in trainer.flush_losses()? {
        println!("step {s:3}  loss {loss:.5}");
    }

    // --- Use the encoder ------------------------------------------------------------------
    let (loss, _reconstruction, codes) = trainer.evaluate(&draw(4, 100))?;
    println!("held-out loss {loss:.5}; codes {}:", codes.shape);
    for row in codes.data.chunks(codes.shape.dims()[1]) {
        let shown: Vec<String> = row[..6].iter().map(|v| format!("{v:+.3}")).collect();
        println!("  [{} ...]", shown.join(", "));
    }
    // The host's device is still its own: submit something of the host's on it.
    queue.submit([]);
    device.poll(wgpu::PollType::wait_indefinitely())?;
    Ok(())
}
