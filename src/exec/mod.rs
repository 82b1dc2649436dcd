//! Running graphs: a [`Session`] holds a model's parameters and optimizer state on one device
//! (the CPU reference or a GPU context) and compiles graphs into [`Program`]s that run against
//! them. The same graph gives the same numbers on both, within the tolerances of `compare`.
//!
//! | file | holds |
//! |---|---|
//! | `cpu.rs` | one node evaluated by its kernel's CPU twin |
//! | `gpu.rs` | flat parameter / gradient / optimizer buffers, launches built at compile time |
//! | `loss_ring.rs` | loss read-back through a ring of mappable buffers, without stalling |
//! | `profile.rs` | one run with every dispatch timed (GPU timestamps where the adapter has them) |
//! | `tier.rs` | matmuls start on a quick-to-compile mapping and swap to the chosen one when built |

mod cpu;
mod gpu;
mod loss_ring;
mod profile;
mod tier;

pub use profile::{DispatchTime, Profile};

use crate::error::{Error, Result};
use crate::gpu::GpuContext;
use crate::graph::{Gradients, Graph, MemoryPlan, NodeId, Op, Storage};
use crate::nn::Optimizer;
use crate::shape::Shape;
use crate::tensor::Tensor;
use gpu::{GpuProgram, GpuStore};
use std::sync::Arc;

/// Where a session runs.
#[derive(Clone)]
pub enum Device {
    /// The CPU reference: every kernel's plain-Rust twin.
    Cpu,
    Gpu(Arc<GpuContext>),
}

impl Device {
    /// The adapter and backend, or "CPU reference".
    pub fn describe(&self) -> String {
        match self {
            Device::Cpu => "CPU reference".into(),
            Device::Gpu(ctx) => ctx.describe(),
        }
    }
}

/// One parameter as the session stores it.
#[derive(Clone, Debug)]
pub struct ParamEntry {
    pub name: String,
    pub shape: Shape,
    /// False for a frozen parameter: no gradient, never updated.
    pub trainable: bool,
    /// Element offset in the GPU's flat parameter buffers.
    offset: usize,
}

/// Everything a checkpoint needs: parameter values, optimizer state (`{param}.{buffer}`, e.g.
/// `encoder.0.weight.exp_avg`) and the number of optimizer steps taken.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct State {
    pub params: Vec<(String, Tensor)>,
    pub optimizer: Vec<(String, Tensor)>,
    pub step: u64,
}

