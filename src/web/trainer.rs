//! The autoencoder on the page: trained a step at a time on the built-in shapes, with its
//! reconstructions, codes, and a classifier on its encoder.

use super::{Engine, js_error};
use crate::classify::Classifier;
use crate::data::{BatchOrder, Split, synthetic};
use crate::error::{Error, Result};
use crate::exec::Device;
use crate::nn::{AutoencoderConfig, Optimizer};
use crate::optim_config::AdamConfig;
use crate::tensor::Tensor;
use crate::train::Trainer;
use js_sys::{Float32Array, Promise};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;
use web_time::Instant;

struct Inner {
    trainer: Trainer,
    device: Device,
    data: Split,
    order: BatchOrder,
    lr: f64,
    seed: u64,
    /// Images trained on, and when the first step started.
    images: usize,
    started: Option<Instant>,
}

/// The default autoencoder (28×28 shapes, a 32-value code) training in the browser.
#[wasm_bindgen]
pub struct WebTrainer {
    inner: Rc<RefCell<Inner>>,
}

/// Runs `f` on the trainer, refusing a second call while one is still running.
fn with<T: Into<JsValue>>(
    inner: &Rc<RefCell<Inner>>,
    f: impl AsyncFnOnce(&mut Inner) -> Result<T> + 'static,
) -> Promise {
    let inner = inner.clone();
    future_to_promise(async move {
        let mut guard = inner.try_borrow_mut().map_err(|_| {
            js_error(Error::invalid(
                "WebTrainer",
                "a call is still running: await it first",
            ))
        })?;
        f(&mut guard).await.map(Into::into).map_err(js_error)
    })
}

fn floats(v: &[f32]) -> JsValue {
    Float32Array::from(v).into()
}

#[wasm_bindgen]
impl WebTrainer {
    /// A trainer of the default autoencoder on `train_images` built-in shapes (and 512 held out),
    /// `batch` images a step, Adam at `lr`, everything seeded by `seed`: a promise of a
    /// `WebTrainer`.
    pub fn create(
        engine: &Engine,
        batch: usize,
        train_images: usize,
        lr: f64,
        seed: u32,
    ) -> Promise {
        let (ctx, seed) = (engine.context(), seed as u64);
        future_to_promise(async move {
            let make = async {
                let device = Device::Gpu(ctx);
                let data = synthetic(train_images.max(1), 512, 28, seed);
                let order = BatchOrder::new(data.train.len(), batch, true, seed)?;
                let adam = Optimizer::Adam(AdamConfig {
                    lr,
                    ..AdamConfig::adam()
                });
                let config = AutoencoderConfig::default();
                let trainer = Trainer::new_async(device.clone(), config, batch, adam, seed).await?;
                Ok::<_, Error>(Inner {
                    trainer,
                    device,
                    data,
                    order,
                    lr,
                    seed,
                    images: 0,
                    started: None,
                })
            };
            let inner = make.await.map_err(js_error)?;
            Ok(WebTrainer {
                inner: Rc::new(RefCell::new(inner)),
            }
            .into())
        })
    }

    /// One training step. Resolves (once submitted) to JSON: `step`, its `images`, the `losses`
    /// that have come back since the last call as `[step, loss]` pairs, and `images_per_s`
    /// since the first step.
    pub fn step(&self) -> Promise {
        with(&self.inner, async |s: &mut Inner| {
            let start = *s.started.get_or_insert_with(Instant::now);
            let step = s.trainer.step_count();
            let idx = s.order.batch_at(step);
            let (x, _) = s.data.train.batch(&idx);
            s.trainer.step_async(&x).await?;
            s.images += idx.len();
            let losses = s.trainer.losses()?;
            let secs = start.elapsed().as_secs_f64().max(1e-9);
            Ok(serde_json::json!({
                "step": s.trainer.step_count(),
                "images": idx.len(),
                "losses": losses,
                "images_per_s": s.images as f64 / secs,
            })
            .to_string())
        })
    }

    /// Every loss still on its way, once the device has finished (JSON `[step, loss]` pairs).
    pub fn flush(&self) -> Promise {
        with(&self.inner, async |s: &mut Inner| {
            let l = s.trainer.flush_losses_async().await?;
            Ok(serde_json::to_string(&l).unwrap_or_default())
        })
    }

