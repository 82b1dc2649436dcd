//! The convolutional autoencoder: a config (encoder and decoder layer lists, the image shape),
//! its default preset, and the checks that refuse a config whose layers do not fit.

use super::layer::{Layer, ParamSpec};
use super::sequential::Sequential;
use crate::error::{Error, Result};
use crate::graph::{Graph, NodeId};
use crate::shape::Shape;
use crate::spec::{Activation, MatmulSpec, PointLoss};
use crate::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// An autoencoder for `[channels, height, width]` images: `decoder(encoder(x))` must give back
/// the image's shape, and the encoder's output is the code.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AutoencoderConfig {
    /// `[channels, height, width]` of one image.
    pub image: [usize; 3],
    /// What the reconstruction is trained with: `mse` (the default), `l1`, `bce` (the decoder
    /// must end in a Sigmoid) or `bce_with_logits` (it must not: reconstructions are shown
    /// through a sigmoid).
    #[serde(default)]
    pub loss: PointLoss,
    /// A denoising autoencoder: Gaussian noise added to the images on the device while training
    /// (the loss still compares with the clean images). `None`: a plain autoencoder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise: Option<Noise>,
    /// A variational autoencoder: the encoder gives `[N, 2z]` (means, then log-variances), the
    /// decoder gets a sample of `N(mu, exp(logvar))` while training and the mean otherwise, and
    /// the loss adds the KL divergence from `N(0, 1)`. `None`: a plain autoencoder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variational: Option<Variational>,
    pub encoder: Vec<Layer>,
    pub decoder: Vec<Layer>,
}

/// The training-time input noise of a denoising autoencoder: `clamp(x + std·z, 0, 1)` with
/// `z ~ N(0, 1)` drawn on the device from (`seed`, step, element), so a resumed run draws the
/// same noise (`torch.clamp(x + std * torch.randn_like(x), 0, 1)` in PyTorch).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Noise {
    pub std: f32,
    #[serde(default)]
    pub seed: u32,
}

/// A variational autoencoder's settings (Kingma & Welling). The code is the mean `mu`; a
/// training step decodes `z = mu + exp(logvar/2)·eps`, `eps ~ N(0, 1)` drawn on the device from
/// (`seed`, step, element). The loss is the reconstruction loss's mean plus
/// `beta · KL / (C·H·W)`, KL summed over the latent and averaged over the batch: PyTorch's
/// `(recon(reduction='sum') + beta * kld) / x.numel()`, the sum-reduced tutorial loss per
/// element.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variational {
    #[serde(default = "one")]
    pub beta: f32,
    #[serde(default)]
    pub seed: u32,
}

fn one() -> f32 {
    1.0
}

/// The two halves as PyTorch would hold them, plus the nodes of one forward pass.
#[derive(Clone, Debug)]
pub struct AutoencoderNodes {
    pub input: NodeId,
    /// The training step the noise is drawn for (a fed u32 `[1]`), where the pass adds noise.
    pub step_input: Option<NodeId>,
    pub code: NodeId,
    /// A variational encoder's output `[N, 2z]`: means, then log-variances.
    pub latent: Option<NodeId>,
    /// What the loss compares with the images: the decoder's output.
    pub prediction: NodeId,
    /// The reconstructed images: the prediction, or its sigmoid under `bce_with_logits`.
    pub reconstruction: NodeId,
}

impl Default for AutoencoderConfig {
    /// The default preset: 28×28 single-channel images, a 32-value code.
    fn default() -> Self {
        AutoencoderConfig::preset_layers(1, 28, 32, [16, 32])
    }
}

impl AutoencoderConfig {
    /// The preset family: two stride-2 convolutions (`widths` channels), a Linear to `code`
    /// values, and the mirror image back, ending in a Sigmoid. `size` must halve evenly twice.
    pub fn preset(channels: usize, size: usize, code: usize, widths: [usize; 2]) -> Result<Self> {
        let layer = "autoencoder preset";
        if size == 0 || !size.is_multiple_of(4) {
            return Err(Error::model(
                layer,
                format!(
                    "image size {size} cannot go through the two stride-2 convolutions and back: \
                     it must be a multiple of 4 (e.g. 28 → 14 → 7 → 14 → 28)"
                ),
            ));
        }
        if channels == 0 || code == 0 || widths.contains(&0) {
            return Err(Error::model(
                layer,
                format!("channels {channels}, code {code} and widths {widths:?} must be non-zero"),
            ));
        }
        let config = Self::preset_layers(channels, size, code, widths);
        config.check()?;
        Ok(config)
    }

