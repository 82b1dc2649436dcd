//! Activation fusion: `act(matmul(..))` becomes one matmul whose epilogue applies `act`, saving a
//! kernel and a pass over memory. Run it on a forward graph before [`super::backward`]: the
//! matmul's backward rule then differentiates through the fused activation using its output.

use super::{Graph, NodeId, Op};
use crate::spec::Activation;

/// Folds every activation whose input is a matmul without one, used by nothing else and not in
/// `keep` (nodes whose pre-activation value is wanted), into that matmul. The activation node
/// becomes a view of the matmul. Returns how many were fused.
pub fn fuse_activations(graph: &mut Graph, keep: &[NodeId]) -> usize {
    let mut consumers = vec![0usize; graph.len()];
    for n in graph.nodes() {
        for i in &n.inputs {
            consumers[i.0] += 1;
        }
    }
    let mut fused = 0;
    for i in 0..graph.len() {
        let Op::Activation(act) = graph.node(NodeId(i)).op else {
            continue;
        };
        // The gradient is taken from the output, which needs y > 0 ⇔ x > 0.
        let fusible = match act {
            Activation::LeakyRelu(s) => s > 0.0,
            Activation::None => false,
            a => a.fusible(),
        };
        let src = graph.node(NodeId(i)).inputs[0];
        let ok = fusible
            && consumers[src.0] == 1
            && !keep.contains(&src)
            && matches!(&graph.node(src).op, Op::Matmul(s) if s.act == Activation::None && !s.sum_batches);
        if !ok {
            continue;
        }
        if let Op::Matmul(spec) = &mut graph.node_mut(src).op {
            spec.act = act;
        }
        graph.node_mut(NodeId(i)).op = Op::Reshape;
        fused += 1;
    }
    fused
}
