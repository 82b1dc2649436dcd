//! The methods that add nodes. Each infers its output shape and refuses inputs that cannot work
//! with an [`Error::Model`] naming the current layer (see [`Graph::set_layer`]), the op and the
//! shapes involved.
//!
//! Layer-sized methods (conv2d, conv_transpose2d, linear) expand into kernel-sized ops
//! ([`Op::Im2col`], [`Op::Matmul`], [`Op::Col2im`]), following the backward table in
//! docs/ARCHITECTURE.md.

use super::{Graph, NodeId, Op};
use crate::error::{Error, Result};
use crate::shape::{
    ConvGeometry, ConvParams, Shape, checked_numel, conv_transpose2d_layer, conv2d_layer, rank4,
};
use crate::spec::{Activation, BiasMode, MatmulSpec, PointLoss, PoolKind, PoolSpec};
use crate::tensor::Tensor;
use std::sync::Arc;

impl Graph {
    /// The layer errors are reported for (nodes are added under it).
    fn layer_name(&self) -> &str {
        if self.layer.is_empty() {
            "graph"
        } else {
            &self.layer
        }
    }

    fn fail(&self, op: &str, message: impl std::fmt::Display) -> Error {
        Error::model(self.layer_name(), format!("{op}: {message}"))
    }

    /// Rewraps a lower-level error (from shape arithmetic) as one naming the layer.
    fn in_layer(&self, e: Error) -> Error {
        e.in_layer(self.layer_name())
    }

    fn add_node(&mut self, op: Op, inputs: Vec<NodeId>, shape: Shape) -> NodeId {
        let name = self.layer.clone();
        self.push(op, inputs, shape, name)
    }

    /// Fails when `shape` holds more elements than a kernel can index (checked arithmetic).
    fn sized(&self, op: &str, what: &str, shape: &Shape) -> Result<()> {
        checked_numel(op, what, shape.dims())
            .map(|_| ())
            .map_err(|e| self.in_layer(e))
    }

    /// Fails unless `step` is a fed u32 of one element (what random ops draw from).
    fn check_step(&self, op: &str, step: NodeId) -> Result<()> {
        if !matches!(self.node(step).op, Op::Labels) || self.shape(step).numel() != 1 {
            return Err(self.fail(op, "step must be a u32 input of one element"));
        }
        Ok(())
    }

    /// Data fed before each run, e.g. a batch of images `[N, C, H, W]`.
    pub fn input(&mut self, name: &str, shape: impl Into<Shape>) -> Result<NodeId> {
        let shape = shape.into();
        self.sized("input", &format!("input '{name}'"), &shape)?;
        Ok(self.push(Op::Input, vec![], shape, name.into()))
    }

    /// `n` class labels fed before each run.
    pub fn labels(&mut self, name: &str, n: usize) -> Result<NodeId> {
        let shape = Shape::new([n]);
        self.sized("labels", &format!("labels '{name}'"), &shape)?;
        Ok(self.push(Op::Labels, vec![], shape, name.into()))
    }

    /// A parameter with its state_dict name (`encoder.0.weight`); names are unique.
    pub fn param(&mut self, name: &str, shape: impl Into<Shape>) -> Result<NodeId> {
        if self.param_node(name).is_some() {
            return Err(self.fail(
                "param",
                format!("a parameter named '{name}' already exists"),
            ));
        }
        let shape = shape.into();
        self.sized("param", &format!("parameter '{name}'"), &shape)?;
        Ok(self.push(Op::Param, vec![], shape, name.into()))
    }

    /// A constant tensor.
    pub fn constant(&mut self, name: &str, value: Tensor) -> NodeId {
        let shape = value.shape.clone();
        self.push(Op::Const(Arc::new(value)), vec![], shape, name.into())
    }

