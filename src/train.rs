//! The autoencoder trainer: the default use of the engine. Builds the training graph (forward,
//! MSE reconstruction loss, fused activations, backward), compiles it once for a device, and
//! then takes one batch per step. A batch smaller than the one the trainer was built for (the
//! last of an epoch, or a data set smaller than the batch) runs on a program compiled for its
//! size on first use and kept ([`BySize`]); evaluation programs (held-out loss,
//! reconstructions, codes) share the session's parameters the same way.
//!
//! Every wait is `async` (`*_async`); native code also gets blocking twins of the plain names.
//! Images come from the host or from a GPU tensor ([`Images`]); outputs go to the host or stay
//! on the GPU ([`Trainer::evaluate_gpu_async`], [`Trainer::loss_output`]); a step can be
//! recorded into a host's command encoder ([`Trainer::record_step`]).

use crate::error::{Error, Result};
use crate::exec::{BySize, Device, Feed, Program, ProgramSpec, Recorded, Session, State};
use crate::gpu::GpuTensor;
use crate::graph::{Graph, MemoryPlan, NodeId, backward, fuse_activations};
use crate::images::Images;
use crate::nn::{AutoencoderConfig, Optimizer, check_params, init_params};
use crate::tensor::Tensor;

/// Step programs kept for batch sizes other than the trainer's own.
const OTHER_STEP_SIZES: usize = 2;
/// Evaluation programs kept (by batch size).
const EVAL_SIZES: usize = 3;

/// The training graph of an autoencoder at one batch size, and the nodes a step feeds and reads.
pub struct TrainingGraph {
    pub graph: Graph,
    /// The images (`[batch, C, H, W]`).
    pub input: NodeId,
    /// The step a denoising autoencoder's noise is drawn for (a u32 `[1]` to feed every run).
    pub step_input: Option<NodeId>,
    pub loss: NodeId,
    pub grads: crate::graph::Gradients,
}

/// The training graph of `config` at `batch` images.
pub fn training_graph(
    config: &AutoencoderConfig,
    batch: usize,
    frozen: &dyn Fn(&str) -> bool,
) -> Result<TrainingGraph> {
    let mut g = Graph::new();
    let n = config.training_forward(&mut g, batch)?;
    // The target is the clean images, also under input noise.
    let loss = config.loss(&mut g, &n)?;
    fuse_activations(&mut g, &[]);
    // Buffers (batch normalisation's running moments) are never trained.
    let buffers = config.buffers();
    let grads = backward(&mut g, loss, &|n| {
        frozen(n) || buffers.iter().any(|b| b == n)
    })?;
    Ok(TrainingGraph {
        graph: g,
        input: n.input,
        step_input: n.step_input,
        loss,
        grads,
    })
}

fn inference_only() -> Error {
    Error::invalid(
        "trainer",
        "this model was opened for inference only: it cannot train",
    )
}

/// A compiled training step at one batch size.
struct StepProgram {
    program: Program,
    input: NodeId,
    step_input: Option<NodeId>,
    loss: NodeId,
}

impl StepProgram {
    /// The feeds of one step: the images, and the step's number where noise is drawn for it
    /// (`counter` holds it; the session's step count, so a resumed run draws the same noise).
    fn feeds<'a>(&self, images: Feed<'a>, counter: &'a [u32; 1]) -> Vec<(NodeId, Feed<'a>)> {
        let mut f = vec![(self.input, images)];
        if let Some(s) = self.step_input {
            f.push((s, Feed::Labels(counter)));
        }
        f
    }
}

/// A forward-only program at one batch size: images in, loss / reconstruction / code out.
struct EvalProgram {
    program: Program,
    input: NodeId,
    loss: NodeId,
    reconstruction: NodeId,
    code: NodeId,
}

