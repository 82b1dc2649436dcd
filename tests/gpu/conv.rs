//! ops::conv (GPU compositions of im2col / col2im and matmul) against cpu::conv (direct loops):
//! forward and the data, weight and bias gradients of conv2d and conv_transpose2d, on awkward
//! shapes and the default autoencoder's; and the errors of bad calls.

use crate::common::{check, contexts, data};
use wgrad::compare::Tolerance;
use wgrad::cpu::conv as cpu;
use wgrad::ops::conv::{self as ops, ConvPlan};
use wgrad::shape::{conv_transpose2d_layer, conv2d_layer};
use wgrad::{Activation, ConvParams, GpuContext, GpuTensor, Result, Shape, Tensor};

/// One layer: input shape, the other channel count (conv2d: output channels; transpose: output
/// channels too), kernel, parameters, the fused activation (conv2d only) and whether it has a bias.
struct Case {
    what: &'static str,
    x: [usize; 4],
    c: usize,
    k: [usize; 2],
    p: ConvParams,
    act: Activation,
    bias: bool,
}

fn case(what: &'static str, x: [usize; 4], c: usize, k: usize, p: ConvParams) -> Case {
    Case {
        what,
        x,
        c,
        k: [k, k],
        p,
        act: Activation::None,
        bias: true,
    }
}

fn s(stride: usize, padding: usize, dilation: usize) -> ConvParams {
    ConvParams::square(stride, padding, dilation)
}

/// Runs a plan writing into a NaN-filled output (so unwritten elements fail) and reads it back.
fn gpu_run(
    ctx: &GpuContext,
    shape: &Shape,
    build: impl FnOnce(&GpuTensor) -> Result<ConvPlan>,
) -> Vec<f32> {
    let out = ctx
        .upload("out", &Tensor::full(shape.clone(), f32::NAN))
        .unwrap();
    build(&out).unwrap().run(ctx).unwrap();
    ctx.download(&out).unwrap().data
}

fn describe(c: &Case, w: &Shape) -> String {
    let p = &c.p;
    format!(
        "{}: x{} w{} s{:?} p{:?} d{:?} op{:?}",
        c.what,
        Shape::new(c.x),
        w,
        p.stride,
        p.padding,
        p.dilation,
        p.output_padding
    )
}

fn run_conv2d(c: &Case) {
    let (xs, ws) = (Shape::new(c.x), Shape::new([c.c, c.x[1], c.k[0], c.k[1]]));
    let (g, f) = conv2d_layer("test", &xs, &ws, c.p).unwrap();
    let (x, w, b) = (data(&c.x, 1), data(ws.dims(), 2), data(&[f], 3));
    let dy = data(g.windows_shape(f).dims(), 4);
    let bias = c.bias.then_some(&b);
    let y = cpu::conv2d_forward(&x, &w, bias, c.p, c.act).unwrap();
    let dx = cpu::conv2d_backward_data(&dy, &w, &xs, c.p).unwrap();
    let dw = cpu::conv2d_backward_weight(&x, &dy, &ws, c.p).unwrap();
    let db = cpu::conv2d_backward_bias(&dy).unwrap();
    let taps = c.k[0] * c.k[1];
    let batch_sum = Tolerance::reduction(g.batch * g.col_cols());
    let desc = format!("{} {:?}", describe(c, &ws), c.act);
    for ctx in contexts() {
        let up = |name: &str, t: &Tensor| ctx.upload(name, t).unwrap();
        let (gx, gw, gb, gdy) = (up("x", &x), up("w", &w), up("b", &b), up("dy", &dy));
        let gbias = c.bias.then_some(&gb);
        let got = gpu_run(ctx, &y.shape, |out| {
            ops::conv2d_forward(ctx, &gx, &gw, gbias, out, c.p, c.act)
        });
        let tol = Tolerance::reduction(g.col_rows());
        check(ctx, &format!("conv2d_forward {desc}"), &got, &y.data, tol);
        let got = gpu_run(ctx, &xs, |out| {
            ops::conv2d_backward_data(ctx, &gdy, &gw, out, c.p)
        });
        let tol = Tolerance::reduction(f * taps);
        check(
            ctx,
            &format!("conv2d_backward_data {desc}"),
            &got,
            &dx.data,
            tol,
        );
        let got = gpu_run(ctx, &ws, |out| {
            ops::conv2d_backward_weight(ctx, &gx, &gdy, out, c.p)
        });
        let what = format!("conv2d_backward_weight {desc}");
        check(ctx, &what, &got, &dw.data, batch_sum);
        let got = gpu_run(ctx, &db.shape, |out| {
            ops::conv2d_backward_bias(ctx, &gdy, out)
        });
        let what = format!("conv2d_backward_bias {desc}");
        check(ctx, &what, &got, &db.data, batch_sum);
    }
}

