//! Cases for the kernels that are one launch over plain tensors: im2col / col2im / col2im_bias,
//! every pointwise entry, reduce_sum / reduce_mean, and the losses with their backward. Shapes
//! and tolerances are those of tests/gpu/{im2col,pointwise,reduce,loss}.rs: lengths no workgroup
//! divides, the values that break naive activations, and the autoencoder's geometries.

use super::{Case, data, expect, nans, read_all};
use crate::compare::Tolerance;
use crate::cpu;
use crate::error::Result;
use crate::gpu::kernels::{
    im2col as gi, loss as gl, noise as gnoise, pointwise as gp, pool as gpool, reduce as gr,
};
use crate::gpu::{GpuContext, GpuTensor, Launch};
use crate::shape::{ConvGeometry, ConvParams, Shape, conv_transpose2d_geometry, conv2d_geometry};
use crate::spec::{PointLoss, PoolKind, PoolSpec, ReduceSpec};
use crate::tensor::{Rng, Tensor};

type CpuFn = dyn Fn(&[Tensor]) -> Result<Vec<f32>>;
type GpuFn = dyn Fn(&GpuContext, &[GpuTensor], &GpuTensor) -> Result<Launch>;

/// One launch: `inputs` uploaded in order, one output of `out` shape (NaN-filled first).
fn simple(
    op: &str,
    shape: String,
    inputs: Vec<Tensor>,
    out: Shape,
    tol: Tolerance,
    cpu: Box<CpuFn>,
    gpu: Box<GpuFn>,
) -> Case {
    let (name, desc, ins) = (op.to_string(), shape.clone(), inputs.clone());
    Case::new(
        op,
        shape,
        move || Ok(vec![expect(&name, &desc, cpu(&ins)?, tol)]),
        move |ctx| {
            // Built and submitted now; only the read-back is awaited.
            let built = (|| -> Result<GpuTensor> {
                let g: Vec<GpuTensor> = inputs
                    .iter()
                    .enumerate()
                    .map(|(i, t)| ctx.upload(&format!("input {i}"), t))
                    .collect::<Result<_>>()?;
                let y = nans(&ctx, "output", out.clone())?;
                ctx.run(&[&gpu(&ctx, &g, &y)?])?;
                Ok(y)
            })();
            async move { read_all(&ctx, &[&built?]).await }
        },
    )
}

fn geometries() -> Result<Vec<(&'static str, ConvGeometry)>> {
    let conv = |s: [usize; 4], k: [usize; 2], p: ConvParams| {
        conv2d_geometry("check", &Shape::new(s), k, p)
    };
    let mut asym = ConvParams::square(2, 1, 1);
    (asym.stride, asym.padding, asym.dilation) = ([2, 1], [1, 0], [1, 2]);
    let s2p1 = ConvParams::square(2, 1, 1);
    let t = ConvParams::square(2, 1, 1).with_output_padding(1);
    Ok(vec![
        ("per-axis", conv([2, 2, 9, 8], [3, 2], asym)?),
        (
            "k5 s2 p2",
            conv([3, 5, 13, 7], [5, 5], ConvParams::square(2, 2, 1))?,
        ),
        ("encoder.0", conv([64, 1, 28, 28], [3, 3], s2p1)?),
        ("encoder.2", conv([64, 16, 14, 14], [3, 3], s2p1)?),
        (
            "transposed, op1",
            conv_transpose2d_geometry("check", &Shape::new([2, 3, 7, 4]), 5, [3, 2], t)?,
        ),
    ])
}

fn describe(name: &str, g: &ConvGeometry) -> String {
    let p = &g.params;
    let pair = |v: [usize; 2]| {
        if v[0] == v[1] {
            v[0].to_string()
        } else {
            format!("{},{}", v[0], v[1])
        }
    };
    format!(
        "{name}: {} k{}x{} s{} p{} d{}",
        g.image_shape(),
        g.kernel[0],
        g.kernel[1],
        pair(p.stride),
        pair(p.padding),
        pair(p.dilation)
    )
}

