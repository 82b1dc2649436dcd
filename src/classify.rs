//! The encoder at work: a classifier head (a Linear layer, or a small MLP) on an autoencoder's
//! code, trained with softmax cross-entropy. The encoder is frozen (no gradient, never updated:
//! a feature extractor) or trained jointly with the head, backpropagating through both. Like
//! the trainer, it takes any batch up to the one it was built for, and every wait is `async`
//! with a blocking twin on native targets.

use crate::error::{Error, Result};
use crate::exec::{BySize, Device, Feed, Program, ProgramSpec, Session, State};
use crate::gpu::GpuTensor;
use crate::graph::{Graph, NodeId, backward, fuse_activations};
use crate::images::Images;
use crate::nn::{AutoencoderConfig, Layer, Optimizer, Sequential, check_params, init_params};
use crate::tensor::Tensor;

/// The head's layers: `Linear(code, classes)`, or with `hidden` units
/// `Linear(code, hidden), ReLU, Linear(hidden, classes)`.
pub fn head(code: usize, classes: usize, hidden: Option<usize>) -> Sequential {
    let layers = match hidden {
        None => vec![Layer::linear(code, classes)],
        Some(h) => vec![
            Layer::linear(code, h),
            Layer::ReLU,
            Layer::linear(h, classes),
        ],
    };
    Sequential::new("head", layers)
}

struct Built {
    graph: Graph,
    input: NodeId,
    labels: NodeId,
    logits: NodeId,
    loss: NodeId,
}

/// A compiled training step at one batch size.
struct StepProgram {
    program: Program,
    input: NodeId,
    labels: NodeId,
}

/// Step programs kept for batch sizes other than the classifier's own, and prediction programs.
const OTHER_SIZES: usize = 2;
const PREDICT_SIZES: usize = 3;

/// A classifier: the autoencoder's encoder, then the head.
pub struct Classifier {
    ae: AutoencoderConfig,
    head: Sequential,
    joint: bool,
    frozen: bool,
    session: Session,
    train: StepProgram,
    other: BySize<StepProgram>,
    batch: usize,
    predict: BySize<(Program, Built)>,
    dropped_losses: Vec<(u64, f32)>,
}

impl Classifier {
    /// A classifier over `classes` classes on top of the encoder whose parameters are in
    /// `encoder` (state_dict names `encoder.*`; other entries are ignored). The head starts
    /// from `seed`. With `joint` false the encoder is frozen. Steps take up to `batch` images.
    #[allow(clippy::too_many_arguments)]
    pub async fn new_async(
        device: Device,
        ae: &AutoencoderConfig,
        encoder: &[(String, Tensor)],
        classes: usize,
        hidden: Option<usize>,
        joint: bool,
        batch: usize,
        optimizer: Optimizer,
        seed: u64,
    ) -> Result<Self> {
        if classes < 2 {
            return Err(Error::invalid(
                "classifier",
                format!("needs at least 2 classes, the data has {classes}"),
            ));
        }
        if batch == 0 {
            return Err(Error::invalid(
                "classifier",
                "batch size must be at least 1",
            ));
        }
        // A code with spatial axes (a pooling encoder's 8×4×4) is flattened before the head.
        let code = ae.code_shape()?.numel();
        let head = head(code, classes, hidden);
        let mut params: Vec<(String, Tensor)> = Vec::new();
        for spec in ae.encoder().params() {
            let t = encoder
                .iter()
                .find(|(n, _)| *n == spec.name)
                .map(|(_, t)| t.clone())
                .ok_or_else(|| Error::model(&spec.name, "missing from the encoder's parameters"))?;
            params.push((spec.name, t));
        }
        let specs = head.params();
        check_params(&specs)?;
        params.extend(init_params(&specs, seed));
        let frozen = !joint;
        let buffers = ae.buffers();
        let session = Session::new(
            device,
            params,
            &|n| frozen_param(frozen, n, &buffers),
            Some(optimizer),
        )?;
        let train = compile_step(&session, ae, &head, frozen, batch, false).await?;
        Ok(Classifier {
            ae: ae.clone(),
            head,
            joint,
            frozen,
            session,
            train,
            other: BySize::new(OTHER_SIZES),
            batch,
            predict: BySize::new(PREDICT_SIZES),
            dropped_losses: Vec::new(),
        })
    }

