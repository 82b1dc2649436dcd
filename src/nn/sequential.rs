//! A sequential container whose parameter names are those of the same PyTorch `nn.Sequential`
//! stored under an attribute (`encoder.0.weight`, `decoder.3.bias`), so state_dicts carry over.

use super::layer::{Init, Layer, ParamSpec};
use crate::error::Result;
use crate::graph::{Graph, NodeId};
use crate::tensor::{Rng, Tensor};
use serde::{Deserialize, Serialize};

/// Layers applied in order, named `{name}.{index}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sequential {
    pub name: String,
    pub layers: Vec<Layer>,
}

impl Sequential {
    pub fn new(name: impl Into<String>, layers: Vec<Layer>) -> Self {
        Sequential {
            name: name.into(),
            layers,
        }
    }

    /// Every parameter, in state_dict order.
    pub fn params(&self) -> Vec<ParamSpec> {
        self.layers
            .iter()
            .enumerate()
            .flat_map(|(i, l)| l.params(&format!("{}.{i}", self.name)))
            .collect()
    }

    /// Adds every layer to `g` and returns the last output.
    pub fn forward(&self, g: &mut Graph, mut x: NodeId) -> Result<NodeId> {
        for (i, layer) in self.layers.iter().enumerate() {
            x = layer.forward(g, &format!("{}.{i}", self.name), x)?;
        }
        g.set_layer("");
        Ok(x)
    }
}

/// Fails, naming the parameter, when one of `specs` holds more elements than a kernel can
/// index: what to check before [`init_params`] allocates sizes that came from a user.
pub fn check_params(specs: &[ParamSpec]) -> Result<()> {
    for p in specs {
        crate::shape::checked_numel("init", &format!("parameter '{}'", p.name), p.shape.dims())
            .map_err(|e| e.in_layer(&p.name))?;
    }
    Ok(())
}

/// Initial values for `specs`, uniform in each one's `±bound`, drawn from one generator seeded
/// with `seed` in state_dict order (so a model's initialisation depends on the seed alone).
pub fn init_params(specs: &[ParamSpec], seed: u64) -> Vec<(String, Tensor)> {
    let mut rng = Rng::new(seed);
    specs
        .iter()
        .map(|p| {
            let data = match p.init {
                Init::Uniform(bound) => (0..p.shape.numel())
                    .map(|_| rng.uniform(-bound, bound))
                    .collect(),
                Init::Fill(v) => vec![v; p.shape.numel()],
            };
            let t = Tensor {
                shape: p.shape.clone(),
                data,
            };
            (p.name.clone(), t)
        })
        .collect()
}