/// An evaluation's outputs left on the GPU: views of the evaluation program's buffers, holding
/// the values once the run has finished on the device, until the next evaluation at the same
/// batch size. Bind them, or copy them into buffers of your own ([`crate::GpuContext::copy`]).
#[derive(Clone, Debug)]
pub struct GpuOutputs {
    /// `[1]`: the mean squared reconstruction error.
    pub loss: GpuTensor,
    /// `[N, C, H, W]`.
    pub reconstruction: GpuTensor,
    /// The encoder's output, `[N, code…]`.
    pub code: GpuTensor,
}

/// Trains an autoencoder on one device.
pub struct Trainer {
    config: AutoencoderConfig,
    session: Session,
    /// The compiled training step at `batch` (absent for an inference-only trainer).
    train: Option<StepProgram>,
    /// Training steps at other (smaller) batch sizes.
    other: BySize<StepProgram>,
    batch: usize,
    /// The batch size of the latest step (whose gradients [`Trainer::gradients_async`] reads).
    last: Option<usize>,
    eval: BySize<EvalProgram>,
    /// Losses of step programs dropped from `other` before they were reported.
    dropped_losses: Vec<(u64, f32)>,
}

impl Trainer {
    /// A trainer for `config` with parameters initialised from `seed` (PyTorch's default
    /// initialisation), stepping up to `batch` images at a time.
    pub async fn new_async(
        device: Device,
        config: AutoencoderConfig,
        batch: usize,
        optimizer: Optimizer,
        seed: u64,
    ) -> Result<Self> {
        let specs = config.params();
        check_params(&specs)?;
        let params = init_params(&specs, seed);
        Self::with_params_async(device, config, batch, optimizer, params).await
    }

    /// A trainer starting from given parameter values (state_dict names).
    pub async fn with_params_async(
        device: Device,
        config: AutoencoderConfig,
        batch: usize,
        optimizer: Optimizer,
        params: Vec<(String, Tensor)>,
    ) -> Result<Self> {
        if batch == 0 {
            return Err(Error::invalid("trainer", "batch size must be at least 1"));
        }
        config.check()?;
        let buffers = config.buffers();
        let session = Session::new(
            device,
            params,
            &|n| buffers.iter().any(|b| b == n),
            Some(optimizer),
        )?;
        let train = compile_step(&session, &config, batch, false).await?;
        Ok(Trainer {
            config,
            session,
            train: Some(train),
            other: BySize::new(OTHER_STEP_SIZES),
            batch,
            last: None,
            eval: BySize::new(EVAL_SIZES),
            dropped_losses: Vec::new(),
        })
    }

    /// A model that only evaluates (reconstructions, codes, held-out loss): no optimizer, no
    /// training step compiled.
    pub fn for_inference(
        device: Device,
        config: AutoencoderConfig,
        params: Vec<(String, Tensor)>,
    ) -> Result<Self> {
        config.check()?;
        let mut want: Vec<(String, Tensor)> = Vec::new();
        for spec in config.params() {
            let t = params
                .iter()
                .find(|(n, _)| *n == spec.name)
                .map(|(_, t)| t.clone())
                .ok_or_else(|| Error::model(&spec.name, "missing from the loaded parameters"))?;
            if t.shape != spec.shape {
                return Err(Error::model(
                    &spec.name,
                    format!(
                        "the loaded tensor is {} but the model needs {}",
                        t.shape, spec.shape
                    ),
                ));
            }
            want.push((spec.name, t));
        }
        let session = Session::new(device, want, &|_| true, None)?;
        Ok(Trainer {
            config,
            session,
            train: None,
            other: BySize::new(OTHER_STEP_SIZES),
            batch: 0,
            last: None,
            eval: BySize::new(EVAL_SIZES),
            dropped_losses: Vec::new(),
        })
    }