fn run_transpose(c: &Case) {
    let (xs, ws) = (Shape::new(c.x), Shape::new([c.x[1], c.c, c.k[0], c.k[1]]));
    let (g, f) = conv_transpose2d_layer("test", &xs, &ws, c.p).unwrap();
    let (x, w, b) = (data(&c.x, 5), data(ws.dims(), 6), data(&[c.c], 7));
    let dy = data(g.image_shape().dims(), 8);
    let bias = c.bias.then_some(&b);
    let y = cpu::conv_transpose2d_forward(&x, &w, bias, c.p).unwrap();
    let dx = cpu::conv_transpose2d_backward_data(&dy, &w, &xs, c.p).unwrap();
    let dw = cpu::conv_transpose2d_backward_weight(&x, &dy, &ws, c.p).unwrap();
    let db = cpu::conv_transpose2d_backward_bias(&dy).unwrap();
    let taps = c.k[0] * c.k[1];
    let desc = describe(c, &ws);
    for ctx in contexts() {
        let up = |name: &str, t: &Tensor| ctx.upload(name, t).unwrap();
        let (gx, gw, gb, gdy) = (up("x", &x), up("w", &w), up("b", &b), up("dy", &dy));
        let gbias = c.bias.then_some(&gb);
        let got = gpu_run(ctx, &y.shape, |out| {
            ops::conv_transpose2d_forward(ctx, &gx, &gw, gbias, out, c.p)
        });
        let tol = Tolerance::reduction(f * taps);
        check(
            ctx,
            &format!("conv_transpose2d_forward {desc}"),
            &got,
            &y.data,
            tol,
        );
        let got = gpu_run(ctx, &xs, |out| {
            ops::conv_transpose2d_backward_data(ctx, &gdy, &gw, out, c.p)
        });
        let tol = Tolerance::reduction(g.col_rows());
        let what = format!("conv_transpose2d_backward_data {desc}");
        check(ctx, &what, &got, &dx.data, tol);
        let got = gpu_run(ctx, &ws, |out| {
            ops::conv_transpose2d_backward_weight(ctx, &gx, &gdy, out, c.p)
        });
        let tol = Tolerance::reduction(g.batch * g.col_cols());
        let what = format!("conv_transpose2d_backward_weight {desc}");
        check(ctx, &what, &got, &dw.data, tol);
        let got = gpu_run(ctx, &db.shape, |out| {
            ops::conv_transpose2d_backward_bias(ctx, &gdy, out)
        });
        let tol = Tolerance::reduction(dy.numel() / c.c);
        let what = format!("conv_transpose2d_backward_bias {desc}");
        check(ctx, &what, &got, &db.data, tol);
    }
}

#[test]
fn conv2d_awkward_shapes() {
    let mut axes = s(2, 1, 1);
    (axes.stride, axes.padding, axes.dilation) = ([2, 1], [1, 0], [1, 2]);
    let cases = [
        case(
            "batch 1, 1 channel, k3 p1",
            [1, 1, 28, 28],
            1,
            3,
            s(1, 1, 1),
        ),
        Case {
            k: [3, 2],
            act: Activation::Relu,
            ..case(
                "13x7, k3x2, prime channels",
                [2, 3, 13, 7],
                5,
                0,
                s(1, 0, 1),
            )
        },
        Case {
            act: Activation::LeakyRelu(0.1),
            ..case("k5 s2 p2", [3, 7, 13, 7], 2, 5, s(2, 2, 1))
        },
        case("stride 3 > kernel 2", [2, 2, 11, 10], 3, 2, s(3, 0, 1)),
        Case {
            act: Activation::Sigmoid,
            ..case("dilation 2", [2, 3, 12, 9], 4, 3, s(1, 2, 2))
        },
        Case {
            bias: false,
            ..case("kernel 1", [1, 5, 9, 9], 7, 1, s(1, 0, 1))
        },
        case("kernel 1, stride 2", [2, 1, 28, 28], 3, 1, s(2, 0, 1)),
        Case {
            k: [3, 2],
            act: Activation::Tanh,
            ..case("per-axis s/p/d", [2, 2, 9, 8], 3, 0, axes)
        },
    ];
    for c in &cases {
        run_conv2d(c);
    }
}

