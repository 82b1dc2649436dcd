//! A host application that embeds wgrad: it owns the wgpu device, draws its own training images
//! on the GPU with a compute pass of its own, and trains the default autoencoder on them inside
//! its frame loop — the step recorded into the host's command encoder next to the host's pass,
//! the images never copied to the CPU, the loss read back a few frames later without the loop
//! ever waiting for the device. At the end it prints how many bytes wgrad moved GPU→CPU per
//! step (the goal: the loss and its divergence check, 8 bytes), then evaluates on the GPU and
//! copies the reconstructions into a buffer of its own.
//!
//! Run: `cargo run --release --example host_device [-- vulkan|gl|metal|dx12]`
#![cfg_attr(target_arch = "wasm32", allow(unused_imports, dead_code))]

use std::sync::Arc;
use wgrad::exec::Device;
use wgrad::gpu::DType;
use wgrad::nn::{AutoencoderConfig, Optimizer};
use wgrad::train::Trainer;
use wgrad::wgpu; // the wgpu wgrad is built with: the host uses the same one
use wgrad::{AdamConfig, GpuContext, GpuTensor, Options};

const BATCH: usize = 16;
const FRAMES: u32 = 60;

/// The host's own kernel: a batch of 28×28 discs whose place and size move with the frame.
const DRAW: &str = r#"
struct Params { frame: u32, batch: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> images: array<f32>;

@compute @workgroup_size(64)
fn draw(@builtin(global_invocation_id) id: vec3<u32>) {
    let i = id.x;
    if i >= p.batch * 784u { return; }
    let n = i / 784u;
    let y = f32((i % 784u) / 28u);
    let x = f32(i % 28u);
    let s = n * 7u + p.frame * 3u;
    let c = vec2<f32>(f32(8u + s % 12u), f32(8u + (s / 3u) % 12u));
    let r = f32(3u + s % 5u);
    // A soft edge, so the images are not only 0 and 1.
    images[i] = clamp(r + 0.5 - distance(vec2<f32>(x, y), c), 0.0, 1.0);
}
"#;

fn backend_from_args() -> wgpu::Backends {
    match std::env::args().nth(1).as_deref() {
        Some("vulkan") => wgpu::Backends::VULKAN,
        Some("gl") => wgpu::Backends::GL,
        Some("metal") => wgpu::Backends::METAL,
        Some("dx12") => wgpu::Backends::DX12,
        _ => wgpu::Backends::all(),
    }
}

// A native host: in a browser the page is the host (web/), and nothing may block.
#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    // --- The host application's own setup ------------------------------------------------
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = backend_from_args();
    let instance = wgpu::Instance::new(desc);
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

