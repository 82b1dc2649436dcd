//! Reverse-mode autodiff as a graph transform: [`backward`] appends, for every node between the
//! trainable parameters and the loss, the nodes of its gradient, built from the same op set (see
//! the backward table in docs/ARCHITECTURE.md). Gradient contributions from several consumers
//! are summed with [`Op::Add`]. Frozen parameters get no gradient, and nothing is computed for a
//! branch that reaches no trainable parameter.

use super::{Graph, NodeId, Op};
use crate::error::{Error, Result};
use crate::shape::Shape;
use crate::spec::{Activation, BiasMode, MatmulSpec, PointLoss};
use crate::tensor::Tensor;
use std::collections::HashMap;

/// What [`backward`] added: the gradient node of every trainable parameter.
#[derive(Clone, Debug)]
pub struct Gradients {
    pub loss: NodeId,
    /// `(parameter name, parameter node, gradient node)`, in the graph's parameter order. Each
    /// gradient node is computed by a kernel (never a view or shared with another parameter),
    /// so an executor can place it straight into a parameter-gradient buffer.
    pub params: Vec<(String, NodeId, NodeId)>,
}

/// Appends the backward pass of `loss` (a `[1]` node) to `graph`. Parameters for which
/// `frozen(name)` is true are treated as constants.
pub fn backward(
    graph: &mut Graph,
    loss: NodeId,
    frozen: &dyn Fn(&str) -> bool,
) -> Result<Gradients> {
    if graph.shape(loss).dims() != [1] {
        return Err(Error::model(
            &graph.node(loss).name,
            format!(
                "backward: the loss must have shape [1], got {}",
                graph.shape(loss)
            ),
        ));
    }
    let forward_len = loss.0 + 1;
    let mut requires = vec![false; forward_len];
    for i in 0..forward_len {
        let n = graph.node(NodeId(i));
        requires[i] = match n.op {
            Op::Param => !frozen(&n.name),
            _ if n.op.is_leaf() => false,
            _ => n.inputs.iter().any(|x| requires[x.0]),
        };
    }
    let mut ad = Autodiff {
        g: graph,
        requires,
        contributions: vec![Vec::new(); forward_len],
        ones: HashMap::new(),
    };
    ad.g.set_layer("loss backward");
    let seed = ad.ones(1);
    ad.contributions[loss.0].push(seed);
    for i in (0..forward_len).rev() {
        let id = NodeId(i);
        if !ad.requires[i] || ad.contributions[i].is_empty() || ad.g.node(id).op.is_leaf() {
            continue;
        }
        let dy = ad.total(id)?;
        let name = format!("{} backward", ad.g.node(id).name);
        ad.g.set_layer(name);
        ad.rule(id, dy)?;
    }
    ad.g.set_layer("gradients");
    let trainable: Vec<(NodeId, String)> =
        ad.g.params()
            .into_iter()
            .filter(|(id, _)| ad.requires[id.0])
            .map(|(id, n)| (id, n.to_string()))
            .collect();
    let mut totals = Vec::new();
    for (id, name) in trainable {
        if ad.contributions[id.0].is_empty() {
            return Err(Error::model(
                &name,
                "backward: this trainable parameter does not reach the loss",
            ));
        }
        let grad = ad.total(id)?;
        totals.push((name, id, grad));
    }
    // A gradient goes straight into the gradient store, so it must be computed by a kernel of
    // its own, and be read by nothing else (no dispatch then reads and writes that store).
    let mut consumers = vec![0usize; ad.g.len()];
    for n in ad.g.nodes() {
        for i in &n.inputs {
            consumers[i.0] += 1;
        }
    }
    let mut params = Vec::new();
    let mut claimed = Vec::new();
    for (name, id, mut grad) in totals {
        let n = ad.g.node(grad);
        if n.op.is_view() || n.op.is_leaf() || consumers[grad.0] > 0 || claimed.contains(&grad) {
            grad = ad.g.scale(1.0, grad);
        }
        claimed.push(grad);
        params.push((name, id, grad));
    }
    ad.g.set_layer("");
    Ok(Gradients { loss, params })
}

