//! Layers, as a config names them (TOML-friendly, PyTorch's argument names), and what each adds
//! to a graph.

use crate::error::Result;
use crate::graph::{Graph, NodeId};
use crate::shape::{ConvParams, Shape};
use crate::spec::{Activation, PoolKind};
use crate::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// One layer of a sequential model, with PyTorch's meaning, argument names and defaults. Sizes
/// (kernels, strides, paddings, dilations) are an int or `[height, width]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Layer {
    Conv2d {
        in_channels: usize,
        out_channels: usize,
        kernel_size: Size2,
        #[serde(default = "one")]
        stride: Size2,
        #[serde(default)]
        padding: Size2,
        #[serde(default = "one", skip_serializing_if = "is_one")]
        dilation: Size2,
        #[serde(default = "yes", skip_serializing_if = "is_yes")]
        bias: bool,
    },
    ConvTranspose2d {
        in_channels: usize,
        out_channels: usize,
        kernel_size: Size2,
        #[serde(default = "one")]
        stride: Size2,
        #[serde(default)]
        padding: Size2,
        #[serde(default)]
        output_padding: Size2,
        #[serde(default = "one", skip_serializing_if = "is_one")]
        dilation: Size2,
        #[serde(default = "yes", skip_serializing_if = "is_yes")]
        bias: bool,
    },
    Linear {
        in_features: usize,
        out_features: usize,
        #[serde(default = "yes", skip_serializing_if = "is_yes")]
        bias: bool,
    },
    ReLU,
    LeakyReLU {
        #[serde(default = "default_slope")]
        negative_slope: f32,
    },
    Sigmoid,
    Tanh,
    /// `nn.GELU()` (exact, `approximate='none'`).
    GELU,
    SiLU,
    /// `nn.MaxPool2d(kernel_size, stride=kernel_size, padding=0)`.
    MaxPool2d {
        kernel_size: Size2,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stride: Option<Size2>,
        #[serde(default)]
        padding: Size2,
    },
    /// `nn.AvgPool2d(kernel_size, stride=kernel_size, padding=0)` (padding counted as zeros).
    AvgPool2d {
        kernel_size: Size2,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stride: Option<Size2>,
        #[serde(default)]
        padding: Size2,
    },
    /// `nn.Upsample(scale_factor=..., mode='nearest')`, integer factors.
    Upsample {
        scale_factor: Size2,
        #[serde(default = "nearest")]
        mode: String,
    },
    /// `nn.Dropout(p)`: in a training graph each element is zeroed with probability `p` (drawn
    /// on the device from the step and the layer's position) and the rest scaled by
    /// `1/(1 − p)`; in evaluation, the identity.
    Dropout {
        #[serde(default = "half")]
        p: f32,
    },
    /// `nn.BatchNorm2d(num_features, eps, momentum)` on `[N, C, H, W]` (affine, tracking running
    /// statistics): a training graph normalises with the batch's moments and moves the running
    /// ones towards them (`running = (1 − momentum)·running + momentum·batch`, the variance
    /// unbiased); evaluation normalises with the running ones.
    BatchNorm2d {
        num_features: usize,
        #[serde(default = "default_eps")]
        eps: f32,
        #[serde(default = "default_momentum")]
        momentum: f32,
    },
    /// `nn.BatchNorm1d(num_features, eps, momentum)` on `[N, C]` or `[N, C, L]`, as BatchNorm2d.
    BatchNorm1d {
        num_features: usize,
        #[serde(default = "default_eps")]
        eps: f32,
        #[serde(default = "default_momentum")]
        momentum: f32,
    },
    Flatten,
    /// `nn.Unflatten(1, dims)`.
    Unflatten {
        dims: Vec<usize>,
    },
}

fn one() -> Size2 {
    Size2::Square(1)
}
fn is_one(s: &Size2) -> bool {
    s.hw() == [1, 1]
}
fn yes() -> bool {
    true
}
fn is_yes(b: &bool) -> bool {
    *b
}
fn default_eps() -> f32 {
    1e-5
}
fn default_momentum() -> f32 {
    0.1
}
fn half() -> f32 {
    0.5
}
fn nearest() -> String {
    "nearest".into()
}

/// FNV-1a of `s`, folded to 32 bits: a stable seed from a layer's name.
fn fnv1a(s: &str) -> u32 {
    let h = s.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    });
    (h ^ (h >> 32)) as u32
}

/// `, dilation d` and `, bias false` where they differ from PyTorch's defaults.
fn extras(dilation: Size2, bias: bool) -> String {
    let mut s = String::new();
    if !is_one(&dilation) {
        s += &format!(", dilation {dilation}");
    }
    if !bias {
        s += ", bias false";
    }
    s
}