    pub fn batch(&self) -> usize {
        self.batch
    }
    pub fn joint(&self) -> bool {
        self.joint
    }
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// One step on a batch of up to [`Classifier::batch`] images and their labels. Returns once
    /// submitted (waits only when several steps are in flight, or to compile a new batch size).
    pub async fn step_async<'a>(
        &mut self,
        images: impl Into<Images<'a>>,
        labels: &[u32],
    ) -> Result<()> {
        let images = images.into();
        let n = images.batch("step", self.ae.image, self.batch)?;
        if n == self.batch {
            let t = &mut self.train;
            let feeds = [(t.input, images.feed()), (t.labels, Feed::Labels(labels))];
            return self.session.step_async(&mut t.program, &feeds).await;
        }
        let mut p = match self.other.take(n) {
            Some(p) => p,
            None => compile_step(&self.session, &self.ae, &self.head, self.frozen, n, true).await?,
        };
        let feeds = [(p.input, images.feed()), (p.labels, Feed::Labels(labels))];
        let r = self.session.step_async(&mut p.program, &feeds).await;
        for (_, mut old) in self.other.put(n, p) {
            let l = self.session.flush_losses_async(&mut old.program).await?;
            self.dropped_losses.extend(l);
        }
        r
    }

    /// `(step, loss)` of finished steps, without waiting.
    pub fn losses(&mut self) -> Result<Vec<(u64, f32)>> {
        let mut all = std::mem::take(&mut self.dropped_losses);
        all.extend(self.session.losses(&mut self.train.program)?);
        for p in self.other.values_mut() {
            all.extend(self.session.losses(&mut p.program)?);
        }
        all.sort_by_key(|l| l.0);
        Ok(all)
    }

    /// As [`Classifier::losses`], once every step so far has finished.
    pub async fn flush_losses_async(&mut self) -> Result<Vec<(u64, f32)>> {
        let mut all = std::mem::take(&mut self.dropped_losses);
        all.extend(
            self.session
                .flush_losses_async(&mut self.train.program)
                .await?,
        );
        for p in self.other.values_mut() {
            all.extend(self.session.flush_losses_async(&mut p.program).await?);
        }
        all.sort_by_key(|l| l.0);
        Ok(all)
    }

    /// The predicted class of each image.
    pub async fn predict_async<'a>(&mut self, images: impl Into<Images<'a>>) -> Result<Vec<u32>> {
        let images = images.into();
        if images.shape().dims().first() == Some(&0) {
            return Ok(Vec::new());
        }
        let (n, logits) = self.run_logits(images).await?;
        let logits = self.session.fetch_async(self.predictor(n)?, logits).await?;
        Ok(argmax_rows(&logits))
    }

    /// The logits `[N, classes]` of `images`, left on the GPU (nothing is read back): a view of
    /// the prediction program's buffer, holding the values once the run has finished on the
    /// device, until the next prediction at this batch size. GPU sessions only.
    pub async fn logits_gpu_async<'a>(
        &mut self,
        images: impl Into<Images<'a>>,
    ) -> Result<GpuTensor> {
        let (n, logits) = self.run_logits(images.into()).await?;
        self.session.output(self.predictor(n)?, logits)
    }

    /// The prediction program for `n` images.
    fn predictor(&self, n: usize) -> Result<&Program> {
        self.predict
            .get(n)
            .map(|(p, _)| p)
            .ok_or_else(|| Error::invalid("predict", "the prediction program was dropped"))
    }

    /// Runs the prediction program for the batch size of `images` (compiled on first use and
    /// kept); returns the batch size and the logits node.
    async fn run_logits(&mut self, images: Images<'_>) -> Result<(usize, NodeId)> {
        let n = images.batch("predict", self.ae.image, 0)?;
        let (mut program, built) = match self.predict.take(n) {
            Some(e) => e,
            None => {
                let mut b = build(&self.ae, &self.head, n)?;
                fuse_activations(&mut b.graph, &[]);
                let spec = ProgramSpec {
                    fetch: vec![b.logits],
                    occasional: n != self.batch,
                    ..ProgramSpec::default()
                };
                let p = self.session.compile_async(b.graph.clone(), spec).await?;
                (p, b)
            }
        };
        // The labels input is not read by a prediction (no loss), but every input is fed.
        let dummy = vec![0u32; n];
        let feeds = [
            (built.input, images.feed()),
            (built.labels, Feed::Labels(&dummy)),
        ];
        let ran = self.session.run_async(&mut program, &feeds).await;
        let logits = built.logits;
        self.predict.put(n, (program, built));
        ran.map(|_| (n, logits))
    }

    /// Parameters (encoder and head), optimizer state and step count.
    pub async fn state_async(&self) -> Result<State> {
        self.session.state_async().await
    }
}