struct Autodiff<'a> {
    g: &'a mut Graph,
    requires: Vec<bool>,
    contributions: Vec<Vec<NodeId>>,
    /// Ones vectors by length, shared by every bias-gradient sum.
    ones: HashMap<usize, NodeId>,
}

impl Autodiff<'_> {
    fn ones(&mut self, n: usize) -> NodeId {
        if let Some(&id) = self.ones.get(&n) {
            return id;
        }
        let id = self
            .g
            .constant(&format!("ones[{n}]"), Tensor::full([n], 1.0));
        self.ones.insert(n, id);
        id
    }

    /// The sum of every contribution to a node's gradient.
    fn total(&mut self, id: NodeId) -> Result<NodeId> {
        let parts = std::mem::take(&mut self.contributions[id.0]);
        let mut sum = parts[0];
        for &p in &parts[1..] {
            sum = self.g.add(sum, p)?;
        }
        Ok(sum)
    }

    fn give(&mut self, to: NodeId, grad: NodeId) {
        if self.requires[to.0] {
            self.contributions[to.0].push(grad);
        }
    }

    fn wants(&self, id: NodeId) -> bool {
        self.requires[id.0]
    }

    fn unsupported(&self, id: NodeId) -> Error {
        let n = self.g.node(id);
        Error::model(
            &n.name,
            format!(
                "backward: {} has no backward rule (gradients of gradients are not supported)",
                n.op.name()
            ),
        )
    }

    fn rule(&mut self, id: NodeId, dy: NodeId) -> Result<()> {
        let node = self.g.node(id).clone();
        let x = |i: usize| node.inputs[i];
        match &node.op {
            Op::Input | Op::Labels | Op::Param | Op::Const(_) => {}
            Op::Matmul(spec) => self.matmul(id, spec, &node.inputs, dy)?,
            Op::Im2col(geo) => {
                let dx = self.g.col2im(*geo, dy, None);
                self.give(x(0), dx);
            }
            Op::Col2im(geo) => {
                if self.wants(x(0)) {
                    let dcols = self.g.im2col(*geo, dy);
                    self.give(x(0), dcols);
                }
                if node.inputs.len() == 2 && self.wants(x(1)) {
                    let db = self.row_sums(dy, geo.batch, geo.channels, geo.height * geo.width)?;
                    self.give(x(1), db);
                }
            }
            // Noise goes on fed images, which never want a gradient.
            Op::Noise { .. } => {
                if self.wants(x(0)) {
                    return Err(self.unsupported(id));
                }
            }
            Op::Dropout { p, seed } => {
                let dx = self.g.dropout_grad(dy, x(1), *p, *seed);
                self.give(x(0), dx);
            }
            Op::Reparameterize { seed } => {
                let shape = self.g.shape(x(0)).clone();
                let name = self.g.layer().to_string();
                let op = Op::ReparameterizeGrad { seed: *seed };
                let dh = self.g.push(op, vec![x(0), dy, x(1)], shape, name);
                self.give(x(0), dh);
            }
            Op::KlDivergence => {
                let shape = self.g.shape(x(0)).clone();
                let name = self.g.layer().to_string();
                let dh = self
                    .g
                    .push(Op::KlDivergenceGrad, vec![x(0), dy], shape, name);
                self.give(x(0), dh);
            }
            Op::BatchNorm { eps } => self.batch_norm(id, *eps, &node.inputs, dy)?,
            Op::Pool(spec) => {
                let dx = self.g.pool_grad(*spec, x(0), dy);
                self.give(x(0), dx);
            }
            Op::Activation(act) => {
                let dx = self.activation(*act, x(0), id, dy)?;
                self.give(x(0), dx);
            }
            Op::Add => {
                self.give(x(0), dy);
                self.give(x(1), dy);
            }
            Op::Scale(s) => {
                let dx = self.g.scale(*s, dy);
                self.give(x(0), dx);
            }
            Op::Reshape => {
                let shape = self.g.shape(x(0)).clone();
                let dx = self.g.reshape(dy, shape)?;
                self.give(x(0), dx);
            }
            Op::PointLoss(kind) => {
                let shape = self.g.shape(x(0)).clone();
                let dpred = self.g.push(
                    Op::PointLossGrad(*kind),
                    vec![x(0), x(1), dy],
                    shape,
                    self.g.layer().to_string(),
                );
                self.give(x(0), dpred);
                if self.wants(x(1)) {
                    // Only MSE and L1 are symmetric in y and t; a target of the others is data.
                    if !matches!(kind, PointLoss::Mse | PointLoss::L1) {
                        return Err(self.unsupported(id));
                    }
                    let dt = self.g.scale(-1.0, dpred);
                    self.give(x(1), dt);
                }
            }
            Op::CrossEntropy => {
                let shape = self.g.shape(x(0)).clone();
                let dz = self.g.push(
                    Op::CrossEntropyGrad,
                    vec![x(0), x(1), dy],
                    shape,
                    self.g.layer().to_string(),
                );
                self.give(x(0), dz);
            }
            Op::ActivationGrad(_)
            | Op::DropoutGrad { .. }
            | Op::ReparameterizeGrad { .. }
            | Op::KlDivergenceGrad
            // The batch's moments get no gradient of their own: BatchNorm's rule goes through them.
            | Op::BatchNormStats
            | Op::BatchNormSums { .. }
            | Op::BatchNormGrad { .. }
            | Op::BatchNormGradEval { .. }
            | Op::PoolGrad(_)
            | Op::PointLossGrad(_)
            | Op::CrossEntropyGrad => {
                return Err(self.unsupported(id));
            }
        }
        Ok(())
    }

    /// `dx` of `y = act(x)`: the kernels take x for ReLU/LeakyReLU/GELU/SiLU and y for
    /// Sigmoid/Tanh.
    fn activation(&mut self, act: Activation, x: NodeId, y: NodeId, dy: NodeId) -> Result<NodeId> {
        match act {
            Activation::None => Ok(dy),
            Activation::Relu | Activation::LeakyRelu(_) | Activation::Gelu | Activation::Silu => {
                self.g.activation_grad(act, x, dy)
            }
            Activation::Sigmoid | Activation::Tanh => self.g.activation_grad(act, y, dy),
        }
    }

    /// Gradients of batch normalisation `[x, moments…, weight, bias]`: with the batch's `[2, C]`
    /// moments (training) `dx` goes through them; with running ones (evaluation) they are
    /// constants. The weight's and bias's gradients are the rows of the per-channel sums.
    fn batch_norm(&mut self, id: NodeId, eps: f32, inputs: &[NodeId], dy: NodeId) -> Result<()> {
        let n = inputs.len();
        let (x, w, b) = (inputs[0], inputs[n - 2], inputs[n - 1]);
        let moments = &inputs[1..n - 2];
        let batch = moments.len() == 1;
        if !batch && moments.iter().any(|&m| self.wants(m)) {
            // Running moments are buffers, never trained.
            return Err(self.unsupported(id));
        }
        if !(self.wants(x) || self.wants(w) || self.wants(b)) {
            return Ok(());
        }
        let name = self.g.layer().to_string();
        let pair = Shape::new([2, self.g.shape(w).numel()]);
        let sums_inputs: Vec<NodeId> = [x].iter().chain(moments).chain([&dy]).copied().collect();
        let sums = self
            .g
            .push(Op::BatchNormSums { eps }, sums_inputs, pair, name.clone());
        if self.wants(x) {
            let shape = self.g.shape(x).clone();
            let dx = if batch {
                let ins = vec![x, moments[0], w, dy, sums];
                self.g.push(Op::BatchNormGrad { eps }, ins, shape, name)
            } else {
                let ins = vec![dy, moments[1], w];
                self.g.push(Op::BatchNormGradEval { eps }, ins, shape, name)
            };
            self.give(x, dx);
        }
        if self.wants(w) {
            let dw = self.g.row(sums, 1)?;
            self.give(w, dw);
        }
        if self.wants(b) {
            let db = self.g.row(sums, 0)?;
            self.give(b, db);
        }
        Ok(())
    }

    /// `r[i] = Σ_b Σ_j dz[b, i, j]`: the gradient of a per-row bias (a conv's per-channel
    /// bias), as one batch-summed product `ones[1, n] · dz[b]ᵀ` with the `m` channels along the
    /// output's columns, where a GPU spreads them across lanes (and a split batch sum spreads
    /// the images across workgroups). Deterministic, like every product.
    fn row_sums(&mut self, dz: NodeId, batch: usize, m: usize, n: usize) -> Result<NodeId> {
        let ones_n = self.ones(n);
        let mut spec = MatmulSpec::new(1, n, m);
        spec.batch = batch;
        spec.broadcast_a = true;
        spec.trans_b = true;
        spec.sum_batches = batch > 1;
        self.g.matmul(spec, ones_n, dz, None, [m])
    }

    /// Gradients of `C = act(op(A)·op(B) + bias)` (docs/ARCHITECTURE.md): with `dZ` the gradient
    /// before the activation, `d op(A) = dZ·op(B)ᵀ` and `d op(B) = op(A)ᵀ·dZ`, each written as
    /// one matmul with transpose flags; an operand broadcast over the batch sums its gradient
    /// over the batch.
    fn matmul(&mut self, id: NodeId, s: &MatmulSpec, inputs: &[NodeId], dy: NodeId) -> Result<()> {
        if s.sum_batches {
            return Err(self.unsupported(id));
        }
        let (a, b) = (inputs[0], inputs[1]);
        let dz = match s.act {
            Activation::None => dy,
            Activation::LeakyRelu(slope) if slope <= 0.0 => {
                // The gradient is taken from the output; that needs y > 0 ⇔ x > 0.
                return Err(Error::model(
                    &self.g.node(id).name,
                    format!("backward: a matmul with a fused LeakyReLU of slope {slope} ≤ 0"),
                ));
            }
            act => self.g.activation_grad(act, id, dy)?,
        };
        let batched = s.batch > 1;
        if self.wants(a) {
            let mut d = if !s.trans_a {
                let mut d = MatmulSpec::new(s.m, s.n, s.k);
                d.trans_b = !s.trans_b;
                d.broadcast_b = s.broadcast_b;
                d
            } else {
                let mut d = MatmulSpec::new(s.k, s.n, s.m);
                d.trans_a = s.trans_b;
                d.trans_b = true;
                d.broadcast_a = s.broadcast_b;
                d
            };
            d.batch = s.batch;
            d.sum_batches = s.broadcast_a && batched;
            let (l, r) = if s.trans_a { (b, dz) } else { (dz, b) };
            let shape = self.g.shape(a).clone();
            let da = self.g.matmul(d, l, r, None, shape)?;
            self.give(a, da);
        }
        if self.wants(b) {
            let mut d = if !s.trans_b {
                let mut d = MatmulSpec::new(s.k, s.m, s.n);
                d.trans_a = !s.trans_a;
                d.broadcast_a = s.broadcast_a;
                d
            } else {
                let mut d = MatmulSpec::new(s.n, s.m, s.k);
                d.trans_a = true;
                d.trans_b = s.trans_a;
                d.broadcast_b = s.broadcast_a;
                d
            };
            d.batch = s.batch;
            d.sum_batches = s.broadcast_b && batched;
            let (l, r) = if s.trans_b { (dz, a) } else { (a, dz) };
            let shape = self.g.shape(b).clone();
            let db = self.g.matmul(d, l, r, None, shape)?;
            self.give(b, db);
        }
        if let Some(&bias) = inputs.get(2)
            && self.wants(bias)
        {
            let db = match s.bias {
                BiasMode::PerRow => self.row_sums(dz, s.batch, s.m, s.n)?,
                BiasMode::PerCol => {
                    // ones[1, rows] · dz[rows, n]: the n columns along the output's columns,
                    // where the lanes are.
                    let rows = s.batch * s.m;
                    let ones = self.ones(rows);
                    let d = MatmulSpec::new(1, rows, s.n);
                    self.g.matmul(d, ones, dz, None, Shape::new([s.n]))?
                }
                BiasMode::None => return Err(self.unsupported(id)),
            };
            self.give(bias, db);
        }
        Ok(())
    }
}