    /// `act(op(a)·op(b) + bias)` as `spec` describes, with output `shape` (any shape of
    /// `spec.c_len()` elements).
    pub fn matmul(
        &mut self,
        spec: MatmulSpec,
        a: NodeId,
        b: NodeId,
        bias: Option<NodeId>,
        shape: impl Into<Shape>,
    ) -> Result<NodeId> {
        let shape = shape.into();
        // Checked first: with sizes from a config, m·k, k·n and m·n may overflow.
        let a_batch = if spec.broadcast_a { 1 } else { spec.batch };
        for (what, dims) in [
            ("its a operand", [a_batch, spec.m, spec.k]),
            ("its b operand", [spec.batch, spec.k, spec.n]),
            ("its output", [spec.batch, spec.m, spec.n]),
        ] {
            self.sized("matmul", what, &Shape::from(dims))?;
        }
        self.sized("matmul", "its output", &shape)?;
        let bias_len = bias.map_or(0, |t| self.shape(t).numel());
        spec.check(
            self.shape(a).numel(),
            self.shape(b).numel(),
            bias_len,
            shape.numel(),
        )
        .map_err(|e| {
            self.fail(
                "matmul",
                format!(
                    "{} (a {}, b {}, output {shape})",
                    strip_op(&e),
                    self.shape(a),
                    self.shape(b)
                ),
            )
        })?;
        let mut inputs = vec![a, b];
        inputs.extend(bias);
        Ok(self.add_node(Op::Matmul(spec), inputs, shape))
    }

    pub(crate) fn im2col(&mut self, g: ConvGeometry, image: NodeId) -> NodeId {
        self.add_node(Op::Im2col(g), vec![image], g.cols_shape())
    }

    pub(crate) fn col2im(&mut self, g: ConvGeometry, cols: NodeId, bias: Option<NodeId>) -> NodeId {
        let mut inputs = vec![cols];
        inputs.extend(bias);
        self.add_node(Op::Col2im(g), inputs, g.image_shape())
    }

    fn check_bias(&self, op: &str, b: Option<NodeId>, len: usize) -> Result<()> {
        if let Some(b) = b {
            let s = self.shape(b);
            if s.dims() != [len] {
                return Err(self.fail(op, format!("bias {s} should be [{len}]")));
            }
        }
        Ok(())
    }

    /// `conv2d(x, w) + b` (PyTorch's `F.conv2d`): x `[N, C, H, W]`, w `[F, C, kh, kw]`, b `[F]`.
    pub fn conv2d(
        &mut self,
        x: NodeId,
        w: NodeId,
        b: Option<NodeId>,
        p: ConvParams,
    ) -> Result<NodeId> {
        let op = "conv2d";
        let (g, f) =
            conv2d_layer(op, self.shape(x), self.shape(w), p).map_err(|e| self.in_layer(e))?;
        self.check_bias(op, b, f)?;
        let cols = self.im2col(g, x);
        let mut spec = MatmulSpec::new(f, g.col_rows(), g.col_cols());
        spec.batch = g.batch;
        spec.broadcast_a = true;
        spec.bias = if b.is_some() {
            BiasMode::PerRow
        } else {
            BiasMode::None
        };
        self.matmul(spec, w, cols, b, g.windows_shape(f))
    }

    /// `conv_transpose2d(x, w) + b` (PyTorch's `F.conv_transpose2d`): x `[N, F, h, w]`,
    /// w `[F, C, kh, kw]` (`[in, out, kh, kw]`), b `[C]`.
    pub fn conv_transpose2d(
        &mut self,
        x: NodeId,
        w: NodeId,
        b: Option<NodeId>,
        p: ConvParams,
    ) -> Result<NodeId> {
        let op = "conv_transpose2d";
        let (g, f) = conv_transpose2d_layer(op, self.shape(x), self.shape(w), p)
            .map_err(|e| self.in_layer(e))?;
        self.check_bias(op, b, g.channels)?;
        let mut spec = MatmulSpec::new(g.col_rows(), f, g.col_cols());
        spec.batch = g.batch;
        spec.broadcast_a = true;
        spec.trans_a = true;
        let cols = self.matmul(spec, w, x, None, g.cols_shape())?;
        Ok(self.col2im(g, cols, b))
    }

