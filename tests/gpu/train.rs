//! The whole autoencoder on every adapter against the CPU reference: loss and every parameter
//! gradient at step 0, all parameters after 10 SGD and after 10 Adam steps; memory that does
//! not grow; a loss that falls.

use crate::common::{check, contexts, tag};
use wgrad::compare::Tolerance;
use wgrad::exec::Device;
use wgrad::nn::{AutoencoderConfig, Optimizer};
use wgrad::train::Trainer;
use wgrad::{AdamConfig, SgdConfig, Tensor};

const BATCH: usize = 8;
const SEED: u64 = 7;

/// Images with some structure: a bright square of varying size and place on a dark ground.
pub fn images(batch: usize, seed: u64) -> Tensor {
    let noise = Tensor::uniform([batch, 1, 28, 28], 0.0, 0.1, seed);
    let mut data = noise.data;
    for n in 0..batch {
        let s = (seed as usize + n * 7) % 12 + 6;
        let (y0, x0) = ((n * 5 + seed as usize) % (28 - s), (n * 11) % (28 - s));
        for y in y0..y0 + s {
            for x in x0..x0 + s {
                data[n * 784 + y * 28 + x] = 0.9;
            }
        }
    }
    Tensor::new([batch, 1, 28, 28], data).unwrap()
}

/// Gradients and parameters are long chains of f32 sums: compare relative to the tensor's
/// largest value.
fn scaled(cpu: &[f32], rel: f64) -> Tolerance {
    let max = cpu.iter().fold(0f64, |m, v| m.max(v.abs() as f64));
    Tolerance {
        atol: rel * max + 1e-9,
        rtol: rel,
    }
}

fn trainer(device: Device, optimizer: Optimizer) -> Trainer {
    Trainer::new(device, AutoencoderConfig::default(), BATCH, optimizer, SEED).unwrap()
}

#[test]
fn step_zero_loss_and_gradients_match_the_cpu() {
    let x = images(BATCH, 1);
    let sgd = Optimizer::Sgd(SgdConfig::new(0.0));
    let mut cpu = trainer(Device::Cpu, sgd);
    cpu.step(&x).unwrap();
    let cpu_loss = cpu.flush_losses().unwrap();
    let cpu_grads = cpu.gradients().unwrap();
    assert_eq!(cpu_grads.len(), 12, "six layers, weight and bias each");
    for ctx in contexts() {
        let mut gpu = trainer(Device::Gpu(ctx.clone()), sgd);
        gpu.step(&x).unwrap();
        let gpu_loss = gpu.flush_losses().unwrap();
        assert_eq!(gpu_loss.len(), 1);
        check(
            ctx,
            "autoencoder loss, step 0",
            &[gpu_loss[0].1],
            &[cpu_loss[0].1],
            Tolerance::reduction(784 * BATCH),
        );
        for ((name, g), (_, c)) in gpu.gradients().unwrap().iter().zip(&cpu_grads) {
            check(
                ctx,
                &format!("d loss / d {name}, step 0"),
                &g.data,
                &c.data,
                scaled(&c.data, 1e-4),
            );
        }
    }
}

fn ten_steps_agree(optimizer: Optimizer, what: &str) {
    let batches: Vec<Tensor> = (0..10).map(|i| images(BATCH, 100 + i)).collect();
    let mut cpu = trainer(Device::Cpu, optimizer);
    for b in &batches {
        cpu.step(b).unwrap();
    }
    let want = cpu.state().unwrap();
    let cpu_losses: Vec<f32> = cpu.flush_losses().unwrap().iter().map(|l| l.1).collect();
    assert_eq!(want.step, 10);
    for ctx in contexts() {
        let mut gpu = trainer(Device::Gpu(ctx.clone()), optimizer);
        for b in &batches {
            gpu.step(b).unwrap();
        }
        let got = gpu.state().unwrap();
        assert_eq!(got.step, 10);
        for ((name, g), (_, c)) in got.params.iter().zip(&want.params) {
            check(
                ctx,
                &format!("{name} after 10 {what} steps"),
                &g.data,
                &c.data,
                scaled(&c.data, 1e-4),
            );
        }
        let losses: Vec<f32> = gpu.flush_losses().unwrap().iter().map(|l| l.1).collect();
        assert_eq!(losses.len(), 10, "[{}] one loss per step", tag(ctx));
        check(
            ctx,
            &format!("losses of 10 {what} steps"),
            &losses,
            &cpu_losses,
            Tolerance::reduction(784 * BATCH),
        );
    }
}