/// A value fed to an input node before a run.
#[derive(Clone, Copy, Debug)]
pub enum Feed<'a> {
    Data(&'a Tensor),
    Labels(&'a [u32]),
}

/// What a compiled program computes.
#[derive(Clone, Debug, Default)]
pub struct ProgramSpec {
    /// A `[1]` node whose value every run reports (see [`Session::losses`]).
    pub loss: Option<NodeId>,
    /// Nodes to read back after a run ([`Session::fetch`]).
    pub fetch: Vec<NodeId>,
    /// The parameter gradients to compute (from [`crate::graph::backward`]); needed to train.
    pub grads: Option<Gradients>,
}

enum Store {
    Cpu {
        params: Vec<Tensor>,
        /// `[param][buffer]`, as [`Optimizer::state_names`] orders them; trainable params only
        /// hold buffers.
        state: Vec<Vec<Vec<f32>>>,
    },
    Gpu(Box<GpuStore>),
}

enum Compiled {
    Cpu {
        values: Vec<Option<Tensor>>,
        losses: Vec<(u64, f32)>,
    },
    Gpu(GpuProgram),
}

/// A graph compiled for a session's device.
pub struct Program {
    graph: Graph,
    plan: MemoryPlan,
    loss: Option<NodeId>,
    fetch: Vec<NodeId>,
    /// The session entry of each parameter node.
    param_of: Vec<Option<usize>>,
    /// `(entry, gradient node)` of every parameter gradient computed.
    grads: Vec<(usize, NodeId)>,
    /// Labels inputs and the number of classes their loss takes.
    label_classes: Vec<(NodeId, usize)>,
    runs: u64,
    compiled: Compiled,
}

impl Program {
    pub fn graph(&self) -> &Graph {
        &self.graph
    }
    /// The memory plan: peak bytes of its tensors beside their naive sum.
    pub fn memory(&self) -> &MemoryPlan {
        &self.plan
    }
    /// How many runs so far.
    pub fn runs(&self) -> u64 {
        self.runs
    }
    /// Number of kernel launches per run (GPU), or of evaluated nodes (CPU).
    pub fn launch_count(&self) -> usize {
        match &self.compiled {
            Compiled::Gpu(g) => g.launches.len(),
            Compiled::Cpu { .. } => self
                .graph
                .nodes()
                .iter()
                .zip(&self.plan.storage)
                .filter(|(n, s)| **s != Storage::Skipped && !n.op.is_leaf() && !n.op.is_view())
                .count(),
        }
    }
}

/// A model's parameters and optimizer state on one device.
pub struct Session {
    device: Device,
    entries: Vec<ParamEntry>,
    optimizer: Option<Optimizer>,
    step: u64,
    store: Store,
}

impl Session {
    /// A session holding `params` (state_dict names and values). Parameters for which
    /// `frozen(name)` is true are never updated; `optimizer` is needed to train.
    pub fn new(
        device: Device,
        params: Vec<(String, Tensor)>,
        frozen: &dyn Fn(&str) -> bool,
        optimizer: Option<Optimizer>,
    ) -> Result<Self> {
        if let Some(o) = &optimizer {
            o.check()?;
        }
        let mut entries: Vec<ParamEntry> = params
            .iter()
            .map(|(name, t)| ParamEntry {
                name: name.clone(),
                shape: t.shape.clone(),
                trainable: !frozen(name),
                offset: 0,
            })
            .collect();
        for (i, e) in entries.iter().enumerate() {
            if entries[..i].iter().any(|o| o.name == e.name) {
                return Err(Error::model(&e.name, "two parameters have this name"));
            }
        }
        let values: Vec<Tensor> = params.into_iter().map(|(_, t)| t).collect();
        let store = match &device {
            Device::Cpu => {
                let buffers = optimizer.map_or(0, |o| o.state_names().len());
                let state = entries
                    .iter()
                    .map(|e| {
                        let n = if e.trainable { e.shape.numel() } else { 0 };
                        vec![vec![0f32; n]; buffers]
                    })
                    .collect();
                Store::Cpu {
                    params: values,
                    state,
                }
            }
            Device::Gpu(ctx) => Store::Gpu(Box::new(GpuStore::new(
                ctx.clone(),
                &mut entries,
                &values,
                optimizer.as_ref(),
            )?)),
        };
        Ok(Session {
            device,
            entries,
            optimizer,
            step: 0,
            store,
        })
    }

    pub fn device(&self) -> &Device {
        &self.device
    }
    pub fn entries(&self) -> &[ParamEntry] {
        &self.entries
    }
    pub fn optimizer(&self) -> Option<&Optimizer> {
        self.optimizer.as_ref()
    }
    /// Optimizer steps taken.
    pub fn step_count(&self) -> u64 {
        self.step
    }

    fn entry(&self, name: &str) -> Option<usize> {
        self.entries.iter().position(|e| e.name == name)
    }

    /// Compiles `graph` to compute `spec` against this session's parameters.
    pub fn compile(&self, graph: Graph, spec: ProgramSpec) -> Result<Program> {
        let mut grads = Vec::new();
        if let Some(g) = &spec.grads {
            for (name, _, node) in &g.params {
                let e = self.entry(name).ok_or_else(|| {
                    Error::model(name, "the graph's parameter is not in the session")
                })?;
                if !self.entries[e].trainable {
                    return Err(Error::model(
                        name,
                        "a gradient was asked for a frozen parameter",
                    ));
                }
                grads.push((e, *node));
            }
        }
        let mut outputs: Vec<NodeId> = spec.fetch.clone();
        outputs.extend(spec.loss);
        let grad_nodes: Vec<NodeId> = grads.iter().map(|g| g.1).collect();
        let plan = MemoryPlan::new(&graph, &outputs, &grad_nodes);
        let mut param_of = vec![None; graph.len()];
        let mut label_classes = Vec::new();
        for (i, node) in graph.nodes().iter().enumerate() {
            if plan.storage[i] == Storage::Skipped {
                continue;
            }
            match node.op {
                Op::Param => {
                    let e = self.entry(&node.name).ok_or_else(|| {
                        Error::model(&node.name, "the graph's parameter is not in the session")
                    })?;
                    if self.entries[e].shape != node.shape {
                        return Err(Error::model(
                            &node.name,
                            format!(
                                "the graph wants {} but the session holds {}",
                                node.shape, self.entries[e].shape
                            ),
                        ));
                    }
                    param_of[i] = Some(e);
                }
                Op::CrossEntropy => {
                    let classes = graph.shape(node.inputs[0]).dim(1);
                    label_classes.push((node.inputs[1], classes));
                }
                _ => {}
            }
        }
        if let Some(l) = spec.loss
            && graph.shape(l).numel() != 1
        {
            return Err(Error::model(
                &graph.node(l).name,
                format!("the loss must have one element, got {}", graph.shape(l)),
            ));
        }
        let compiled = match &self.store {
            Store::Cpu { .. } => Compiled::Cpu {
                values: vec![None; graph.len()],
                losses: Vec::new(),
            },
            Store::Gpu(store) => {
                let grad_entries: Vec<usize> = grads.iter().map(|g| g.0).collect();
                Compiled::Gpu(GpuProgram::compile(
                    store,
                    &graph,
                    &plan,
                    &self.entries,
                    &param_of,
                    &grad_entries,
                    spec.loss.is_some(),
                )?)
            }
        };
        Ok(Program {
            graph,
            plan,
            loss: spec.loss,
            fetch: spec.fetch,
            param_of,
            grads,
            label_classes,
            runs: 0,
            compiled,
        })
    }

    /// Checks the feeds against the program's inputs.
    fn check_feeds(&self, p: &Program, feeds: &[(NodeId, Feed)]) -> Result<()> {
        for (i, node) in p.graph.nodes().iter().enumerate() {
            if p.plan.storage[i] != Storage::Fed {
                continue;
            }
            let feed = feeds.iter().find(|(id, _)| id.0 == i).map(|f| f.1);
            let n = node.shape.numel();
            match (&node.op, feed) {
                (Op::Input, Some(Feed::Data(t))) if t.numel() == n => {}
                (Op::Labels, Some(Feed::Labels(l))) if l.len() == n => {
                    if let Some(&(_, classes)) = p.label_classes.iter().find(|(id, _)| id.0 == i) {
                        crate::cpu::loss::check_labels(l, classes)
                            .map_err(|e| Error::model(&node.name, e))?;
                    }
                }
                (_, None) => {
                    return Err(Error::model(&node.name, "this input was not fed"));
                }
                (_, Some(f)) => {
                    let got = match f {
                        Feed::Data(t) => format!("data {}", t.shape),
                        Feed::Labels(l) => format!("{} labels", l.len()),
                    };
                    return Err(Error::model(
                        &node.name,
                        format!("the {} input is {}, fed {got}", node.op.name(), node.shape),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Waits until every matmul of `p` runs on its final mapping (programs on CPU drivers start
    /// on a quick-to-compile one and swap in the background; see `exec/tier.rs`). Results do
    /// not change; benchmarks call this so that they time the final kernels. The swapped-in
    /// pipelines still compile on their first run.
    pub fn finish_tier_up(&self, p: &mut Program) -> Result<()> {
        if let (Store::Gpu(store), Compiled::Gpu(prog)) = (&self.store, &mut p.compiled) {
            prog.tier_up(&store.ctx, usize::MAX, true)?;
        }
        Ok(())
    }

    /// Runs the program (forward, and backward if it has gradients) without updating anything.
    pub fn run(&mut self, p: &mut Program, feeds: &[(NodeId, Feed)]) -> Result<()> {
        self.execute(p, feeds, false)
    }

    /// One training step: the run, then the optimizer on every trainable parameter, all in one
    /// submission on a GPU.
    pub fn step(&mut self, p: &mut Program, feeds: &[(NodeId, Feed)]) -> Result<()> {
        if self.optimizer.is_none() {
            return Err(Error::invalid("step", "the session has no optimizer"));
        }
        if p.grads.is_empty() {
            return Err(Error::invalid(
                "step",
                "the program computes no gradients (compile it with ProgramSpec::grads)",
            ));
        }
        let trainable = self.entries.iter().filter(|e| e.trainable).count();
        if p.grads.len() != trainable {
            return Err(Error::invalid(
                "step",
                format!(
                    "the program computes {} gradients but the session trains {trainable} parameters",
                    p.grads.len()
                ),
            ));
        }
        self.execute(p, feeds, true)
    }

    fn execute(&mut self, p: &mut Program, feeds: &[(NodeId, Feed)], update: bool) -> Result<()> {
        self.check_feeds(p, feeds)?;
        let step = self.step + 1;
        let run = p.runs + 1;
        match (&mut self.store, &mut p.compiled) {
            (Store::Cpu { params, state }, Compiled::Cpu { values, losses }) => {
                for (i, node) in p.graph.nodes().iter().enumerate() {
                    if p.plan.storage[i] == Storage::Skipped {
                        continue;
                    }
                    let v = match node.op {
                        Op::Param => params[p.param_of[i].unwrap_or(0)].clone(),
                        Op::Input | Op::Labels => match feeds.iter().find(|f| f.0.0 == i) {
                            Some((_, Feed::Data(t))) => {
                                Tensor::new(node.shape.clone(), t.data.clone())?
                            }
                            Some((_, Feed::Labels(l))) => Tensor::new(
                                node.shape.clone(),
                                l.iter().map(|&v| v as f32).collect(),
                            )?,
                            None => return Err(Error::model(&node.name, "this input was not fed")),
                        },
                        _ => {
                            let ins: Vec<&Tensor> = node
                                .inputs
                                .iter()
                                .map(|x| values[x.0].as_ref())
                                .collect::<Option<_>>()
                                .ok_or_else(|| Error::invalid(&node.name, "input not computed"))?;
                            cpu::eval(node, &ins).map_err(|e| e.in_layer(&node.name))?
                        }
                    };
                    values[i] = Some(v);
                }
                if let Some(l) = p.loss
                    && let Some(v) = &values[l.0]
                {
                    losses.push((run, v.data[0]));
                }
                if update && let Some(o) = &self.optimizer {
                    for &(e, g) in &p.grads {
                        let grad = values[g.0]
                            .as_ref()
                            .ok_or_else(|| Error::invalid("step", "gradient not computed"))?;
                        o.cpu_step(&mut params[e].data, &grad.data, &mut state[e], step)?;
                    }
                }
            }
            (Store::Gpu(store), Compiled::Gpu(prog)) => {
                let ctx = store.ctx.clone();
                // One swap per run: each costs its first dispatch a compile on CPU drivers.
                prog.tier_up(&ctx, 1, false)?;
                prog.write_feeds(&ctx, feeds)?;
                if update && let Some(o) = &self.optimizer {
                    store.prepare_step(o, step)?;
                }
                let scope = ctx.device.push_error_scope(wgpu::ErrorFilter::Validation);
                let mut enc = ctx
                    .device
                    .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                        label: Some("wgrad step"),
                    });
                {
                    let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                        label: Some("wgrad step"),
                        timestamp_writes: None,
                    });
                    for l in &prog.launches {
                        l.record(&mut pass);
                    }
                    if update && let Some(l) = &store.optim_launch {
                        l.record(&mut pass);
                    }
                }
                let mut slot = None;
                if let (Some(l), Some(ring)) = (p.loss, prog.ring.as_mut()) {
                    let (i, _) = ring.claim(&ctx)?;
                    if let Some(t) = &prog.tensors[l.0] {
                        ring.copy(&mut enc, i, t, run);
                        slot = Some(i);
                    }
                }
                ctx.queue.submit([enc.finish()]);
                if let Some(message) = crate::gpu::pipeline::pop_scope(scope) {
                    return Err(Error::gpu("training step", message));
                }
                if let (Some(i), Some(ring)) = (slot, prog.ring.as_mut()) {
                    ring.map(i);
                    ring.poll(&ctx)?;
                }
            }
            _ => {
                return Err(Error::invalid(
                    "run",
                    "the program was compiled for another device",
                ));
            }
        }
        p.runs = run;
        if update {
            self.step = step;
        }
        Ok(())
    }

    /// The losses of finished runs as `(run, loss)`, oldest first, without waiting (a GPU
    /// reports a run's loss a few runs later).
    pub fn losses(&self, p: &mut Program) -> Result<Vec<(u64, f32)>> {
        match (&self.store, &mut p.compiled) {
            (_, Compiled::Cpu { losses, .. }) => Ok(std::mem::take(losses)),
            (Store::Gpu(store), Compiled::Gpu(prog)) => match prog.ring.as_mut() {
                Some(ring) => {
                    ring.poll(&store.ctx)?;
                    Ok(ring.take())
                }
                None => Ok(Vec::new()),
            },
            _ => Err(Error::invalid(
                "losses",
                "the program was compiled for another device",
            )),
        }
    }

    /// Every outstanding loss, waiting for the device.
    pub fn flush_losses(&self, p: &mut Program) -> Result<Vec<(u64, f32)>> {
        if let (Store::Gpu(store), Compiled::Gpu(prog)) = (&self.store, &mut p.compiled)
            && let Some(ring) = prog.ring.as_mut()
        {
            ring.flush(&store.ctx)?;
        }
        self.losses(p)
    }

    /// The loss of the latest run, waiting for it; earlier unread losses are dropped.
    pub fn last_loss(&self, p: &mut Program) -> Result<f32> {
        let all = self.flush_losses(p)?;
        all.last()
            .map(|l| l.1)
            .ok_or_else(|| Error::invalid("last_loss", "the program has no loss or has not run"))
    }

    /// Reads a fetched node's value after a run (waits for the device).
    pub fn fetch(&self, p: &Program, node: NodeId) -> Result<Tensor> {
        if !p.fetch.contains(&node) && p.loss != Some(node) {
            return Err(Error::invalid(
                "fetch",
                format!("node {} was not listed in ProgramSpec::fetch", node.0),
            ));
        }
        match &p.compiled {
            Compiled::Cpu { values, .. } => values[node.0]
                .clone()
                .ok_or_else(|| Error::invalid("fetch", "the program has not run")),
            Compiled::Gpu(prog) => match (&self.store, &prog.tensors[node.0]) {
                (Store::Gpu(store), Some(t)) => store.ctx.download(t),
                _ => Err(Error::invalid("fetch", "node not placed")),
            },
        }
    }

    /// The gradients the latest run of `p` computed, by parameter name.
    pub fn gradients(&self, p: &Program) -> Result<Vec<(String, Tensor)>> {
        let mut out = Vec::new();
        for &(e, node) in &p.grads {
            let entry = &self.entries[e];
            let t = match (&self.store, &p.compiled) {
                (_, Compiled::Cpu { values, .. }) => values[node.0]
                    .clone()
                    .ok_or_else(|| Error::invalid("gradients", "the program has not run"))?,
                (Store::Gpu(store), Compiled::Gpu(_)) => store.ctx.download(&store.grad(entry))?,
                _ => return Err(Error::invalid("gradients", "device mismatch")),
            };
            out.push((entry.name.clone(), t));
        }
        Ok(out)
    }

    /// Parameters, optimizer state and step count, read back to the host.
    pub fn state(&self) -> Result<State> {
        let names = self.optimizer.map_or(&[][..], |o| o.state_names());
        let mut s = State {
            step: self.step,
            ..State::default()
        };
        match &self.store {
            Store::Cpu { params, state } => {
                for (e, (v, st)) in self.entries.iter().zip(params.iter().zip(state)) {
                    s.params.push((e.name.clone(), v.clone()));
                    if e.trainable {
                        for (name, b) in names.iter().zip(st) {
                            s.optimizer.push((
                                format!("{}.{name}", e.name),
                                Tensor::new(e.shape.clone(), b.clone())?,
                            ));
                        }
                    }
                }
            }
            Store::Gpu(store) => {
                let all = store.ctx.download(&store.params)?;
                let bufs: Vec<Tensor> = store
                    .state
                    .iter()
                    .map(|t| store.ctx.download(t))
                    .collect::<Result<_>>()?;
                let slice = |t: &Tensor, e: &ParamEntry| {
                    Tensor::new(
                        e.shape.clone(),
                        t.data[e.offset..e.offset + e.shape.numel()].to_vec(),
                    )
                };
                for e in &self.entries {
                    s.params.push((e.name.clone(), slice(&all, e)?));
                    if e.trainable {
                        for (name, b) in names.iter().zip(&bufs) {
                            s.optimizer
                                .push((format!("{}.{name}", e.name), slice(b, e)?));
                        }
                    }
                }
            }
        }
        Ok(s)
    }

    /// Loads parameter values (every session parameter must be present, with its shape),
    /// optimizer state (absent buffers start at zero: a weights-only checkpoint starts fresh
    /// optimizer state) and the step count.
    pub fn load_state(&mut self, s: &State) -> Result<()> {
        let names = self.optimizer.map_or(&[][..], |o| o.state_names());
        let find =
            |list: &[(String, Tensor)], name: &str, shape: &Shape| -> Result<Option<Tensor>> {
                match list.iter().find(|(n, _)| n == name) {
                    None => Ok(None),
                    Some((_, t)) if &t.shape == shape => Ok(Some(t.clone())),
                    Some((_, t)) => Err(Error::model(
                        name,
                        format!("the state holds {} but the model needs {shape}", t.shape),
                    )),
                }
            };
        let mut params = Vec::new();
        let mut buffers = Vec::new();
        for e in &self.entries {
            let v = find(&s.params, &e.name, &e.shape)?
                .ok_or_else(|| Error::model(&e.name, "missing from the loaded state"))?;
            params.push(v);
            let mut b = Vec::new();
            if e.trainable {
                for n in names {
                    let t = find(&s.optimizer, &format!("{}.{n}", e.name), &e.shape)?
                        .unwrap_or_else(|| Tensor::zeros(e.shape.clone()));
                    b.push(t.data);
                }
            }
            buffers.push(b);
        }
        match &mut self.store {
            Store::Cpu { params: p, state } => {
                *p = params;
                for (st, b) in state.iter_mut().zip(buffers) {
                    if !b.is_empty() {
                        *st = b;
                    }
                }
            }
            Store::Gpu(store) => {
                for ((e, v), b) in self.entries.iter().zip(&params).zip(&buffers) {
                    store.write_param(e, v)?;
                    for (i, data) in b.iter().enumerate() {
                        store.ctx.write(&store.state_of(i, e), data)?;
                    }
                }
            }
        }
        self.step = s.step;
        Ok(())
    }
}