    /// The preset's layers, unchecked.
    fn preset_layers(channels: usize, size: usize, code: usize, widths: [usize; 2]) -> Self {
        let [w1, w2] = widths;
        let s = size / 4;
        let flat = w2 * s * s;
        let conv = |i, o| Layer::conv2d(i, o, 3, 2, 1);
        let deconv = |i, o| Layer::conv_transpose2d(i, o, 3, 2, 1, 1);
        AutoencoderConfig {
            image: [channels, size, size],
            loss: PointLoss::Mse,
            noise: None,
            variational: None,
            encoder: vec![
                conv(channels, w1),
                Layer::ReLU,
                conv(w1, w2),
                Layer::ReLU,
                Layer::Flatten,
                Layer::linear(flat, code),
            ],
            decoder: vec![
                Layer::linear(code, flat),
                Layer::ReLU,
                Layer::Unflatten {
                    dims: vec![w2, s, s],
                },
                deconv(w2, w1),
                Layer::ReLU,
                deconv(w1, channels),
                Layer::Sigmoid,
            ],
        }
    }

    pub fn encoder(&self) -> Sequential {
        Sequential::new("encoder", self.encoder.clone())
    }
    pub fn decoder(&self) -> Sequential {
        Sequential::new("decoder", self.decoder.clone())
    }

    /// Every parameter, encoder then decoder, in state_dict order.
    pub fn params(&self) -> Vec<ParamSpec> {
        let mut p = self.encoder().params();
        p.extend(self.decoder().params());
        p
    }

    /// The names of the buffers among [`AutoencoderConfig::params`] (batch normalisation's
    /// running moments): state that no optimizer trains.
    pub fn buffers(&self) -> Vec<String> {
        self.params()
            .into_iter()
            .filter(|p| p.buffer)
            .map(|p| p.name)
            .collect()
    }

    /// Adds the forward pass for a batch of `batch` images to `g`, on clean images (evaluation).
    pub fn forward(&self, g: &mut Graph, batch: usize) -> Result<AutoencoderNodes> {
        self.pass(g, batch, false)
    }

    /// The forward pass a training step takes: with the config's input noise, if any.
    pub fn training_forward(&self, g: &mut Graph, batch: usize) -> Result<AutoencoderNodes> {
        self.pass(g, batch, true)
    }

    fn pass(&self, g: &mut Graph, batch: usize, training: bool) -> Result<AutoencoderNodes> {
        let [c, h, w] = self.image;
        let input = g.input("images", [batch, c, h, w])?;
        // A training pass with random parts (input noise, dropout) gets the step number they
        // draw from as a fed input.
        let random = self.noise.is_some()
            || self.variational.is_some()
            || self
                .encoder
                .iter()
                .chain(&self.decoder)
                .any(|l| matches!(l, Layer::Dropout { .. }));
        let step_input = if training && random {
            Some(g.labels("step", 1)?)
        } else {
            None
        };
        g.set_training_step(step_input);
        g.set_training(training);
        let noisy = match (self.noise, step_input) {
            (Some(n), Some(step)) => {
                g.set_layer(format!("input noise (std {})", n.std));
                g.gaussian_noise(input, step, n.std, n.seed)?
            }
            _ => input,
        };
        let (code, latent) = self.encode(g, noisy)?;
        let sample = match (self.variational, latent, step_input) {
            (Some(v), Some(h), Some(step)) => {
                g.set_layer("reparameterize (a sample of the code)");
                g.reparameterize(h, step, v.seed)?
            }
            _ => code,
        };
        let prediction = self.decoder().forward(g, sample)?;
        let (got, want) = (g.shape(prediction).clone(), g.shape(input).clone());
        let last = self.decoder.len().saturating_sub(1);
        if got != want {
            return Err(Error::model(
                format!("decoder.{last}"),
                format!(
                    "the decoder gives {got} but the images are {want}: the reconstruction must have the input's shape"
                ),
            ));
        }
        let ends_in_sigmoid = self.decoder.last() == Some(&Layer::Sigmoid);
        match self.loss {
            PointLoss::Bce if !ends_in_sigmoid => {
                return Err(Error::model(
                    format!("decoder.{last}"),
                    "loss bce takes probabilities: end the decoder with a Sigmoid, or use \
                     bce_with_logits",
                ));
            }
            PointLoss::BceWithLogits if ends_in_sigmoid => {
                return Err(Error::model(
                    format!("decoder.{last}"),
                    "loss bce_with_logits applies the sigmoid itself: drop the decoder's final \
                     Sigmoid, or use bce",
                ));
            }
            _ => {}
        }
        let reconstruction = if self.loss == PointLoss::BceWithLogits {
            g.set_layer("reconstruction (sigmoid of the logits)");
            g.activation(prediction, Activation::Sigmoid)
        } else {
            prediction
        };
        Ok(AutoencoderNodes {
            input,
            step_input,
            code,
            latent,
            prediction,
            reconstruction,
        })
    }

