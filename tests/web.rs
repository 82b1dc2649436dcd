//! wgrad in a real browser (`cargo test --target wasm32-unknown-unknown --no-default-features
//! --features web`): headless Chromium, WebGPU on its SwiftShader adapter, our WGSL compiled by
//! Tint instead of naga. Every kernel against its CPU twin on small shapes, and whole training
//! steps (loss and every gradient) against the CPU reference compiled to wasm beside them; the
//! GPU-class matmul kernels forced (the browser's SwiftShader is a CPU adapter, so it runs the
//! CPU-class ones by default) give the same bits.
#![cfg(target_arch = "wasm32")]

use std::sync::Arc;
use wasm_bindgen_test::*;
use wgrad::compare::{Tolerance, compare};
use wgrad::exec::Device;
use wgrad::nn::{AutoencoderConfig, Optimizer};
use wgrad::train::Trainer;
use wgrad::{AdamConfig, GpuContext, KernelClass, Options, SgdConfig, Tensor, check};

wasm_bindgen_test_configure!(run_in_browser);

async fn browser_gpu() -> Arc<GpuContext> {
    browser_gpu_with(&Options::default()).await
}

async fn browser_gpu_with(options: &Options) -> Arc<GpuContext> {
    let ctx = GpuContext::new_async(options)
        .await
        .expect("the browser offers no WebGPU adapter");
    console_log!(
        "adapter: {:?} {:?} ({})",
        ctx.info.name,
        ctx.info.device_type,
        ctx.describe()
    );
    Arc::new(ctx)
}

#[wasm_bindgen_test]
async fn every_kernel_matches_its_cpu_twin_in_the_browser() {
    let ctx = browser_gpu().await;
    let cases = check::catalogue_sized(4, 8);
    let start = web_time::Instant::now();
    let report = check::run_async(&[ctx], &cases, &mut |row| {
        if !row.passed {
            console_log!(
                "FAIL {} {}: {}",
                row.op,
                row.shape,
                row.error.as_deref().unwrap_or("")
            );
        }
    })
    .await;
    console_log!(
        "{} passed, {} failed in {:.1} s",
        report.passed,
        report.failed,
        start.elapsed().as_secs_f64()
    );
    assert!(
        report.ok(),
        "{} of {} rows failed",
        report.failed,
        report.rows.len()
    );
}

fn images(batch: usize, seed: u64) -> Tensor {
    wgrad::check::synthetic_images(batch, seed)
}

/// Gradients and parameters are long chains of f32 sums: relative to the tensor's largest.
fn scaled(cpu: &[f32], rel: f64) -> Tolerance {
    let max = cpu.iter().fold(0f64, |m, v| m.max(v.abs() as f64));
    Tolerance {
        atol: rel * max + 1e-9,
        rtol: rel,
    }
}

fn assert_close(what: &str, gpu: &[f32], cpu: &[f32], tol: Tolerance) {
    let c = compare(what.to_string(), gpu, cpu, tol);
    console_log!("{}", c.report());
    assert!(c.passed(), "{}", c.report());
}

#[wasm_bindgen_test]
async fn a_training_step_matches_the_cpu_reference_in_the_browser() {
    let ctx = browser_gpu().await;
    let sgd = Optimizer::Sgd(SgdConfig::new(0.0));
    let config = AutoencoderConfig::default();
    let mut cpu = Trainer::new_async(Device::Cpu, config.clone(), 4, sgd, 3)
        .await
        .unwrap();
    let mut gpu = Trainer::new_async(Device::Gpu(ctx), config, 4, sgd, 3)
        .await
        .unwrap();
    let x = images(4, 1);
    cpu.step_async(&x).await.unwrap();
    gpu.step_async(&x).await.unwrap();
    let (lc, lg) = (
        cpu.flush_losses_async().await.unwrap(),
        gpu.flush_losses_async().await.unwrap(),
    );
    assert_eq!((lc.len(), lg.len()), (1, 1));
    assert_close(
        "loss",
        &[lg[0].1],
        &[lc[0].1],
        Tolerance::reduction(784 * 4),
    );
    let (gc, gg) = (
        cpu.gradients_async().await.unwrap(),
        gpu.gradients_async().await.unwrap(),
    );
    assert_eq!(gc.len(), 12);
    for ((name, g), (_, c)) in gg.iter().zip(&gc) {
        assert_close(
            &format!("d loss / d {name}"),
            &g.data,
            &c.data,
            scaled(&c.data, 1e-4),
        );
    }
}

/// Adam steps at two batch sizes (the full one and the last, partial, one of an epoch) keep the
/// browser's GPU and the CPU reference together.
#[wasm_bindgen_test]
async fn adam_steps_of_two_batch_sizes_match_the_cpu_in_the_browser() {
    let ctx = browser_gpu().await;
    let adam = Optimizer::Adam(AdamConfig::adam());
    let config = AutoencoderConfig::default();
    let mut cpu = Trainer::new_async(Device::Cpu, config.clone(), 4, adam, 5)
        .await
        .unwrap();
    let mut gpu = Trainer::new_async(Device::Gpu(ctx), config, 4, adam, 5)
        .await
        .unwrap();
    for (i, n) in [4, 3, 4].into_iter().enumerate() {
        let x = images(n, 10 + i as u64);
        cpu.step_async(&x).await.unwrap();
        gpu.step_async(&x).await.unwrap();
    }
    let (sc, sg) = (
        cpu.state_async().await.unwrap(),
        gpu.state_async().await.unwrap(),
    );
    assert_eq!(sg.step, 3);
    for ((name, g), (_, c)) in sg.params.iter().zip(&sc.params) {
        assert_close(
            &format!("{name} after 3 Adam steps"),
            &g.data,
            &c.data,
            scaled(&c.data, 1e-4),
        );
    }
}

/// Two Adam steps with the GPU-class matmul kernels forced (`matmul_tiled*`, compiled by Tint)
/// give the losses and parameters of the browser's default kernels, bit for bit.
#[wasm_bindgen_test]
async fn forced_gpu_kernels_train_to_the_same_bits_in_the_browser() {
    let forced = Options {
        kernels: KernelClass::Gpu,
        ..Options::default()
    };
    let mut runs = Vec::new();
    for options in [Options::default(), forced] {
        let ctx = browser_gpu_with(&options).await;
        let adam = Optimizer::Adam(AdamConfig::adam());
        let mut t = Trainer::new_async(Device::Gpu(ctx), AutoencoderConfig::default(), 4, adam, 9)
            .await
            .unwrap();
        for i in 0..2 {
            t.step_async(&images(4, 20 + i)).await.unwrap();
        }
        let losses: Vec<u32> = t
            .flush_losses_async()
            .await
            .unwrap()
            .iter()
            .map(|l| l.1.to_bits())
            .collect();
        let params: Vec<u32> = t
            .state_async()
            .await
            .unwrap()
            .params
            .iter()
            .flat_map(|(_, v)| v.data.iter().map(|x| x.to_bits()))
            .collect();
        runs.push((losses, params));
    }
    assert_eq!(runs[0].0, runs[1].0, "losses");
    assert!(runs[0].1 == runs[1].1, "parameters differ");
}
