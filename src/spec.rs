//! Descriptions of kernel calls that the CPU reference and the GPU launchers share, so both
//! sides are driven by the same value and validate it the same way.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// An activation fused into a matmul epilogue, or applied by a pointwise kernel.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Activation {
    #[default]
    None,
    Relu,
    /// `x` for `x > 0`, else `slope · x` (PyTorch's `negative_slope`, default 0.01).
    LeakyRelu(f32),
    Sigmoid,
    Tanh,
    /// `x·Φ(x)` with Φ the standard normal CDF (PyTorch's `GELU()`, `approximate='none'`).
    /// Pointwise only: its gradient needs `x`, which a fused matmul epilogue does not keep.
    Gelu,
    /// `x·σ(x)` (PyTorch's `SiLU`). Pointwise only, like GELU.
    Silu,
}

impl Activation {
    /// The code the shaders switch on (see `act()` in matmul.wgsl).
    pub fn code(self) -> u32 {
        match self {
            Activation::None => 0,
            Activation::Relu => 1,
            Activation::LeakyRelu(_) => 2,
            Activation::Sigmoid => 3,
            Activation::Tanh => 4,
            Activation::Gelu => 5,
            Activation::Silu => 6,
        }
    }
    pub fn slope(self) -> f32 {
        match self {
            Activation::LeakyRelu(s) => s,
            _ => 0.0,
        }
    }
    /// The activation in f64 (the CPU reference's precision).
    pub fn apply(self, x: f64) -> f64 {
        match self {
            Activation::None => x,
            // PyTorch keeps NaN (f64::max would drop it).
            Activation::Relu if x.is_nan() => x,
            Activation::Relu => x.max(0.0),
            Activation::LeakyRelu(s) => {
                if x > 0.0 {
                    x
                } else {
                    s as f64 * x
                }
            }
            Activation::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Activation::Tanh => x.tanh(),
            Activation::Gelu => x * std_normal_cdf(x),
            Activation::Silu => x / (1.0 + (-x).exp()),
        }
    }

    /// Whether a matmul epilogue can apply it (and backward differentiate it from its output):
    /// everything but GELU and SiLU, whose gradients need the input.
    pub fn fusible(self) -> bool {
        !matches!(self, Activation::Gelu | Activation::Silu)
    }
}

/// Φ(x), the standard normal CDF, as `erfc(−x/√2)/2`: accurate in the lower tail too, where
/// `(1 + erf)/2` would lose every digit.
pub fn std_normal_cdf(x: f64) -> f64 {
    0.5 * libm::erfc(-x / std::f64::consts::SQRT_2)
}

/// An elementwise loss between a prediction `y` and a target `t`, averaged over every element
/// (PyTorch's `reduction='mean'`): what an autoencoder's reconstruction is trained with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PointLoss {
    /// `(y − t)²` (`nn.MSELoss`).
    #[default]
    Mse,
    /// `|y − t|` (`nn.L1Loss`).
    L1,
    /// `−(t·log y + (1 − t)·log(1 − y))`, each log clamped at −100 as PyTorch does (`nn.BCELoss`):
    /// `y` is a probability (a decoder ending in a Sigmoid).
    Bce,
    /// `max(y, 0) − y·t + log(1 + e^(−|y|))`: binary cross-entropy of `σ(y)`, computed stably
    /// from the logit `y` (`nn.BCEWithLogitsLoss`).
    BceWithLogits,
}

impl PointLoss {
    pub const ALL: [PointLoss; 4] = [
        PointLoss::Mse,
        PointLoss::L1,
        PointLoss::Bce,
        PointLoss::BceWithLogits,
    ];

