//! Comparing a GPU result with its CPU reference: the tolerances, stated in one place, and a
//! report that names kernel, adapter and shape, the first mismatches and the largest error.

use crate::error::{Error, Result};
use std::fmt::Write;

/// `|gpu − cpu| ≤ atol + rtol·|cpu|`, element by element.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerance {
    pub atol: f64,
    pub rtol: f64,
}

impl Tolerance {
    /// Elementwise kernels (one rounding, or a transcendental function's few ulps).
    pub const POINTWISE: Tolerance = Tolerance {
        atol: 1e-6,
        rtol: 1e-5,
    };
    /// Kernels that move data without arithmetic (im2col): exact.
    pub const EXACT: Tolerance = Tolerance {
        atol: 0.0,
        rtol: 0.0,
    };
    /// Optimizer updates: a few roundings per element, plus a square root.
    pub const OPTIMIZER: Tolerance = Tolerance {
        atol: 1e-6,
        rtol: 1e-5,
    };

    /// A sum of `len` terms of size about 1 in f32: rounding error grows with the length of the
    /// reduction (about √len·ε for random signs, len·ε at worst), so atol does too.
    pub fn reduction(len: usize) -> Tolerance {
        Tolerance {
            atol: 1e-6 * (len.max(1) as f64).sqrt() * 4.0 + 1e-6,
            rtol: 1e-4,
        }
    }

    pub fn allows(&self, gpu: f64, cpu: f64) -> bool {
        (gpu - cpu).abs() <= self.atol + self.rtol * cpu.abs()
    }
}

/// The outcome of one comparison.
#[derive(Clone, Debug)]
pub struct Comparison {
    pub what: String,
    pub len: usize,
    pub max_abs: f64,
    pub max_rel: f64,
    /// (index, gpu, cpu) of the first mismatches, at most 8.
    pub first_mismatches: Vec<(usize, f32, f32)>,
    pub mismatches: usize,
    pub tolerance: Tolerance,
}

impl Comparison {
    pub fn passed(&self) -> bool {
        self.mismatches == 0
    }

    /// `Ok(self)` when every element is within tolerance, else an error carrying the report.
    pub fn into_result(self) -> Result<Comparison> {
        if self.passed() {
            Ok(self)
        } else {
            Err(Error::Mismatch(self.report()))
        }
    }

    /// A one-line summary, or on failure a few lines with the first mismatches.
    pub fn report(&self) -> String {
        let mut s = format!(
            "{}: {} elements, max abs err {:.3e}, max rel err {:.3e} (atol {:.1e}, rtol {:.1e})",
            self.what,
            self.len,
            self.max_abs,
            self.max_rel,
            self.tolerance.atol,
            self.tolerance.rtol
        );
        if !self.passed() {
            let _ = write!(
                s,
                " — FAILED: {} of {} outside tolerance; first:",
                self.mismatches, self.len
            );
            for (i, g, c) in &self.first_mismatches {
                let _ = write!(
                    s,
                    "\n    [{i}] gpu {g:e} cpu {c:e} (diff {:.3e})",
                    (*g as f64 - *c as f64).abs()
                );
            }
        }
        s
    }
}

/// Compares `gpu` with `cpu` under `tol`. `what` should name kernel, adapter and shape.
pub fn compare(what: impl Into<String>, gpu: &[f32], cpu: &[f32], tol: Tolerance) -> Comparison {
    let what = what.into();
    let mut c = Comparison {
        what,
        len: cpu.len(),
        max_abs: 0.0,
        max_rel: 0.0,
        first_mismatches: Vec::new(),
        mismatches: 0,
        tolerance: tol,
    };
    if gpu.len() != cpu.len() {
        c.mismatches = gpu.len().max(cpu.len());
        c.what = format!(
            "{} (length {} on the GPU vs {} on the CPU)",
            c.what,
            gpu.len(),
            cpu.len()
        );
        return c;
    }
    for (i, (&g, &r)) in gpu.iter().zip(cpu).enumerate() {
        let (gd, rd) = (g as f64, r as f64);
        let abs = (gd - rd).abs();
        // NaN where the reference has NaN, the same infinity where it has one.
        let ok = if g.is_nan() || r.is_nan() {
            g.is_nan() && r.is_nan()
        } else if g.is_infinite() || r.is_infinite() {
            g == r
        } else {
            tol.allows(gd, rd)
        };
        if abs.is_finite() {
            c.max_abs = c.max_abs.max(abs);
            // Relative error against a floor, so values near zero do not dominate the figure.
            c.max_rel = c.max_rel.max(abs / rd.abs().max(1e-3));
        }
        if !ok {
            c.mismatches += 1;
            if c.first_mismatches.len() < 8 {
                c.first_mismatches.push((i, g, r));
            }
        }
    }
    c
}
