//! Cross-backend correctness (`wgrad check`): every kernel entry point, forward and backward,
//! the composite convolutions, the optimizer steps and one whole autoencoder training step, run
//! on each adapter and compared with the CPU reference under the tolerances the tests state.
//!
//! A [`Case`] is a name and two closures over the same inputs: the CPU reference (giving the
//! expected values, each with its tolerance) and the GPU run on one adapter (giving the values to
//! compare, in the same order). The reference runs once per case, the GPU side once per adapter;
//! every comparison becomes a [`Row`] of the [`Report`]. Errors are rows too (a kernel that fails
//! to launch on one driver is a finding, not a reason to stop checking the others).
//!
//! | file | cases |
//! |---|---|
//! | `matmul.rs` | matmul: plain, transposes, batch / broadcast / batch sums, bias × activation epilogues, the other tilings (`matmul_rows`; `matmul_tiled*` on each load path, two shapes, a split sum) |
//! | `elementwise.rs` | im2col / col2im / col2im_bias, every pointwise entry, reduce_sum / mean, MSE and cross-entropy with their backward |
//! | `conv.rs` | conv2d and conv_transpose2d forward and data / weight / bias gradients |
//! | `optim.rs` | sgd_step, adam_step, adamw_step over several steps |
//! | `health.rs` | first_nonfinite, the divergence check after each step |
//! | `train.rs` | one autoencoder training step: loss and every parameter gradient |

mod conv;
mod elementwise;
mod health;
mod matmul;
mod optim;
mod train;

use crate::compare::{Tolerance, compare};
use crate::error::Result;
use crate::gpu::tag;
use crate::gpu::{GpuContext, GpuTensor, Launch, backend_name};
use crate::shape::Shape;
use crate::tensor::Tensor;
use serde::Serialize;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub use train::synthetic_images;

/// One expected output of a case: what it is, its values and how close the GPU must come.
#[derive(Clone, Debug)]
pub struct Expected {
    /// The op this output checks (`conv2d_backward_weight`, `adam_step m`).
    pub op: String,
    /// The shape or configuration it was computed at.
    pub shape: String,
    pub values: Vec<f32>,
    pub tolerance: Tolerance,
}

type Reference = Box<dyn Fn() -> Result<Vec<Expected>>>;
type GpuResult = Pin<Box<dyn Future<Output = Result<Vec<Vec<f32>>>>>>;
type OnGpu = Box<dyn Fn(Arc<GpuContext>) -> GpuResult>;

/// One check: a reference and a GPU run producing outputs in the same order.
pub struct Case {
    /// Names the case in rows that report an error before any output exists.
    pub op: String,
    pub shape: String,
    reference: Reference,
    gpu: OnGpu,
}

impl Case {
    /// `gpu` returns the outputs as a future: it builds and submits its work at once and
    /// awaits only the read-backs, so the check runs in a browser too.
    pub fn new<F>(
        op: impl Into<String>,
        shape: impl Into<String>,
        reference: impl Fn() -> Result<Vec<Expected>> + 'static,
        gpu: impl Fn(Arc<GpuContext>) -> F + 'static,
    ) -> Self
    where
        F: Future<Output = Result<Vec<Vec<f32>>>> + 'static,
    {
        Case {
            op: op.into(),
            shape: shape.into(),
            reference: Box::new(reference),
            gpu: Box::new(move |ctx| Box::pin(gpu(ctx))),
        }
    }
}

/// One comparison on one adapter.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub op: String,
    /// Short tag, `backend:name` ([`tag`]).
    pub adapter: String,
    pub backend: String,
    pub shape: String,
    pub elements: usize,
    pub max_abs_err: f64,
    pub max_rel_err: f64,
    pub atol: f64,
    pub rtol: f64,
    pub mismatches: usize,
    pub passed: bool,
    /// Why the comparison could not be made, or the first mismatches when it failed.
    pub error: Option<String>,
}

