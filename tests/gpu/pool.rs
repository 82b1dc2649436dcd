//! pool.wgsl against cpu::pool: max and average pooling and nearest upsampling, forward and
//! backward, on every adapter: square and non-square windows, overlapping and padded ones,
//! sizes no window divides, a NaN in a max pool's window, and more outputs than one dispatch
//! dimension holds.

use crate::common::{check, contexts, data};
use wgrad::compare::Tolerance;
use wgrad::gpu::kernels::pool as k;
use wgrad::shape::Shape;
use wgrad::spec::{PoolKind, PoolSpec};
use wgrad::{Tensor, cpu};

fn specs() -> Vec<PoolSpec> {
    let pool = |kind, x: [usize; 4], kernel, stride, padding| {
        PoolSpec::pool(kind, &Shape::new(x), kernel, stride, padding).unwrap()
    };
    let mut v = Vec::new();
    for kind in [PoolKind::Max, PoolKind::Avg] {
        v.push(pool(kind, [2, 3, 8, 8], [2, 2], [2, 2], [0, 0]));
        v.push(pool(kind, [2, 3, 7, 9], [3, 2], [2, 1], [1, 1])); // overlapping, padded
        v.push(pool(kind, [1, 2, 5, 5], [3, 3], [1, 1], [1, 1]));
    }
    // 64×16×32×32 → 16×16: 262,144 outputs, past 65,535 workgroups of 1 in one dimension.
    v.push(pool(
        PoolKind::Max,
        [64, 16, 32, 32],
        [2, 2],
        [2, 2],
        [0, 0],
    ));
    for (x, s) in [([2, 3, 7, 5], [2, 2]), ([1, 2, 3, 4], [3, 1])] {
        v.push(PoolSpec::upsample(&Shape::new(x), s).unwrap());
    }
    v
}

#[test]
fn forward_and_backward_match_the_cpu() {
    for (i, s) in specs().iter().enumerate() {
        let x = data(s.input.as_slice(), 50 + i as u64);
        let dy = data(s.out_shape().dims(), 60 + i as u64);
        let want_y = cpu::pool::forward(s, &x).unwrap();
        let want_dx = cpu::pool::backward(s, &x, &dy).unwrap();
        let what = format!(
            "{:?} {} k{:?} s{:?} p{:?}",
            s.kind, x.shape, s.kernel, s.stride, s.padding
        );
        for ctx in contexts() {
            let gx = ctx.upload("x", &x).unwrap();
            let gdy = ctx.upload("dy", &dy).unwrap();
            let y = ctx.zeros("y", s.out_shape()).unwrap();
            let dx = ctx.zeros("dx", s.in_shape()).unwrap();
            let f = k::forward(ctx, s, &gx, &y).unwrap();
            let b = k::backward(ctx, s, &gx, &gdy, &dx).unwrap();
            ctx.run(&[&f, &b]).unwrap();
            let tol = match s.kind {
                PoolKind::Avg => Tolerance::POINTWISE,
                _ => Tolerance::EXACT,
            };
            let got = ctx.download(&y).unwrap().data;
            check(
                ctx,
                &format!("{} {what}", s.kind.entry()),
                &got,
                &want_y.data,
                tol,
            );
            let got = ctx.download(&dx).unwrap().data;
            let what = format!("{} {what}", s.kind.backward_entry());
            check(ctx, &what, &got, &want_dx.data, Tolerance::POINTWISE);
        }
    }
}

#[test]
fn a_nan_wins_its_max_pool_window() {
    let mut x = data(&[1, 1, 4, 4], 70);
    x.data[5] = f32::NAN; // in the first 2×2 window
    let s = PoolSpec::pool(PoolKind::Max, &x.shape, [2, 2], [2, 2], [0, 0]).unwrap();
    let dy = Tensor::full([1, 1, 2, 2], 1.0);
    let want_dx = cpu::pool::max_pool2d_backward(&s, &x, &dy).unwrap();
    assert_eq!(want_dx.data[5], 1.0, "the gradient goes to the NaN");
    for ctx in contexts() {
        let gx = ctx.upload("x", &x).unwrap();
        let y = ctx.zeros("y", s.out_shape()).unwrap();
        let dx = ctx.zeros("dx", s.in_shape()).unwrap();
        let gdy = ctx.upload("dy", &dy).unwrap();
        let f = k::max_pool2d_forward(ctx, &s, &gx, &y).unwrap();
        let b = k::max_pool2d_backward(ctx, &s, &gx, &gdy, &dx).unwrap();
        ctx.run(&[&f, &b]).unwrap();
        let got = ctx.download(&y).unwrap().data;
        assert!(
            got[0].is_nan(),
            "max pool of a NaN window on {}",
            ctx.describe()
        );
        let got = ctx.download(&dx).unwrap().data;
        check(
            ctx,
            "max_pool2d_backward at a NaN",
            &got,
            &want_dx.data,
            Tolerance::EXACT,
        );
    }
}

#[test]
fn bad_calls_are_errors_naming_the_op() {
    let s = PoolSpec::pool(
        PoolKind::Avg,
        &Shape::new([1, 1, 4, 4]),
        [2, 2],
        [2, 2],
        [0, 0],
    )
    .unwrap();
    for ctx in contexts() {
        let x = ctx.zeros("x", [1, 1, 4, 5]).unwrap();
        let y = ctx.zeros("y", [1, 1, 2, 2]).unwrap();
        let e = k::avg_pool2d_forward(ctx, &s, &x, &y)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("avg_pool2d_forward") && e.contains("[1, 1, 4, 4]"),
            "{e}"
        );
        let x = ctx.zeros("x", [1, 1, 4, 4]).unwrap();
        let e = k::max_pool2d_forward(ctx, &s, &x, &y)
            .unwrap_err()
            .to_string();
        assert!(e.contains("max_pool2d_forward") && e.contains("Avg"), "{e}");
    }
}
