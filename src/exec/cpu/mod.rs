//! The CPU reference backend: parameters and optimizer state in host vectors, and a run that
//! evaluates every node with its kernel's CPU twin, in order. Slow, simple, and what the GPU is
//! held to.

mod eval;

use super::backend::{Backend, LossReport, RunArgs, needs_gpu};
use super::feed::{Feed, feed_of};
use super::program::ProgramInfo;
use super::state::{ParamEntry, Stored};
use crate::error::{Error, Result};
use crate::graph::{NodeId, Op, Storage};
use crate::tensor::Tensor;

/// Parameters and optimizer state of a session on the CPU reference.
pub(crate) struct CpuBackend {
    params: Vec<Tensor>,
    /// `[param][buffer]`, as the optimizer's `state_names` orders them; frozen params hold none.
    state: Vec<Vec<Vec<f32>>>,
}

/// A program on the CPU: every node's latest value, and the losses not yet reported.
pub(crate) struct CpuExe {
    values: Vec<Option<Tensor>>,
    losses: Vec<LossReport>,
}

impl CpuBackend {
    pub fn new(entries: &[ParamEntry], values: Vec<Tensor>, buffers: usize) -> Self {
        let state = entries
            .iter()
            .map(|e| match e.trainable {
                true => vec![vec![0f32; e.shape.numel()]; buffers],
                false => Vec::new(),
            })
            .collect();
        CpuBackend {
            params: values,
            state,
        }
    }
}

impl Backend for CpuBackend {
    type Exe = CpuExe;

    fn describe(&self) -> String {
        "CPU reference".into()
    }

    async fn compile(&self, info: &ProgramInfo, _: &[ParamEntry]) -> Result<CpuExe> {
        Ok(CpuExe {
            values: vec![None; info.graph.len()],
            losses: Vec::new(),
        })
    }

    async fn run(&mut self, exe: &mut CpuExe, info: &ProgramInfo, run: &RunArgs<'_>) -> Result<()> {
        for (i, node) in info.graph.nodes().iter().enumerate() {
            if info.plan.storage[i] == Storage::Skipped {
                continue;
            }
            let v = match node.op {
                Op::Param => self.params[info.param_of[i].unwrap_or(0)].clone(),
                Op::Input | Op::Labels => match feed_of(run.feeds, i) {
                    Some(Feed::Data(t)) => Tensor::new(node.shape.clone(), t.data.clone())?,
                    Some(Feed::Labels(l)) => {
                        Tensor::new(node.shape.clone(), l.iter().map(|&v| v as f32).collect())?
                    }
                    Some(Feed::Gpu(t)) => {
                        return Err(Error::model(
                            &node.name,
                            format!(
                                "the GPU tensor {} cannot feed the CPU reference: feed host data",
                                t.label
                            ),
                        ));
                    }
                    None => return Err(Error::model(&node.name, "this input was not fed")),
                },
                _ => {
                    let ins: Vec<&Tensor> = node
                        .inputs
                        .iter()
                        .map(|x| exe.values[x.0].as_ref())
                        .collect::<Option<_>>()
                        .ok_or_else(|| Error::invalid(&node.name, "input not computed"))?;
                    eval::eval(node, &ins).map_err(|e| e.in_layer(&node.name))?
                }
            };
            exe.values[i] = Some(v);
        }
        let mut nonfinite = None;
        if run.update.is_some() {
            // A step writes its layers' state back (batch normalisation's running moments).
            for &(e, v) in &info.updates {
                let value = exe.values[v.0]
                    .as_ref()
                    .ok_or_else(|| Error::invalid("step", "state update not computed"))?;
                self.params[e].data.clone_from(&value.data);
            }
        }
        if let Some((o, step)) = run.update {
            for &(e, g) in &info.grads {
                let grad = exe.values[g.0]
                    .as_ref()
                    .ok_or_else(|| Error::invalid("step", "gradient not computed"))?;
                o.cpu_step(
                    &mut self.params[e].data,
                    &grad.data,
                    &mut self.state[e],
                    step,
                )?;
            }
            // The parameters' health, as the GPU computes it after its optimizer dispatch.
            let mut trained: Vec<usize> = info.grads.iter().map(|g| g.0).collect();
            trained.sort_unstable();
            nonfinite = trained
                .into_iter()
                .find(|&e| crate::cpu::health::first_nonfinite(&self.params[e].data) != 0);
        }
        if let Some(l) = info.loss
            && let Some(v) = &exe.values[l.0]
        {
            exe.losses.push(LossReport {
                key: run.key,
                loss: v.data[0],
                step: run.update.is_some(),
                nonfinite,
            });
        }
        Ok(())
    }

    fn losses(&mut self, exe: &mut CpuExe) -> Result<Vec<LossReport>> {
        Ok(std::mem::take(&mut exe.losses))
    }

    async fn flush_losses(&mut self, exe: &mut CpuExe) -> Result<Vec<LossReport>> {
        self.losses(exe)
    }

    async fn read(&self, exe: &CpuExe, node: NodeId) -> Result<Tensor> {
        exe.values
            .get(node.0)
            .cloned()
            .flatten()
            .ok_or_else(|| Error::invalid("fetch", "the program has not run"))
    }

    fn output(&self, _: &CpuExe, _: NodeId) -> Result<crate::gpu::GpuTensor> {
        Err(needs_gpu("a GPU-resident output", "CPU reference"))
    }

    async fn read_state(&self, entries: &[ParamEntry], _: &[&str]) -> Result<Vec<Stored>> {
        entries
            .iter()
            .zip(self.params.iter().zip(&self.state))
            .map(|(e, (v, st))| {
                let buffers = st
                    .iter()
                    .map(|b| Tensor::new(e.shape.clone(), b.clone()))
                    .collect::<Result<_>>()?;
                Ok((v.clone(), buffers))
            })
            .collect()
    }

    fn write_state(&mut self, _: &[ParamEntry], stored: &[Stored]) -> Result<()> {
        for (i, (v, buffers)) in stored.iter().enumerate() {
            self.params[i] = v.clone();
            if !buffers.is_empty() {
                self.state[i] = buffers.iter().map(|b| b.data.clone()).collect();
            }
        }
        Ok(())
    }
}
