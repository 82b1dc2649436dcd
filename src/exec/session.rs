//! A [`Session`]: a model's parameters and optimizer state on one device, the programs compiled
//! against them, and the runs and read-backs of those programs.
//!
//! Every method that waits for the device is `async` (`*_async`) and never blocks; on native
//! targets each has a blocking twin of the plain name that waits on this thread for at most
//! [`crate::Options::wait_timeout`]. A program runs only on the session that compiled it.

use super::Profile;
use super::backend::{DynBackend, LossReport, RecordedRun, RunArgs};
use super::device::Device;
use super::feed::{self, Feed};
use super::program::{Program, ProgramInfo, ProgramSpec, SessionTag};
use super::state::{ParamEntry, State};
use crate::error::{Error, Result};
use crate::gpu::GpuTensor;
use crate::graph::{Graph, NodeId};
use crate::nn::Optimizer;
use crate::tensor::Tensor;
use std::sync::atomic::{AtomicU64, Ordering};

static NEXT_SESSION: AtomicU64 = AtomicU64::new(1);
static NEXT_PROGRAM: AtomicU64 = AtomicU64::new(1);

/// A run recorded into a host's command encoder ([`Session::record_step`]). Hand it back to
/// [`Session::submitted`] once the host has submitted the encoder: that starts the read-back of
/// the run's loss and lets the session run again.
#[must_use = "report the submission with Session::submitted, or the session refuses further runs"]
#[derive(Debug)]
pub struct Recorded {
    session: u64,
    program: u64,
    run: RecordedRun,
}