    /// `x·wᵀ + b` (PyTorch's `F.linear`): x `[N, in]`, w `[out, in]`, b `[out]`.
    pub fn linear(&mut self, x: NodeId, w: NodeId, b: Option<NodeId>) -> Result<NodeId> {
        let op = "linear";
        let (xs, ws) = (self.shape(x).clone(), self.shape(w).clone());
        let (n, fin, fout, win) = match (xs.dims(), ws.dims()) {
            (&[n, fin], &[fout, win]) => (n, fin, fout, win),
            _ => {
                return Err(self.fail(
                    op,
                    format!("input {xs} must be [N, in] and weight {ws} [out, in]"),
                ));
            }
        };
        if fin != win {
            return Err(self.fail(
                op,
                format!("input {xs} has {fin} features but weight {ws} [out, in] takes {win}"),
            ));
        }
        self.check_bias(op, b, fout)?;
        let mut spec = MatmulSpec::new(n, fin, fout);
        spec.trans_b = true;
        spec.bias = if b.is_some() {
            BiasMode::PerCol
        } else {
            BiasMode::None
        };
        self.matmul(spec, x, w, b, [n, fout])
    }

    /// `act(x)`, elementwise.
    pub fn activation(&mut self, x: NodeId, act: Activation) -> NodeId {
        let shape = self.shape(x).clone();
        self.add_node(Op::Activation(act), vec![x], shape)
    }

    /// A max or average pool of NCHW `x` (window `kernel`, `stride`, `padding`, as PyTorch's
    /// `MaxPool2d` / `AvgPool2d` with floor division).
    pub fn pool(
        &mut self,
        x: NodeId,
        kind: PoolKind,
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
    ) -> Result<NodeId> {
        let spec = PoolSpec::pool(kind, self.shape(x), kernel, stride, padding)
            .map_err(|e| self.in_layer(e))?;
        Ok(self.add_node(Op::Pool(spec), vec![x], spec.out_shape()))
    }

    /// `clamp(x + std·z, 0, 1)` with standard normal `z` drawn from (`seed`, the fed u32 `step`,
    /// element): a denoising autoencoder's noisy input.
    pub fn gaussian_noise(
        &mut self,
        x: NodeId,
        step: NodeId,
        std: f32,
        seed: u32,
    ) -> Result<NodeId> {
        if !(std.is_finite() && std >= 0.0) {
            return Err(self.fail(
                "gaussian_noise",
                format!("std {std} must be finite and ≥ 0"),
            ));
        }
        self.check_step("gaussian_noise", step)?;
        let shape = self.shape(x).clone();
        Ok(self.add_node(Op::Noise { std, seed }, vec![x, step], shape))
    }

    /// Dropout of `x` with probability `p`, the mask drawn from (`seed`, the fed u32 `step`,
    /// element).
    pub fn dropout(&mut self, x: NodeId, step: NodeId, p: f32, seed: u32) -> Result<NodeId> {
        if !(0.0..=1.0).contains(&p) {
            return Err(self.fail("dropout", format!("p {p} must be in [0, 1]")));
        }
        self.check_step("dropout", step)?;
        let shape = self.shape(x).clone();
        Ok(self.add_node(Op::Dropout { p, seed }, vec![x, step], shape))
    }

    /// The gradient of a dropout node: the same mask applied to `dy`.
    pub fn dropout_grad(&mut self, dy: NodeId, step: NodeId, p: f32, seed: u32) -> NodeId {
        let shape = self.shape(dy).clone();
        self.add_node(Op::DropoutGrad { p, seed }, vec![dy, step], shape)
    }

    /// A variational autoencoder's sample from `h = [mu | logvar]` (`[N, 2z]` → `[N, z]`), its
    /// noise drawn from (`seed`, the fed u32 `step`, element).
    pub fn reparameterize(&mut self, h: NodeId, step: NodeId, seed: u32) -> Result<NodeId> {
        let op = "reparameterize";
        let (n, z) =
            crate::cpu::noise::check_latent(op, self.shape(h)).map_err(|e| self.in_layer(e))?;
        self.check_step(op, step)?;
        Ok(self.add_node(
            Op::Reparameterize { seed },
            vec![h, step],
            Shape::new([n, z]),
        ))
    }

    /// The KL divergence of the distributions `h = [mu | logvar]` describe from `N(0, 1)`.
    pub fn kl_divergence(&mut self, h: NodeId) -> Result<NodeId> {
        crate::cpu::noise::check_latent("kl_divergence", self.shape(h))
            .map_err(|e| self.in_layer(e))?;
        Ok(self.add_node(Op::KlDivergence, vec![h], Shape::new([1])))
    }