fn im2col_cases() -> Result<Vec<Case>> {
    let mut v = Vec::new();
    for (name, g) in geometries()? {
        let image = data(g.image_shape().dims(), 1);
        let cols = data(g.cols_shape().dims(), 2);
        let bias = data(&[g.channels], 3);
        let sum = Tolerance::reduction(g.kernel[0] * g.kernel[1]);
        let d = describe(name, &g);
        v.push(simple(
            "im2col",
            d.clone(),
            vec![image],
            g.cols_shape(),
            Tolerance::EXACT,
            Box::new(move |x| cpu::im2col::im2col(&g, &x[0].data)),
            Box::new(move |c, x, y| gi::im2col(c, &g, &x[0], y)),
        ));
        v.push(simple(
            "col2im",
            d.clone(),
            vec![cols.clone()],
            g.image_shape(),
            sum,
            Box::new(move |x| cpu::im2col::col2im(&g, &x[0].data)),
            Box::new(move |c, x, y| gi::col2im(c, &g, &x[0], y)),
        ));
        v.push(simple(
            "col2im_bias",
            d,
            vec![cols, bias],
            g.image_shape(),
            sum,
            Box::new(move |x| cpu::im2col::col2im_bias(&g, &x[0].data, &x[1].data)),
            Box::new(move |c, x, y| gi::col2im_bias(c, &g, &x[0], &x[1], y)),
        ));
    }
    Ok(v)
}

/// Inputs in [-4, 4) led by the awkward values: both zeros (the relu kinks) and values that
/// overflow a naive exp (sigmoid) or exp(2x) (tanh).
fn awkward(shape: &[usize], seed: u64) -> Tensor {
    let mut x = data(shape, seed);
    for v in &mut x.data {
        *v *= 4.0;
    }
    let special = [0.0, -0.0, 100.0, -100.0, 1000.0, -1000.0, 20.0, -20.0];
    for (v, s) in x.data.iter_mut().zip(special) {
        *v = s;
    }
    x
}

type Unary = (
    &'static str,
    fn(&Tensor) -> Result<Tensor>,
    fn(&GpuContext, &GpuTensor, &GpuTensor) -> Result<Launch>,
);
type Binary = (
    &'static str,
    fn(&Tensor, &Tensor) -> Result<Tensor>,
    fn(&GpuContext, &GpuTensor, &GpuTensor, &GpuTensor) -> Result<Launch>,
);