/// A model's parameters and optimizer state on one device.
pub struct Session {
    id: u64,
    device: Device,
    entries: Vec<ParamEntry>,
    optimizer: Option<Optimizer>,
    step: u64,
    backend: Box<dyn DynBackend>,
    /// The program of a run recorded into a host's encoder and not yet reported submitted.
    unsubmitted: Option<u64>,
    /// The first divergence seen, as (step, what): no step runs after it.
    diverged: Option<(u64, String)>,
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
        let entries: Vec<ParamEntry> = params
            .iter()
            .map(|(name, t)| ParamEntry {
                name: name.clone(),
                shape: t.shape.clone(),
                trainable: !frozen(name),
            })
            .collect();
        for (i, e) in entries.iter().enumerate() {
            if entries[..i].iter().any(|o| o.name == e.name) {
                return Err(Error::model(&e.name, "two parameters have this name"));
            }
        }
        let values: Vec<Tensor> = params.into_iter().map(|(_, t)| t).collect();
        let backend = device.backend(&entries, values, optimizer.as_ref())?;
        Ok(Session {
            id: NEXT_SESSION.fetch_add(1, Ordering::Relaxed),
            device,
            entries,
            optimizer,
            step: 0,
            backend,
            unsubmitted: None,
            diverged: None,
        })
    }

    /// This session's number (unique in the process), as errors name it.
    pub fn id(&self) -> u64 {
        self.id
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

    fn tag(&self) -> SessionTag {
        SessionTag {
            id: self.id,
            device: self.backend.describe(),
        }
    }

    /// Checks that `p` was compiled by this session.
    fn own(&self, p: &Program, op: &str) -> Result<()> {
        if p.session.id == self.id {
            return Ok(());
        }
        Err(Error::invalid(
            op,
            format!(
                "the program was compiled by session #{} ({}), not by this session #{} ({}): a program runs only on the session that compiled it",
                p.session.id,
                p.session.device,
                self.id,
                self.backend.describe()
            ),
        ))
    }

    /// Refuses to write anything while a recorded run waits for its submission: the run reads
    /// its inputs and the optimizer's step from buffers that a later write would change first.
    fn not_waiting_for_submission(&self, op: &str) -> Result<()> {
        match self.unsubmitted {
            None => Ok(()),
            Some(_) => Err(Error::invalid(
                op,
                "a run recorded into a host's command encoder has not been reported submitted yet (Session::submitted)",
            )),
        }
    }

    /// Compiles `graph` to compute `spec` against this session's parameters: buffers,
    /// pipelines and launches are built now (and matmul mappings measured where tuning is on),
    /// so a run allocates nothing.
    pub async fn compile_async(&self, graph: Graph, spec: ProgramSpec) -> Result<Program> {
        let info = ProgramInfo::new(graph, spec, &self.entries)?;
        let exe = self.backend.compile(&info, &self.entries).await?;
        let launches = launch_count(&info);
        Ok(Program {
            id: NEXT_PROGRAM.fetch_add(1, Ordering::Relaxed),
            session: self.tag(),
            info,
            runs: 0,
            exe,
            launches,
        })
    }

    /// Checks a run of `p` and returns its arguments (the step number when `update`).
    fn prepare<'a>(
        &self,
        p: &Program,
        feeds: &'a [(NodeId, Feed<'a>)],
        update: bool,
        op: &str,
    ) -> Result<RunArgs<'a>> {
        self.own(p, op)?;
        self.not_waiting_for_submission(op)?;
        if update && let Some((step, what)) = &self.diverged {
            return Err(Error::Diverged {
                step: *step,
                what: what.clone(),
            });
        }
        feed::check(&p.info, feeds)?;
        let update = match update {
            false => None,
            true => {
                let o = self
                    .optimizer
                    .ok_or_else(|| Error::invalid(op, "the session has no optimizer"))?;
                if p.info.grads.is_empty() {
                    return Err(Error::invalid(
                        op,
                        "the program computes no gradients (compile it with ProgramSpec::grads)",
                    ));
                }
                let trainable = self.entries.iter().filter(|e| e.trainable).count();
                if p.info.grads.len() != trainable {
                    return Err(Error::invalid(
                        op,
                        format!(
                            "the program computes {} gradients but the session trains {trainable} parameters",
                            p.info.grads.len()
                        ),
                    ));
                }
                Some((o, self.step + 1))
            }
        };
        let key = match update {
            Some((_, step)) => step,
            None => p.runs + 1,
        };
        Ok(RunArgs { feeds, update, key })
    }

    /// Counts a run that went through.
    fn ran(&mut self, p: &mut Program, run: &RunArgs<'_>) {
        p.runs += 1;
        if let Some((_, step)) = run.update {
            self.step = step;
        }
    }

    /// Runs the program (forward, and backward if it has gradients) without updating anything.
    /// Returns once submitted; waits only when too many runs' losses are still in flight.
    pub async fn run_async(&mut self, p: &mut Program, feeds: &[(NodeId, Feed<'_>)]) -> Result<()> {
        let run = self.prepare(p, feeds, false, "run")?;
        self.backend.run(&mut *p.exe, &p.info, &run).await?;
        self.ran(p, &run);
        Ok(())
    }

    /// One training step: the run, then the optimizer on every trainable parameter, in one
    /// submission on a GPU. Returns once submitted (the loss arrives later through
    /// [`Session::losses`]); waits only when too many steps are still in flight
    /// ([`Session::ready`] says whether it would).
    pub async fn step_async(
        &mut self,
        p: &mut Program,
        feeds: &[(NodeId, Feed<'_>)],
    ) -> Result<()> {
        let run = self.prepare(p, feeds, true, "step")?;
        self.backend.run(&mut *p.exe, &p.info, &run).await?;
        self.ran(p, &run);
        Ok(())
    }

    /// Records one training step into the host's `encoder` instead of submitting it; the host
    /// submits. Never waits: it fails if too many steps are in flight (check
    /// [`Session::ready`] first). Report the submission with [`Session::submitted`]; until then
    /// the session refuses to run or record again.
    pub fn record_step(
        &mut self,
        p: &mut Program,
        feeds: &[(NodeId, Feed<'_>)],
        encoder: &mut wgpu::CommandEncoder,
    ) -> Result<Recorded> {
        self.record(p, feeds, encoder, true)
    }

    /// As [`Session::record_step`], without the optimizer (a forward, or forward and backward,
    /// run).
    pub fn record_run(
        &mut self,
        p: &mut Program,
        feeds: &[(NodeId, Feed<'_>)],
        encoder: &mut wgpu::CommandEncoder,
    ) -> Result<Recorded> {
        self.record(p, feeds, encoder, false)
    }

    fn record(
        &mut self,
        p: &mut Program,
        feeds: &[(NodeId, Feed<'_>)],
        encoder: &mut wgpu::CommandEncoder,
        update: bool,
    ) -> Result<Recorded> {
        let run = self.prepare(p, feeds, update, "record")?;
        let recorded = self.backend.record(&mut *p.exe, &p.info, &run, encoder)?;
        self.ran(p, &run);
        self.unsubmitted = Some(p.id);
        Ok(Recorded {
            session: self.id,
            program: p.id,
            run: recorded,
        })
    }

    /// The host has submitted the encoder holding `recorded` (a run of `p`): the loss read-back
    /// starts, and the session may run again.
    pub fn submitted(&mut self, p: &mut Program, recorded: Recorded) -> Result<()> {
        self.own(p, "submitted")?;
        if recorded.session != self.id || recorded.program != p.id {
            return Err(Error::invalid(
                "submitted",
                "the recorded run belongs to another program or session",
            ));
        }
        self.backend.submitted(&mut *p.exe, recorded.run)?;
        self.unsubmitted = None;
        Ok(())
    }

    /// Whether a run of `p` could start now without waiting for the device (fewer than the
    /// loss ring's slots are in flight). Never waits.
    pub fn ready(&mut self, p: &mut Program) -> Result<bool> {
        self.own(p, "ready")?;
        self.backend.ready(&mut *p.exe)
    }

    /// The losses of finished runs as `(step, loss)` for training steps (`(run, loss)` for
    /// other runs), oldest first, without waiting: a GPU reports a run's loss some runs later.
    /// A step whose loss, or whose update of the parameters, is not finite ends training with
    /// [`Error::Diverged`] naming the step and the loss or the first parameter (every later
    /// step is refused with it too).
    pub fn losses(&mut self, p: &mut Program) -> Result<Vec<(u64, f32)>> {
        self.own(p, "losses")?;
        let reports = self.backend.losses(&mut *p.exe)?;
        self.screen(reports)
    }

    /// Every outstanding loss, once the device has finished the runs that produce them (and
    /// [`Error::Diverged`] as [`Session::losses`] says).
    pub async fn flush_losses_async(&mut self, p: &mut Program) -> Result<Vec<(u64, f32)>> {
        self.own(p, "losses")?;
        let reports = self.backend.flush_losses(&mut *p.exe).await?;
        self.screen(reports)
    }

    /// The losses of `reports`, or the divergence of the first step whose loss or parameters
    /// are not finite (the loss first: it is computed before the update).
    fn screen(&mut self, reports: Vec<LossReport>) -> Result<Vec<(u64, f32)>> {
        let mut out = Vec::with_capacity(reports.len());
        for r in reports {
            if r.step {
                let what = if !r.loss.is_finite() {
                    Some("the loss".to_string())
                } else {
                    r.nonfinite
                        .map(|e| format!("parameter {}", self.entries[e].name))
                };
                if let Some(what) = what {
                    self.diverged.get_or_insert((r.key, what.clone()));
                    return Err(Error::Diverged { step: r.key, what });
                }
            }
            out.push((r.key, r.loss));
        }
        Ok(out)
    }

    /// A fetched node's (or the loss's) value after the latest run, read back.
    pub async fn fetch_async(&self, p: &Program, node: NodeId) -> Result<Tensor> {
        self.check_output(p, node, "fetch")?;
        self.backend.read(&*p.exe, node).await
    }

    /// A fetched node's (or the loss's) buffer on the GPU, for a host to bind or copy from
    /// ([`crate::GpuContext::copy`]). It holds the latest run's value once that run has
    /// finished on the device, and until the next run of `p` overwrites it. GPU sessions only.
    pub fn output(&self, p: &Program, node: NodeId) -> Result<GpuTensor> {
        self.check_output(p, node, "output")?;
        self.backend.output(&*p.exe, node)
    }

    fn check_output(&self, p: &Program, node: NodeId, op: &str) -> Result<()> {
        self.own(p, op)?;
        if !p.info.fetch.contains(&node) && p.info.loss != Some(node) {
            return Err(Error::invalid(
                op,
                format!("node {} was not listed in ProgramSpec::fetch", node.0),
            ));
        }
        Ok(())
    }

    /// The gradients the latest run of `p` computed, by parameter name, read back.
    pub async fn gradients_async(&self, p: &Program) -> Result<Vec<(String, Tensor)>> {
        self.own(p, "gradients")?;
        let mut out = Vec::new();
        for &(e, node) in &p.info.grads {
            let t = self.backend.read(&*p.exe, node).await?;
            out.push((self.entries[e].name.clone(), t));
        }
        Ok(out)
    }

    /// Parameters, optimizer state and step count, read back to the host.
    pub async fn state_async(&self) -> Result<State> {
        let names = self.optimizer.map_or(&[][..], |o| o.state_names());
        let stored = self.backend.read_state(&self.entries, names).await?;
        Ok(State::assemble(&self.entries, names, stored, self.step))
    }

    /// Loads parameter values (every session parameter must be present, with its shape),
    /// optimizer state (absent buffers start at zero: a weights-only checkpoint starts fresh
    /// optimizer state) and the step count.
    pub fn load_state(&mut self, s: &State) -> Result<()> {
        self.not_waiting_for_submission("load_state")?;
        let names = self.optimizer.map_or(&[][..], |o| o.state_names());
        let stored = s.split(&self.entries, names)?;
        self.backend.write_state(&self.entries, &stored)?;
        self.step = s.step;
        Ok(())
    }

    /// Runs one step of `p` (with the optimizer when `update`), timing every dispatch. The
    /// step counts as a real one: parameters are updated as [`Session::step_async`] would.
    pub async fn profile_async(
        &mut self,
        p: &mut Program,
        feeds: &[(NodeId, Feed<'_>)],
        update: bool,
    ) -> Result<Profile> {
        let run = self.prepare(p, feeds, update, "profile")?;
        let profile = self.backend.profile(&mut *p.exe, &p.info, &run).await?;
        self.ran(p, &run);
        Ok(profile)
    }
}

/// Blocking twins of the async methods (native only): each waits on this thread for at most
/// the context's [`crate::Options::wait_timeout`].
#[cfg(not(target_arch = "wasm32"))]
impl Session {
    /// Blocking [`Session::compile_async`].
    pub fn compile(&self, graph: Graph, spec: ProgramSpec) -> Result<Program> {
        self.device
            .block_on("compile", self.compile_async(graph, spec))
    }

    /// Blocking [`Session::run_async`].
    pub fn run(&mut self, p: &mut Program, feeds: &[(NodeId, Feed<'_>)]) -> Result<()> {
        let device = self.device.clone();
        device.block_on("run", self.run_async(p, feeds))
    }

    /// Blocking [`Session::step_async`].
    pub fn step(&mut self, p: &mut Program, feeds: &[(NodeId, Feed<'_>)]) -> Result<()> {
        let device = self.device.clone();
        device.block_on("step", self.step_async(p, feeds))
    }

    /// Blocking [`Session::flush_losses_async`].
    pub fn flush_losses(&mut self, p: &mut Program) -> Result<Vec<(u64, f32)>> {
        let device = self.device.clone();
        device.block_on("losses", self.flush_losses_async(p))
    }

    /// The loss of the latest run, waiting for it; earlier unread losses are dropped.
    pub fn last_loss(&mut self, p: &mut Program) -> Result<f32> {
        let all = self.flush_losses(p)?;
        all.last()
            .map(|l| l.1)
            .ok_or_else(|| Error::invalid("last_loss", "the program has no loss or has not run"))
    }

    /// Blocking [`Session::fetch_async`].
    pub fn fetch(&self, p: &Program, node: NodeId) -> Result<Tensor> {
        self.device.block_on("fetch", self.fetch_async(p, node))
    }

    /// Blocking [`Session::gradients_async`].
    pub fn gradients(&self, p: &Program) -> Result<Vec<(String, Tensor)>> {
        self.device.block_on("gradients", self.gradients_async(p))
    }

    /// Blocking [`Session::state_async`].
    pub fn state(&self) -> Result<State> {
        self.device.block_on("state", self.state_async())
    }

    /// Blocking [`Session::profile_async`].
    pub fn profile(
        &mut self,
        p: &mut Program,
        feeds: &[(NodeId, Feed<'_>)],
        update: bool,
    ) -> Result<Profile> {
        let device = self.device.clone();
        device.block_on("profile", self.profile_async(p, feeds, update))
    }

    /// Waits until every matmul of `p` runs on its final mapping (programs on CPU drivers start
    /// on a quick-to-compile one and swap in the background; see `gpu/cpu_driver/tier.rs`). Results
    /// do not change; benchmarks call this so that they time the final kernels. The swapped-in
    /// pipelines still compile on their first run.
    pub fn finish_tier_up(&mut self, p: &mut Program) -> Result<()> {
        self.own(p, "finish_tier_up")?;
        self.backend.finish_tier_up(&mut *p.exe)
    }
}

/// Kernel launches per run: one per node that runs a kernel (on the CPU, one evaluation each).
fn launch_count(info: &ProgramInfo) -> usize {
    use crate::graph::Storage;
    info.graph
        .nodes()
        .iter()
        .zip(&info.plan.storage)
        .filter(|(n, s)| **s != Storage::Skipped && !n.op.is_leaf() && !n.op.is_view())
        .count()
}