    /// The encoder on `x`: the code, and for a variational autoencoder the encoder's output
    /// `[N, 2z]` it is the means of (the code is then `mu`, picked by a product with `[I; 0]`).
    pub fn encode(&self, g: &mut Graph, x: NodeId) -> Result<(NodeId, Option<NodeId>)> {
        let h = self.encoder().forward(g, x)?;
        if self.variational.is_none() {
            return Ok((h, None));
        }
        let last = format!("encoder.{}", self.encoder.len().saturating_sub(1));
        let (n, z) = crate::cpu::noise::check_latent("variational", g.shape(h)).map_err(|_| {
            Error::model(
                &last,
                format!(
                    "a variational encoder must end in [batch, 2·latent] (means, then \
                     log-variances; e.g. a Linear to 2z), got {}",
                    g.shape(h)
                ),
            )
        })?;
        g.set_layer("code (the means)");
        let mut pick = Tensor::zeros([2 * z, z]);
        (0..z).for_each(|j| pick.data[j * z + j] = 1.0);
        let pick = g.constant(&format!("[I; 0] ({} → {z})", 2 * z), pick);
        let mu = g.matmul(MatmulSpec::new(n, 2 * z, z), h, pick, None, [n, z])?;
        g.set_layer("");
        Ok((mu, Some(h)))
    }

    /// The loss of a pass: the reconstruction loss against the clean images, plus a variational
    /// autoencoder's `beta · KL / (C·H·W)` (see [`Variational`]).
    pub fn loss(&self, g: &mut Graph, n: &AutoencoderNodes) -> Result<NodeId> {
        g.set_layer(format!("loss ({})", self.loss.torch_name()));
        let reconstruction = g.point_loss(self.loss, n.prediction, n.input)?;
        let (Some(v), Some(h)) = (self.variational, n.latent) else {
            return Ok(reconstruction);
        };
        g.set_layer(format!("KL divergence (beta {})", v.beta));
        let kl = g.kl_divergence(h)?;
        let per_element = v.beta / self.image.iter().product::<usize>() as f32;
        let kl = g.scale(per_element, kl);
        let total = g.add(reconstruction, kl)?;
        g.set_layer("");
        Ok(total)
    }

    /// The shape of one image's code.
    pub fn code_shape(&self) -> Result<Shape> {
        let mut g = Graph::new();
        let n = self.forward(&mut g, 1)?;
        Ok(Shape::new(g.shape(n.code).dims()[1..].to_vec()))
    }

    /// Checks that every layer fits the one before it and the output matches the input.
    pub fn check(&self) -> Result<()> {
        if self.image.contains(&0) {
            return Err(Error::model(
                "autoencoder",
                format!("image shape {:?} has a zero", self.image),
            ));
        }
        if let Some(v) = self.variational
            && !(v.beta.is_finite() && v.beta >= 0.0)
        {
            return Err(Error::model(
                "variational",
                format!("beta {} must be finite and at least 0", v.beta),
            ));
        }
        // One image (so errors speak of one), then a training pass on two: batch normalisation
        // needs more than one value per channel to train.
        self.forward(&mut Graph::new(), 1)?;
        self.training_forward(&mut Graph::new(), 2).map(|_| ())
    }

    /// Parses a TOML config (see README), checking it.
    pub fn from_toml(text: &str, path: &str) -> Result<Self> {
        let config: AutoencoderConfig =
            toml::from_str(text).map_err(|e| Error::data(path, e.to_string().trim()))?;
        config.check()?;
        Ok(config)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }
}
