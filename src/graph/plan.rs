//! Which nodes a run needs, and where each one's output lives.
//!
//! Intermediate tensors share a pool of buffers by liveness: nodes are visited in order, each
//! output takes the smallest free buffer that fits (or grows the largest free one, or adds one),
//! and a buffer returns to the pool after the last node that reads it. A node's output is taken
//! before its inputs are released, so no kernel ever reads and writes one buffer. Parameters,
//! their gradients, fed inputs and constants live outside the pool.

use super::{Graph, NodeId, Op};
use std::collections::HashMap;

/// Where a node's output lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Storage {
    /// Not needed by this run.
    Skipped,
    /// A parameter, in the executor's parameter store.
    Param,
    /// Written before each run (inputs, labels).
    Fed,
    /// A constant, uploaded once.
    Const,
    /// A parameter's gradient, at this index of the gradient list, in the gradient store.
    Grad(usize),
    /// Buffer `slot` of the pool.
    Pool(usize),
    /// The storage of this (non-view) node, under another shape.
    View(NodeId),
}

/// The storage of every node of one run, and what it costs.
#[derive(Clone, Debug)]
pub struct MemoryPlan {
    pub storage: Vec<Storage>,
    /// Size in bytes of each pool buffer.
    pub slot_bytes: Vec<u64>,
    /// Bytes outside the pool: parameters, gradients, fed inputs, constants.
    pub fixed_bytes: u64,
    /// The sum of the sizes of every tensor the run produces or reads, as if none shared a buffer.
    pub naive_bytes: u64,
}

impl MemoryPlan {
    /// Bytes the run's tensors occupy at once: the pool plus the fixed tensors.
    pub fn peak_bytes(&self) -> u64 {
        self.slot_bytes.iter().sum::<u64>() + self.fixed_bytes
    }
}

/// Marks the nodes that `outputs` depend on (including themselves).
pub fn needed_nodes(graph: &Graph, outputs: &[NodeId]) -> Vec<bool> {
    let mut needed = vec![false; graph.len()];
    for o in outputs {
        needed[o.0] = true;
    }
    for i in (0..graph.len()).rev() {
        if needed[i] {
            for x in &graph.nodes()[i].inputs {
                needed[x.0] = true;
            }
        }
    }
    needed
}

fn bytes(graph: &Graph, id: NodeId) -> u64 {
    graph.shape(id).numel().max(1) as u64 * 4
}

impl MemoryPlan {
    /// Plans a run that computes `outputs` (kept alive to the end, for reading back), with
    /// `grads[i]` placed in the gradient store at index i.
    pub fn new(graph: &Graph, outputs: &[NodeId], grads: &[NodeId]) -> MemoryPlan {
        let mut wanted: Vec<NodeId> = outputs.to_vec();
        wanted.extend_from_slice(grads);
        let needed = needed_nodes(graph, &wanted);
        let n = graph.len();
        let root = |mut id: NodeId| {
            while graph.node(id).op.is_view() {
                id = graph.node(id).inputs[0];
            }
            id
        };
        // The last node that reads each root, directly or through views.
        let mut last_use: Vec<Option<usize>> = vec![None; n];
        // A view reads nothing itself; its readers count as readers of its root.
        for i in (0..n).filter(|&i| needed[i] && !graph.nodes()[i].op.is_view()) {
            for &x in &graph.nodes()[i].inputs {
                let r = root(x);
                last_use[r.0] = Some(last_use[r.0].map_or(i, |u| u.max(i)));
            }
        }
        for &o in &wanted {
            last_use[root(o).0] = Some(usize::MAX);
        }
        let grad_index: HashMap<NodeId, usize> =
            grads.iter().enumerate().map(|(i, &g)| (g, i)).collect();

        let mut storage = vec![Storage::Skipped; n];
        let mut slot_bytes: Vec<u64> = Vec::new();
        let mut free: Vec<usize> = Vec::new();
        let mut fixed_bytes = 0;
        let mut naive_bytes = 0;
        // Pool slots to release after node i runs.
        let mut release: HashMap<usize, Vec<usize>> = HashMap::new();
        for i in (0..n).filter(|&i| needed[i]) {
            let id = NodeId(i);
            let node = graph.node(id);
            if node.op.is_view() {
                storage[i] = Storage::View(root(id));
                continue;
            }
            let size = bytes(graph, id);
            naive_bytes += size;
            storage[i] = match node.op {
                Op::Param => Storage::Param,
                Op::Input | Op::Labels => Storage::Fed,
                Op::Const(_) => Storage::Const,
                _ => match grad_index.get(&id) {
                    Some(&g) => Storage::Grad(g),
                    None => Storage::Pool(take_slot(&mut slot_bytes, &mut free, size)),
                },
            };
            match storage[i] {
                Storage::Pool(slot) => {
                    let end = last_use[i].unwrap_or(i);
                    if end != usize::MAX {
                        release.entry(end).or_default().push(slot);
                    }
                }
                _ => fixed_bytes += size,
            }
            if let Some(slots) = release.remove(&i) {
                free.extend(slots);
            }
        }
        MemoryPlan {
            storage,
            slot_bytes,
            fixed_bytes,
            naive_bytes,
        }
    }
}

/// The smallest free slot that holds `size` bytes; else the largest free one, grown; else a new
/// slot.
fn take_slot(slot_bytes: &mut Vec<u64>, free: &mut Vec<usize>, size: u64) -> usize {
    let fits = free
        .iter()
        .enumerate()
        .filter(|(_, s)| slot_bytes[**s] >= size)
        .min_by_key(|(_, s)| slot_bytes[**s]);
    let pick = match fits {
        Some((pos, _)) => Some(pos),
        None => free
            .iter()
            .enumerate()
            .max_by_key(|(_, s)| slot_bytes[**s])
            .map(|(pos, _)| pos),
    };
    match pick {
        Some(pos) => {
            let slot = free.swap_remove(pos);
            slot_bytes[slot] = slot_bytes[slot].max(size);
            slot
        }
        None => {
            slot_bytes.push(size);
            slot_bytes.len() - 1
        }
    }
}
