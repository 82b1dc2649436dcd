//! One whole training step of the default autoencoder preset, on the GPU and on the CPU
//! reference, from the same seed and batch: the loss and every parameter gradient compared (as
//! tests/gpu/train.rs does). SGD with lr 0 so the step leaves the parameters alone; the
//! gradients are what the backward pass produced.

use super::{Case, expect};
use crate::compare::Tolerance;
use crate::error::{Error, Result};
use crate::exec::Device;
use crate::nn::{AutoencoderConfig, Optimizer};
use crate::optim_config::SgdConfig;
use crate::tensor::Tensor;
use crate::train::Trainer;

const SEED: u64 = 7;

/// `batch` single-channel 28×28 images with some structure (a bright square of varying size and
/// place on faint noise), so activations and gradients are not degenerate.
pub fn synthetic_images(batch: usize, seed: u64) -> Tensor {
    let mut images = Tensor::uniform([batch, 1, 28, 28], 0.0, 0.1, seed);
    let data = &mut images.data;
    for n in 0..batch {
        let s = (seed as usize + n * 7) % 12 + 6;
        let (y0, x0) = ((n * 5 + seed as usize) % (28 - s), (n * 11) % (28 - s));
        for y in y0..y0 + s {
            for x in x0..x0 + s {
                data[n * 784 + y * 28 + x] = 0.9;
            }
        }
    }
    images
}

/// Gradients are long chains of f32 sums: compare relative to the tensor's largest value.
fn scaled(cpu: &[f32], rel: f64) -> Tolerance {
    let max = cpu.iter().fold(0f64, |m, v| m.max(v.abs() as f64));
    Tolerance {
        atol: rel * max + 1e-9,
        rtol: rel,
    }
}

/// Loss, then every gradient in parameter order.
async fn step(
    device: Device,
    batch: usize,
    images: &Tensor,
) -> Result<(f32, Vec<(String, Tensor)>)> {
    let sgd = Optimizer::Sgd(SgdConfig::new(0.0));
    let mut t = Trainer::new_async(device, AutoencoderConfig::default(), batch, sgd, SEED).await?;
    t.step_async(images).await?;
    let losses = t.flush_losses_async().await?;
    let loss = losses
        .first()
        .map(|l| l.1)
        .ok_or_else(|| Error::invalid("autoencoder step", "the step reported no loss"))?;
    Ok((loss, t.gradients_async().await?))
}

/// The autoencoder step at `batch` images.
pub(super) fn autoencoder_step(batch: usize) -> Case {
    let images = synthetic_images(batch, 1);
    let shape = format!("default preset, batch {batch}, seed {SEED}");
    let d = shape.clone();
    let reference_images = images.clone();
    Case::new(
        "autoencoder step",
        shape,
        move || {
            // The CPU reference's futures are ready at once.
            let (loss, grads) =
                crate::gpu::future::ready_now(step(Device::Cpu, batch, &reference_images))?;
            let mut out = vec![expect(
                "autoencoder step loss",
                &d,
                vec![loss],
                Tolerance::reduction(784 * batch),
            )];
            for (name, g) in grads {
                let tol = scaled(&g.data, 1e-4);
                let what = format!("autoencoder step d loss/d {name}");
                out.push(expect(
                    &what,
                    &format!("{} (batch {batch})", g.shape),
                    g.data,
                    tol,
                ));
            }
            Ok(out)
        },
        move |ctx| {
            let images = images.clone();
            async move {
                let (loss, grads) = step(Device::Gpu(ctx), batch, &images).await?;
                let mut out = vec![vec![loss]];
                out.extend(grads.into_iter().map(|(_, g)| g.data));
                Ok(out)
            }
        },
    )
}
