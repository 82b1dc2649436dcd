//! The kernel items `wgrad bench` times: matmul at square sizes and at the autoencoder's Linear
//! shapes, the convolutions (in `conv.rs`), pointwise ops and reductions over 1M elements, and
//! the optimizer steps over 100k parameters.

use crate::error::Result;
use crate::gpu::kernels::{matmul as gm, optim as go, pointwise as gp, reduce as gr};
use crate::gpu::{GpuContext, GpuTensor, Launch};
use crate::optim_config::{AdamConfig, SgdConfig};
use crate::shape::Shape;
use crate::spec::{MatmulSpec, ReduceSpec};
use crate::tensor::Tensor;

/// Launches ready to time, and the tensors they use (kept alive while timed).
pub struct Prepared {
    pub launches: Vec<Launch>,
    pub keep: Vec<GpuTensor>,
}

pub(super) type Build = Box<dyn Fn(&GpuContext) -> Result<Prepared>>;

/// One thing to time: what it is, how much work it does, and how to build it on an adapter.
pub struct Item {
    pub op: String,
    pub shape: String,
    /// Floating-point operations per run (0 where only bandwidth matters).
    pub flops: f64,
    /// Bytes read plus bytes written per run.
    pub bytes: f64,
    pub build: Build,
}

pub(super) const BATCH: usize = 64;
const F32: f64 = 4.0;

pub(super) fn item(op: &str, shape: String, flops: f64, elements: usize, build: Build) -> Item {
    Item {
        op: op.into(),
        shape,
        flops,
        bytes: elements as f64 * F32,
        build,
    }
}

pub(super) fn random(
    ctx: &GpuContext,
    label: &str,
    shape: impl Into<Shape>,
    seed: u64,
) -> Result<GpuTensor> {
    ctx.upload(label, &Tensor::uniform(shape, -1.0, 1.0, seed))
}

fn matmul_items() -> Vec<Item> {
    let with = |m, k, n, ta, tb| {
        let mut s = MatmulSpec::new(m, k, n);
        (s.trans_a, s.trans_b) = (ta, tb);
        s
    };
    let specs = [
        ("", with(256, 256, 256, false, false)),
        ("", with(1024, 1024, 1024, false, false)),
        (" encoder Linear", with(64, 1568, 32, false, false)),
        (" trans_b, decoder Linear", with(64, 32, 1568, false, true)),
        (
            " trans_a, Linear weight gradient",
            with(32, 64, 1568, true, false),
        ),
    ];
    specs
        .into_iter()
        .map(|(name, spec)| matmul_item(name, spec))
        .collect()
}

/// A matmul of `spec` on random operands, shown as `[m×k]·[k×n]{name}`.
pub(super) fn matmul_item(name: &str, spec: MatmulSpec) -> Item {
    let elements = spec.a_len() + spec.b_len() + spec.c_len();
    let build: Build = Box::new(move |ctx| {
        let a = random(ctx, "a", [spec.a_len()], 1)?;
        let b = random(ctx, "b", [spec.b_len()], 2)?;
        let c = ctx.zeros("c", [spec.c_len()])?;
        let l = gm::matmul(ctx, &spec, &a, &b, None, &c)?;
        Ok(Prepared {
            launches: vec![l],
            keep: vec![a, b, c],
        })
    });
    let shape = format!("[{}x{}]·[{}x{}]{name}", spec.m, spec.k, spec.k, spec.n);
    item("matmul", shape, spec.flops(), elements, build)
}

type Pointwise = fn(&GpuContext, &[GpuTensor], &GpuTensor) -> Result<Launch>;

fn pointwise_items() -> Vec<Item> {
    const N: usize = 1 << 20;
    let ops: [(&str, usize, Pointwise); 4] = [
        ("relu_forward", 1, |c, i, y| gp::relu_forward(c, &i[0], y)),
        ("sigmoid_forward", 1, |c, i, y| {
            gp::sigmoid_forward(c, &i[0], y)
        }),
        ("relu_backward", 2, |c, i, y| {
            gp::relu_backward(c, &i[0], &i[1], y)
        }),
        ("add", 2, |c, i, y| gp::add(c, &i[0], &i[1], y)),
    ];
    ops.into_iter()
        .map(|(op, inputs, launch)| {
            let build: Build = Box::new(move |ctx| {
                let mut keep = (0..inputs)
                    .map(|i| random(ctx, "x", [N], i as u64))
                    .collect::<Result<Vec<_>>>()?;
                let y = ctx.zeros("y", [N])?;
                let l = launch(ctx, &keep, &y)?;
                keep.push(y);
                Ok(Prepared {
                    launches: vec![l],
                    keep,
                })
            });
            item(op, format!("[{N}]"), 0.0, (inputs + 1) * N, build)
        })
        .collect()
}