/// An adapter the check ran on (or tried to).
#[derive(Clone, Debug, Serialize)]
pub struct AdapterRow {
    pub adapter: String,
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
    /// The class of matmul kernels the adapter ran: `cpu` (CPU drivers' register blocks) or
    /// `gpu` (workgroup-memory tiles: GPUs, and any adapter where the options force them).
    pub matmul_kernels: String,
    /// Whether reductions and losses used subgroup operations (`GpuContext::uses_subgroups`).
    pub subgroups: bool,
}

impl AdapterRow {
    pub fn of(ctx: &GpuContext) -> Self {
        AdapterRow {
            adapter: tag(ctx),
            name: ctx.info.name.clone(),
            backend: backend_name(ctx.backend()).into(),
            device_type: format!("{:?}", ctx.info.device_type),
            driver: format!("{} {}", ctx.info.driver, ctx.info.driver_info)
                .trim()
                .into(),
            matmul_kernels: if crate::gpu::kernels::matmul::cpu_class(ctx) {
                "cpu"
            } else {
                "gpu"
            }
            .into(),
            subgroups: ctx.uses_subgroups(),
        }
    }
}

/// Every row, and the count of failures.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub adapters: Vec<AdapterRow>,
    pub rows: Vec<Row>,
    pub passed: usize,
    pub failed: usize,
}

impl Report {
    /// True when there was something to check and all of it passed.
    pub fn ok(&self) -> bool {
        self.failed == 0 && self.passed > 0
    }

    /// Adds a row that failed before any comparison (an adapter that would not open).
    pub fn push_error(&mut self, op: &str, adapter: &str, backend: &str, error: String) {
        self.failed += 1;
        self.rows.push(error_row(op, adapter, backend, "", error));
    }
}

/// Every case: kernels first (the cheapest to diagnose), the whole training step last.
/// `train_batch` is the autoencoder step's batch size; the autoencoder's convolutions are
/// checked at batch 64, as it trains.
pub fn catalogue(train_batch: usize) -> Vec<Case> {
    catalogue_sized(train_batch, 64)
}

/// [`catalogue`] with the autoencoder's convolutions at `layer_batch` images (a browser's
/// software adapter takes seconds over batch 64).
pub fn catalogue_sized(train_batch: usize, layer_batch: usize) -> Vec<Case> {
    let mut cases = matmul::cases();
    cases.extend(elementwise::cases());
    cases.extend(conv::cases(layer_batch));
    cases.extend(optim::cases());
    cases.extend(health::cases());
    cases.push(train::autoencoder_step(train_batch));
    cases
}

fn error_row(op: &str, adapter: &str, backend: &str, shape: &str, error: String) -> Row {
    Row {
        op: op.into(),
        adapter: adapter.into(),
        backend: backend.into(),
        shape: shape.into(),
        elements: 0,
        max_abs_err: f64::NAN,
        max_rel_err: f64::NAN,
        atol: f64::NAN,
        rtol: f64::NAN,
        mismatches: 0,
        passed: false,
        error: Some(error),
    }
}

/// The rows of one case on one adapter.
async fn case_rows(
    case: &Case,
    expected: &Result<Vec<Expected>>,
    ctx: &Arc<GpuContext>,
) -> Vec<Row> {
    let (adapter, backend) = (tag(ctx), backend_name(ctx.backend()));
    let fail = |e: String| vec![error_row(&case.op, &adapter, backend, &case.shape, e)];
    let expected = match expected {
        Ok(e) => e,
        Err(e) => return fail(format!("CPU reference failed: {e}")),
    };
    let got = match (case.gpu)(ctx.clone()).await {
        Ok(g) => g,
        Err(e) => return fail(format!("GPU run failed: {e}")),
    };
    if got.len() != expected.len() {
        return fail(format!(
            "GPU run gave {} outputs, the reference {}",
            got.len(),
            expected.len()
        ));
    }
    expected
        .iter()
        .zip(&got)
        .map(|(want, got)| {
            let c = compare(want.op.clone(), got, &want.values, want.tolerance);
            Row {
                op: want.op.clone(),
                adapter: adapter.clone(),
                backend: backend.into(),
                shape: want.shape.clone(),
                elements: c.len,
                max_abs_err: c.max_abs,
                max_rel_err: c.max_rel,
                atol: c.tolerance.atol,
                rtol: c.tolerance.rtol,
                mismatches: c.mismatches,
                passed: c.passed(),
                error: (!c.passed()).then(|| c.report()),
            }
        })
        .collect()
}

