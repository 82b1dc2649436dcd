//! Compiled programs: what a program computes ([`ProgramSpec`]), what every backend compiles it
//! from ([`ProgramInfo`]: the graph, its memory plan, where each parameter comes from), and the
//! [`Program`] a session hands back, which remembers the session that compiled it.

use super::backend::AnyExe;
use super::state::ParamEntry;
use crate::error::{Error, Result};
use crate::graph::{Gradients, Graph, MemoryPlan, NodeId, Op, Storage};

/// What a compiled program computes.
#[derive(Clone, Debug, Default)]
pub struct ProgramSpec {
    /// A `[1]` node whose value every run reports (see [`super::Session::losses`]).
    pub loss: Option<NodeId>,
    /// Nodes to read back (or hand over as GPU tensors) after a run.
    pub fetch: Vec<NodeId>,
    /// The parameter gradients to compute (from [`crate::graph::backward`]); needed to train.
    pub grads: Option<Gradients>,
    /// The program runs rarely (a last partial batch, a one-off evaluation): where programs
    /// tier up (CPU drivers), it stays on the quick-to-compile matmul mapping instead of
    /// compiling the final ones in the background.
    pub occasional: bool,
}

impl ProgramSpec {
    /// A training step: `loss` reported by every run, and the gradients `grads` for the
    /// optimizer; `occasional` as the field says.
    pub fn training(loss: NodeId, grads: Gradients, occasional: bool) -> Self {
        ProgramSpec {
            loss: Some(loss),
            fetch: Vec::new(),
            grads: Some(grads),
            occasional,
        }
    }
}

/// A program as every backend sees it: the graph, which nodes run and where each lives, and
/// how its parameters, gradients and labels connect to the session.
pub(crate) struct ProgramInfo {
    pub graph: Graph,
    pub plan: MemoryPlan,
    pub loss: Option<NodeId>,
    pub fetch: Vec<NodeId>,
    /// The session entry of each parameter node.
    pub param_of: Vec<Option<usize>>,
    /// `(entry, gradient node)` of every parameter gradient computed.
    pub grads: Vec<(usize, NodeId)>,
    /// `(entry, value node)` of every state update a step writes back (see
    /// [`crate::graph::Graph::add_update`]): frozen entries only.
    pub updates: Vec<(usize, NodeId)>,
    /// Labels inputs and the number of classes their loss takes.
    pub label_classes: Vec<(NodeId, usize)>,
    pub occasional: bool,
}

impl ProgramInfo {
    /// Checks `spec` against the session's `entries` and plans the run.
    pub fn new(graph: Graph, spec: ProgramSpec, entries: &[ParamEntry]) -> Result<ProgramInfo> {
        let entry = |name: &str| entries.iter().position(|e| e.name == name);
        let mut grads = Vec::new();
        if let Some(g) = &spec.grads {
            for (name, _, node) in &g.params {
                let e = entry(name).ok_or_else(|| {
                    Error::model(name, "the graph's parameter is not in the session")
                })?;
                if !entries[e].trainable {
                    return Err(Error::model(
                        name,
                        "a gradient was asked for a frozen parameter",
                    ));
                }
                grads.push((e, *node));
            }
        }
        if let Some(l) = spec.loss {
            if l.0 >= graph.len() {
                return Err(Error::invalid(
                    "compile",
                    format!("the loss node {} is not in the graph", l.0),
                ));
            }
            if graph.shape(l).numel() != 1 {
                return Err(Error::model(
                    &graph.node(l).name,
                    format!("the loss must have one element, got {}", graph.shape(l)),
                ));
            }
        }
        if let Some(f) = spec.fetch.iter().find(|f| f.0 >= graph.len()) {
            return Err(Error::invalid(
                "compile",
                format!("the fetched node {} is not in the graph", f.0),
            ));
        }
        let mut updates = Vec::new();
        for &(param, value) in graph.updates() {
            let name = &graph.node(param).name;
            let e = entry(name)
                .ok_or_else(|| Error::model(name, "the graph's parameter is not in the session"))?;
            if entries[e].trainable {
                return Err(Error::model(
                    name,
                    "a layer updates this parameter itself, so no optimizer may train it: the session must hold it frozen (a buffer)",
                ));
            }
            updates.push((e, value));
        }
        let mut outputs: Vec<NodeId> = spec.fetch.clone();
        outputs.extend(spec.loss);
        // Kept alive to the end of the run, when a step copies them into their parameters.
        outputs.extend(updates.iter().map(|u| u.1));
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
                    let e = entry(&node.name).ok_or_else(|| {
                        Error::model(&node.name, "the graph's parameter is not in the session")
                    })?;
                    if entries[e].shape != node.shape {
                        return Err(Error::model(
                            &node.name,
                            format!(
                                "the graph wants {} but the session holds {}",
                                node.shape, entries[e].shape
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
        Ok(ProgramInfo {
            graph,
            plan,
            loss: spec.loss,
            fetch: spec.fetch,
            param_of,
            grads,
            updates,
            label_classes,
            occasional: spec.occasional,
        })
    }
}

/// Which session compiled a program: its number and device, for the error when the program is
/// run on another.
#[derive(Clone, Debug)]
pub(crate) struct SessionTag {
    pub id: u64,
    pub device: String,
}

/// A graph compiled for one session. It runs only on that session
/// ([`super::Session::step_async`] and the others refuse it elsewhere, naming both).
pub struct Program {
    pub(crate) id: u64,
    pub(crate) session: SessionTag,
    pub(crate) info: ProgramInfo,
    pub(crate) runs: u64,
    /// The backend's compiled form (its `Backend::Exe`).
    pub(crate) exe: Box<AnyExe>,
    pub(crate) launches: usize,
}

impl Program {
    pub fn graph(&self) -> &Graph {
        &self.info.graph
    }
    /// The memory plan: peak bytes of its tensors beside their naive sum.
    pub fn memory(&self) -> &MemoryPlan {
        &self.info.plan
    }
    /// How many runs so far.
    pub fn runs(&self) -> u64 {
        self.runs
    }
    /// Number of kernel launches per run (GPU), or of evaluated nodes (CPU).
    pub fn launch_count(&self) -> usize {
        self.launches
    }
    /// The loss node, if the program has one.
    pub fn loss(&self) -> Option<NodeId> {
        self.info.loss
    }
}
