//! pointwise.wgsl against cpu::pointwise: every entry point on every adapter, on lengths that are
//! not multiples of the 256-invocation workgroup, plus one dispatch of more than 65,535
//! workgroups (folded into y) and bad calls that must fail with an error naming the op.

use crate::common::{check, contexts, data};
use wgrad::compare::Tolerance;
use wgrad::gpu::kernels::pointwise as k;
use wgrad::gpu::{GpuTensor, Launch};
use wgrad::{GpuContext, Result, Tensor, cpu};

/// Lengths (and one NCHW-like shape) that no workgroup size divides.
const SHAPES: &[&[usize]] = &[&[1], &[7], &[257], &[100_003], &[3, 5, 7, 11]];

/// Inputs in [-4, 4), with the awkward values first: both zeros (the relu kinks), and values
/// far enough out to overflow a naive exp (sigmoid) or exp(2x) (tanh).
fn input(shape: &[usize], seed: u64) -> Tensor {
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

fn run(ctx: &GpuContext, launch: Result<Launch>, out: &GpuTensor) -> Vec<f32> {
    let l = launch.unwrap();
    ctx.run(&[&l]).unwrap();
    ctx.download(out).unwrap().data
}

type UnaryGpu = dyn Fn(&GpuContext, &GpuTensor, &GpuTensor) -> Result<Launch>;
type BinaryGpu = dyn Fn(&GpuContext, &GpuTensor, &GpuTensor, &GpuTensor) -> Result<Launch>;

fn check_unary(name: &str, cpu: &dyn Fn(&Tensor) -> Result<Tensor>, gpu: &UnaryGpu) {
    for shape in SHAPES {
        let x = input(shape, 1);
        let want = cpu(&x).unwrap();
        for ctx in contexts() {
            let gx = ctx.upload("x", &x).unwrap();
            let gy = ctx.zeros("y", x.shape.clone()).unwrap();
            let got = run(ctx, gpu(ctx, &gx, &gy), &gy);
            let what = format!("{name} {}", x.shape);
            check(ctx, &what, &got, &want.data, Tolerance::POINTWISE);
        }
    }
}

/// `first` makes the first operand from the shape (for the sigmoid and tanh gradients it is the
/// forward output, so it lies in the range those gradients see).
fn check_binary(
    name: &str,
    first: &dyn Fn(&[usize]) -> Tensor,
    cpu: &dyn Fn(&Tensor, &Tensor) -> Result<Tensor>,
    gpu: &BinaryGpu,
) {
    for shape in SHAPES {
        let a = first(shape);
        let b = data(shape, 2);
        let want = cpu(&a, &b).unwrap();
        for ctx in contexts() {
            let ga = ctx.upload("a", &a).unwrap();
            let gb = ctx.upload("b", &b).unwrap();
            let gy = ctx.zeros("out", a.shape.clone()).unwrap();
            let got = run(ctx, gpu(ctx, &ga, &gb, &gy), &gy);
            let what = format!("{name} {}", a.shape);
            check(ctx, &what, &got, &want.data, Tolerance::POINTWISE);
        }
    }
}

#[test]
fn activations_forward() {
    check_unary(
        "relu_forward",
        &cpu::pointwise::relu_forward,
        &k::relu_forward,
    );
    check_unary(
        "leaky_relu_forward",
        &|x| cpu::pointwise::leaky_relu_forward(0.1, x),
        &|c, x, y| k::leaky_relu_forward(c, 0.1, x, y),
    );
    check_unary(
        "sigmoid_forward",
        &cpu::pointwise::sigmoid_forward,
        &k::sigmoid_forward,
    );
    check_unary(
        "tanh_forward",
        &cpu::pointwise::tanh_forward,
        &k::tanh_forward,
    );
    check_unary(
        "gelu_forward",
        &cpu::pointwise::gelu_forward,
        &k::gelu_forward,
    );
    check_unary(
        "silu_forward",
        &cpu::pointwise::silu_forward,
        &k::silu_forward,
    );
}

#[test]
fn activations_backward() {
    let x = |s: &[usize]| input(s, 1);
    check_binary(
        "relu_backward",
        &x,
        &cpu::pointwise::relu_backward,
        &k::relu_backward,
    );
    check_binary(
        "leaky_relu_backward",
        &x,
        &|x, dy| cpu::pointwise::leaky_relu_backward(0.1, x, dy),
        &|c, x, dy, dx| k::leaky_relu_backward(c, 0.1, x, dy, dx),
    );
    let sig = |s: &[usize]| cpu::pointwise::sigmoid_forward(&input(s, 1)).unwrap();
    check_binary(
        "sigmoid_backward",
        &sig,
        &cpu::pointwise::sigmoid_backward,
        &k::sigmoid_backward,
    );
    let tanh = |s: &[usize]| cpu::pointwise::tanh_forward(&input(s, 1)).unwrap();
    check_binary(
        "tanh_backward",
        &tanh,
        &cpu::pointwise::tanh_backward,
        &k::tanh_backward,
    );
    check_binary(
        "gelu_backward",
        &x,
        &cpu::pointwise::gelu_backward,
        &k::gelu_backward,
    );
    check_binary(
        "silu_backward",
        &x,
        &cpu::pointwise::silu_backward,
        &k::silu_backward,
    );
}

#[test]
fn arithmetic() {
    let a = |s: &[usize]| data(s, 3);
    check_binary("add", &a, &cpu::pointwise::add, &k::add);
    check_binary("sub", &a, &cpu::pointwise::sub, &k::sub);
    check_binary("mul", &a, &cpu::pointwise::mul, &k::mul);
    check_unary("scale", &|x| cpu::pointwise::scale(-2.5, x), &|c, x, y| {
        k::scale(c, -2.5, x, y)
    });
}

#[test]
fn bias_adds() {
    let cases: &[&[usize]] = &[
        &[1, 1],
        &[2, 3],
        &[2, 3, 5, 7],
        &[3, 17, 13],
        &[64, 16, 7, 7],
    ];
    for shape in cases {
        let x = data(shape, 4);
        let b = data(&[shape[1]], 5);
        let want = cpu::pointwise::bias_add_channel(&x, &b).unwrap();
        for ctx in contexts() {
            let gx = ctx.upload("x", &x).unwrap();
            let gb = ctx.upload("b", &b).unwrap();
            let gy = ctx.zeros("y", x.shape.clone()).unwrap();
            let got = run(ctx, k::bias_add_channel(ctx, &gx, &gb, &gy), &gy);
            let what = format!("bias_add_channel {}", x.shape);
            check(ctx, &what, &got, &want.data, Tolerance::POINTWISE);
        }
    }
    for (rows, cols) in [(1, 1), (7, 3), (257, 10), (3, 1001)] {
        let x = data(&[rows, cols], 6);
        let b = data(&[cols], 7);
        let want = cpu::pointwise::bias_add_column(&x, &b).unwrap();
        for ctx in contexts() {
            let gx = ctx.upload("x", &x).unwrap();
            let gb = ctx.upload("b", &b).unwrap();
            let gy = ctx.zeros("y", x.shape.clone()).unwrap();
            let got = run(ctx, k::bias_add_column(ctx, &gx, &gb, &gy), &gy);
            let what = format!("bias_add_column {}", x.shape);
            check(ctx, &what, &got, &want.data, Tolerance::POINTWISE);
        }
    }
}

/// 65,536·64 + 7 elements in workgroups of 64 need 65,537 workgroups, one more than fits in x:
/// the launch folds them into (x, y) and the shader recovers the linear index.
#[test]
fn more_workgroups_than_one_dimension_allows() {
    let n = 65_536 * 64 + 7;
    let x = data(&[n], 8);
    let want = cpu::pointwise::scale(3.0, &x).unwrap();
    for ctx in contexts() {
        let gx = ctx.upload("x", &x).unwrap();
        let gy = ctx.zeros("y", [n]).unwrap();
        let l = k::scale_wg(ctx, 64, 3.0, &gx, &gy).unwrap();
        assert!(
            l.workgroups[1] > 1,
            "expected a folded grid, got {:?}",
            l.workgroups
        );
        ctx.run(&[&l]).unwrap();
        let got = ctx.download(&gy).unwrap().data;
        let what = format!("scale (wg 64, grid {:?}) [{n}]", l.workgroups);
        check(ctx, &what, &got, &want.data, Tolerance::POINTWISE);
    }
}

fn expect_err(launch: Result<Launch>, op: &str, mentions: &str) {
    match launch {
        Ok(_) => panic!("{op}: expected an error mentioning '{mentions}'"),
        Err(e) => {
            let msg = e.to_string();
            assert!(
                msg.contains(op) && msg.contains(mentions),
                "error should name {op} and {mentions}: {msg}"
            );
        }
    }
}

#[test]
fn bad_calls_are_errors() {
    for ctx in contexts() {
        let a = ctx.zeros("a", [2, 3]).unwrap();
        let at = ctx.zeros("at", [3, 2]).unwrap();
        let empty = ctx.zeros("empty", [0, 3]).unwrap();
        let long = ctx.zeros("long", [7]).unwrap();
        let labels = ctx.upload_labels("labels", &[0, 1, 2, 0, 1, 2]).unwrap();
        let labels = labels.reshaped([2, 3]).unwrap();
        let out = ctx.zeros("out", [2, 3]).unwrap();

        expect_err(k::add(ctx, &a, &at, &out), "add", "[3, 2]");
        expect_err(k::sub(ctx, &a, &long, &out), "sub", "[7]");
        expect_err(k::mul(ctx, &empty, &empty, &empty), "mul", "zero-sized");
        expect_err(
            k::relu_forward(ctx, &empty, &empty),
            "relu_forward",
            "zero-sized",
        );
        expect_err(k::relu_forward(ctx, &a, &long), "relu_forward", "[7]");
        expect_err(k::relu_backward(ctx, &a, &at, &out), "relu_backward", "dy");
        expect_err(
            k::leaky_relu_backward(ctx, 0.1, &a, &a, &at),
            "leaky_relu_backward",
            "output",
        );
        expect_err(
            k::sigmoid_forward(ctx, &labels, &out),
            "sigmoid_forward",
            "f32",
        );
        expect_err(
            k::tanh_backward(ctx, &a, &labels, &out),
            "tanh_backward",
            "f32",
        );
        expect_err(
            k::scale_wg(ctx, 0, 1.0, &a, &out),
            "scale",
            "workgroup size",
        );
        expect_err(
            k::scale_wg(ctx, 1 << 20, 1.0, &a, &out),
            "scale",
            "workgroup size",
        );

        let x4 = ctx.zeros("x4", [2, 3, 4, 5]).unwrap();
        let y4 = ctx.zeros("y4", [2, 3, 4, 5]).unwrap();
        let b4 = ctx.zeros("b4", [4]).unwrap();
        let b3 = ctx.zeros("b3", [3]).unwrap();
        expect_err(
            k::bias_add_channel(ctx, &x4, &b4, &y4),
            "bias_add_channel",
            "[4]",
        );
        expect_err(
            k::bias_add_channel(ctx, &long, &b3, &long),
            "bias_add_channel",
            "rank",
        );
        expect_err(
            k::bias_add_channel(ctx, &x4, &b3, &out),
            "bias_add_channel",
            "output",
        );
        expect_err(
            k::bias_add_column(ctx, &x4, &b3, &y4),
            "bias_add_column",
            "rank 2",
        );
        expect_err(
            k::bias_add_column(ctx, &a, &b4, &out),
            "bias_add_column",
            "[4]",
        );
    }
}