    pub fn config(&self) -> &AutoencoderConfig {
        &self.config
    }
    pub fn session(&self) -> &Session {
        &self.session
    }
    pub fn device(&self) -> &Device {
        self.session.device()
    }
    /// The largest batch a step takes (the size the training step was compiled for).
    pub fn batch(&self) -> usize {
        self.batch
    }
    /// Steps taken (restored by [`Trainer::load_state`]).
    pub fn step_count(&self) -> u64 {
        self.session.step_count()
    }
    /// The training step's memory plan (None for an inference-only model).
    pub fn memory(&self) -> Option<&MemoryPlan> {
        self.train.as_ref().map(|p| p.program.memory())
    }
    /// The compiled training step at the trainer's batch size (None for an inference-only
    /// model).
    pub fn program(&self) -> Option<&Program> {
        self.train.as_ref().map(|p| &p.program)
    }
    /// The batch sizes other than [`Trainer::batch`] that have a compiled step, least recently
    /// used first.
    pub fn other_step_sizes(&self) -> Vec<usize> {
        self.other.sizes()
    }

    /// One step on `images` (`[N, C, H, W]`, N up to [`Trainer::batch`]). Returns once
    /// submitted; the loss is reported later by [`Trainer::losses`]. Waits only when several
    /// steps are still in flight on the device ([`Trainer::ready`] says whether it would), or
    /// to compile the step for a batch size met for the first time.
    pub async fn step_async<'a>(&mut self, images: impl Into<Images<'a>>) -> Result<()> {
        let images = images.into();
        let train = self.train.as_mut().ok_or_else(inference_only)?;
        let n = images.batch("step", self.config.image, self.batch)?;
        let counter = [self.session.step_count() as u32];
        if n == self.batch {
            let feeds = train.feeds(images.feed(), &counter);
            self.session.step_async(&mut train.program, &feeds).await?;
        } else {
            let mut p = match self.other.take(n) {
                Some(p) => p,
                None => compile_step(&self.session, &self.config, n, true).await?,
            };
            let feeds = p.feeds(images.feed(), &counter);
            let r = self.session.step_async(&mut p.program, &feeds).await;
            self.keep_other(n, p).await?;
            r?;
        }
        self.last = Some(n);
        Ok(())
    }

    /// Keeps a step program for batch size `n`, collecting the losses of the one it displaces.
    async fn keep_other(&mut self, n: usize, p: StepProgram) -> Result<()> {
        for (_, mut old) in self.other.put(n, p) {
            let l = self.session.flush_losses_async(&mut old.program).await?;
            self.dropped_losses.extend(l);
        }
        Ok(())
    }

    /// Whether a full-batch step could be submitted now without waiting for the device. For a
    /// host's frame loop: step when this says so, and the frame never stalls.
    pub fn ready(&mut self) -> Result<bool> {
        let train = self.train.as_mut().ok_or_else(inference_only)?;
        self.session.ready(&mut train.program)
    }

    /// Records one full-batch training step into the host's `encoder`; the host submits it and
    /// then reports so with [`Trainer::submitted`] (which starts the loss read-back). Never
    /// waits: fails if too many steps are in flight (see [`Trainer::ready`]).
    pub fn record_step<'a>(
        &mut self,
        images: impl Into<Images<'a>>,
        encoder: &mut wgpu::CommandEncoder,
    ) -> Result<Recorded> {
        let images = images.into();
        let train = self.train.as_mut().ok_or_else(inference_only)?;
        let n = images.batch("record_step", self.config.image, self.batch)?;
        if n != self.batch {
            return Err(Error::invalid(
                "record_step",
                format!(
                    "records full batches of {} images only, got {n}: step smaller batches with step_async",
                    self.batch
                ),
            ));
        }
        let counter = [self.session.step_count() as u32];
        let feeds = train.feeds(images.feed(), &counter);
        let r = self
            .session
            .record_step(&mut train.program, &feeds, encoder)?;
        self.last = Some(n);
        Ok(r)
    }

    /// The host has submitted the encoder holding `recorded`.
    pub fn submitted(&mut self, recorded: Recorded) -> Result<()> {
        let train = self.train.as_mut().ok_or_else(inference_only)?;
        self.session.submitted(&mut train.program, recorded)
    }

    /// The full-batch training step's loss on the GPU (`[1]`): the latest step's, once it has
    /// finished on the device. For a host that reads or draws it itself.
    pub fn loss_output(&self) -> Result<GpuTensor> {
        let train = self.train.as_ref().ok_or_else(inference_only)?;
        self.session.output(&train.program, train.loss)
    }

    /// One full-batch training step with every dispatch timed (GPU timestamps where the adapter
    /// has them); the step counts like any other.
    pub async fn profile_async<'a>(
        &mut self,
        images: impl Into<Images<'a>>,
    ) -> Result<crate::exec::Profile> {
        let images = images.into();
        let train = self.train.as_mut().ok_or_else(inference_only)?;
        images.batch("profile", self.config.image, self.batch)?;
        let counter = [self.session.step_count() as u32];
        let feeds = train.feeds(images.feed(), &counter);
        let p = self
            .session
            .profile_async(&mut train.program, &feeds, true)
            .await?;
        self.last = Some(self.batch);
        Ok(p)
    }

    /// `(step, loss)` of every finished step not yet reported, oldest first, without waiting.
    pub fn losses(&mut self) -> Result<Vec<(u64, f32)>> {
        let train = self.train.as_mut().ok_or_else(inference_only)?;
        let mut all = std::mem::take(&mut self.dropped_losses);
        all.extend(self.session.losses(&mut train.program)?);
        for p in self.other.values_mut() {
            all.extend(self.session.losses(&mut p.program)?);
        }
        all.sort_by_key(|l| l.0);
        Ok(all)
    }

    /// As [`Trainer::losses`], once every step submitted so far has finished.
    pub async fn flush_losses_async(&mut self) -> Result<Vec<(u64, f32)>> {
        let train = self.train.as_mut().ok_or_else(inference_only)?;
        let mut all = std::mem::take(&mut self.dropped_losses);
        all.extend(self.session.flush_losses_async(&mut train.program).await?);
        for p in self.other.values_mut() {
            all.extend(self.session.flush_losses_async(&mut p.program).await?);
        }
        all.sort_by_key(|l| l.0);
        Ok(all)
    }

    /// The gradients of the latest step, by parameter name, read back.
    pub async fn gradients_async(&mut self) -> Result<Vec<(String, Tensor)>> {
        let n = self.last.unwrap_or(self.batch);
        if n == self.batch {
            let train = self.train.as_ref().ok_or_else(inference_only)?;
            return self.session.gradients_async(&train.program).await;
        }
        let p = self
            .other
            .take(n)
            .ok_or_else(|| Error::invalid("gradients", "the latest step's program was dropped"))?;
        let r = self.session.gradients_async(&p.program).await;
        self.other.put(n, p);
        r
    }

    /// Runs the model on `images` without training and reads back `(loss, reconstruction,
    /// code)`.
    pub async fn evaluate_async<'a>(
        &mut self,
        images: impl Into<Images<'a>>,
    ) -> Result<(f32, Tensor, Tensor)> {
        let images = images.into();
        let n = images.batch("evaluate", self.config.image, 0)?;
        let ev = self.eval_run(n, images).await?;
        let read = async {
            let s = &self.session;
            let l = s.fetch_async(&ev.program, ev.loss).await?;
            let r = s.fetch_async(&ev.program, ev.reconstruction).await?;
            let c = s.fetch_async(&ev.program, ev.code).await?;
            Ok((l.data[0], r, c))
        }
        .await;
        self.eval.put(n, ev);
        read
    }

    /// Runs the model on `images` without training and leaves the outputs on the GPU (nothing
    /// is read back). Returns once submitted. GPU sessions only.
    pub async fn evaluate_gpu_async<'a>(
        &mut self,
        images: impl Into<Images<'a>>,
    ) -> Result<GpuOutputs> {
        let images = images.into();
        let n = images.batch("evaluate", self.config.image, 0)?;
        let ev = self.eval_run(n, images).await?;
        let s = &self.session;
        let out = (|| {
            Ok(GpuOutputs {
                loss: s.output(&ev.program, ev.loss)?,
                reconstruction: s.output(&ev.program, ev.reconstruction)?,
                code: s.output(&ev.program, ev.code)?,
            })
        })();
        self.eval.put(n, ev);
        out
    }

    /// Runs the evaluation program for batch size `n` (compiling it on first use); the caller
    /// puts it back into `self.eval`.
    async fn eval_run(&mut self, n: usize, images: Images<'_>) -> Result<EvalProgram> {
        let mut ev = match self.eval.take(n) {
            Some(ev) => ev,
            None => self.build_eval(n).await?,
        };
        let feeds = [(ev.input, images.feed())];
        match self.session.run_async(&mut ev.program, &feeds).await {
            Ok(()) => Ok(ev),
            Err(e) => {
                self.eval.put(n, ev);
                Err(e)
            }
        }
    }

    async fn build_eval(&self, batch: usize) -> Result<EvalProgram> {
        let mut g = Graph::new();
        let n = self.config.forward(&mut g, batch)?;
        let loss = self.config.loss(&mut g, &n)?;
        // The prediction stays unfused where a sigmoid turns it into the reconstruction.
        fuse_activations(&mut g, &[n.code, n.prediction]);
        // Rare sizes stay on quick-to-compile kernels: for a trainer, any but its own batch
        // size; for an inference-only model, any but the first size it met.
        let occasional = match self.batch {
            0 => !self.eval.is_empty(),
            own => batch != own,
        };
        // The loss is fetched with the outputs, not reported through the loss ring.
        let program = self
            .session
            .compile_async(
                g,
                ProgramSpec {
                    loss: None,
                    fetch: vec![loss, n.reconstruction, n.code],
                    grads: None,
                    occasional,
                },
            )
            .await?;
        Ok(EvalProgram {
            program,
            input: n.input,
            loss,
            reconstruction: n.reconstruction,
            code: n.code,
        })
    }

    /// The decoder alone on `codes` (`[N, code…]`, e.g. random draws from a variational
    /// autoencoder's prior): the images they decode to (through a sigmoid under
    /// `bce_with_logits`). Compiled for each call: for occasional use.
    pub async fn decode_async(&mut self, codes: &Tensor) -> Result<Tensor> {
        let code = self.config.code_shape()?;
        let n = codes.shape.dims().first().copied().unwrap_or(0);
        if n == 0 || codes.shape.dims()[1..] != *code.dims() {
            return Err(Error::invalid(
                "decode",
                format!("codes must be [N, {code}] with N > 0, got {}", codes.shape),
            ));
        }
        let mut g = Graph::new();
        let input = g.input("codes", codes.shape.clone())?;
        let mut images = self.config.decoder().forward(&mut g, input)?;
        if self.config.loss == crate::spec::PointLoss::BceWithLogits {
            g.set_layer("reconstruction (sigmoid of the logits)");
            images = g.activation(images, crate::spec::Activation::Sigmoid);
        }
        fuse_activations(&mut g, &[images]);
        let spec = ProgramSpec {
            loss: None,
            fetch: vec![images],
            grads: None,
            occasional: true,
        };
        let mut program = self.session.compile_async(g, spec).await?;
        let feeds = [(input, Feed::Data(codes))];
        self.session.run_async(&mut program, &feeds).await?;
        self.session.fetch_async(&program, images).await
    }

    /// Parameters, optimizer state and step count, read back.
    pub async fn state_async(&self) -> Result<State> {
        self.session.state_async().await
    }

    /// Restores a state (see [`Session::load_state`]).
    pub fn load_state(&mut self, s: &State) -> Result<()> {
        self.session.load_state(s)
    }
}

