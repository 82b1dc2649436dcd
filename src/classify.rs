//! The encoder at work: a classifier head (a Linear layer, or a small MLP) on an autoencoder's
//! code, trained with softmax cross-entropy. The encoder is frozen (no gradient, never updated:
//! a feature extractor) or trained jointly with the head, backpropagating through both.

use crate::error::{Error, Result};
use crate::exec::{Device, Feed, Program, ProgramSpec, Session, State};
use crate::graph::{Graph, NodeId, backward, fuse_activations};
use crate::nn::{AutoencoderConfig, Layer, Optimizer, Sequential, init_params};
use crate::tensor::Tensor;
use std::collections::HashMap;

/// The head's layers: `Linear(code, classes)`, or with `hidden` units
/// `Linear(code, hidden), ReLU, Linear(hidden, classes)`.
pub fn head(code: usize, classes: usize, hidden: Option<usize>) -> Sequential {
    let layers = match hidden {
        None => vec![Layer::Linear {
            in_features: code,
            out_features: classes,
        }],
        Some(h) => vec![
            Layer::Linear {
                in_features: code,
                out_features: h,
            },
            Layer::ReLU,
            Layer::Linear {
                in_features: h,
                out_features: classes,
            },
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

/// A classifier: the autoencoder's encoder, then the head.
pub struct Classifier {
    ae: AutoencoderConfig,
    head: Sequential,
    joint: bool,
    session: Session,
    program: Program,
    input: NodeId,
    labels: NodeId,
    batch: usize,
    eval: HashMap<usize, (Program, Built)>,
}

impl Classifier {
    /// A classifier over `classes` classes on top of the encoder whose parameters are in
    /// `encoder` (state_dict names `encoder.*`; other entries are ignored). The head starts
    /// from `seed`. With `joint` false the encoder is frozen.
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
        let code = ae.code_shape()?;
        if code.rank() != 1 {
            return Err(Error::model(
                "encoder",
                format!("the code must be a vector per image to classify, got {code}"),
            ));
        }
        let head = head(code.dim(0), classes, hidden);
        let mut params: Vec<(String, Tensor)> = Vec::new();
        for spec in ae.encoder().params() {
            let t = encoder
                .iter()
                .find(|(n, _)| *n == spec.name)
                .map(|(_, t)| t.clone())
                .ok_or_else(|| Error::model(&spec.name, "missing from the encoder's parameters"))?;
            params.push((spec.name, t));
        }
        params.extend(init_params(&head.params(), seed));
        let frozen = move |n: &str| !joint && n.starts_with("encoder.");
        let session = Session::new(device, params, &frozen, Some(optimizer))?;
        let mut built = build(ae, &head, batch)?;
        fuse_activations(&mut built.graph, &[]);
        let grads = backward(&mut built.graph, built.loss, &frozen)?;
        let (input, labels, loss) = (built.input, built.labels, built.loss);
        let program = session.compile(
            built.graph,
            ProgramSpec {
                loss: Some(loss),
                fetch: vec![],
                grads: Some(grads),
            },
        )?;
        Ok(Classifier {
            ae: ae.clone(),
            head,
            joint,
            session,
            program,
            input,
            labels,
            batch,
            eval: HashMap::new(),
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

    /// One step on a batch of images and their labels.
    pub fn step(&mut self, images: &Tensor, labels: &[u32]) -> Result<()> {
        self.session.step(
            &mut self.program,
            &[
                (self.input, Feed::Data(images)),
                (self.labels, Feed::Labels(labels)),
            ],
        )
    }

    /// `(step, loss)` of finished steps, without waiting.
    pub fn losses(&mut self) -> Result<Vec<(u64, f32)>> {
        self.session.losses(&mut self.program)
    }

    /// As [`Classifier::losses`], waiting for every step so far.
    pub fn flush_losses(&mut self) -> Result<Vec<(u64, f32)>> {
        self.session.flush_losses(&mut self.program)
    }

    /// The predicted class of each image.
    pub fn predict(&mut self, images: &Tensor) -> Result<Vec<u32>> {
        let n = images.shape.dims().first().copied().unwrap_or(0);
        if n == 0 {
            return Ok(Vec::new());
        }
        let (mut program, built) = match self.eval.remove(&n) {
            Some(e) => e,
            None => {
                let mut b = build(&self.ae, &self.head, n)?;
                fuse_activations(&mut b.graph, &[]);
                let p = self.session.compile(
                    b.graph.clone(),
                    ProgramSpec {
                        loss: None,
                        fetch: vec![b.logits],
                        grads: None,
                    },
                )?;
                (p, b)
            }
        };
        let result = (|| {
            let dummy = vec![0u32; n];
            self.session.run(
                &mut program,
                &[
                    (built.input, Feed::Data(images)),
                    (built.labels, Feed::Labels(&dummy)),
                ],
            )?;
            let logits = self.session.fetch(&program, built.logits)?;
            let k = logits.shape.dim(1);
            Ok(logits
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
                .collect())
        })();
        self.eval.insert(n, (program, built));
        result
    }

    /// Parameters (encoder and head), optimizer state and step count.
    pub fn state(&self) -> Result<State> {
        self.session.state()
    }
}

fn build(ae: &AutoencoderConfig, head: &Sequential, batch: usize) -> Result<Built> {
    let mut g = Graph::new();
    let [c, h, w] = ae.image;
    let input = g.input("images", [batch, c, h, w]);
    let code = ae.encoder().forward(&mut g, input)?;
    let logits = head.forward(&mut g, code)?;
    let labels = g.labels("labels", batch);
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