    /// The first `count` held-out images followed by their reconstructions, `2·count` images.
    pub fn reconstruct(&self, count: usize) -> Promise {
        with(&self.inner, async move |s: &mut Inner| {
            let idx: Vec<usize> = (0..count.clamp(1, s.data.test.len())).collect();
            let (x, _) = s.data.test.batch(&idx);
            let (_, recon, _) = s.trainer.evaluate_async(&x).await?;
            let mut both = x.data;
            both.extend(recon.data);
            Ok(floats(&both))
        })
    }

    /// The mean reconstruction loss over the held-out images.
    pub fn held_out_loss(&self) -> Promise {
        with(&self.inner, async |s: &mut Inner| {
            let n = s.data.test.len();
            let mut sum = 0.0;
            for start in (0..n).step_by(64) {
                let idx: Vec<usize> = (start..(start + 64).min(n)).collect();
                let (x, _) = s.data.test.batch(&idx);
                sum += s.trainer.evaluate_async(&x).await?.0 as f64 * idx.len() as f64;
            }
            Ok(JsValue::from_f64(sum / n.max(1) as f64))
        })
    }

    /// The codes of the first `count` held-out images, `[count, 32]`.
    pub fn encode(&self, count: usize) -> Promise {
        with(&self.inner, async move |s: &mut Inner| {
            let idx: Vec<usize> = (0..count.clamp(1, s.data.test.len())).collect();
            let (x, _) = s.data.test.batch(&idx);
            let (_, _, code) = s.trainer.evaluate_async(&x).await?;
            Ok(floats(&code.data))
        })
    }

    /// A classifier on the encoder as it is now: a `Linear(32, 64), ReLU, Linear(64, 6)` head
    /// trained `steps` steps of 32 images, with the encoder frozen or (`joint`) trained with it.
    /// Resolves to JSON: `joint`, test `accuracy`, `steps`, `seconds`, `images_per_s`.
    pub fn classify(&self, joint: bool, steps: usize) -> Promise {
        with(&self.inner, async move |s: &mut Inner| {
            let state = s.trainer.state_async().await?;
            let config = s.trainer.config().clone();
            let adam = Optimizer::Adam(AdamConfig {
                lr: s.lr,
                ..AdamConfig::adam()
            });
            let batch = 32;
            let mut c = Classifier::new_async(
                s.device.clone(),
                &config,
                &state.params,
                6,
                Some(64),
                joint,
                batch,
                adam,
                s.seed,
            )
            .await?;
            let labels = s.data.train.labels.clone().unwrap_or_default();
            let order = BatchOrder::new(s.data.train.len(), batch, true, s.seed ^ 1)?;
            let start = Instant::now();
            let mut images = 0;
            for step in 0..steps as u64 {
                let idx = order.batch_at(step);
                let (x, _) = s.data.train.batch(&idx);
                let y: Vec<u32> = idx.iter().map(|&i| labels[i]).collect();
                c.step_async(&x, &y).await?;
                images += idx.len();
                c.losses()?;
            }
            c.flush_losses_async().await?;
            let seconds = start.elapsed().as_secs_f64();
            let accuracy = accuracy(&mut c, &s.data).await?;
            Ok(serde_json::json!({
                "joint": joint,
                "accuracy": accuracy,
                "steps": steps,
                "seconds": seconds,
                "images_per_s": images as f64 / seconds.max(1e-9),
            })
            .to_string())
        })
    }
}

/// The fraction of held-out images `c` labels right.
async fn accuracy(c: &mut Classifier, data: &Split) -> Result<f64> {
    let labels = data.test.labels.clone().unwrap_or_default();
    let n = data.test.len();
    let mut correct = 0;
    for start in (0..n).step_by(64) {
        let idx: Vec<usize> = (start..(start + 64).min(n)).collect();
        let (x, _): (Tensor, _) = data.test.batch(&idx);
        let predicted = c.predict_async(&x).await?;
        correct += predicted
            .iter()
            .zip(&idx)
            .filter(|(p, i)| **p == labels[**i])
            .count();
    }
    Ok(correct as f64 / n.max(1) as f64)
}