    /// Each channel's batch mean and biased variance of `x` (`[N, C, …]`), as `[2, C]`.
    pub fn batch_norm_stats(&mut self, x: NodeId) -> Result<NodeId> {
        let (_, c, _) = crate::cpu::batch_norm::dims("batch_norm", self.shape(x))
            .map_err(|e| self.in_layer(e))?;
        Ok(self.add_node(Op::BatchNormStats, vec![x], Shape::new([2, c])))
    }

    /// `(x − mean)/sqrt(var + eps)·weight + bias` per channel of `x` (`[N, C, …]`), the moments
    /// either `[stats]` (the batch's `[2, C]`, training) or `[mean, var]` (running, evaluation).
    pub fn batch_norm(
        &mut self,
        x: NodeId,
        moments: &[NodeId],
        weight: NodeId,
        bias: NodeId,
        eps: f32,
    ) -> Result<NodeId> {
        let op = "batch_norm";
        let (_, c, _) =
            crate::cpu::batch_norm::dims(op, self.shape(x)).map_err(|e| self.in_layer(e))?;
        if !(eps.is_finite() && eps > 0.0) {
            return Err(self.fail(op, format!("eps {eps} must be finite and > 0")));
        }
        let want: Vec<Vec<usize>> = match moments.len() {
            1 => vec![vec![2, c]],
            2 => vec![vec![c], vec![c]],
            n => return Err(self.fail(op, format!("{n} moment tensors (1 or 2)"))),
        };
        for (&m, w) in moments
            .iter()
            .chain([&weight, &bias])
            .zip(want.iter().chain([&vec![c], &vec![c]]))
        {
            if self.shape(m).dims() != w.as_slice() {
                return Err(self.fail(
                    op,
                    format!(
                        "x {} has {c} channels, but an operand is {}",
                        self.shape(x),
                        self.shape(m)
                    ),
                ));
            }
        }
        let mut inputs = vec![x];
        inputs.extend_from_slice(moments);
        inputs.extend([weight, bias]);
        let shape = self.shape(x).clone();
        Ok(self.add_node(Op::BatchNorm { eps }, inputs, shape))
    }

    /// Row `r` of a `[R, C]` node as `[C]`: a product with a one-hot `[1, R]` constant, so it is a
    /// kernel's output of its own.
    pub fn row(&mut self, x: NodeId, r: usize) -> Result<NodeId> {
        let &[rows, c] = self.shape(x).dims() else {
            return Err(self.fail("row", format!("{} is not [rows, columns]", self.shape(x))));
        };
        if r >= rows {
            return Err(self.fail("row", format!("row {r} of {}", self.shape(x))));
        }
        let mut pick = Tensor::zeros([1, rows]);
        pick.data[r] = 1.0;
        let pick = self.constant(&format!("row {r} of {rows}"), pick);
        self.matmul(MatmulSpec::new(1, rows, c), pick, x, None, [c])
    }

    /// Nearest upsampling of NCHW `x` by integer factors `scale` (`nn.Upsample`).
    pub fn upsample(&mut self, x: NodeId, scale: [usize; 2]) -> Result<NodeId> {
        let spec = PoolSpec::upsample(self.shape(x), scale).map_err(|e| self.in_layer(e))?;
        Ok(self.add_node(Op::Pool(spec), vec![x], spec.out_shape()))
    }

    /// The gradient of a pool node: `x` is its input (read by a max pool only).
    pub fn pool_grad(&mut self, spec: PoolSpec, x: NodeId, dy: NodeId) -> NodeId {
        let inputs = match spec.kind {
            PoolKind::Max => vec![x, dy],
            _ => vec![dy],
        };
        self.add_node(Op::PoolGrad(spec), inputs, spec.in_shape())
    }

    /// The gradient of `act` (see [`Op::ActivationGrad`] for what `v` is).
    pub fn activation_grad(&mut self, act: Activation, v: NodeId, dy: NodeId) -> Result<NodeId> {
        self.same_shape("activation_grad", v, dy)?;
        let shape = self.shape(dy).clone();
        Ok(self.add_node(Op::ActivationGrad(act), vec![v, dy], shape))
    }

    fn same_shape(&self, op: &str, a: NodeId, b: NodeId) -> Result<()> {
        if self.shape(a) != self.shape(b) {
            return Err(self.fail(
                op,
                format!("shapes {} and {} differ", self.shape(a), self.shape(b)),
            ));
        }
        Ok(())
    }