#[test]
fn conv2d_autoencoder_shapes() {
    let relu = |c: Case| Case {
        act: Activation::Relu,
        ..c
    };
    run_conv2d(&relu(case("encoder.0", [64, 1, 28, 28], 16, 3, s(2, 1, 1))));
    run_conv2d(&relu(case(
        "encoder.2",
        [64, 16, 14, 14],
        32,
        3,
        s(2, 1, 1),
    )));
}

#[test]
fn conv_transpose2d_awkward_shapes() {
    let op1 = |p: ConvParams| p.with_output_padding(1);
    let cases = [
        case("batch 1, 1 channel, k3 p1", [1, 1, 5, 5], 1, 3, s(1, 1, 1)),
        Case {
            k: [3, 2],
            ..case(
                "k3x2 s2 p1 op1, prime channels",
                [2, 3, 7, 4],
                5,
                0,
                op1(s(2, 1, 1)),
            )
        },
        case("stride 3 > kernel 2", [2, 2, 4, 5], 3, 2, s(3, 0, 1)),
        case("dilation 2", [2, 3, 6, 5], 2, 3, s(1, 2, 2)),
        case("k5 s2 p2 op1", [3, 4, 5, 3], 7, 5, op1(s(2, 2, 1))),
        Case {
            bias: false,
            ..case("kernel 1 s2 op1", [1, 2, 6, 6], 3, 1, op1(s(2, 0, 1)))
        },
        Case {
            k: [2, 3],
            ..case(
                "op1 = stride < dilation",
                [1, 2, 4, 3],
                3,
                0,
                op1(s(1, 0, 2)),
            )
        },
        case("13x7 s2 p1", [2, 1, 13, 7], 2, 3, s(2, 1, 1)),
    ];
    for c in &cases {
        run_transpose(c);
    }
}

#[test]
fn conv_transpose2d_autoencoder_shapes() {
    let p = s(2, 1, 1).with_output_padding(1);
    run_transpose(&case("decoder.0", [64, 32, 7, 7], 16, 3, p));
    run_transpose(&case("decoder.2", [64, 16, 14, 14], 1, 3, p));
}

/// Asserts that `r` failed with a message holding every one of `parts`.
fn fails<T: std::fmt::Debug>(r: Result<T>, parts: &[&str]) {
    let e = r.expect_err("a bad call succeeded").to_string();
    for part in parts {
        assert!(e.contains(part), "error {e:?} does not mention {part:?}");
    }
}

