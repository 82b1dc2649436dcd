//! Optimizer hyperparameters, shared by the CPU reference (`cpu::optim`) and the GPU launchers
//! (`gpu::kernels::optim`), so both sides take the same value and reject the same bad calls.
//!
//! Defaults and formulas are PyTorch's (`torch.optim.SGD`, `Adam`, `AdamW`, single-tensor path).
//! Hyperparameters are f64, as PyTorch's Python floats are; the GPU receives them (and the
//! step-dependent factors derived from them on the host in f64) rounded once to f32.

use crate::error::{Error, Result};

/// `torch.optim.SGD`: `d = g + wd·p`; with momentum, `buf = d` on the first step, else
/// `buf = momentum·buf + (1 − dampening)·d`, then `d = nesterov ? d + momentum·buf : buf`;
/// finally `p −= lr·d`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdConfig {
    pub lr: f64,
    pub momentum: f64,
    pub dampening: f64,
    pub weight_decay: f64,
    pub nesterov: bool,
}

impl Default for SgdConfig {
    /// PyTorch's defaults except `lr`, which PyTorch requires and we set to 1e-3.
    fn default() -> Self {
        SgdConfig {
            lr: 1e-3,
            momentum: 0.0,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: false,
        }
    }
}

impl SgdConfig {
    /// Plain SGD with learning rate `lr` and PyTorch's other defaults.
    pub fn new(lr: f64) -> Self {
        SgdConfig {
            lr,
            ..Self::default()
        }
    }

    /// Whether a momentum buffer is kept (PyTorch keeps none when `momentum == 0`).
    pub fn uses_momentum(&self) -> bool {
        self.momentum != 0.0
    }

    /// Checks the hyperparameters and the step counter as `torch.optim.SGD` does (plus
    /// finiteness, and `step ≥ 1`).
    pub fn check(&self, op: &str, step: u64) -> Result<()> {
        check_step(op, step)?;
        non_negative(op, "lr", self.lr)?;
        non_negative(op, "momentum", self.momentum)?;
        non_negative(op, "weight_decay", self.weight_decay)?;
        if !self.dampening.is_finite() {
            return Err(Error::invalid(
                op,
                format!("dampening must be finite, got {}", self.dampening),
            ));
        }
        if self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0) {
            return Err(Error::invalid(
                op,
                format!(
                    "Nesterov momentum requires a momentum > 0 and zero dampening, got momentum {} and dampening {}",
                    self.momentum, self.dampening
                ),
            ));
        }
        Ok(())
    }
}

/// `torch.optim.Adam` (L2 weight decay added to the gradient) and `torch.optim.AdamW`
/// (decoupled weight decay, `p *= 1 − lr·wd` before the update). The constructors give each its
/// PyTorch defaults; `amsgrad`, `maximize` and the other flags are not supported.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamConfig {
    pub lr: f64,
    pub betas: (f64, f64),
    pub eps: f64,
    pub weight_decay: f64,
}

impl AdamConfig {
    /// `torch.optim.Adam` defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight_decay 0.
    pub fn adam() -> Self {
        AdamConfig {
            lr: 1e-3,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }

    /// `torch.optim.AdamW` defaults: as Adam, but weight_decay 1e-2.
    pub fn adamw() -> Self {
        AdamConfig {
            weight_decay: 1e-2,
            ..Self::adam()
        }
    }

    /// `(1 − β1^step, 1 − β2^step)`, in f64.
    pub fn bias_corrections(&self, step: u64) -> (f64, f64) {
        let t = step as f64;
        (1.0 - self.betas.0.powf(t), 1.0 - self.betas.1.powf(t))
    }

    /// Checks the hyperparameters and the step counter as `torch.optim.Adam` does, except that
    /// `eps` must be > 0 (PyTorch accepts 0, which divides by zero where `v` is 0).
    pub fn check(&self, op: &str, step: u64) -> Result<()> {
        check_step(op, step)?;
        non_negative(op, "lr", self.lr)?;
        non_negative(op, "weight_decay", self.weight_decay)?;
        if !(self.eps > 0.0 && self.eps.is_finite()) {
            return Err(Error::invalid(
                op,
                format!("eps must be finite and > 0, got {}", self.eps),
            ));
        }
        for (name, b) in [("betas.0", self.betas.0), ("betas.1", self.betas.1)] {
            if !(0.0..1.0).contains(&b) {
                return Err(Error::invalid(
                    op,
                    format!("{name} must be in [0, 1), got {b}"),
                ));
            }
        }
        Ok(())
    }
}

impl Default for AdamConfig {
    /// [`AdamConfig::adam`].
    fn default() -> Self {
        Self::adam()
    }
}

fn check_step(op: &str, step: u64) -> Result<()> {
    if step == 0 {
        return Err(Error::invalid(
            op,
            "step must be ≥ 1 (the first update is step 1, as in PyTorch's state['step']), got 0",
        ));
    }
    Ok(())
}

fn non_negative(op: &str, name: &str, x: f64) -> Result<()> {
    if !(x >= 0.0 && x.is_finite()) {
        return Err(Error::invalid(
            op,
            format!("{name} must be finite and ≥ 0, got {x}"),
        ));
    }
    Ok(())
}

/// Checks that every tensor an optimizer step touches has as many elements as the parameter
/// (the first entry), and that there is at least one. Entries are `(description, length)`.
pub fn check_lengths(op: &str, tensors: &[(String, usize)]) -> Result<()> {
    let Some((pname, plen)) = tensors.first() else {
        return Ok(());
    };
    if *plen == 0 {
        return Err(Error::invalid(
            op,
            format!("{pname} is empty: nothing to update"),
        ));
    }
    for (name, len) in &tensors[1..] {
        if len != plen {
            return Err(Error::invalid(
                op,
                format!("{name} has {len} elements but {pname} has {plen}"),
            ));
        }
    }
    Ok(())
}
