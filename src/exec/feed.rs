//! Values fed to a program's inputs before a run, and the check that every input gets one of
//! the right size.

use super::program::ProgramInfo;
use crate::error::{Error, Result};
use crate::gpu::{DType, GpuTensor};
use crate::graph::{NodeId, Op, Storage};
use crate::tensor::Tensor;

/// A value fed to an input node before a run.
#[derive(Clone, Copy, Debug)]
pub enum Feed<'a> {
    /// Host data for an image input (written to the device with the run).
    Data(&'a Tensor),
    /// Host class labels for a labels input (checked against the number of classes).
    Labels(&'a [u32]),
    /// A tensor already on the session's GPU — a host application's own buffer, see
    /// [`GpuTensor::from_buffer`] — copied into the input on the device, with no trip through
    /// host memory: f32 for an image input, u32 for labels (not range-checked: a label out of
    /// range adds nothing to the loss and gets no gradient). Its buffer needs `COPY_SRC`.
    Gpu(&'a GpuTensor),
}

impl Feed<'_> {
    fn describe(&self) -> String {
        match self {
            Feed::Data(t) => format!("data {}", t.shape),
            Feed::Labels(l) => format!("{} labels", l.len()),
            Feed::Gpu(t) => format!("GPU tensor {} {} {:?}", t.label, t.shape, t.dtype),
        }
    }
}

/// The feed for node `i`, if any.
pub(crate) fn feed_of<'a>(feeds: &[(NodeId, Feed<'a>)], i: usize) -> Option<Feed<'a>> {
    feeds.iter().find(|(id, _)| id.0 == i).map(|f| f.1)
}

/// Checks `feeds` against the inputs `p` reads: each is fed, with as many elements as the
/// input has, of the input's kind; host labels are in range of their loss's classes.
pub(crate) fn check(p: &ProgramInfo, feeds: &[(NodeId, Feed)]) -> Result<()> {
    for (id, _) in feeds {
        if id.0 >= p.graph.len() {
            return Err(Error::invalid(
                "feed",
                format!("node {} is not in the program's graph", id.0),
            ));
        }
    }
    for (i, node) in p.graph.nodes().iter().enumerate() {
        if p.plan.storage[i] != Storage::Fed {
            continue;
        }
        let n = node.shape.numel();
        let ok = match (&node.op, feed_of(feeds, i)) {
            (_, None) => return Err(Error::model(&node.name, "this input was not fed")),
            (Op::Input, Some(Feed::Data(t))) => t.numel() == n,
            (Op::Labels, Some(Feed::Labels(l))) if l.len() == n => {
                if let Some(&(_, classes)) = p.label_classes.iter().find(|(id, _)| id.0 == i) {
                    crate::cpu::loss::check_labels(l, classes)
                        .map_err(|e| Error::model(&node.name, e))?;
                }
                true
            }
            (Op::Input, Some(Feed::Gpu(t))) => t.numel() == n && t.dtype == DType::F32,
            (Op::Labels, Some(Feed::Gpu(t))) => t.numel() == n && t.dtype == DType::U32,
            _ => false,
        };
        if !ok {
            let got = feed_of(feeds, i).map(|f| f.describe()).unwrap_or_default();
            return Err(Error::model(
                &node.name,
                format!("the {} input is {}, fed {got}", node.op.name(), node.shape),
            ));
        }
    }
    Ok(())
}