fn pointwise_cases() -> Result<Vec<Case>> {
    use cpu::pointwise as c;
    let n = [100_003];
    let d = "[100003]".to_string();
    let tol = Tolerance::POINTWISE;
    let unary: [Unary; 7] = [
        ("relu_forward", c::relu_forward, gp::relu_forward),
        (
            "leaky_relu_forward",
            |x| c::leaky_relu_forward(0.1, x),
            |g, x, y| gp::leaky_relu_forward(g, 0.1, x, y),
        ),
        ("sigmoid_forward", c::sigmoid_forward, gp::sigmoid_forward),
        ("tanh_forward", c::tanh_forward, gp::tanh_forward),
        ("gelu_forward", c::gelu_forward, gp::gelu_forward),
        ("silu_forward", c::silu_forward, gp::silu_forward),
        (
            "scale",
            |x| c::scale(-2.5, x),
            |g, x, y| gp::scale(g, -2.5, x, y),
        ),
    ];
    let mut v = Vec::new();
    for (op, cf, gf) in unary {
        let x = awkward(&n, 1);
        let cpu: Box<CpuFn> = Box::new(move |i| Ok(cf(&i[0])?.data));
        let gpu: Box<GpuFn> = Box::new(move |g, i, y| gf(g, &i[0], y));
        v.push(simple(op, d.clone(), vec![x], Shape::new(n), tol, cpu, gpu));
    }
    // The sigmoid and tanh gradients take the forward output, so feed them values in its range.
    let x = awkward(&n, 1);
    let sig = c::sigmoid_forward(&x)?;
    let tanh = c::tanh_forward(&x)?;
    let binary: [(Binary, Tensor); 9] = [
        (
            ("relu_backward", c::relu_backward, gp::relu_backward),
            x.clone(),
        ),
        (
            (
                "leaky_relu_backward",
                |x, dy| c::leaky_relu_backward(0.1, x, dy),
                |g, x, dy, dx| gp::leaky_relu_backward(g, 0.1, x, dy, dx),
            ),
            x.clone(),
        ),
        (
            (
                "sigmoid_backward",
                c::sigmoid_backward,
                gp::sigmoid_backward,
            ),
            sig,
        ),
        (("tanh_backward", c::tanh_backward, gp::tanh_backward), tanh),
        (
            ("gelu_backward", c::gelu_backward, gp::gelu_backward),
            x.clone(),
        ),
        (
            ("silu_backward", c::silu_backward, gp::silu_backward),
            x.clone(),
        ),
        (("add", c::add, gp::add), data(&n, 3)),
        (("sub", c::sub, gp::sub), data(&n, 3)),
        (("mul", c::mul, gp::mul), data(&n, 3)),
    ];
    for ((op, cf, gf), first) in binary {
        let cpu: Box<CpuFn> = Box::new(move |i| Ok(cf(&i[0], &i[1])?.data));
        let gpu: Box<GpuFn> = Box::new(move |g, i, y| gf(g, &i[0], &i[1], y));
        let ins = vec![first, data(&n, 2)];
        v.push(simple(op, d.clone(), ins, Shape::new(n), tol, cpu, gpu));
    }
    let x4 = data(&[64, 16, 7, 7], 4);
    v.push(simple(
        "bias_add_channel",
        "x [64, 16, 7, 7] + b [16]".into(),
        vec![x4.clone(), data(&[16], 5)],
        x4.shape.clone(),
        tol,
        Box::new(|i| Ok(c::bias_add_channel(&i[0], &i[1])?.data)),
        Box::new(|g, i, y| gp::bias_add_channel(g, &i[0], &i[1], y)),
    ));
    let x2 = data(&[257, 10], 6);
    v.push(simple(
        "bias_add_column",
        "x [257, 10] + b [10]".into(),
        vec![x2.clone(), data(&[10], 7)],
        x2.shape.clone(),
        tol,
        Box::new(|i| Ok(c::bias_add_column(&i[0], &i[1])?.data)),
        Box::new(|g, i, y| gp::bias_add_column(g, &i[0], &i[1], y)),
    ));
    Ok(v)
}

fn reduce_cases() -> Result<Vec<Case>> {
    let mut v = Vec::new();
    let shapes: [(&[usize], &[usize]); 3] = [
        (&[64, 16, 13, 13], &[0, 2, 3]), // a conv bias gradient
        (&[3, 4, 5], &[0, 1, 2]),        // everything, to a scalar
        (&[257, 3], &[1]),
    ];
    for (shape, axes) in shapes {
        let spec = ReduceSpec::new(shape, axes)?;
        let d = format!(
            "{} axes {axes:?} -> {}",
            Shape::new(shape),
            spec.out_shape()
        );
        let tol = Tolerance::reduction(spec.reduced_count());
        let x = data(shape, 9);
        let (s1, s2, s3, s4) = (spec.clone(), spec.clone(), spec.clone(), spec.clone());
        v.push(simple(
            "reduce_sum",
            d.clone(),
            vec![x.clone()],
            spec.out_shape(),
            tol,
            Box::new(move |i| Ok(cpu::reduce::reduce_sum(&s1, &i[0])?.data)),
            Box::new(move |g, i, y| gr::reduce_sum(g, &s2, &i[0], y)),
        ));
        v.push(simple(
            "reduce_mean",
            d,
            vec![x],
            spec.out_shape(),
            tol,
            Box::new(move |i| Ok(cpu::reduce::reduce_mean(&s3, &i[0])?.data)),
            Box::new(move |g, i, y| gr::reduce_mean(g, &s4, &i[0], y)),
        ));
    }
    Ok(v)
}

