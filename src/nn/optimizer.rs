//! The optimizers a model trains with, and the names of the state each keeps per parameter
//! (PyTorch's names: `momentum_buffer`, `exp_avg`, `exp_avg_sq`).

use crate::error::Result;
use crate::optim_config::{AdamConfig, SgdConfig};

/// An optimizer and its hyperparameters (PyTorch's formulas and defaults).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Optimizer {
    Sgd(SgdConfig),
    Adam(AdamConfig),
    AdamW(AdamConfig),
}

impl Optimizer {
    /// `sgd`, `adam` or `adamw`.
    pub fn name(&self) -> &'static str {
        match self {
            Optimizer::Sgd(_) => "sgd",
            Optimizer::Adam(_) => "adam",
            Optimizer::AdamW(_) => "adamw",
        }
    }

    /// The per-parameter state buffers this optimizer keeps, each the parameter's shape.
    pub fn state_names(&self) -> &'static [&'static str] {
        match self {
            Optimizer::Sgd(c) if c.uses_momentum() => &["momentum_buffer"],
            Optimizer::Sgd(_) => &[],
            Optimizer::Adam(_) | Optimizer::AdamW(_) => &["exp_avg", "exp_avg_sq"],
        }
    }

    pub fn lr(&self) -> f64 {
        match self {
            Optimizer::Sgd(c) => c.lr,
            Optimizer::Adam(c) | Optimizer::AdamW(c) => c.lr,
        }
    }

    /// Checks the hyperparameters (as PyTorch's constructors do).
    pub fn check(&self) -> Result<()> {
        match self {
            Optimizer::Sgd(c) => c.check("sgd", 1),
            Optimizer::Adam(c) => c.check("adam", 1),
            Optimizer::AdamW(c) => c.check("adamw", 1),
        }
    }

    /// One step on one parameter on the CPU reference; `state` holds [`Self::state_names`]'s
    /// buffers in order.
    pub fn cpu_step(
        &self,
        param: &mut [f32],
        grad: &[f32],
        state: &mut [Vec<f32>],
        step: u64,
    ) -> Result<()> {
        use crate::cpu::optim::{adam_step, adamw_step, sgd_step};
        match (self, state) {
            (Optimizer::Sgd(c), []) => sgd_step(param, grad, None, c, step),
            (Optimizer::Sgd(c), [b]) => sgd_step(param, grad, Some(b), c, step),
            (Optimizer::Adam(c), [m, v]) => adam_step(param, grad, m, v, c, step),
            (Optimizer::AdamW(c), [m, v]) => adamw_step(param, grad, m, v, c, step),
            (_, s) => Err(crate::error::Error::invalid(
                self.name(),
                format!(
                    "expected {} state buffers, got {}",
                    self.state_names().len(),
                    s.len()
                ),
            )),
        }
    }
}