#[test]
fn bad_calls_are_errors() {
    let x = data(&[2, 3, 8, 8], 1);
    let fw = "conv2d_forward";
    let tf = "conv_transpose2d_forward";
    let none = Activation::None;
    let w_bad = data(&[4, 2, 3, 3], 2);
    fails(
        cpu::conv2d_forward(&x, &w_bad, None, s(1, 0, 1), none),
        &[fw, "[4, 2, 3, 3]", "[2, 3, 8, 8]"],
    );
    let wt_bad = data(&[2, 4, 3, 3], 2);
    fails(
        cpu::conv_transpose2d_forward(&x, &wt_bad, None, s(1, 0, 1)),
        &[tf, "[2, 4, 3, 3]", "[2, 3, 8, 8]"],
    );
    let w = data(&[4, 3, 3, 3], 3);
    let wt = data(&[3, 4, 3, 3], 3);
    fails(
        cpu::conv2d_forward(&x, &w, None, s(0, 0, 1), none),
        &[fw, "stride"],
    );
    let big = data(&[4, 3, 9, 9], 3);
    fails(
        cpu::conv2d_forward(&x, &big, None, s(1, 0, 1), none),
        &[fw, "no output", "[2, 3, 8, 8]"],
    );
    fails(
        cpu::conv_transpose2d_forward(&x, &wt, None, s(1, 6, 1)),
        &[tf, "no output", "[2, 3, 8, 8]"],
    );
    fails(
        cpu::conv2d_forward(&x, &w, None, s(1, 0, 1).with_output_padding(1), none),
        &[fw, "output_padding"],
    );
    fails(
        cpu::conv_transpose2d_forward(&x, &wt, None, s(2, 0, 1).with_output_padding(2)),
        &[tf, "output_padding"],
    );
    let empty = Tensor::zeros([0, 3, 8, 8]);
    fails(
        cpu::conv2d_forward(&empty, &w, None, s(1, 0, 1), none),
        &[fw, "zero-sized"],
    );
    fails(
        cpu::conv2d_forward(&x, &w, Some(&data(&[3], 4)), s(1, 0, 1), none),
        &[fw, "bias", "[3]", "[4]"],
    );
    let dy_bad = data(&[2, 4, 5, 5], 5);
    let ws = Shape::new([4, 3, 3, 3]);
    fails(
        cpu::conv2d_backward_weight(&x, &dy_bad, &ws, s(1, 0, 1)),
        &[
            "conv2d_backward_weight",
            "dy",
            "[2, 4, 5, 5]",
            "[2, 4, 6, 6]",
        ],
    );
    fails(
        cpu::conv_transpose2d_backward_bias(&data(&[4, 5], 6)),
        &["conv_transpose2d_backward_bias", "rank 4", "[4, 5]"],
    );

    for ctx in contexts() {
        let up = |t: &Tensor| ctx.upload("t", t).unwrap();
        let (gx, gw, gwt) = (up(&x), up(&w), up(&wt));
        let y = ctx.zeros("y", [2, 4, 6, 6]).unwrap();
        let p = s(1, 0, 1);
        fails(
            ops::conv2d_forward(ctx, &gx, &up(&w_bad), None, &y, p, none),
            &[fw, "[4, 2, 3, 3]", "[2, 3, 8, 8]"],
        );
        fails(
            ops::conv2d_forward(ctx, &gx, &gw, None, &y, s(0, 0, 1), none),
            &[fw, "stride"],
        );
        let y_bad = ctx.zeros("y", [2, 4, 6, 5]).unwrap();
        fails(
            ops::conv2d_forward(ctx, &gx, &gw, None, &y_bad, p, none),
            &[fw, "y", "[2, 4, 6, 5]", "[2, 4, 6, 6]"],
        );
        let b_bad = ctx.zeros("b", [5]).unwrap();
        fails(
            ops::conv2d_forward(ctx, &gx, &gw, Some(&b_bad), &y, p, none),
            &[fw, "bias", "[5]", "[4]"],
        );
        let ty = ctx.zeros("y", [2, 4, 10, 10]).unwrap();
        fails(
            ops::conv_transpose2d_forward(ctx, &gx, &gwt, None, &ty, s(1, 6, 1)),
            &[tf, "no output"],
        );
        let gempty = ctx.zeros("x", [2, 0, 8, 8]).unwrap();
        fails(
            ops::conv_transpose2d_forward(ctx, &gempty, &gwt, None, &ty, p),
            &[tf, "zero-sized", "[2, 0, 8, 8]"],
        );
        let dy_bad = ctx.zeros("dy", [2, 4, 10, 9]).unwrap();
        fails(
            ops::conv_transpose2d_backward_data(ctx, &dy_bad, &gwt, &gx, p),
            &[
                "conv_transpose2d_backward_data",
                "dy",
                "[2, 4, 10, 9]",
                "[2, 4, 10, 10]",
            ],
        );
        let dw_bad = ctx.zeros("dw", [3, 4, 3, 3]).unwrap();
        fails(
            ops::conv2d_backward_weight(ctx, &gx, &y, &dw_bad, p),
            &["conv2d_backward_weight", "[3, 4, 3, 3]", "[2, 3, 8, 8]"],
        );
        let db_bad = ctx.zeros("db", [3]).unwrap();
        fails(
            ops::conv2d_backward_bias(ctx, &y, &db_bad),
            &["conv2d_backward_bias", "db", "[3]", "[4]"],
        );
    }
}