/// The elementwise losses (MSE, L1, BCE, BCE with logits), forward and backward.
fn point_loss_cases() -> Vec<Case> {
    let g = Tensor::full([1], 0.7);
    let mut v = Vec::new();
    for kind in PointLoss::ALL {
        let y = match kind {
            PointLoss::Bce => Tensor::uniform([4, 1, 28, 28], 0.01, 0.99, 11),
            _ => data(&[4, 1, 28, 28], 11),
        };
        let t = Tensor::uniform([4, 1, 28, 28], 0.0, 1.0, 12);
        let d = "y, target [4, 1, 28, 28]".to_string();
        v.push(simple(
            kind.entry(),
            d.clone(),
            vec![y.clone(), t.clone()],
            Shape::new([1]),
            Tolerance::reduction(y.numel()),
            Box::new(move |i| Ok(cpu::loss::point_loss(kind, &i[0], &i[1])?.data)),
            Box::new(move |c, i, out| gl::point_loss(c, kind, &i[0], &i[1], out)),
        ));
        v.push(simple(
            kind.backward_entry(),
            format!("{d}, g 0.7"),
            vec![y.clone(), t, g.clone()],
            y.shape.clone(),
            Tolerance::POINTWISE,
            Box::new(move |i| Ok(cpu::loss::point_loss_backward(kind, &i[0], &i[1], &i[2])?.data)),
            Box::new(move |c, i, dy| gl::point_loss_backward(c, kind, &i[0], &i[1], &i[2], dy)),
        ));
    }
    v
}

/// A variational autoencoder's KL term, forward and backward, on a batch of 64 latents of 16.
fn kl_cases() -> Vec<Case> {
    let h = Tensor::uniform([64, 32], -2.0, 2.0, 17);
    let d = "h [64, 32] (16 means, 16 log-variances)".to_string();
    vec![
        simple(
            "kl_divergence",
            d.clone(),
            vec![h.clone()],
            Shape::new([1]),
            Tolerance::reduction(64 * 16),
            Box::new(|i| Ok(cpu::loss::kl_divergence(&i[0])?.data)),
            Box::new(|c, i, out| gl::kl_divergence(c, &i[0], out)),
        ),
        simple(
            "kl_divergence_backward",
            format!("{d}, g 0.7"),
            vec![h.clone(), Tensor::full([1], 0.7)],
            h.shape.clone(),
            Tolerance::POINTWISE,
            Box::new(|i| Ok(cpu::loss::kl_divergence_backward(&i[0], &i[1])?.data)),
            Box::new(|c, i, dh| gl::kl_divergence_backward(c, &i[0], &i[1], dh)),
        ),
    ]
}

/// Max and average pooling and nearest upsampling, forward and backward, on one odd-sized batch.
fn pool_cases() -> Result<Vec<Case>> {
    let x = Shape::new([2, 3, 7, 9]);
    let specs = [
        PoolSpec::pool(PoolKind::Max, &x, [3, 2], [2, 1], [1, 1])?,
        PoolSpec::pool(PoolKind::Avg, &x, [3, 3], [2, 2], [1, 1])?,
        PoolSpec::upsample(&x, [2, 3])?,
    ];
    let mut v = Vec::new();
    for s in specs {
        let d = format!("{} k{:?} s{:?} p{:?}", x, s.kernel, s.stride, s.padding);
        let tol = match s.kind {
            PoolKind::Avg => Tolerance::POINTWISE,
            _ => Tolerance::EXACT,
        };
        v.push(simple(
            s.kind.entry(),
            d.clone(),
            vec![data(x.dims(), 13)],
            s.out_shape(),
            tol,
            Box::new(move |i| Ok(cpu::pool::forward(&s, &i[0])?.data)),
            Box::new(move |c, i, y| gpool::forward(c, &s, &i[0], y)),
        ));
        v.push(simple(
            s.kind.backward_entry(),
            d,
            vec![data(x.dims(), 13), data(s.out_shape().dims(), 14)],
            s.in_shape(),
            Tolerance::POINTWISE,
            Box::new(move |i| Ok(cpu::pool::backward(&s, &i[0], &i[1])?.data)),
            Box::new(move |c, i, dx| gpool::backward(c, &s, &i[0], &i[1], dx)),
        ));
    }
    Ok(v)
}

