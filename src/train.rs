//! The autoencoder trainer: the default use of the engine. Builds the training graph (forward,
//! MSE reconstruction loss, fused activations, backward), compiles it once for a device, and
//! then takes one batch per step. Evaluation programs (held-out loss, reconstructions, codes)
//! share the session's parameters and are compiled on first use per batch size.

use crate::error::{Error, Result};
use crate::exec::{Device, Feed, Program, ProgramSpec, Session, State};
use crate::graph::{Graph, MemoryPlan, NodeId, backward, fuse_activations};
use crate::nn::{AutoencoderConfig, Optimizer, init_params};
use crate::tensor::Tensor;
use std::collections::HashMap;

/// The training graph of `config` at `batch` images: `(graph, images input, loss, gradients)`.
pub fn training_graph(
    config: &AutoencoderConfig,
    batch: usize,
    frozen: &dyn Fn(&str) -> bool,
) -> Result<(Graph, NodeId, NodeId, crate::graph::Gradients)> {
    let mut g = Graph::new();
    let n = config.forward(&mut g, batch)?;
    g.set_layer("loss (MSE)");
    let loss = g.mse_loss(n.reconstruction, n.input)?;
    fuse_activations(&mut g, &[]);
    let grads = backward(&mut g, loss, frozen)?;
    Ok((g, n.input, loss, grads))
}

fn inference_only() -> Error {
    Error::invalid(
        "trainer",
        "this model was opened for inference only: it cannot train",
    )
}

/// A forward-only program at one batch size: images in, loss / reconstruction / code out.
struct EvalProgram {
    program: Program,
    input: NodeId,
    loss: NodeId,
    reconstruction: NodeId,
    code: NodeId,
}

/// Trains an autoencoder on one device.
pub struct Trainer {
    config: AutoencoderConfig,
    session: Session,
    /// The compiled training step (absent for an inference-only trainer).
    program: Option<Program>,
    input: NodeId,
    batch: usize,
    eval: HashMap<usize, EvalProgram>,
}

impl Trainer {
    /// A trainer for `config` with parameters initialised from `seed` (PyTorch's default
    /// initialisation), stepping `batch` images at a time.
    pub fn new(
        device: Device,
        config: AutoencoderConfig,
        batch: usize,
        optimizer: Optimizer,
        seed: u64,
    ) -> Result<Self> {
        let params = init_params(&config.params(), seed);
        Self::with_params(device, config, batch, optimizer, params)
    }

    /// A trainer starting from given parameter values (state_dict names).
    pub fn with_params(
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
        let session = Session::new(device, params, &|_| false, Some(optimizer))?;
        let (graph, input, loss, grads) = training_graph(&config, batch, &|_| false)?;
        let program = session.compile(
            graph,
            ProgramSpec {
                loss: Some(loss),
                fetch: vec![],
                grads: Some(grads),
            },
        )?;
        Ok(Trainer {
            config,
            session,
            program: Some(program),
            input,
            batch,
            eval: HashMap::new(),
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
            program: None,
            input: NodeId(0),
            batch: 0,
            eval: HashMap::new(),
        })
    }

    pub fn config(&self) -> &AutoencoderConfig {
        &self.config
    }
    pub fn session(&self) -> &Session {
        &self.session
    }
    pub fn batch(&self) -> usize {
        self.batch
    }
    /// Steps taken (restored by [`Trainer::load_state`]).
    pub fn step_count(&self) -> u64 {
        self.session.step_count()
    }
    /// The training step's memory plan (None for an inference-only model).
    pub fn memory(&self) -> Option<&MemoryPlan> {
        self.program.as_ref().map(|p| p.memory())
    }
    /// The compiled training step (None for an inference-only model).
    pub fn program(&self) -> Option<&Program> {
        self.program.as_ref()
    }

    /// One step on `images` (`[batch, C, H, W]`). The loss is reported later by
    /// [`Trainer::losses`]; on a GPU this does not wait for the device.
    pub fn step(&mut self, images: &Tensor) -> Result<()> {
        let program = self.program.as_mut().ok_or_else(inference_only)?;
        self.session
            .step(program, &[(self.input, Feed::Data(images))])
    }