fn reduce_items() -> Result<Vec<Item>> {
    let cases: [(&str, Vec<usize>, Vec<usize>); 2] = [
        ("conv bias gradient", vec![BATCH, 16, 32, 32], vec![0, 2, 3]),
        ("to a scalar", vec![1 << 20], vec![0]),
    ];
    let mut v = Vec::new();
    for (name, shape, axes) in cases {
        let spec = ReduceSpec::new(shape, &axes)?;
        let elements = spec.shape.numel() + spec.out_shape().numel();
        let d = format!(
            "{name}: {} axes {axes:?} -> {}",
            spec.shape,
            spec.out_shape()
        );
        v.push(item(
            "reduce_sum",
            d,
            0.0,
            elements,
            Box::new(move |ctx| {
                let x = random(ctx, "x", spec.shape.clone(), 1)?;
                let y = ctx.zeros("y", spec.out_shape())?;
                let l = gr::reduce_sum(ctx, &spec, &x, &y)?;
                Ok(Prepared {
                    launches: vec![l],
                    keep: vec![x, y],
                })
            }),
        ));
    }
    Ok(v)
}

/// Batch normalisation in training at the batchnorm example's first layer: the forward (the
/// batch moments, then the normalisation) and the backward (the per-channel sums, then dx).
fn batch_norm_items() -> Vec<Item> {
    use crate::gpu::kernels::batch_norm::{self as gb, Moments};
    const C: usize = 16;
    let shape = [BATCH, C, 28, 28];
    let n: usize = shape.iter().product();
    let make = |backward: bool| {
        let build: Build = Box::new(move |ctx| {
            let x = random(ctx, "x", shape, 1)?;
            let dy = random(ctx, "dy", shape, 2)?;
            let w = ctx.upload("weight", &Tensor::full([C], 1.0))?;
            let b = ctx.zeros("bias", [C])?;
            let (stats, sums) = (ctx.zeros("stats", [2, C])?, ctx.zeros("sums", [2, C])?);
            let out = ctx.zeros("out", shape)?;
            let eps = 1e-5;
            let mut launches = vec![gb::batch_norm_stats(ctx, &x, &stats)?];
            if backward {
                launches.push(gb::batch_norm_backward_sums(
                    ctx,
                    eps,
                    &x,
                    Moments::Batch(&stats),
                    &dy,
                    &sums,
                )?);
                launches.push(gb::batch_norm_backward(
                    ctx, eps, &x, &stats, &w, &dy, &sums, &out,
                )?);
                // The moments are the forward's: only the two backward launches are timed.
                launches.remove(0);
            } else {
                launches.push(gb::batch_norm_forward(
                    ctx,
                    eps,
                    &x,
                    Moments::Batch(&stats),
                    &w,
                    &b,
                    &out,
                )?);
            }
            ctx.run(&[&gb::batch_norm_stats(ctx, &x, &stats)?])?;
            Ok(Prepared {
                launches,
                keep: vec![x, dy, w, b, stats, sums, out],
            })
        });
        // Forward: x read by both passes of the moments and by the normalisation, y written;
        // backward: x and dy read by the sums and again by dx, dx written.
        let (op, elements) = if backward {
            ("batch_norm backward (sums, dx)", 5 * n)
        } else {
            ("batch_norm forward (moments, y)", 4 * n)
        };
        item(op, format!("{:?} training", shape), 0.0, elements, build)
    };
    vec![make(false), make(true)]
}

fn optim_items() -> Vec<Item> {
    const N: usize = 100_000;
    let sgd = SgdConfig {
        momentum: 0.9,
        ..SgdConfig::new(0.01)
    };
    let adam = AdamConfig::adam();
    let adamw = AdamConfig::adamw();
    // SGD with momentum reads p, g, buf and writes p, buf; Adam reads p, g, m, v, writes p, m, v.
    let make = |op: &'static str, elements: usize| {
        let build: Build = Box::new(move |ctx| {
            let t = |l: &str, seed| random(ctx, l, [N], seed);
            let (p, g, m, s) = (
                t("param", 1)?,
                t("grad", 2)?,
                t("m", 3)?,
                ctx.zeros("v", [N])?,
            );
            let l = match op {
                "sgd_step" => go::sgd_step(ctx, &p, &g, Some(&m), &sgd, 1)?,
                "adam_step" => go::adam_step(ctx, &p, &g, &m, &s, &adam, 1)?,
                _ => go::adamw_step(ctx, &p, &g, &m, &s, &adamw, 1)?,
            };
            Ok(Prepared {
                launches: vec![l],
                keep: vec![p, g, m, s],
            })
        });
        item(op, format!("[{N}] params"), 0.0, elements * N, build)
    };
    vec![
        make("sgd_step", 5),
        make("adam_step", 7),
        make("adamw_step", 7),
    ]
}

/// Appends `part`, or on error an item whose build fails with the reason (a catalogue bug).
fn push(v: &mut Vec<Item>, part: Result<Vec<Item>>) {
    match part {
        Ok(items) => v.extend(items),
        Err(e) => {
            let msg = e.to_string();
            let build: Build =
                Box::new(move |_| Err(crate::error::Error::invalid("bench catalogue", &msg)));
            v.push(item("catalogue", String::new(), 0.0, 0, build));
        }
    }
}

/// Every kernel item, in the order they are reported.
pub fn catalogue() -> Vec<Item> {
    let mut v = matmul_items();
    push(&mut v, super::conv::im2col_items());
    push(&mut v, super::conv::conv_items());
    v.extend(pointwise_items());
    push(&mut v, reduce_items());
    v.extend(batch_norm_items());
    v.extend(optim_items());
    v
}