/// Cross-entropy needs u32 labels on the GPU, so it is a case of its own: forward and backward
/// in one run.
fn cross_entropy_case() -> Case {
    let (rows, classes) = (257, 7);
    let mut z = data(&[rows, classes], 13);
    for v in &mut z.data {
        *v *= 5.0;
    }
    let mut rng = Rng::new(14);
    let labels: Vec<u32> = (0..rows)
        .map(|_| rng.below(classes as u64) as u32)
        .collect();
    let g = Tensor::full([1], 1.3);
    let d = format!("logits [{rows}, {classes}], g 1.3");
    let (rz, rl, rg, rd) = (z.clone(), labels.clone(), g.clone(), d.clone());
    Case::new(
        "softmax_cross_entropy",
        d,
        move || {
            let loss = cpu::loss::softmax_cross_entropy(&rz, &rl)?;
            let dz = cpu::loss::softmax_cross_entropy_backward(&rz, &rl, &rg)?;
            Ok(vec![
                expect(
                    "softmax_cross_entropy",
                    &rd,
                    loss.data,
                    Tolerance::reduction(rows * classes),
                ),
                expect(
                    "softmax_cross_entropy_backward",
                    &rd,
                    dz.data,
                    Tolerance::reduction(classes),
                ),
            ])
        },
        move |ctx| {
            let built = (|| -> Result<(GpuTensor, GpuTensor)> {
                let gz = ctx.upload("logits", &z)?;
                let glab = gl::upload_labels(&ctx, "labels", &labels, classes)?;
                let gg = ctx.upload("g", &g)?;
                let out = nans(&ctx, "loss", [1])?;
                let dz = nans(&ctx, "dz", z.shape.clone())?;
                let fwd = gl::softmax_cross_entropy(&ctx, &gz, &glab, &out)?;
                let bwd = gl::softmax_cross_entropy_backward(&ctx, &gz, &glab, &gg, &dz)?;
                ctx.run(&[&fwd, &bwd])?;
                Ok((out, dz))
            })();
            async move {
                let (out, dz) = built?;
                read_all(&ctx, &[&out, &dz]).await
            }
        },
    )
}

/// The denoising input noise: a u32 step input, so a case of its own. Box–Muller's sqrt(−2 ln u)
/// magnifies f32's log error near u = 1, hence the wider tolerance (see tests/gpu/noise.rs).
fn noise_case() -> Case {
    let x = Tensor::uniform([4, 1, 28, 28], 0.0, 1.0, 15);
    let (std, seed, step) = (0.3f32, 3u32, 17u32);
    let d = format!("{} std {std} seed {seed} step {step}", x.shape);
    let (rx, rd) = (x.clone(), d.clone());
    let tol = Tolerance {
        atol: 2e-3,
        rtol: 1e-4,
    };
    Case::new(
        "gaussian_noise",
        d,
        move || {
            let y = cpu::noise::gaussian_noise(&rx, std, seed, step)?;
            Ok(vec![expect("gaussian_noise", &rd, y.data, tol)])
        },
        move |ctx| {
            let built = (|| -> Result<GpuTensor> {
                let gx = ctx.upload("x", &x)?;
                let counter = ctx.upload_labels("step", &[step])?;
                let y = nans(&ctx, "y", x.shape.clone())?;
                ctx.run(&[&gnoise::gaussian_noise(&ctx, std, seed, &gx, &counter, &y)?])?;
                Ok(y)
            })();
            async move {
                let y = built?;
                read_all(&ctx, &[&y]).await
            }
        },
    )
}

/// Dropout forward and backward: the mask from the step input, so a case of its own too.
fn dropout_case() -> Case {
    let x = data(&[4, 16, 7, 7], 16);
    let (p, seed, step) = (0.3f32, 5u32, 11u32);
    let d = format!("{} p {p} seed {seed} step {step}", x.shape);
    let (rx, rd) = (x.clone(), d.clone());
    Case::new(
        "dropout_forward",
        d,
        move || {
            let y = cpu::noise::dropout_forward(&rx, p, seed, step)?;
            let dx = cpu::noise::dropout_backward(&rx, p, seed, step)?;
            Ok(vec![
                expect("dropout_forward", &rd, y.data, Tolerance::POINTWISE),
                expect("dropout_backward", &rd, dx.data, Tolerance::POINTWISE),
            ])
        },
        move |ctx| {
            let built = (|| -> Result<(GpuTensor, GpuTensor)> {
                let gx = ctx.upload("x", &x)?;
                let counter = ctx.upload_labels("step", &[step])?;
                let y = nans(&ctx, "y", x.shape.clone())?;
                let dx = nans(&ctx, "dx", x.shape.clone())?;
                let f = gnoise::dropout_forward(&ctx, p, seed, &gx, &counter, &y)?;
                let b = gnoise::dropout_backward(&ctx, p, seed, &gx, &counter, &dx)?;
                ctx.run(&[&f, &b])?;
                Ok((y, dx))
            })();
            async move {
                let (y, dx) = built?;
                read_all(&ctx, &[&y, &dx]).await
            }
        },
    )
}

