//! im2col.wgsl (`im2col`, `col2im`, `col2im_bias`) against cpu::im2col, on conv geometries and
//! on transposed-conv geometries (whose window count need not be a conv's of the same image),
//! each with the adapter's own workgroup layout and with two others: one line chunk per
//! workgroup (the most workgroups; planes split into many chunks) and a GPU's share of 512
//! elements (what a CPU adapter would not otherwise run).

use crate::common::{check, contexts, data};
use wgrad::compare::Tolerance;
use wgrad::gpu::kernels::im2col::{
    GroupShare, col2im, col2im_bias, col2im_with, im2col, im2col_with,
};
use wgrad::shape::{ConvGeometry, conv_transpose2d_geometry, conv2d_geometry};
use wgrad::{ConvParams, Shape, Tensor, cpu};

fn geometries() -> Vec<ConvGeometry> {
    let conv = |s: [usize; 4], k: [usize; 2], p: ConvParams| {
        conv2d_geometry("test", &Shape::new(s), k, p).unwrap()
    };
    let mut asym = ConvParams::square(2, 1, 1);
    asym.stride = [2, 1];
    asym.padding = [1, 0];
    asym.dilation = [1, 2];
    // Stride and dilation with common factors: the kernel offsets that reach an image position
    // recur every stride / gcd offsets, and some positions are reached by none. Wider than one
    // workgroup row of 64 invocations.
    let mut common = ConvParams::square(1, 1, 1);
    common.stride = [4, 3];
    common.padding = [3, 2];
    common.dilation = [6, 2];
    vec![
        conv([2, 3, 17, 70], [3, 4], common),
        // Padding wider than the kernel: whole windows in the padding.
        conv([1, 2, 3, 3], [2, 2], ConvParams::square(1, 4, 1)),
        conv([2, 2, 10, 9], [3, 3], ConvParams::square(2, 2, 2)),
        conv_transpose2d_geometry(
            "test",
            &Shape::new([1, 2, 5, 4]),
            3,
            [2, 3],
            ConvParams::square(3, 1, 3).with_output_padding(2),
        )
        .unwrap(),
        conv([1, 1, 28, 28], [3, 3], ConvParams::square(1, 1, 1)),
        conv([2, 3, 13, 7], [3, 2], ConvParams::default()),
        conv([3, 5, 13, 7], [5, 5], ConvParams::square(2, 2, 1)),
        conv([2, 2, 11, 10], [2, 2], ConvParams::square(3, 0, 1)),
        conv([2, 3, 12, 9], [3, 3], ConvParams::square(1, 2, 2)),
        conv([1, 7, 9, 9], [1, 1], ConvParams::default()),
        conv([2, 2, 9, 8], [3, 2], asym),
        conv([64, 1, 28, 28], [3, 3], ConvParams::square(2, 1, 1)),
        // Over 65,535 workgroups of 64 for both the image (4.3M) and cols (9.7M): the launcher
        // folds the dispatch into y.
        conv([64, 4, 130, 130], [3, 3], ConvParams::square(2, 1, 1)),
        conv_transpose2d_geometry(
            "test",
            &Shape::new([2, 3, 7, 4]),
            5,
            [3, 2],
            ConvParams::square(2, 1, 1).with_output_padding(1),
        )
        .unwrap(),
        // output_padding at the stride (allowed below the dilation): fewer windows than a conv
        // of this image would have.
        conv_transpose2d_geometry(
            "test",
            &Shape::new([1, 2, 4, 3]),
            3,
            [2, 3],
            ConvParams::square(1, 0, 2).with_output_padding(1),
        )
        .unwrap(),
    ]
}

fn describe(g: &ConvGeometry) -> String {
    let p = &g.params;
    format!(
        "image {} k{:?} s{:?} p{:?} d{:?} → {}×{}",
        g.image_shape(),
        g.kernel,
        p.stride,
        p.padding,
        p.dilation,
        g.out_h,
        g.out_w
    )
}

/// The workgroup layouts every geometry is run with.
const SHARES: [GroupShare; 3] = [
    GroupShare::Auto,
    GroupShare::Elements(1),
    GroupShare::Elements(512),
];

/// A tensor full of NaN, so that an element the kernel forgets to write fails the comparison.
fn nans(shape: Shape) -> Tensor {
    Tensor::full(shape, f32::NAN)
}