    /// The forward kernel's entry point (and CPU twin's name).
    pub fn entry(self) -> &'static str {
        match self {
            PointLoss::Mse => "mse_loss",
            PointLoss::L1 => "l1_loss",
            PointLoss::Bce => "bce_loss",
            PointLoss::BceWithLogits => "bce_with_logits_loss",
        }
    }

    /// The backward kernel's entry point.
    pub fn backward_entry(self) -> &'static str {
        match self {
            PointLoss::Mse => "mse_loss_backward",
            PointLoss::L1 => "l1_loss_backward",
            PointLoss::Bce => "bce_loss_backward",
            PointLoss::BceWithLogits => "bce_with_logits_loss_backward",
        }
    }

    /// The PyTorch class it matches.
    pub fn torch_name(self) -> &'static str {
        match self {
            PointLoss::Mse => "MSELoss",
            PointLoss::L1 => "L1Loss",
            PointLoss::Bce => "BCELoss",
            PointLoss::BceWithLogits => "BCEWithLogitsLoss",
        }
    }

    /// The code loss.wgsl switches on (`point_term`, `point_grad`).
    pub fn code(self) -> u32 {
        self as u32
    }

    /// One element's term, in f64 (the CPU reference's precision).
    pub fn term(self, y: f64, t: f64) -> f64 {
        match self {
            PointLoss::Mse => (y - t) * (y - t),
            PointLoss::L1 => (y - t).abs(),
            PointLoss::Bce => {
                if y.is_nan() {
                    return y;
                }
                -(t * y.ln().max(-100.0) + (1.0 - t) * (1.0 - y).ln().max(-100.0))
            }
            PointLoss::BceWithLogits => y.max(0.0) - y * t + (-y.abs()).exp().ln_1p(),
        }
    }

    /// `∂ term / ∂y`. At `y = t` the L1 gradient is 0 (PyTorch's `sign`); BCE divides by
    /// `max(y·(1 − y), 1e-12)` as PyTorch does.
    pub fn grad(self, y: f64, t: f64) -> f64 {
        match self {
            PointLoss::Mse => 2.0 * (y - t),
            PointLoss::L1 if y.is_nan() || t.is_nan() => f64::NAN,
            PointLoss::L1 => {
                if y > t {
                    1.0
                } else if y < t {
                    -1.0
                } else {
                    0.0
                }
            }
            PointLoss::Bce => (y - t) / ((1.0 - y) * y).max(1e-12),
            PointLoss::BceWithLogits => 1.0 / (1.0 + (-y).exp()) - t,
        }
    }
}

/// Where a matmul epilogue adds its bias.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BiasMode {
    #[default]
    None,
    /// `bias[m]` added to row m (a conv's per-output-channel bias, with C = W·cols).
    PerRow,
    /// `bias[n]` added to column n (a Linear layer's bias, with Y = X·Wᵀ).
    PerCol,
}

/// `C[b] = act(op(A)[b] · op(B)[b] + bias)`, with op = transpose when the flag is set.
///
/// Storage: A is `[a_batches, M, K]` (`[a_batches, K, M]` when `trans_a`), B is
/// `[b_batches, K, N]` (`[b_batches, N, K]` when `trans_b`), where an operand's batch count is
/// `batch`, or 1 to broadcast it over every batch. C is `[batch, M, N]`, or `[M, N]` when
/// `sum_batches` adds the products of all batches into one (a weight gradient summed over images).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MatmulSpec {
    pub batch: usize,
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub trans_a: bool,
    pub trans_b: bool,
    pub broadcast_a: bool,
    pub broadcast_b: bool,
    pub sum_batches: bool,
    pub bias: BiasMode,
    pub act: Activation,
}

impl MatmulSpec {
    /// A plain `[m, k] · [k, n]` product.
    pub fn new(m: usize, k: usize, n: usize) -> Self {
        MatmulSpec {
            batch: 1,
            m,
            n,
            k,
            trans_a: false,
            trans_b: false,
            broadcast_a: false,
            broadcast_b: false,
            sum_batches: false,
            bias: BiasMode::None,
            act: Activation::None,
        }
    }
    pub fn a_len(&self) -> usize {
        (if self.broadcast_a { 1 } else { self.batch }) * self.m * self.k
    }
    pub fn b_len(&self) -> usize {
        (if self.broadcast_b { 1 } else { self.batch }) * self.k * self.n
    }
    pub fn c_len(&self) -> usize {
        (if self.sum_batches { 1 } else { self.batch }) * self.m * self.n
    }
    pub fn bias_len(&self) -> usize {
        match self.bias {
            BiasMode::None => 0,
            BiasMode::PerRow => self.m,
            BiasMode::PerCol => self.n,
        }
    }
    /// Multiply-adds counted as 2 FLOPs.
    pub fn flops(&self) -> f64 {
        2.0 * self.batch as f64 * self.m as f64 * self.n as f64 * self.k as f64
    }
    /// Strides (in elements) of A along (batch, m, k) and of B along (batch, k, n).
    pub fn strides(&self) -> ([usize; 3], [usize; 3]) {
        let (m, n, k) = (self.m, self.n, self.k);
        let a_b = if self.broadcast_a { 0 } else { m * k };
        let b_b = if self.broadcast_b { 0 } else { k * n };
        let a = if self.trans_a {
            [a_b, 1, m]
        } else {
            [a_b, k, 1]
        };
        let b = if self.trans_b {
            [b_b, 1, k]
        } else {
            [b_b, n, 1]
        };
        (a, b)
    }