    /// One step on `images` with every dispatch timed (see [`crate::exec::Profile`]).
    /// Waits until the training program runs its final matmul kernels (see
    /// [`Session::finish_tier_up`]); for benchmarks. Results are the same either way.
    pub fn finish_tier_up(&mut self) -> Result<()> {
        match self.program.as_mut() {
            Some(p) => self.session.finish_tier_up(p),
            None => Ok(()),
        }
    }

    /// One training step on `images` with every dispatch timed (GPU timestamps where the adapter
    /// has them); the step counts like any other.
    pub fn profile(&mut self, images: &Tensor) -> Result<crate::exec::Profile> {
        let program = self.program.as_mut().ok_or_else(inference_only)?;
        self.session
            .profile(program, &[(self.input, Feed::Data(images))], true)
    }

    /// `(step, loss)` of every finished step not yet reported, without waiting.
    pub fn losses(&mut self) -> Result<Vec<(u64, f32)>> {
        self.collect_losses(false)
    }

    /// As [`Trainer::losses`], waiting for every step submitted so far.
    pub fn flush_losses(&mut self) -> Result<Vec<(u64, f32)>> {
        self.collect_losses(true)
    }

    /// Finished losses keyed by optimizer step (the program counts its own runs, which start
    /// after any resumed steps).
    fn collect_losses(&mut self, wait: bool) -> Result<Vec<(u64, f32)>> {
        let program = self.program.as_mut().ok_or_else(inference_only)?;
        let offset = self.session.step_count() - program.runs();
        let losses = if wait {
            self.session.flush_losses(program)?
        } else {
            self.session.losses(program)?
        };
        Ok(losses
            .into_iter()
            .map(|(run, l)| (run + offset, l))
            .collect())
    }

    /// The gradients of the latest step, by parameter name (waits for the device).
    pub fn gradients(&self) -> Result<Vec<(String, Tensor)>> {
        match &self.program {
            Some(p) => self.session.gradients(p),
            None => Err(inference_only()),
        }
    }

    fn build_eval(&self, batch: usize) -> Result<EvalProgram> {
        let mut g = Graph::new();
        let n = self.config.forward(&mut g, batch)?;
        g.set_layer("loss (MSE)");
        let loss = g.mse_loss(n.reconstruction, n.input)?;
        fuse_activations(&mut g, &[n.code]);
        let program = self.session.compile(
            g,
            ProgramSpec {
                loss: Some(loss),
                fetch: vec![n.reconstruction, n.code],
                grads: None,
            },
        )?;
        Ok(EvalProgram {
            program,
            input: n.input,
            loss,
            reconstruction: n.reconstruction,
            code: n.code,
        })
    }

    /// Runs the model on `images` without training: `(loss, reconstruction, code)`.
    pub fn evaluate(&mut self, images: &Tensor) -> Result<(f32, Tensor, Tensor)> {
        let batch = images.shape.dims().first().copied().unwrap_or(0);
        let want = {
            let [c, h, w] = self.config.image;
            crate::shape::Shape::new([batch, c, h, w])
        };
        if batch == 0 || images.shape != want {
            return Err(Error::invalid(
                "evaluate",
                format!("images {} should be [N, C, H, W] = {want}", images.shape),
            ));
        }
        let mut ev = match self.eval.remove(&batch) {
            Some(ev) => ev,
            None => self.build_eval(batch)?,
        };
        let mut run = || -> Result<(f32, Tensor, Tensor)> {
            let p = &mut ev.program;
            self.session.run(p, &[(ev.input, Feed::Data(images))])?;
            let l = self.session.fetch(p, ev.loss)?;
            let r = self.session.fetch(p, ev.reconstruction)?;
            let c = self.session.fetch(p, ev.code)?;
            // The loss was read directly; drop its ring copy.
            self.session.flush_losses(p)?;
            Ok((l.data[0], r, c))
        };
        let result = run();
        self.eval.insert(batch, ev);
        result
    }

    /// Parameters, optimizer state and step count (waits for the device).
    pub fn state(&self) -> Result<State> {
        self.session.state()
    }

    /// Restores a state (see [`Session::load_state`]).
    pub fn load_state(&mut self, s: &State) -> Result<()> {
        self.session.load_state(s)
    }
}