#[test]
fn ten_sgd_steps_match_the_cpu() {
    let sgd = SgdConfig {
        lr: 0.5,
        momentum: 0.9,
        weight_decay: 1e-4,
        ..SgdConfig::default()
    };
    ten_steps_agree(Optimizer::Sgd(sgd), "SGD (momentum 0.9)");
}

#[test]
fn ten_adam_steps_match_the_cpu() {
    ten_steps_agree(Optimizer::Adam(AdamConfig::adam()), "Adam");
}

#[test]
fn repeated_steps_do_not_grow_gpu_memory() {
    // Counters are per device, and other tests share the common contexts: open fresh ones.
    let own: Vec<_> = wgrad::GpuContext::all(&wgrad::Options::default())
        .into_iter()
        .filter_map(|c| c.ok())
        .map(std::sync::Arc::new)
        .collect();
    assert_eq!(own.len(), contexts().len());
    for ctx in &own {
        let mut t = trainer(
            Device::Gpu(ctx.clone()),
            Optimizer::Adam(AdamConfig::adam()),
        );
        // Swapping a matmul to its final mapping replaces its launch (see gpu/cpu_driver/tier.rs): done
        // first, so that only steps are counted.
        t.finish_tier_up().unwrap();
        let x = images(BATCH, 3);
        let mut seen = Vec::new();
        for _ in 0..6 {
            t.step(&x).unwrap();
            t.flush_losses().unwrap();
            ctx.wait().unwrap();
            let c = ctx.device.get_internal_counters();
            seen.push((c.hal.buffers.read(), c.hal.buffer_memory.read()));
        }
        println!(
            "[{}] live buffers and bytes after each step: {seen:?}",
            tag(ctx)
        );
        assert!(seen[0].0 > 0, "the counters are not counting");
        assert!(
            seen.windows(2).skip(1).all(|w| w[0] == w[1]),
            "[{}] buffers grew after the first step: {seen:?}",
            tag(ctx)
        );
    }
}

#[test]
fn loss_falls_over_a_short_run() {
    for ctx in contexts() {
        let adam = AdamConfig {
            lr: 3e-3,
            ..AdamConfig::adam()
        };
        let mut t = trainer(Device::Gpu(ctx.clone()), Optimizer::Adam(adam));
        for i in 0..40 {
            t.step(&images(BATCH, 200 + i % 4)).unwrap();
        }
        let l = t.flush_losses().unwrap();
        let first: f32 = l[..4].iter().map(|v| v.1).sum::<f32>() / 4.0;
        let last: f32 = l[l.len() - 4..].iter().map(|v| v.1).sum::<f32>() / 4.0;
        println!(
            "[{}] loss over 40 Adam steps: first 4 mean {first:.5}, last 4 mean {last:.5}",
            tag(ctx)
        );
        assert!(
            last < 0.5 * first,
            "[{}] loss did not fall clearly: {first} → {last}",
            tag(ctx)
        );
    }
}

/// Programs start their matmuls on a quick-to-compile mapping and swap in the chosen ones as
/// they are built (one per step, in the background on CPU drivers). Every mapping computes the
/// same bits, so a run that swaps during training gives exactly the losses and parameters of one
/// that swapped everything before its first step.
#[test]
fn tier_up_never_changes_a_bit() {
    for ctx in contexts() {
        let run = |finish_first: bool| {
            let mut t = trainer(
                Device::Gpu(ctx.clone()),
                Optimizer::Adam(AdamConfig::adam()),
            );
            if finish_first {
                t.finish_tier_up().unwrap();
            }
            for i in 0..6 {
                t.step(&images(BATCH, 300 + i)).unwrap();
                if !finish_first {
                    // Time for the background thread, so that swaps land between these steps.
                    std::thread::sleep(std::time::Duration::from_millis(300));
                }
            }
            let losses: Vec<u32> = t
                .flush_losses()
                .unwrap()
                .iter()
                .map(|l| l.1.to_bits())
                .collect();
            let state = t.state().unwrap();
            let params: Vec<u32> = state
                .params
                .iter()
                .flat_map(|(_, v)| v.data.iter().map(|x| x.to_bits()))
                .collect();
            t.finish_tier_up().unwrap();
            let kernels: Vec<String> = t
                .profile(&images(BATCH, 1))
                .unwrap()
                .dispatches
                .iter()
                .map(|d| d.kernel.clone())
                .collect();
            (losses, params, kernels)
        };
        let (lazy_losses, lazy_params, _) = run(false);
        let (losses, params, kernels) = run(true);
        assert_eq!(lazy_losses, losses, "[{}] losses", tag(ctx));
        assert!(lazy_params == params, "[{}] parameters differ", tag(ctx));
        if ctx.info.device_type == wgpu::DeviceType::Cpu
            && ctx.info.backend == wgpu::Backend::Vulkan
        {
            assert!(
                kernels.iter().any(|k| k.starts_with("matmul_reg")),
                "[{}] no matmul reached its final mapping: {kernels:?}",
                tag(ctx)
            );
        }
    }
}

