//! A diverging run is caught where it happens: on the CPU reference and on every adapter, a step
//! whose loss or updated parameters are no longer finite ends training with an error naming the
//! step and the loss or the first non-finite parameter; later steps are refused, and no state
//! with a NaN in it can be written as a checkpoint. The check rides on the loss read-back.

use crate::common::tag;
use crate::train::images;
use wgrad::exec::Device;
use wgrad::io::save_model;
use wgrad::nn::{AutoencoderConfig, Optimizer};
use wgrad::train::Trainer;
use wgrad::{AdamConfig, Error, SgdConfig};

/// Steps until the trainer reports divergence (at most `max`): the step it names and the
/// error's text.
fn diverge(t: &mut Trainer, max: u64) -> Option<(u64, String)> {
    for s in 0..max {
        let r = t
            .step(&images(8, s))
            .and_then(|_| t.flush_losses().map(|_| ()));
        if let Err(e) = r {
            return match e {
                Error::Diverged { step, .. } => Some((step, e.to_string())),
                other => panic!("not a divergence: {other}"),
            };
        }
    }
    None
}

#[test]
fn a_diverging_run_stops_naming_the_step() {
    let config = AutoencoderConfig::default();
    let huge = Optimizer::Adam(AdamConfig {
        lr: 1e30,
        ..AdamConfig::adam()
    });
    let mut devices = vec![Device::Cpu];
    devices.extend(
        crate::common::contexts()
            .iter()
            .map(|c| Device::Gpu(c.clone())),
    );
    for device in devices {
        let who = device.describe();
        let mut t = Trainer::new(device, config.clone(), 8, huge, 3).unwrap();
        let (step, message) =
            diverge(&mut t, 6).unwrap_or_else(|| panic!("[{who}] lr 1e30 never diverged"));
        println!("[{who}] {message}");
        assert!(step <= 3, "[{who}] caught only at step {step}");
        assert!(message.contains(&format!("step {step}")), "{message}");
        // Training does not go on from there.
        let e = t.step(&images(8, 99)).unwrap_err();
        assert!(matches!(e, Error::Diverged { .. }), "[{who}] {e}");
        // And the poisoned state cannot become a checkpoint.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.safetensors");
        let e = save_model(&path, &config, &t.state().unwrap(), Some("adam"), &[]).unwrap_err();
        assert!(e.to_string().contains("refusing to write"), "[{who}] {e}");
        assert!(!path.exists());
    }
}

/// A sane run is never flagged: the check costs nothing it should not.
#[test]
fn a_healthy_run_is_not_flagged() {
    for ctx in crate::common::contexts() {
        let sgd = Optimizer::Sgd(SgdConfig::new(0.1));
        let mut t = Trainer::new(
            Device::Gpu(ctx.clone()),
            AutoencoderConfig::default(),
            8,
            sgd,
            1,
        )
        .unwrap();
        assert_eq!(diverge(&mut t, 5), None, "[{}]", tag(ctx));
    }
}