/// Blocking twins (native only): each waits on this thread for at most the context's
/// [`crate::Options::wait_timeout`].
#[cfg(not(target_arch = "wasm32"))]
impl Trainer {
    /// Blocking [`Trainer::new_async`].
    pub fn new(
        device: Device,
        config: AutoencoderConfig,
        batch: usize,
        optimizer: Optimizer,
        seed: u64,
    ) -> Result<Self> {
        device.clone().block_on(
            "trainer",
            Self::new_async(device, config, batch, optimizer, seed),
        )
    }

    /// Blocking [`Trainer::with_params_async`].
    pub fn with_params(
        device: Device,
        config: AutoencoderConfig,
        batch: usize,
        optimizer: Optimizer,
        params: Vec<(String, Tensor)>,
    ) -> Result<Self> {
        device.clone().block_on(
            "trainer",
            Self::with_params_async(device, config, batch, optimizer, params),
        )
    }

    /// Blocking [`Trainer::step_async`].
    pub fn step<'a>(&mut self, images: impl Into<Images<'a>>) -> Result<()> {
        let device = self.device().clone();
        device.block_on("step", self.step_async(images))
    }

    /// Blocking [`Trainer::profile_async`].
    pub fn profile<'a>(&mut self, images: impl Into<Images<'a>>) -> Result<crate::exec::Profile> {
        let device = self.device().clone();
        device.block_on("profile", self.profile_async(images))
    }

    /// Blocking [`Trainer::flush_losses_async`].
    pub fn flush_losses(&mut self) -> Result<Vec<(u64, f32)>> {
        let device = self.device().clone();
        device.block_on("losses", self.flush_losses_async())
    }

    /// Blocking [`Trainer::gradients_async`].
    pub fn gradients(&mut self) -> Result<Vec<(String, Tensor)>> {
        let device = self.device().clone();
        device.block_on("gradients", self.gradients_async())
    }

    /// Blocking [`Trainer::evaluate_async`].
    pub fn evaluate<'a>(&mut self, images: impl Into<Images<'a>>) -> Result<(f32, Tensor, Tensor)> {
        let device = self.device().clone();
        device.block_on("evaluate", self.evaluate_async(images))
    }

    /// Blocking [`Trainer::evaluate_gpu_async`] (it waits only for a first compile at a new
    /// batch size).
    pub fn evaluate_gpu<'a>(&mut self, images: impl Into<Images<'a>>) -> Result<GpuOutputs> {
        let device = self.device().clone();
        device.block_on("evaluate", self.evaluate_gpu_async(images))
    }

    /// Blocking [`Trainer::decode_async`].
    pub fn decode(&mut self, codes: &Tensor) -> Result<Tensor> {
        let device = self.device().clone();
        device.block_on("decode", self.decode_async(codes))
    }

    /// Blocking [`Trainer::state_async`].
    pub fn state(&self) -> Result<State> {
        self.device().block_on("state", self.state_async())
    }

    /// Waits until the training program runs its final matmul kernels (see
    /// [`Session::finish_tier_up`]); for benchmarks. Results are the same either way.
    pub fn finish_tier_up(&mut self) -> Result<()> {
        match self.train.as_mut() {
            Some(p) => self.session.finish_tier_up(&mut p.program),
            None => Ok(()),
        }
    }
}

/// The training step of `config` at `batch` images, compiled for `session`.
async fn compile_step(
    session: &Session,
    config: &AutoencoderConfig,
    batch: usize,
    occasional: bool,
) -> Result<StepProgram> {
    let t = training_graph(config, batch, &|_| false)?;
    let spec = ProgramSpec::training(t.loss, t.grads, occasional);
    let program = session.compile_async(t.graph, spec).await?;
    Ok(StepProgram {
        program,
        input: t.input,
        step_input: t.step_input,
        loss: t.loss,
    })
}