/// The layers of the "more models" issue in one small model, on every adapter against the CPU
/// reference: loss and every gradient of a training step (dropout's mask included: it is drawn
/// from the step, the same on both), and the evaluation graph's loss (dropout off).
#[test]
fn new_layers_step_zero_matches_the_cpu() {
    use wgrad::nn::{Layer, Size2::Pair};
    use wgrad::spec::PointLoss;
    let config = AutoencoderConfig {
        image: [1, 12, 12],
        loss: PointLoss::Bce,
        noise: None,
        variational: None,
        encoder: vec![
            Layer::conv2d(1, 4, 3, 1, 1),
            Layer::GELU,
            Layer::MaxPool2d {
                kernel_size: 2.into(),
                stride: None,
                padding: 0.into(),
            },
            // 6×6 → 6×7: non-square kernel and padding, dilation, no bias.
            Layer::Conv2d {
                in_channels: 4,
                out_channels: 4,
                kernel_size: Pair([3, 2]),
                stride: 1.into(),
                padding: Pair([2, 1]),
                dilation: Pair([2, 1]),
                bias: false,
            },
            Layer::SiLU,
            Layer::Dropout { p: 0.25 },
            Layer::Flatten,
            Layer::linear(168, 8),
        ],
        decoder: vec![
            Layer::linear(8, 144),
            Layer::SiLU,
            Layer::Unflatten {
                dims: vec![4, 6, 6],
            },
            Layer::Upsample {
                scale_factor: 2.into(),
                mode: "nearest".into(),
            },
            Layer::AvgPool2d {
                kernel_size: 3.into(),
                stride: Some(1.into()),
                padding: 1.into(),
            },
            Layer::conv2d(4, 1, 3, 1, 1),
            Layer::Sigmoid,
        ],
    };
    let x = Tensor::uniform([4, 1, 12, 12], 0.0, 1.0, 12);
    let sgd = Optimizer::Sgd(SgdConfig::new(0.0));
    let run = |device: Device| {
        let mut t = Trainer::new(device, config.clone(), 4, sgd, SEED).unwrap();
        t.step(&x).unwrap();
        let loss = t.flush_losses().unwrap()[0].1;
        let grads = t.gradients().unwrap();
        let (eval_loss, ..) = t.evaluate(&x).unwrap();
        (loss, grads, eval_loss)
    };
    let (cpu_loss, cpu_grads, cpu_eval) = run(Device::Cpu);
    assert_eq!(cpu_grads.len(), 9, "five weights, all but one with a bias");
    for ctx in contexts() {
        let (loss, grads, eval) = run(Device::Gpu(ctx.clone()));
        let tol = Tolerance::reduction(144 * 4);
        check(ctx, "new layers: loss, step 0", &[loss], &[cpu_loss], tol);
        check(
            ctx,
            "new layers: evaluation loss",
            &[eval],
            &[cpu_eval],
            tol,
        );
        for ((name, g), (_, c)) in grads.iter().zip(&cpu_grads) {
            let what = format!("new layers: d loss / d {name}, step 0");
            check(ctx, &what, &g.data, &c.data, scaled(&c.data, 1e-4));
        }
    }
}

