//! Device faults end in errors, never panics: a lost device (here `Device::destroy` in the
//! middle of training) is reported as such by the next call and leaves a checkpoint written
//! before it intact; a model too big for the device's limits is refused with the limit named.

use crate::train::images;
use std::sync::Arc;
use wgrad::exec::Device;
use wgrad::io::{load_model, save_model};
use wgrad::nn::{AutoencoderConfig, Optimizer};
use wgrad::train::Trainer;
use wgrad::{AdamConfig, Error, GpuContext, Options};

fn adam() -> Optimizer {
    Optimizer::Adam(AdamConfig::adam())
}

#[test]
fn a_destroyed_device_is_reported_lost_and_the_checkpoint_survives() {
    let dir = tempfile::tempdir().unwrap();
    // Fresh devices: the shared ones serve the other tests.
    for (i, ctx) in GpuContext::all(&Options::default())
        .into_iter()
        .flatten()
        .enumerate()
    {
        let ctx = Arc::new(ctx);
        let who = ctx.describe();
        let config = AutoencoderConfig::default();
        let mut t = Trainer::new(Device::Gpu(ctx.clone()), config.clone(), 8, adam(), 1).unwrap();
        for s in 0..3 {
            t.step(&images(8, s)).unwrap();
        }
        t.flush_losses().unwrap();
        let path = dir.path().join(format!("good-{i}.safetensors"));
        save_model(&path, &config, &t.state().unwrap(), Some("adam"), &[]).unwrap();
        let before = std::fs::read(&path).unwrap();

        ctx.device.destroy();
        // The next steps and reads fail, naming the loss (the first one or two may still be
        // accepted before the device reports it), and nothing panics.
        let mut errors = Vec::new();
        for s in 0..3 {
            if let Err(e) = t.step(&images(8, 10 + s)) {
                errors.push(e);
            }
        }
        errors.extend(t.flush_losses().err());
        errors.extend(t.state().err());
        println!("[{who}] after Device::destroy: {errors:?}");
        assert!(
            errors.iter().any(|e| matches!(e, Error::DeviceLost { .. })),
            "[{who}] no device-lost error: {errors:?}"
        );
        assert!(
            t.state().is_err(),
            "[{who}] a state was read from a lost device"
        );
        // So no checkpoint can be written from it, and the last good one is as it was.
        assert_eq!(std::fs::read(&path).unwrap(), before);
        let saved = load_model(&path).unwrap();
        assert_eq!(saved.state.step, 3);
    }
}

#[test]
fn a_model_too_big_for_the_device_is_refused_naming_the_limit() {
    for ctx in crate::common::contexts() {
        // A batch whose activations exceed the largest storage binding the device allows.
        let batch = (ctx.limits.max_storage_buffer_binding_size / (16 * 14 * 14 * 4)) as usize + 1;
        let e = match Trainer::new(
            Device::Gpu(ctx.clone()),
            AutoencoderConfig::default(),
            batch,
            adam(),
            1,
        ) {
            Ok(_) => panic!("[{}] a batch of {batch} was accepted", ctx.describe()),
            Err(e) => e,
        };
        println!("[{}] batch {batch}: {e}", ctx.describe());
        assert!(
            matches!(e, Error::Limit { .. } | Error::OutOfMemory { .. }),
            "[{}] {e}",
            ctx.describe()
        );
    }
}
