//! NaN and infinities go through every kind of kernel as PyTorch takes them, on the GPU and in
//! the CPU twins alike: ReLU of NaN is NaN (not 0, which would hide a diverging run), a NaN
//! anywhere in a sum, a product, a loss or an optimizer step comes out as NaN. Compared GPU
//! against CPU with specials matched exactly; PyTorch's own answers checked on the twins.

use crate::common::{check, contexts, data};
use wgrad::compare::Tolerance;
use wgrad::gpu::kernels::{loss as gl, matmul as gm, optim as go, pointwise as gp, reduce as gr};
use wgrad::spec::ReduceSpec;
use wgrad::{Activation, AdamConfig, GpuContext, GpuTensor, MatmulSpec, Tensor, cpu};

const SPECIALS: [f32; 9] = [
    f32::NAN,
    f32::INFINITY,
    f32::NEG_INFINITY,
    -0.0,
    0.0,
    2.5,
    -3.0,
    1e30,
    -1e30,
];

/// 257 values: the specials first, ordinary values after.
fn specials() -> Tensor {
    let mut x = data(&[257], 3);
    x.data[..SPECIALS.len()].copy_from_slice(&SPECIALS);
    x
}

fn run(ctx: &GpuContext, l: wgrad::Result<wgrad::gpu::Launch>, out: &GpuTensor) -> Vec<f32> {
    ctx.run(&[&l.unwrap()]).unwrap();
    ctx.download(out).unwrap().data
}

#[test]
fn the_cpu_twins_answer_as_pytorch_does() {
    let x = Tensor::new([4], vec![f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -1.0]).unwrap();
    // torch.relu(tensor([nan, inf, -inf, -1.])) = [nan, inf, 0., 0.]
    let r = cpu::pointwise::relu_forward(&x).unwrap().data;
    assert!(
        r[0].is_nan() && r[1] == f32::INFINITY && r[2] == 0.0 && r[3] == 0.0,
        "{r:?}"
    );
    // leaky_relu(nan) = nan; sigmoid(nan) = nan; tanh(nan) = nan.
    assert!(cpu::pointwise::leaky_relu_forward(0.1, &x).unwrap().data[0].is_nan());
    assert!(cpu::pointwise::sigmoid_forward(&x).unwrap().data[0].is_nan());
    assert!(cpu::pointwise::tanh_forward(&x).unwrap().data[0].is_nan());
    // threshold_backward(grad, x, 0): x ≤ 0 gives 0, anything else (NaN included) the grad.
    let dy = Tensor::new([4], vec![2.0, 3.0, 4.0, f32::NAN]).unwrap();
    let d = cpu::pointwise::relu_backward(&x, &dy).unwrap().data;
    assert_eq!(&d[..3], &[2.0, 3.0, 0.0]);
    assert_eq!(d[3], 0.0);
}

#[test]
fn pointwise_kernels_keep_nan_and_infinities() {
    let x = specials();
    let dy = data(&[257], 4);
    type Unary = (
        &'static str,
        fn(&Tensor) -> wgrad::Result<Tensor>,
        fn(&GpuContext, &GpuTensor, &GpuTensor) -> wgrad::Result<wgrad::gpu::Launch>,
    );
    let unary: [Unary; 5] = [
        (
            "relu_forward",
            cpu::pointwise::relu_forward,
            gp::relu_forward,
        ),
        (
            "sigmoid_forward",
            cpu::pointwise::sigmoid_forward,
            gp::sigmoid_forward,
        ),
        (
            "tanh_forward",
            cpu::pointwise::tanh_forward,
            gp::tanh_forward,
        ),
        // GELU(−inf) and SiLU(−inf) are −inf·0 = NaN, as in PyTorch.
        (
            "gelu_forward",
            cpu::pointwise::gelu_forward,
            gp::gelu_forward,
        ),
        (
            "silu_forward",
            cpu::pointwise::silu_forward,
            gp::silu_forward,
        ),
    ];
    for ctx in contexts() {
        let gx = ctx.upload("x", &x).unwrap();
        let gdy = ctx.upload("dy", &dy).unwrap();
        let out = ctx.zeros("out", [257]).unwrap();
        for (name, c, g) in unary {
            let got = run(ctx, g(ctx, &gx, &out), &out);
            assert!(got[0].is_nan(), "{name}(NaN) on {}", ctx.describe());
            let what = format!("{name} of NaN, ±inf, ±0, ±1e30");
            check(ctx, &what, &got, &c(&x).unwrap().data, Tolerance::POINTWISE);
        }
        let got = run(ctx, gp::leaky_relu_forward(ctx, 0.1, &gx, &out), &out);
        let want = cpu::pointwise::leaky_relu_forward(0.1, &x).unwrap();
        check(
            ctx,
            "leaky_relu_forward of specials",
            &got,
            &want.data,
            Tolerance::POINTWISE,
        );
        let got = run(ctx, gp::relu_backward(ctx, &gx, &gdy, &out), &out);
        let want = cpu::pointwise::relu_backward(&x, &dy).unwrap();
        check(
            ctx,
            "relu_backward at specials",
            &got,
            &want.data,
            Tolerance::POINTWISE,
        );
        let got = run(
            ctx,
            gp::leaky_relu_backward(ctx, 0.1, &gx, &gdy, &out),
            &out,
        );
        let want = cpu::pointwise::leaky_relu_backward(0.1, &x, &dy).unwrap();
        check(
            ctx,
            "leaky_relu_backward at specials",
            &got,
            &want.data,
            Tolerance::POINTWISE,
        );
    }
}