/// `nn.BatchNorm2d(c)`'s state_dict: weight (1) and bias (0), trained; running_mean (0),
/// running_var (1) and num_batches_tracked (a scalar, 0), buffers.
fn batch_norm_params(prefix: &str, c: usize) -> Vec<ParamSpec> {
    let spec = |name: &str, shape: Shape, fill: f32, buffer: bool| ParamSpec {
        name: format!("{prefix}.{name}"),
        shape,
        init: Init::Fill(fill),
        buffer,
    };
    vec![
        spec("weight", Shape::new([c]), 1.0, false),
        spec("bias", Shape::new([c]), 0.0, false),
        spec("running_mean", Shape::new([c]), 0.0, true),
        spec("running_var", Shape::new([c]), 1.0, true),
        spec(
            "num_batches_tracked",
            Shape::new(Vec::<usize>::new()),
            0.0,
            true,
        ),
    ]
}

/// A size PyTorch takes as an int or a pair: `3` or `[3, 5]` (height, width) in a config.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Size2 {
    Square(usize),
    Pair([usize; 2]),
}

impl Default for Size2 {
    fn default() -> Self {
        Size2::Square(0)
    }
}

impl From<usize> for Size2 {
    fn from(s: usize) -> Self {
        Size2::Square(s)
    }
}

impl Size2 {
    /// `[height, width]`.
    pub fn hw(self) -> [usize; 2] {
        match self {
            Size2::Square(s) => [s, s],
            Size2::Pair(p) => p,
        }
    }
}

impl std::fmt::Display for Size2 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Size2::Square(s) => write!(f, "{s}"),
            Size2::Pair([h, w]) => write!(f, "({h}, {w})"),
        }
    }
}
fn default_slope() -> f32 {
    0.01
}

/// How a parameter is initialised: uniform in `±bound`, `bound = 1/√fan_in`, which is what
/// PyTorch's default `kaiming_uniform_(a=√5)` for weights and its bias rule both come to.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamSpec {
    /// state_dict name, e.g. `encoder.0.weight`.
    pub name: String,
    pub shape: Shape,
    pub init: Init,
    /// A buffer (PyTorch's word): state the model keeps and checkpoints carry but no optimizer
    /// trains — batch normalisation's running moments and batch count.
    pub buffer: bool,
}

/// How a parameter starts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// Uniform in `±bound` (PyTorch's default for convolutions and linear layers).
    Uniform(f32),
    /// Every element this value (batch normalisation: weight 1, bias 0, running variance 1).
    Fill(f32),
}

impl Layer {
    /// `nn.Linear(in_features, out_features)`.
    pub fn linear(in_features: usize, out_features: usize) -> Layer {
        Layer::Linear {
            in_features,
            out_features,
            bias: true,
        }
    }

    /// `nn.Conv2d(i, o, kernel, stride, padding)`: square sizes, no dilation, a bias.
    pub fn conv2d(i: usize, o: usize, kernel: usize, stride: usize, padding: usize) -> Layer {
        Layer::Conv2d {
            in_channels: i,
            out_channels: o,
            kernel_size: kernel.into(),
            stride: stride.into(),
            padding: padding.into(),
            dilation: one(),
            bias: true,
        }
    }

    /// `nn.ConvTranspose2d(i, o, kernel, stride, padding, output_padding)`: square sizes, no
    /// dilation, a bias.
    pub fn conv_transpose2d(
        i: usize,
        o: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
        output_padding: usize,
    ) -> Layer {
        Layer::ConvTranspose2d {
            in_channels: i,
            out_channels: o,
            kernel_size: kernel.into(),
            stride: stride.into(),
            padding: padding.into(),
            output_padding: output_padding.into(),
            dilation: one(),
            bias: true,
        }
    }

    /// The layer's parameters (weight, then bias where it has one), named `{prefix}.weight` and
    /// `{prefix}.bias`.
    pub fn params(&self, prefix: &str) -> Vec<ParamSpec> {
        // PyTorch's fan_in is weight.size(1) × the kernel area: `in` for Conv2d's
        // [out, in, kh, kw] and Linear's [out, in], but `out` for ConvTranspose2d's
        // [in, out, kh, kw]. Saturating: sizes come from a config, and `Graph::param` refuses
        // oversized weights.
        let area = |k: Size2| k.hw()[0].saturating_mul(k.hw()[1]);
        let (weight, out, fan_in, bias): (Vec<usize>, usize, usize, bool) = match *self {
            Layer::Conv2d {
                in_channels: i,
                out_channels: o,
                kernel_size: k,
                bias,
                ..
            } => {
                let [kh, kw] = k.hw();
                (vec![o, i, kh, kw], o, i.saturating_mul(area(k)), bias)
            }
            Layer::ConvTranspose2d {
                in_channels: i,
                out_channels: o,
                kernel_size: k,
                bias,
                ..
            } => {
                let [kh, kw] = k.hw();
                (vec![i, o, kh, kw], o, o.saturating_mul(area(k)), bias)
            }
            Layer::Linear {
                in_features: i,
                out_features: o,
                bias,
            } => (vec![o, i], o, i, bias),
            Layer::BatchNorm2d {
                num_features: c, ..
            }
            | Layer::BatchNorm1d {
                num_features: c, ..
            } => {
                return batch_norm_params(prefix, c);
            }
            _ => return Vec::new(),
        };
        let bound = 1.0 / (fan_in.max(1) as f32).sqrt();
        let mut specs = vec![ParamSpec {
            name: format!("{prefix}.weight"),
            shape: Shape::new(weight),
            init: Init::Uniform(bound),
            buffer: false,
        }];
        if bias {
            specs.push(ParamSpec {
                name: format!("{prefix}.bias"),
                shape: Shape::new([out]),
                init: Init::Uniform(bound),
                buffer: false,
            });
        }
        specs
    }