    /// `a + b`, same shapes.
    pub fn add(&mut self, a: NodeId, b: NodeId) -> Result<NodeId> {
        self.same_shape("add", a, b)?;
        let shape = self.shape(a).clone();
        Ok(self.add_node(Op::Add, vec![a, b], shape))
    }

    /// `s·x`.
    pub fn scale(&mut self, s: f32, x: NodeId) -> NodeId {
        let shape = self.shape(x).clone();
        self.add_node(Op::Scale(s), vec![x], shape)
    }

    /// The same elements under another shape of as many elements (no copy).
    pub fn reshape(&mut self, x: NodeId, shape: impl Into<Shape>) -> Result<NodeId> {
        let shape = shape.into();
        self.sized("reshape", "the new shape", &shape)?;
        if shape.numel() != self.shape(x).numel() {
            return Err(self.fail(
                "reshape",
                format!(
                    "cannot view {} ({} elements) as {shape} ({} elements)",
                    self.shape(x),
                    self.shape(x).numel(),
                    shape.numel()
                ),
            ));
        }
        Ok(self.add_node(Op::Reshape, vec![x], shape))
    }

    /// `[N, ...] → [N, product of the rest]` (PyTorch's `nn.Flatten()`).
    pub fn flatten(&mut self, x: NodeId) -> Result<NodeId> {
        let dims = self.shape(x).dims().to_vec();
        if dims.is_empty() {
            return Err(self.fail("flatten", "cannot flatten a scalar"));
        }
        let rest: usize = dims[1..].iter().product();
        self.reshape(x, [dims[0], rest])
    }

    /// `[N, k] → [N, dims...]` with `k` = the product of `dims` (PyTorch's `nn.Unflatten(1, dims)`).
    pub fn unflatten(&mut self, x: NodeId, dims: &[usize]) -> Result<NodeId> {
        let s = self.shape(x).clone();
        let want = checked_numel("unflatten", "the shape", dims).map_err(|e| self.in_layer(e))?;
        match s.dims() {
            &[n, k] if k == want => {
                let mut shape = vec![n];
                shape.extend_from_slice(dims);
                self.reshape(x, shape)
            }
            _ => Err(self.fail(
                "unflatten",
                format!("input {s} must be [N, {want}] to unflatten into {dims:?}"),
            )),
        }
    }

    /// `mean((y − target)²)`, shape `[1]`.
    pub fn mse_loss(&mut self, y: NodeId, target: NodeId) -> Result<NodeId> {
        self.point_loss(PointLoss::Mse, y, target)
    }

    /// The mean of `kind`'s elementwise term over `y` and `target`, shape `[1]`.
    pub fn point_loss(&mut self, kind: PointLoss, y: NodeId, target: NodeId) -> Result<NodeId> {
        self.same_shape(kind.entry(), y, target)?;
        Ok(self.add_node(Op::PointLoss(kind), vec![y, target], Shape::new([1])))
    }

    /// Mean softmax cross-entropy of logits `[N, K]` against `N` labels, shape `[1]`.
    pub fn cross_entropy(&mut self, logits: NodeId, labels: NodeId) -> Result<NodeId> {
        let (ls, ys) = (self.shape(logits).clone(), self.shape(labels).clone());
        let ok = matches!(self.node(labels).op, Op::Labels)
            && matches!((ls.dims(), ys.dims()), (&[n, k], &[m]) if n == m && k > 0);
        if !ok {
            return Err(self.fail(
                "cross_entropy",
                format!("logits {ls} must be [N, K] and labels {ys} a labels input of [N]"),
            ));
        }
        Ok(self.add_node(Op::CrossEntropy, vec![logits, labels], Shape::new([1])))
    }

    /// Rank-4 shape of a node, or an error naming the layer.
    pub fn rank4(&self, op: &str, x: NodeId) -> Result<[usize; 4]> {
        rank4(op, "input", self.shape(x)).map_err(|e| self.in_layer(e))
    }
}

/// The message of an `Invalid` error without its op prefix.
fn strip_op(e: &Error) -> String {
    match e {
        Error::Invalid { message, .. } => message.clone(),
        other => other.to_string(),
    }
}