impl Report {
    fn new(contexts: &[Arc<GpuContext>]) -> Report {
        Report {
            adapters: contexts.iter().map(|c| AdapterRow::of(c)).collect(),
            rows: Vec::new(),
            passed: 0,
            failed: 0,
        }
    }

    fn add(&mut self, rows: Vec<Row>, on_row: &mut dyn FnMut(&Row)) {
        for row in rows {
            if row.passed {
                self.passed += 1;
            } else {
                self.failed += 1;
            }
            on_row(&row);
            self.rows.push(row);
        }
    }
}

/// Runs every case on every context, calling `on_row` as each row is made (for progress), and
/// returns the report. Awaits each case's read-backs; never blocks.
pub async fn run_async(
    contexts: &[Arc<GpuContext>],
    cases: &[Case],
    on_row: &mut dyn FnMut(&Row),
) -> Report {
    let mut report = Report::new(contexts);
    for case in cases {
        let expected = (case.reference)();
        for ctx in contexts {
            report.add(case_rows(case, &expected, ctx).await, on_row);
        }
    }
    report
}

/// Blocking [`run_async`] (native only): each case waits on its adapter at most that context's
/// wait timeout, and a timeout is a failing row.
#[cfg(not(target_arch = "wasm32"))]
pub fn run(contexts: &[Arc<GpuContext>], cases: &[Case], on_row: &mut dyn FnMut(&Row)) -> Report {
    let mut report = Report::new(contexts);
    for case in cases {
        let expected = (case.reference)();
        for ctx in contexts {
            let rows = ctx.block_on("check", async { Ok(case_rows(case, &expected, ctx).await) });
            let rows = rows.unwrap_or_else(|e| {
                let backend = backend_name(ctx.backend());
                vec![error_row(
                    &case.op,
                    &tag(ctx),
                    backend,
                    &case.shape,
                    e.to_string(),
                )]
            });
            report.add(rows, on_row);
        }
    }
    report
}

// Helpers shared by the case files.

/// Deterministic data in [-1, 1), as the tests use.
fn data(shape: &[usize], seed: u64) -> Tensor {
    Tensor::uniform(shape.to_vec(), -1.0, 1.0, seed)
}

/// An output tensor full of NaN, so that an element the kernel forgets to write fails.
fn nans(ctx: &GpuContext, label: &str, shape: impl Into<Shape>) -> Result<GpuTensor> {
    ctx.upload(label, &Tensor::full(shape, f32::NAN))
}

/// Reads `outs` back, in order.
async fn read_all(ctx: &GpuContext, outs: &[&GpuTensor]) -> Result<Vec<Vec<f32>>> {
    let mut v = Vec::new();
    for o in outs {
        v.push(ctx.download_async(o).await?.data);
    }
    Ok(v)
}

/// Runs `launches` in order and reads `outs` back.
async fn run_read(
    ctx: &GpuContext,
    launches: &[&Launch],
    outs: &[&GpuTensor],
) -> Result<Vec<Vec<f32>>> {
    ctx.run(launches)?;
    read_all(ctx, outs).await
}

/// One expected output.
fn expect(op: &str, shape: &str, values: Vec<f32>, tolerance: Tolerance) -> Expected {
    Expected {
        op: op.into(),
        shape: shape.into(),
        values,
        tolerance,
    }
}

/// A case that could not be built (a catalogue bug): it fails on every adapter with `e`.
fn broken(op: &str, e: crate::error::Error) -> Case {
    let msg = e.to_string();
    Case::new(
        op,
        "",
        move || Err(crate::error::Error::invalid("check catalogue", &msg)),
        |_| async { Ok(Vec::new()) },
    )
}