    /// Checks the spec and the lengths of the operands it will be applied to.
    pub fn check(&self, a: usize, b: usize, bias: usize, c: usize) -> Result<()> {
        let op = "matmul";
        if !self.act.fusible() {
            return Err(Error::invalid(
                op,
                format!(
                    "{:?} cannot be fused into a matmul epilogue: apply it as a pointwise op",
                    self.act
                ),
            ));
        }
        if self.batch == 0 || self.m == 0 || self.n == 0 || self.k == 0 {
            return Err(Error::invalid(
                op,
                format!(
                    "zero-sized dimension in batch {} × [{}×{}]·[{}×{}]",
                    self.batch, self.m, self.k, self.k, self.n
                ),
            ));
        }
        let want = [
            ("A", a, self.a_len()),
            ("B", b, self.b_len()),
            ("bias", bias, self.bias_len()),
            ("C", c, self.c_len()),
        ];
        for (name, got, need) in want {
            if got != need {
                return Err(Error::invalid(
                    op,
                    format!(
                        "{name} has {got} elements but batch {} × [{}×{}]·[{}×{}] (trans_a {}, trans_b {}) needs {need}",
                        self.batch, self.m, self.k, self.k, self.n, self.trans_a, self.trans_b
                    ),
                ));
            }
        }
        Ok(())
    }
}

use crate::shape::Shape;

/// A sum or mean over `axes` of a contiguous tensor of `shape` (rank ≤ 4). The output keeps the
/// other axes in order (`[1]` when every axis is reduced): axes `{0, 2, 3}` of NCHW give `[C]`
/// (a conv bias gradient), axis `{0}` of `[B, F]` gives `[F]` (a Linear bias gradient).
///
/// An empty `axes` reduces nothing (the output is a copy), as numpy's `axis=()`; PyTorch's
/// `dim=[]`, which sums everything, is spelled here by listing every axis.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReduceSpec {
    pub shape: Shape,
    /// Axes to reduce, each `< shape.rank()`, no repeats, any order.
    pub axes: Vec<usize>,
}

impl ReduceSpec {
    /// The largest rank the reduce kernels take (shapes are padded with leading 1s to it).
    pub const MAX_RANK: usize = 4;

    /// A checked spec (errors name the op `reduce`).
    pub fn new(shape: impl Into<Shape>, axes: &[usize]) -> Result<Self> {
        let spec = ReduceSpec {
            shape: shape.into(),
            axes: axes.to_vec(),
        };
        spec.check("reduce")?;
        Ok(spec)
    }

    /// Fails, naming `op`, unless the rank is at most 4, the tensor has elements, and every axis
    /// is in range and listed once.
    pub fn check(&self, op: &str) -> Result<()> {
        let (shape, axes) = (&self.shape, &self.axes);
        if shape.rank() > Self::MAX_RANK {
            return Err(Error::invalid(
                op,
                format!(
                    "shape {shape} has rank {}, at most 4 is supported",
                    shape.rank()
                ),
            ));
        }
        crate::shape::nonempty(op, "input", shape)?;
        for (i, &a) in axes.iter().enumerate() {
            if a >= shape.rank() {
                return Err(Error::invalid(
                    op,
                    format!("axis {a} of {axes:?} is out of range for shape {shape}"),
                ));
            }
            if axes[..i].contains(&a) {
                return Err(Error::invalid(
                    op,
                    format!("axis {a} is listed twice in {axes:?} (shape {shape})"),
                ));
            }
        }
        Ok(())
    }

    /// Whether axis `i` is reduced.
    pub fn reduces(&self, i: usize) -> bool {
        self.axes.contains(&i)
    }

    /// The kept dimensions in order, or `[1]` when every axis is reduced.
    pub fn out_shape(&self) -> Shape {
        let kept: Vec<usize> = (0..self.shape.rank())
            .filter(|&i| !self.reduces(i))
            .map(|i| self.shape.dim(i))
            .collect();
        if kept.is_empty() {
            Shape::new([1])
        } else {
            Shape::new(kept)
        }
    }

    /// How many input elements each output element sums (the divisor of a mean).
    pub fn reduced_count(&self) -> usize {
        self.axes.iter().map(|&a| self.shape.dim(a)).product()
    }

    /// The shape padded to rank 4 with leading 1s, and which of those four axes are reduced.
    pub fn padded(&self) -> ([usize; 4], [bool; 4]) {
        let pad = Self::MAX_RANK - self.shape.rank();
        let mut dims = [1; 4];
        let mut reduced = [false; 4];
        for i in 0..self.shape.rank() {
            dims[pad + i] = self.shape.dim(i);
            reduced[pad + i] = self.reduces(i);
        }
        (dims, reduced)
    }
}

/// Which window operation a [`PoolSpec`] describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PoolKind {
    /// The window's largest value (`nn.MaxPool2d`; a NaN wins, as in PyTorch).
    Max,
    /// The window's mean, padding counted as zeros (`nn.AvgPool2d`, `count_include_pad=True`).
    Avg,
    /// Each pixel repeated `kernel[0] × kernel[1]` times (`nn.Upsample(mode='nearest')` with an
    /// integer scale factor): the window is the scale, stride and padding are unused.
    UpsampleNearest,
}