/// Blocking twins (native only).
#[cfg(not(target_arch = "wasm32"))]
impl Classifier {
    /// Blocking [`Classifier::new_async`].
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        device: Device,
        ae: &AutoencoderConfig,
        encoder: &[(String, Tensor)],
        classes: usize,
        hidden: Option<usize>,
        joint: bool,
        batch: usize,
        optimizer: Optimizer,
        seed: u64,
    ) -> Result<Self> {
        device.clone().block_on(
            "classifier",
            Self::new_async(
                device, ae, encoder, classes, hidden, joint, batch, optimizer, seed,
            ),
        )
    }

    /// Blocking [`Classifier::step_async`].
    pub fn step<'a>(&mut self, images: impl Into<Images<'a>>, labels: &[u32]) -> Result<()> {
        let device = self.session.device().clone();
        device.block_on("step", self.step_async(images, labels))
    }

    /// Blocking [`Classifier::flush_losses_async`].
    pub fn flush_losses(&mut self) -> Result<Vec<(u64, f32)>> {
        let device = self.session.device().clone();
        device.block_on("losses", self.flush_losses_async())
    }

    /// Blocking [`Classifier::predict_async`].
    pub fn predict<'a>(&mut self, images: impl Into<Images<'a>>) -> Result<Vec<u32>> {
        let device = self.session.device().clone();
        device.block_on("predict", self.predict_async(images))
    }

    /// Blocking [`Classifier::logits_gpu_async`] (it waits only for a first compile at a new
    /// batch size).
    pub fn logits_gpu<'a>(&mut self, images: impl Into<Images<'a>>) -> Result<GpuTensor> {
        let device = self.session.device().clone();
        device.block_on("predict", self.logits_gpu_async(images))
    }

    /// Blocking [`Classifier::state_async`].
    pub fn state(&self) -> Result<State> {
        self.session.device().block_on("state", self.state_async())
    }
}

/// Whether parameter `name` is frozen: the encoder's, when the encoder is frozen, and always
/// the `buffers` (batch normalisation's running moments).
fn frozen_param(frozen: bool, name: &str, buffers: &[String]) -> bool {
    frozen && name.starts_with("encoder.") || buffers.iter().any(|b| b == name)
}

/// The index of each row's largest logit (the first, on ties).
fn argmax_rows(logits: &Tensor) -> Vec<u32> {
    let k = logits.shape.dim(1);
    logits
        .data
        .chunks(k)
        .map(|row| {
            let mut best = 0;
            for (i, v) in row.iter().enumerate() {
                if *v > row[best] {
                    best = i;
                }
            }
            best as u32
        })
        .collect()
}

/// The training step of the classifier at `batch` images, compiled for `session`.
async fn compile_step(
    session: &Session,
    ae: &AutoencoderConfig,
    head: &Sequential,
    frozen: bool,
    batch: usize,
    occasional: bool,
) -> Result<StepProgram> {
    let mut built = build(ae, head, batch)?;
    fuse_activations(&mut built.graph, &[]);
    let buffers = ae.buffers();
    let grads = backward(&mut built.graph, built.loss, &|n| {
        frozen_param(frozen, n, &buffers)
    })?;
    let (input, labels, loss) = (built.input, built.labels, built.loss);
    let spec = ProgramSpec::training(loss, grads, occasional);
    let program = session.compile_async(built.graph, spec).await?;
    Ok(StepProgram {
        program,
        input,
        labels,
    })
}

fn build(ae: &AutoencoderConfig, head: &Sequential, batch: usize) -> Result<Built> {
    let mut g = Graph::new();
    let [c, h, w] = ae.image;
    let input = g.input("images", [batch, c, h, w])?;
    let (mut code, _) = ae.encode(&mut g, input)?;
    if g.shape(code).rank() > 2 {
        g.set_layer("flatten (the code, for the head)");
        code = g.flatten(code)?;
    }
    let logits = head.forward(&mut g, code)?;
    let labels = g.labels("labels", batch)?;
    g.set_layer("loss (cross-entropy)");
    let loss = g.cross_entropy(logits, labels)?;
    Ok(Built {
        graph: g,
        input,
        labels,
        logits,
        loss,
    })
}
