//! Computation graphs: nodes in the order they were added (which is always a topological
//! order), shapes inferred as they are added, reverse-mode autodiff as a transform that appends
//! the backward nodes to the same graph, and the liveness-based memory planner.
//!
//! | file | holds |
//! |---|---|
//! | `op.rs` | the op set ([`Op`]) |
//! | `builder.rs` | the methods that add nodes, with shape inference and errors naming the layer |
//! | `autodiff.rs` | one backward rule per op ([`backward`]) |
//! | `fuse.rs` | folds an activation into the matmul before it ([`fuse_activations`]) |
//! | `plan.rs` | which nodes run, and which buffer each one lives in ([`MemoryPlan`]) |

mod autodiff;
mod builder;
mod fuse;
mod op;
mod plan;

pub use autodiff::{Gradients, backward};
pub use fuse::fuse_activations;
pub use op::Op;
pub use plan::{MemoryPlan, Storage, needed_nodes};

use crate::shape::Shape;

/// Index of a node in its [`Graph`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub usize);

/// One operation and its output.
#[derive(Clone, Debug)]
pub struct Node {
    pub op: Op,
    pub inputs: Vec<NodeId>,
    pub shape: Shape,
    /// The layer (or parameter, or input) the node belongs to: `encoder.0`, `encoder.0.weight`,
    /// `encoder.0 backward`. Parameter nodes carry their state_dict name here.
    pub name: String,
}

/// A graph under construction or ready to compile. Nodes only ever refer to earlier nodes.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    nodes: Vec<Node>,
    /// The layer that nodes added now belong to (see [`Graph::set_layer`]).
    layer: String,
    /// In a training graph, the fed step number that random layers (dropout) draw from; `None`
    /// in an evaluation graph, where they are the identity. See [`Graph::set_training_step`].
    training_step: Option<NodeId>,
    /// A training graph: batch normalisation uses the batch's moments and updates its running
    /// ones. See [`Graph::set_training`].
    training: bool,
    /// `(parameter node, new value)`: state a training step writes back after its run (batch
    /// normalisation's running moments). See [`Graph::add_update`].
    updates: Vec<(NodeId, NodeId)>,
}

impl Graph {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }
    /// Makes this a training graph whose random layers draw from `step` (a fed u32 `[1]`).
    pub fn set_training_step(&mut self, step: Option<NodeId>) {
        self.training_step = step;
    }
    /// Makes this a training graph (or not): layers that differ between training and evaluation
    /// (batch normalisation, dropout) add their training form.
    pub fn set_training(&mut self, training: bool) {
        self.training = training;
    }
    pub fn is_training(&self) -> bool {
        self.training
    }
    /// Asks a training step to write `value` into the (frozen) parameter `param` after its run,
    /// as PyTorch updates a module's buffers in place.
    pub fn add_update(&mut self, param: NodeId, value: NodeId) -> crate::Result<()> {
        let (p, v) = (self.node(param), self.node(value));
        if !matches!(p.op, Op::Param) || p.shape != v.shape {
            return Err(crate::Error::model(
                &p.name,
                format!(
                    "an update must write a parameter's own shape: {} {} ← {} {}",
                    p.op.name(),
                    p.shape,
                    v.op.name(),
                    v.shape
                ),
            ));
        }
        self.updates.push((param, value));
        Ok(())
    }
    /// `(parameter node, new value)` of every state update (see [`Graph::add_update`]).
    pub fn updates(&self) -> &[(NodeId, NodeId)] {
        &self.updates
    }
    /// The step random layers draw from, where this is a training graph.
    pub fn training_step(&self) -> Option<NodeId> {
        self.training_step
    }
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.0]
    }
    pub fn shape(&self, id: NodeId) -> &Shape {
        &self.nodes[id.0].shape
    }
    pub fn len(&self) -> usize {
        self.nodes.len()
    }
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Names the layer that the next nodes belong to; errors and GPU labels use it.
    pub fn set_layer(&mut self, layer: impl Into<String>) {
        self.layer = layer.into();
    }
    pub fn layer(&self) -> &str {
        &self.layer
    }

    /// Every parameter node, with its name, in the order added.
    pub fn params(&self) -> Vec<(NodeId, &str)> {
        self.nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| matches!(n.op, Op::Param))
            .map(|(i, n)| (NodeId(i), n.name.as_str()))
            .collect()
    }

    /// The parameter node called `name`.
    pub fn param_node(&self, name: &str) -> Option<NodeId> {
        self.params()
            .into_iter()
            .find(|(_, n)| *n == name)
            .map(|(id, _)| id)
    }

    /// Appends a node whose shape has already been worked out.
    pub(crate) fn push(
        &mut self,
        op: Op,
        inputs: Vec<NodeId>,
        shape: Shape,
        name: String,
    ) -> NodeId {
        debug_assert!(inputs.iter().all(|i| i.0 < self.nodes.len()));
        self.nodes.push(Node {
            op,
            inputs,
            shape,
            name,
        });
        NodeId(self.nodes.len() - 1)
    }

    /// Lets a transform (activation fusion) rewrite a node in place.
    pub(crate) fn node_mut(&mut self, id: NodeId) -> &mut Node {
        &mut self.nodes[id.0]
    }
}