/// A variational autoencoder's training step on every adapter against the CPU reference: the
/// sample (drawn on the device from the step), reconstruction + β·KL, every gradient, and the
/// evaluation loss (decoding the means).
#[test]
fn variational_step_zero_matches_the_cpu() {
    use wgrad::nn::{Layer, Variational};
    use wgrad::spec::PointLoss;
    let config = AutoencoderConfig {
        image: [1, 8, 8],
        loss: PointLoss::BceWithLogits,
        noise: None,
        variational: Some(Variational { beta: 2.0, seed: 1 }),
        encoder: vec![
            Layer::conv2d(1, 4, 3, 2, 1),
            Layer::ReLU,
            Layer::Flatten,
            Layer::linear(64, 10),
        ],
        decoder: vec![
            Layer::linear(5, 64),
            Layer::ReLU,
            Layer::Unflatten {
                dims: vec![4, 4, 4],
            },
            Layer::conv_transpose2d(4, 1, 3, 2, 1, 1),
        ],
    };
    let x = Tensor::uniform([6, 1, 8, 8], 0.0, 1.0, 13);
    let sgd = Optimizer::Sgd(SgdConfig::new(0.0));
    let run = |device: Device| {
        let mut t = Trainer::new(device, config.clone(), 6, sgd, SEED).unwrap();
        t.step(&x).unwrap();
        let loss = t.flush_losses().unwrap()[0].1;
        let grads = t.gradients().unwrap();
        let (eval_loss, _, code) = t.evaluate(&x).unwrap();
        (loss, grads, eval_loss, code)
    };
    let (cpu_loss, cpu_grads, cpu_eval, cpu_code) = run(Device::Cpu);
    assert_eq!(cpu_code.shape.dims(), [6, 5], "the code is the means");
    for ctx in contexts() {
        let (loss, grads, eval, code) = run(Device::Gpu(ctx.clone()));
        let tol = Tolerance::reduction(64 * 6);
        check(ctx, "VAE: loss, step 0", &[loss], &[cpu_loss], tol);
        check(ctx, "VAE: evaluation loss", &[eval], &[cpu_eval], tol);
        check(
            ctx,
            "VAE: code",
            &code.data,
            &cpu_code.data,
            scaled(&cpu_code.data, 1e-5),
        );
        for ((name, g), (_, c)) in grads.iter().zip(&cpu_grads) {
            let what = format!("VAE: d loss / d {name}, step 0");
            check(ctx, &what, &g.data, &c.data, scaled(&c.data, 1e-4));
        }
    }
}

/// Batch normalisation in an autoencoder on every adapter against the CPU reference: two
/// training steps (batch moments, running-moment updates copied back into the session's store),
/// then the state (running moments, batch counts) and an evaluation (running moments).
#[test]
fn batch_norm_steps_match_the_cpu() {
    use wgrad::nn::Layer;
    let bn2 = |c| Layer::BatchNorm2d {
        num_features: c,
        eps: 1e-5,
        momentum: 0.1,
    };
    let config = AutoencoderConfig {
        image: [1, 8, 8],
        loss: wgrad::spec::PointLoss::Mse,
        noise: None,
        variational: None,
        encoder: vec![
            Layer::Conv2d {
                in_channels: 1,
                out_channels: 4,
                kernel_size: 3.into(),
                stride: 1.into(),
                padding: 1.into(),
                dilation: 1.into(),
                bias: false,
            },
            bn2(4),
            Layer::ReLU,
            Layer::conv2d(4, 4, 3, 2, 1),
            Layer::Flatten,
            Layer::linear(64, 6),
            Layer::BatchNorm1d {
                num_features: 6,
                eps: 1e-5,
                momentum: 0.2,
            },
        ],
        decoder: vec![
            Layer::linear(6, 64),
            Layer::ReLU,
            Layer::Unflatten {
                dims: vec![4, 4, 4],
            },
            Layer::conv_transpose2d(4, 1, 3, 2, 1, 1),
            Layer::Sigmoid,
        ],
    };
    let x = Tensor::uniform([5, 1, 8, 8], 0.0, 1.0, 14);
    // SGD: the biases right before a batch norm have (rounding-noise) zero gradients, which Adam
    // would blow up to steps of its learning rate.
    let sgd = Optimizer::Sgd(SgdConfig::new(0.05));
    let run = |device: Device| {
        let mut t = Trainer::new(device, config.clone(), 5, sgd, SEED).unwrap();
        t.step(&x).unwrap();
        t.step(&x).unwrap();
        let losses: Vec<f32> = t.flush_losses().unwrap().iter().map(|l| l.1).collect();
        let state = t.state().unwrap().params;
        let (eval_loss, ..) = t.evaluate(&x).unwrap();
        (losses, state, eval_loss)
    };
    let (cpu_losses, cpu_state, cpu_eval) = run(Device::Cpu);
    let count = cpu_state
        .iter()
        .find(|(n, _)| n == "encoder.1.num_batches_tracked");
    assert_eq!(count.unwrap().1.data, [2.0]);
    for ctx in contexts() {
        let (losses, state, eval) = run(Device::Gpu(ctx.clone()));
        let tol = Tolerance::reduction(64 * 5);
        check(
            ctx,
            "batch norm: losses of two steps",
            &losses,
            &cpu_losses,
            tol,
        );
        check(
            ctx,
            "batch norm: evaluation loss",
            &[eval],
            &[cpu_eval],
            tol,
        );
        for ((name, g), (_, c)) in state.iter().zip(&cpu_state) {
            let what = format!("batch norm: {name} after two steps");
            check(ctx, &what, &g.data, &c.data, scaled(&c.data, 1e-4));
        }
    }
}
