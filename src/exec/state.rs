//! What a session stores, as the host sees it: one entry per parameter, and the [`State`] a
//! checkpoint holds (parameter values, optimizer state, step count).

use crate::error::{Error, Result};
use crate::shape::Shape;
use crate::tensor::Tensor;

/// One parameter as the session stores it.
#[derive(Clone, Debug)]
pub struct ParamEntry {
    pub name: String,
    pub shape: Shape,
    /// False for a frozen parameter: no gradient, never updated.
    pub trainable: bool,
}

/// Everything a checkpoint needs: parameter values, optimizer state (`{param}.{buffer}`, e.g.
/// `encoder.0.weight.exp_avg`) and the number of optimizer steps taken.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct State {
    pub params: Vec<(String, Tensor)>,
    pub optimizer: Vec<(String, Tensor)>,
    pub step: u64,
}

/// One parameter's value and optimizer buffers (in the optimizer's `state_names` order; none
/// for a frozen parameter), as backends hand them over.
pub(crate) type Stored = (Tensor, Vec<Tensor>);

impl State {
    /// The state of `entries` from what a backend read back.
    pub(crate) fn assemble(
        entries: &[ParamEntry],
        names: &[&str],
        stored: Vec<Stored>,
        step: u64,
    ) -> State {
        let mut s = State {
            step,
            ..State::default()
        };
        for (e, (value, buffers)) in entries.iter().zip(stored) {
            s.params.push((e.name.clone(), value));
            for (name, b) in names.iter().zip(buffers) {
                s.optimizer.push((format!("{}.{name}", e.name), b));
            }
        }
        s
    }

    /// What to store for each of `entries`: every parameter must be present with its shape;
    /// absent optimizer buffers start at zero (a weights-only checkpoint starts fresh optimizer
    /// state).
    pub(crate) fn split(&self, entries: &[ParamEntry], names: &[&str]) -> Result<Vec<Stored>> {
        let find =
            |list: &[(String, Tensor)], name: &str, shape: &Shape| -> Result<Option<Tensor>> {
                match list.iter().find(|(n, _)| n == name) {
                    None => Ok(None),
                    Some((_, t)) if &t.shape == shape => Ok(Some(t.clone())),
                    Some((_, t)) => Err(Error::model(
                        name,
                        format!("the state holds {} but the model needs {shape}", t.shape),
                    )),
                }
            };
        let mut out = Vec::new();
        for e in entries {
            let v = find(&self.params, &e.name, &e.shape)?
                .ok_or_else(|| Error::model(&e.name, "missing from the loaded state"))?;
            let mut buffers = Vec::new();
            if e.trainable {
                for n in names {
                    buffers.push(
                        find(&self.optimizer, &format!("{}.{n}", e.name), &e.shape)?
                            .unwrap_or_else(|| Tensor::zeros(e.shape.clone())),
                    );
                }
            }
            out.push((v, buffers));
        }
        Ok(out)
    }
}