    /// A short description for messages: `Conv2d(1, 16, 3, stride 2, padding 1)`.
    pub fn describe(&self) -> String {
        match self {
            Layer::Conv2d {
                in_channels,
                out_channels,
                kernel_size,
                stride,
                padding,
                dilation,
                bias,
            } => format!(
                "Conv2d({in_channels}, {out_channels}, {kernel_size}, stride {stride}, padding {padding}{})",
                extras(*dilation, *bias)
            ),
            Layer::ConvTranspose2d {
                in_channels,
                out_channels,
                kernel_size,
                stride,
                padding,
                output_padding,
                dilation,
                bias,
            } => format!(
                "ConvTranspose2d({in_channels}, {out_channels}, {kernel_size}, stride {stride}, padding {padding}, output_padding {output_padding}{})",
                extras(*dilation, *bias)
            ),
            Layer::Linear {
                in_features,
                out_features,
                bias,
            } => format!(
                "Linear({in_features}, {out_features}{})",
                if *bias { "" } else { ", bias false" }
            ),
            Layer::ReLU => "ReLU".into(),
            Layer::LeakyReLU { negative_slope } => format!("LeakyReLU({negative_slope})"),
            Layer::Sigmoid => "Sigmoid".into(),
            Layer::Tanh => "Tanh".into(),
            Layer::GELU => "GELU".into(),
            Layer::SiLU => "SiLU".into(),
            Layer::MaxPool2d {
                kernel_size,
                stride,
                padding,
            } => format!(
                "MaxPool2d({kernel_size}, stride {}, padding {padding})",
                stride.unwrap_or(*kernel_size)
            ),
            Layer::AvgPool2d {
                kernel_size,
                stride,
                padding,
            } => format!(
                "AvgPool2d({kernel_size}, stride {}, padding {padding})",
                stride.unwrap_or(*kernel_size)
            ),
            Layer::Upsample { scale_factor, mode } => {
                format!("Upsample(scale_factor {scale_factor}, mode {mode})")
            }
            Layer::Dropout { p } => format!("Dropout({p})"),
            Layer::BatchNorm2d {
                num_features,
                eps,
                momentum,
            } => format!("BatchNorm2d({num_features}, eps {eps}, momentum {momentum})"),
            Layer::BatchNorm1d {
                num_features,
                eps,
                momentum,
            } => format!("BatchNorm1d({num_features}, eps {eps}, momentum {momentum})"),
            Layer::Flatten => "Flatten".into(),
            Layer::Unflatten { dims } => format!("Unflatten(1, {dims:?})"),
        }
    }