/// A 2-D pooling or nearest upsampling of NCHW images `[n, c, h, w]`: what shaders/pool.wgsl
/// and its CPU twins (`cpu::pool`) take. Built with [`PoolSpec::pool`] or
/// [`PoolSpec::upsample`], which check it as PyTorch does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PoolSpec {
    pub kind: PoolKind,
    /// Input `[n, c, h, w]`.
    pub input: [usize; 4],
    /// Window (pools) or scale factor (upsampling), `[height, width]`.
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 2],
}

impl PoolSpec {
    /// A max or average pool of `input` (NCHW). PyTorch's rules: kernel and stride ≥ 1, padding
    /// at most half the kernel, and at least one output pixel (floor division, no ceil mode).
    pub fn pool(
        kind: PoolKind,
        input: &Shape,
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
    ) -> Result<PoolSpec> {
        let spec = PoolSpec {
            kind,
            input: nchw(kind.entry(), input)?,
            kernel,
            stride,
            padding,
        };
        let op = kind.entry();
        if kernel.contains(&0) || stride.contains(&0) {
            return Err(Error::invalid(
                op,
                format!("kernel {kernel:?} and stride {stride:?} must be at least 1"),
            ));
        }
        if (0..2).any(|i| padding[i] > kernel[i] / 2) {
            return Err(Error::invalid(
                op,
                format!("padding {padding:?} must be at most half the kernel {kernel:?}"),
            ));
        }
        let [_, _, h, w] = spec.input;
        // Sizes come from configs: saturate rather than wrap (checked() refuses what is huge).
        if h.saturating_add(2 * padding[0]) < kernel[0]
            || w.saturating_add(2 * padding[1]) < kernel[1]
        {
            return Err(Error::invalid(
                op,
                format!(
                    "a {}×{} input padded by {padding:?} is smaller than the kernel {kernel:?}",
                    h, w
                ),
            ));
        }
        spec.checked()
    }

    /// Nearest upsampling of `input` (NCHW) by integer factors `scale` (each ≥ 1).
    pub fn upsample(input: &Shape, scale: [usize; 2]) -> Result<PoolSpec> {
        let kind = PoolKind::UpsampleNearest;
        if scale.contains(&0) {
            return Err(Error::invalid(
                kind.entry(),
                format!("scale factor {scale:?} must be at least 1"),
            ));
        }
        PoolSpec {
            kind,
            input: nchw(kind.entry(), input)?,
            kernel: scale,
            stride: scale,
            padding: [0, 0],
        }
        .checked()
    }

    /// Fails when the output's element count does not fit the kernels' u32 indexing.
    fn checked(self) -> Result<PoolSpec> {
        let [n, c, ..] = self.input;
        let [oh, ow] = self.out_hw();
        crate::shape::checked_numel(self.kind.entry(), "output", &[n, c, oh, ow])?;
        crate::shape::checked_numel(self.kind.entry(), "input", &self.input)?;
        Ok(self)
    }

    /// Output height and width.
    pub fn out_hw(&self) -> [usize; 2] {
        let [_, _, h, w] = self.input;
        match self.kind {
            PoolKind::UpsampleNearest => [
                h.saturating_mul(self.kernel[0]),
                w.saturating_mul(self.kernel[1]),
            ],
            _ => [0, 1].map(|i| {
                let size = [h, w][i].saturating_add(2 * self.padding[i]) - self.kernel[i];
                size / self.stride[i] + 1
            }),
        }
    }

    pub fn in_shape(&self) -> Shape {
        Shape::new(self.input)
    }

    pub fn out_shape(&self) -> Shape {
        let [n, c, ..] = self.input;
        let [oh, ow] = self.out_hw();
        Shape::new([n, c, oh, ow])
    }
}

impl PoolKind {
    /// The forward kernel's entry point (and CPU twin's name).
    pub fn entry(self) -> &'static str {
        match self {
            PoolKind::Max => "max_pool2d_forward",
            PoolKind::Avg => "avg_pool2d_forward",
            PoolKind::UpsampleNearest => "upsample_nearest2d_forward",
        }
    }

    /// The backward kernel's entry point.
    pub fn backward_entry(self) -> &'static str {
        match self {
            PoolKind::Max => "max_pool2d_backward",
            PoolKind::Avg => "avg_pool2d_backward",
            PoolKind::UpsampleNearest => "upsample_nearest2d_backward",
        }
    }
}

/// The `[n, c, h, w]` of a rank-4, non-empty shape, or an error naming `op`.
fn nchw(op: &str, s: &Shape) -> Result<[usize; 4]> {
    match *s.dims() {
        [n, c, h, w] if !s.dims().contains(&0) => Ok([n, c, h, w]),
        _ => Err(Error::invalid(
            op,
            format!("input must be a non-empty NCHW tensor [N, C, H, W], got {s}"),
        )),
    }
}