#[test]
fn im2col_matches_cpu() {
    for g in geometries() {
        let x = data(g.image_shape().dims(), 1);
        let want = cpu::im2col::im2col(&g, &x.data).unwrap();
        for ctx in contexts() {
            let gx = ctx.upload("image", &x).unwrap();
            for share in SHARES {
                let gc = ctx.upload("cols", &nans(g.cols_shape())).unwrap();
                let l = match share {
                    GroupShare::Auto => im2col(ctx, &g, &gx, &gc),
                    _ => im2col_with(ctx, &g, &gx, &gc, share),
                };
                ctx.run(&[&l.unwrap()]).unwrap();
                let got = ctx.download(&gc).unwrap();
                let what = format!("im2col {} {share:?}", describe(&g));
                check(ctx, &what, &got.data, &want, Tolerance::EXACT);
            }
        }
    }
}

#[test]
fn col2im_matches_cpu() {
    for g in geometries() {
        let c = data(g.cols_shape().dims(), 2);
        let b = data(&[g.channels], 3);
        let want = cpu::im2col::col2im(&g, &c.data).unwrap();
        let want_b = cpu::im2col::col2im_bias(&g, &c.data, &b.data).unwrap();
        let tol = Tolerance::reduction(g.kernel[0] * g.kernel[1]);
        for ctx in contexts() {
            let gc = ctx.upload("cols", &c).unwrap();
            let gb = ctx.upload("bias", &b).unwrap();
            for share in SHARES {
                for (bias, want) in [(None, &want), (Some(&gb), &want_b)] {
                    let gx = ctx.upload("image", &nans(g.image_shape())).unwrap();
                    let l = match (share, bias) {
                        (GroupShare::Auto, None) => col2im(ctx, &g, &gc, &gx),
                        (GroupShare::Auto, Some(b)) => col2im_bias(ctx, &g, &gc, b, &gx),
                        _ => col2im_with(ctx, &g, &gc, bias, &gx, share),
                    };
                    ctx.run(&[&l.unwrap()]).unwrap();
                    let got = ctx.download(&gx).unwrap();
                    let op = if bias.is_some() {
                        "col2im_bias"
                    } else {
                        "col2im"
                    };
                    let what = format!("{op} {} {share:?}", describe(&g));
                    check(ctx, &what, &got.data, want, tol);
                }
            }
        }
    }
}

#[test]
fn bad_calls_are_errors() {
    let g = geometries()[5];
    let mut zero_stride = g;
    zero_stride.params.stride = [0, 1];
    let short = vec![0.0; g.image_shape().numel() - 1];
    let e = cpu::im2col::im2col(&g, &short).unwrap_err().to_string();
    assert!(e.contains("im2col") && e.contains("[2, 3, 13, 7]"), "{e}");
    let cols = vec![0.0; g.cols_shape().numel()];
    let e = cpu::im2col::col2im(&zero_stride, &cols)
        .unwrap_err()
        .to_string();
    assert!(e.contains("col2im") && e.contains("stride"), "{e}");
    let e = cpu::im2col::col2im_bias(&g, &cols, &[1.0])
        .unwrap_err()
        .to_string();
    assert!(e.contains("col2im_bias") && e.contains("bias"), "{e}");
    for ctx in contexts() {
        let x = ctx.zeros("image", g.image_shape()).unwrap();
        let c = ctx.zeros("cols", g.cols_shape()).unwrap();
        let wrong = ctx.zeros("cols", [g.col_rows(), g.col_cols()]).unwrap();
        let e = im2col(ctx, &g, &x, &wrong).unwrap_err().to_string();
        assert!(
            e.contains("im2col") && e.contains(&g.cols_shape().to_string()),
            "{e}"
        );
        let e = col2im(ctx, &zero_stride, &c, &x).unwrap_err().to_string();
        assert!(e.contains("col2im") && e.contains("stride"), "{e}");
        let b = ctx.zeros("bias", [g.channels + 1]).unwrap();
        let e = col2im_bias(ctx, &g, &c, &b, &x).unwrap_err().to_string();
        assert!(e.contains("col2im_bias") && e.contains("[4]"), "{e}");
    }
}