/// A NaN in A reaches every output of its row through the product and the fused epilogue,
/// whatever the activation; on the GPU as on the CPU.
#[test]
fn matmul_epilogues_keep_nan() {
    let mut a = data(&[5 * 7], 1);
    a.data[7 * 2 + 3] = f32::NAN; // row 2
    let b = data(&[7 * 6], 2);
    let bias = data(&[6], 3);
    for act in [
        Activation::Relu,
        Activation::Tanh,
        Activation::LeakyRelu(0.1),
    ] {
        let mut spec = MatmulSpec::new(5, 7, 6);
        spec.act = act;
        spec.bias = wgrad::BiasMode::PerCol;
        let want = cpu::matmul::matmul(&spec, &a.data, &b.data, &bias.data).unwrap();
        assert!(
            want[2 * 6..3 * 6].iter().all(|v| v.is_nan()),
            "{act:?}: {want:?}"
        );
        for ctx in contexts() {
            let (ga, gb) = (ctx.upload("a", &a).unwrap(), ctx.upload("b", &b).unwrap());
            let gbias = ctx.upload("bias", &bias).unwrap();
            let c = ctx.zeros("c", [30]).unwrap();
            let got = run(ctx, gm::matmul(ctx, &spec, &ga, &gb, Some(&gbias), &c), &c);
            check(
                ctx,
                &format!("matmul {act:?} with a NaN in A"),
                &got,
                &want,
                Tolerance::reduction(7),
            );
        }
    }
}

/// Sums, losses and the optimizer carry a NaN through to their result.
#[test]
fn reductions_losses_and_optimizers_keep_nan() {
    let x = specials();
    let spec = ReduceSpec::new([257], &[0]).unwrap();
    let sum = cpu::reduce::reduce_sum(&spec, &x).unwrap();
    assert!(sum.data[0].is_nan());
    let mut y = data(&[2, 6], 5);
    y.data[7] = f32::NAN;
    let t = data(&[2, 6], 6);
    let mse = cpu::loss::mse_loss(&y, &t).unwrap();
    let ce = cpu::loss::softmax_cross_entropy(&y, &[1, 2]).unwrap();
    assert!(mse.data[0].is_nan() && ce.data[0].is_nan());
    let mut grad = data(&[257], 7);
    grad.data[100] = f32::NAN;
    let init = data(&[257], 8);
    for ctx in contexts() {
        let gx = ctx.upload("x", &x).unwrap();
        let out = ctx.zeros("sum", [1]).unwrap();
        let got = run(ctx, gr::reduce_sum(ctx, &spec, &gx, &out), &out);
        assert!(
            got[0].is_nan(),
            "reduce_sum with a NaN on {}",
            ctx.describe()
        );
        let (gy, gt) = (ctx.upload("y", &y).unwrap(), ctx.upload("t", &t).unwrap());
        let got = run(ctx, gl::mse_loss(ctx, &gy, &gt, &out), &out);
        assert!(got[0].is_nan(), "mse_loss with a NaN on {}", ctx.describe());
        let labels = gl::upload_labels(ctx, "labels", &[1, 2], 6).unwrap();
        let got = run(
            ctx,
            gl::softmax_cross_entropy(ctx, &gy, &labels, &out),
            &out,
        );
        assert!(
            got[0].is_nan(),
            "cross-entropy with a NaN logit on {}",
            ctx.describe()
        );
        // An Adam step with a NaN gradient leaves that parameter NaN, the others finite.
        let p = ctx.upload("p", &init).unwrap();
        let g = ctx.upload("g", &grad).unwrap();
        let (m, v) = (
            ctx.zeros("m", [257]).unwrap(),
            ctx.zeros("v", [257]).unwrap(),
        );
        let step = go::adam_step(ctx, &p, &g, &m, &v, &AdamConfig::adam(), 1).unwrap();
        ctx.run(&[&step]).unwrap();
        let after = ctx.download(&p).unwrap().data;
        assert!(
            after[100].is_nan(),
            "Adam with a NaN gradient on {}",
            ctx.describe()
        );
        assert_eq!(after.iter().filter(|v| v.is_nan()).count(), 1);
    }
}
