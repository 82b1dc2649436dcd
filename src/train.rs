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
    program: Program,
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
            program,
            input,
            batch,
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
    /// The training step's memory plan.
    pub fn memory(&self) -> &MemoryPlan {
        self.program.memory()
    }
    /// The compiled training step.
    pub fn program(&self) -> &Program {
        &self.program
    }

    /// One step on `images` (`[batch, C, H, W]`). The loss is reported later by
    /// [`Trainer::losses`]; on a GPU this does not wait for the device.
    pub fn step(&mut self, images: &Tensor) -> Result<()> {
        self.session
            .step(&mut self.program, &[(self.input, Feed::Data(images))])
    }

    /// `(step, loss)` of every finished step not yet reported, without waiting.
    pub fn losses(&mut self) -> Result<Vec<(u64, f32)>> {
        let offset = self.session.step_count() - self.program.runs();
        Ok(self
            .session
            .losses(&mut self.program)?
            .into_iter()
            .map(|(run, l)| (run + offset, l))
            .collect())
    }

    /// As [`Trainer::losses`], waiting for every step submitted so far.
    pub fn flush_losses(&mut self) -> Result<Vec<(u64, f32)>> {
        let offset = self.session.step_count() - self.program.runs();
        Ok(self
            .session
            .flush_losses(&mut self.program)?
            .into_iter()
            .map(|(run, l)| (run + offset, l))
            .collect())
    }

    /// The gradients of the latest step, by parameter name (waits for the device).
    pub fn gradients(&self) -> Result<Vec<(String, Tensor)>> {
        self.session.gradients(&self.program)
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