    // The host's images live in its own buffer; wgrad reads them with a copy on the device.
    let images = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("host images"),
        size: (BATCH * 784 * 4) as u64,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    let params = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("host draw params"),
        size: 16,
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("host draw"),
        source: wgpu::ShaderSource::Wgsl(DRAW.into()),
    });
    let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some("host draw"),
        layout: None,
        module: &module,
        entry_point: Some("draw"),
        compilation_options: Default::default(),
        cache: None,
    });
    let bind = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("host draw"),
        layout: &pipeline.get_bind_group_layout(0),
        entries: &[
            wgpu::BindGroupEntry {
                binding: 0,
                resource: params.as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 1,
                resource: images.as_entire_binding(),
            },
        ],
    });

    // --- Hand the device to wgrad ----------------------------------------------------------
    // Options::default(): the host decides everything; no environment variable is read and no
    // tune cache is written to disk.
    let ctx = Arc::new(GpuContext::from_device(
        device.clone(),
        queue.clone(),
        adapter.get_info(),
        Options::default(),
    ));
    // wgpu's default for an error no scope catches is a panic, and a lost device is otherwise
    // only seen as failing calls: forward both to wgrad, whose next call then reports them as
    // errors (weak references: the device must not keep its own context alive).
    let weak = Arc::downgrade(&ctx);
    device.set_device_lost_callback(move |reason, message| {
        if let Some(c) = weak.upgrade() {
            c.report_device_lost(format!("{reason:?}: {message}"));
        }
    });
    let weak = Arc::downgrade(&ctx);
    device.on_uncaptured_error(Arc::new(move |e| {
        if let Some(c) = weak.upgrade() {
            c.report_uncaptured(e.to_string());
        }
    }));
    println!("training on {}", ctx.describe());
    let adam = AdamConfig {
        lr: 3e-3,
        ..AdamConfig::adam()
    };
    let mut trainer = Trainer::new(
        Device::Gpu(ctx.clone()),
        AutoencoderConfig::default(),
        BATCH,
        Optimizer::Adam(adam),
        42,
    )?;
    let gpu_images = GpuTensor::from_buffer(
        images.clone(),
        0,
        [BATCH, 1, 28, 28],
        DType::F32,
        "host images",
    )?;

    // --- The frame loop: never waits for the device ----------------------------------------
    let start = ctx.transfers();
    let mut steps = 0u64;
    let mut skipped = 0u32;
    let mut latest = None;
    for frame in 0..FRAMES {
        queue.write_buffer(
            &params,
            0,
            bytemuck::cast_slice(&[frame, BATCH as u32, 0, 0]),
        );
        let mut enc = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("host frame"),
        });
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            pass.set_pipeline(&pipeline);
            pass.set_bind_group(0, &bind, &[]);
            pass.dispatch_workgroups((BATCH * 784).div_ceil(64) as u32, 1, 1);
        }
        // Train on this frame's images only if the device has caught up: otherwise skip the
        // step this frame rather than stall it.
        let recorded = if trainer.ready()? {
            Some(trainer.record_step(&gpu_images, &mut enc)?)
        } else {
            skipped += 1;
            None
        };
        queue.submit([enc.finish()]);
        if let Some(r) = recorded {
            trainer.submitted(r)?;
            steps += 1;
        }
        // The host's own non-blocking poll, then whatever losses have arrived.
        device.poll(wgpu::PollType::Poll)?;
        for (step, loss) in trainer.losses()? {
            latest = Some((step, loss));
            if step % 10 == 0 {
                println!("frame {frame:3}: step {step:3} loss {loss:.5}");
            }
        }
    }
    // Done with the loop: waiting is fine now.
    let rest = trainer.flush_losses()?;
    let moved = ctx.transfers();
    if let Some(&(step, loss)) = rest.last().or(latest.as_ref()) {
        println!("last step {step}: loss {loss:.5}");
    }
    let to_host = moved.to_host - start.to_host;
    let to_gpu = moved.to_gpu - start.to_gpu;
    println!("{steps} steps in {FRAMES} frames ({skipped} frames skipped a step rather than wait)");
    println!(
        "wgrad moved {:.1} bytes GPU→CPU per step (the loss and the divergence check) and {:.1} bytes CPU→GPU per step (kernel parameters: the optimizer's step, and those of kernels swapped in as they finish compiling); the images never left the GPU",
        to_host as f64 / steps.max(1) as f64,
        to_gpu as f64 / steps.max(1) as f64
    );

    // --- Use the model on the GPU ----------------------------------------------------------
    let out = trainer.evaluate_gpu(&gpu_images)?;
    let display = GpuTensor::from_buffer(
        device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("host display"),
            size: out.reconstruction.byte_len(),
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        }),
        0,
        out.reconstruction.shape.clone(),
        DType::F32,
        "host display",
    )?;
    let mut enc = device.create_command_encoder(&Default::default());
    ctx.copy(&out.reconstruction, &display, Some(&mut enc))?;
    queue.submit([enc.finish()]);
    println!(
        "reconstructions {} copied into the host's display buffer; codes {} left on the GPU",
        display.shape, out.code.shape
    );
    let loss = ctx.download(&out.loss)?;
    println!(
        "reconstruction loss on the last frame's images: {:.5}",
        loss.data[0]
    );
    Ok(())
}