/// A variational autoencoder's sample and its gradient: the noise from the step input, as for
/// the input noise, and the same tolerance.
fn reparameterize_case() -> Case {
    let h = Tensor::uniform([64, 32], -1.5, 1.5, 18);
    let dz = data(&[64, 16], 19);
    let (seed, step) = (2u32, 13u32);
    let d = format!("h {} seed {seed} step {step}", h.shape);
    let (rh, rdz, rd) = (h.clone(), dz.clone(), d.clone());
    let tol = Tolerance {
        atol: 2e-3,
        rtol: 1e-4,
    };
    Case::new(
        "reparameterize",
        d,
        move || {
            let z = cpu::noise::reparameterize(&rh, seed, step)?;
            let dh = cpu::noise::reparameterize_backward(&rh, &rdz, seed, step)?;
            Ok(vec![
                expect("reparameterize", &rd, z.data, tol),
                expect("reparameterize_backward", &rd, dh.data, tol),
            ])
        },
        move |ctx| {
            let built = (|| -> Result<(GpuTensor, GpuTensor)> {
                let gh = ctx.upload("h", &h)?;
                let gdz = ctx.upload("dz", &dz)?;
                let counter = ctx.upload_labels("step", &[step])?;
                let z = nans(&ctx, "z", dz.shape.clone())?;
                let dh = nans(&ctx, "dh", h.shape.clone())?;
                let f = gnoise::reparameterize(&ctx, seed, &gh, &counter, &z)?;
                let b = gnoise::reparameterize_backward(&ctx, seed, &gh, &gdz, &counter, &dh)?;
                ctx.run(&[&f, &b])?;
                Ok((z, dh))
            })();
            async move {
                let (z, dh) = built?;
                read_all(&ctx, &[&z, &dh]).await
            }
        },
    )
}