    /// Adds the layer to `g` (its parameters as parameter nodes named under `prefix`) and
    /// returns its output.
    pub fn forward(&self, g: &mut Graph, prefix: &str, x: NodeId) -> Result<NodeId> {
        g.set_layer(format!("{prefix} ({})", self.describe()));
        let mut params = Vec::new();
        for p in self.params(prefix) {
            params.push(g.param(&p.name, p.shape)?);
        }
        let conv =
            |stride: Size2, padding: Size2, dilation: Size2, output_padding: Size2| ConvParams {
                stride: stride.hw(),
                padding: padding.hw(),
                dilation: dilation.hw(),
                output_padding: output_padding.hw(),
            };
        let bias = params.get(1).copied();
        match self {
            Layer::Conv2d {
                stride,
                padding,
                dilation,
                ..
            } => g.conv2d(
                x,
                params[0],
                bias,
                conv(*stride, *padding, *dilation, 0.into()),
            ),
            Layer::ConvTranspose2d {
                stride,
                padding,
                output_padding,
                dilation,
                ..
            } => g.conv_transpose2d(
                x,
                params[0],
                bias,
                conv(*stride, *padding, *dilation, *output_padding),
            ),
            Layer::Linear { .. } => g.linear(x, params[0], bias),
            Layer::ReLU => Ok(g.activation(x, Activation::Relu)),
            Layer::LeakyReLU { negative_slope } => {
                Ok(g.activation(x, Activation::LeakyRelu(*negative_slope)))
            }
            Layer::Sigmoid => Ok(g.activation(x, Activation::Sigmoid)),
            Layer::Tanh => Ok(g.activation(x, Activation::Tanh)),
            Layer::GELU => Ok(g.activation(x, Activation::Gelu)),
            Layer::SiLU => Ok(g.activation(x, Activation::Silu)),
            Layer::MaxPool2d {
                kernel_size,
                stride,
                padding,
            } => g.pool(
                x,
                PoolKind::Max,
                kernel_size.hw(),
                stride.unwrap_or(*kernel_size).hw(),
                padding.hw(),
            ),
            Layer::AvgPool2d {
                kernel_size,
                stride,
                padding,
            } => g.pool(
                x,
                PoolKind::Avg,
                kernel_size.hw(),
                stride.unwrap_or(*kernel_size).hw(),
                padding.hw(),
            ),
            Layer::Upsample { scale_factor, mode } => {
                if mode != "nearest" {
                    return Err(crate::error::Error::model(
                        prefix,
                        format!("Upsample mode '{mode}' is not supported: only 'nearest'"),
                    ));
                }
                g.upsample(x, scale_factor.hw())
            }
            Layer::Dropout { p } => match g.training_step() {
                // Each layer draws its own mask: the seed is a hash of its name.
                Some(step) => g.dropout(x, step, *p, fnv1a(prefix)),
                None if (0.0..=1.0).contains(p) => Ok(x),
                None => Err(crate::error::Error::model(
                    prefix,
                    format!("dropout: p {p} must be in [0, 1]"),
                )),
            },
            Layer::BatchNorm2d {
                num_features,
                eps,
                momentum,
            } => batch_norm(g, x, &params, [4, 4], *num_features, *eps, *momentum),
            Layer::BatchNorm1d {
                num_features,
                eps,
                momentum,
            } => batch_norm(g, x, &params, [2, 3], *num_features, *eps, *momentum),
            Layer::Flatten => g.flatten(x),
            Layer::Unflatten { dims } => g.unflatten(x, dims),
        }
    }
}

/// Batch normalisation of `x` (rank in `ranks`, `c` channels) with the layer's five parameter
/// nodes: the batch's moments and the running-moment updates in a training graph, the running
/// moments in an evaluation graph.
fn batch_norm(
    g: &mut Graph,
    x: NodeId,
    params: &[NodeId],
    ranks: [usize; 2],
    c: usize,
    eps: f32,
    momentum: f32,
) -> Result<NodeId> {
    let [weight, bias, running_mean, running_var, batches] = params[..] else {
        return Err(crate::Error::model(
            g.layer(),
            "batch norm: five parameters expected",
        ));
    };
    let shape = g.shape(x).clone();
    let fail = |m: String| crate::Error::model(g.layer(), format!("batch norm: {m}"));
    if !(ranks[0]..=ranks[1]).contains(&shape.rank()) || shape.dims()[1] != c {
        let want = if ranks[0] == 4 {
            "[N, C, H, W]"
        } else {
            "[N, C] or [N, C, L]"
        };
        return Err(fail(format!("input {shape} must be {want} with C = {c}")));
    }
    if !(0.0..=1.0).contains(&momentum) {
        return Err(fail(format!("momentum {momentum} must be in [0, 1]")));
    }
    if !g.is_training() {
        return g.batch_norm(x, &[running_mean, running_var], weight, bias, eps);
    }
    let count = shape.numel() / c;
    if count < 2 {
        return Err(fail(format!(
            "training needs more than one value per channel (PyTorch's rule), got input {shape}: use batches of at least 2 (--drop-last drops a last batch of 1)"
        )));
    }
    let stats = g.batch_norm_stats(x)?;
    let y = g.batch_norm(x, &[stats], weight, bias, eps)?;
    // running = (1 − m)·running + m·batch, with the batch's variance unbiased (M/(M − 1)), as
    // PyTorch does; num_batches_tracked + 1.
    let unbiased = count as f32 / (count - 1) as f32;
    for (row, running, scale) in [
        (0, running_mean, momentum),
        (1, running_var, momentum * unbiased),
    ] {
        let batch = g.row(stats, row)?;
        let old = g.scale(1.0 - momentum, running);
        let new = g.scale(scale, batch);
        let value = g.add(old, new)?;
        g.add_update(running, value)?;
    }
    let one = g.constant("1", Tensor::full(Shape::new(Vec::<usize>::new()), 1.0));
    let counted = g.add(batches, one)?;
    g.add_update(batches, counted)?;
    Ok(y)
}