/// Batch normalisation on a `[16, 8, 14, 14]` batch: the batch moments, both normalisations,
/// both backward passes and the per-channel sums, in the order a training step and an
/// evaluation take them.
fn batch_norm_case() -> Case {
    use cpu::batch_norm as cb;
    let x = Tensor::uniform([16, 8, 14, 14], -1.0, 3.0, 20);
    let dy = data(&[16, 8, 14, 14], 21);
    let (w, b) = (
        Tensor::uniform([8], 0.5, 1.5, 22),
        Tensor::uniform([8], -0.5, 0.5, 23),
    );
    let (rm, rv) = (
        Tensor::uniform([8], -0.3, 0.3, 24),
        Tensor::uniform([8], 0.5, 2.0, 25),
    );
    let eps = 1e-5;
    let d = format!("x {} eps {eps}", x.shape);
    let (cx, cdy, cw, cb_, crm, crv, rd) = (
        x.clone(),
        dy.clone(),
        w.clone(),
        b.clone(),
        rm.clone(),
        rv.clone(),
        d.clone(),
    );
    // Sums over 3,136 values a channel: the reduction tolerance, relative to the largest value.
    let red = Tolerance::reduction(16 * 14 * 14);
    Case::new(
        "batch_norm_forward",
        d,
        move || {
            let stats = cb::batch_norm_stats(&cx)?;
            let (m, v) = (cb::row(&stats, 0)?, cb::row(&stats, 1)?);
            let y = cb::batch_norm_forward(&cx, &m, &v, &cw, &cb_, eps)?;
            let sums = cb::batch_norm_backward_sums(&cx, &m, &v, &cdy, eps)?;
            let dx = cb::batch_norm_backward(&cx, &m, &v, &cw, &cdy, &sums, eps)?;
            let y_eval = cb::batch_norm_forward(&cx, &crm, &crv, &cw, &cb_, eps)?;
            let dx_eval = cb::batch_norm_backward_eval(&cdy, &crv, &cw, eps)?;
            let big = |t: &Tensor| {
                let m = t.data.iter().fold(1f32, |m, v| m.max(v.abs())) as f64;
                Tolerance {
                    atol: red.atol * m,
                    rtol: red.rtol,
                }
            };
            Ok(vec![
                expect("batch_norm_stats", &rd, stats.data.clone(), big(&stats)),
                expect("batch_norm_forward", &rd, y.data, red),
                expect(
                    "batch_norm_backward_sums",
                    &rd,
                    sums.data.clone(),
                    big(&sums),
                ),
                expect("batch_norm_backward", &rd, dx.data.clone(), big(&dx)),
                expect(
                    "batch_norm_forward (running)",
                    &rd,
                    y_eval.data,
                    Tolerance::POINTWISE,
                ),
                expect(
                    "batch_norm_backward_eval",
                    &rd,
                    dx_eval.data,
                    Tolerance::POINTWISE,
                ),
            ])
        },
        move |ctx| {
            use crate::gpu::kernels::batch_norm::{self as gb, Moments};
            let built = (|| -> Result<Vec<GpuTensor>> {
                let up = |name: &str, t: &Tensor| ctx.upload(name, t);
                let (gx, gdy, gw, gbias) =
                    (up("x", &x)?, up("dy", &dy)?, up("w", &w)?, up("b", &b)?);
                let (grm, grv) = (up("running mean", &rm)?, up("running var", &rv)?);
                let pair = Shape::new([2, 8]);
                let stats = nans(&ctx, "stats", pair.clone())?;
                let sums = nans(&ctx, "sums", pair)?;
                let outs: Vec<GpuTensor> = ["y", "dx", "y eval", "dx eval"]
                    .iter()
                    .map(|n| nans(&ctx, n, x.shape.clone()))
                    .collect::<Result<_>>()?;
                let batch = Moments::Batch(&stats);
                let running = Moments::Running {
                    mean: &grm,
                    var: &grv,
                };
                let launches = [
                    gb::batch_norm_stats(&ctx, &gx, &stats)?,
                    gb::batch_norm_forward(&ctx, eps, &gx, batch, &gw, &gbias, &outs[0])?,
                    gb::batch_norm_backward_sums(&ctx, eps, &gx, batch, &gdy, &sums)?,
                    gb::batch_norm_backward(&ctx, eps, &gx, &stats, &gw, &gdy, &sums, &outs[1])?,
                    gb::batch_norm_forward(&ctx, eps, &gx, running, &gw, &gbias, &outs[2])?,
                    gb::batch_norm_backward_eval(&ctx, eps, &gdy, &grv, &gw, &outs[3])?,
                ];
                ctx.run(&launches.iter().collect::<Vec<_>>())?;
                let [y, dx, y_eval, dx_eval] = <[GpuTensor; 4]>::try_from(outs)
                    .map_err(|_| crate::Error::invalid("batch_norm", "four outputs"))?;
                Ok(vec![stats, y, sums, dx, y_eval, dx_eval])
            })();
            async move {
                let t = built?;
                read_all(&ctx, &t.iter().collect::<Vec<_>>()).await
            }
        },
    )
}

/// Every case of this file; a geometry that fails to build is a bug in the catalogue, reported
/// as a failing case rather than a panic.
pub(super) fn cases() -> Vec<Case> {
    let mut v = Vec::new();
    for part in [
        im2col_cases(),
        pointwise_cases(),
        reduce_cases(),
        pool_cases(),
    ] {
        match part {
            Ok(cases) => v.extend(cases),
            Err(e) => v.push(super::broken("catalogue", e)),
        }
    }
    v.extend(point_loss_cases());
    v.push(cross_entropy_case());
    v.push(noise_case());
    v.push(dropout_case());
    v.extend(kl_cases());
    v.push(reparameterize_case());
    v.push(batch_norm_case());
    v
}
