//! matmul.wgsl against cpu::matmul: transposes, batching, broadcast, batch sums, epilogues,
//! on shapes that are not multiples of the 4×4 register block or the 8×8 workgroup.

use crate::common::{check, contexts, data};
use wgrad::compare::Tolerance;
use wgrad::gpu::kernels::matmul::{MatmulTile, matmul, matmul_tiled};
use wgrad::{Activation, BiasMode, MatmulSpec, cpu};

fn run(spec: MatmulSpec, what: &str) {
    let a = data(&[spec.a_len()], 1);
    let b = data(&[spec.b_len()], 2);
    let bias = data(&[spec.bias_len()], 3);
    let want = cpu::matmul::matmul(&spec, &a.data, &b.data, &bias.data).unwrap();
    let k_total = spec.k * if spec.sum_batches { spec.batch } else { 1 };
    // Both mappings on every shape: the default picks one per adapter, the other must hold too.
    let tiles = [
        MatmulTile::Blocks { wg_x: 8, wg_y: 8 },
        MatmulTile::Rows { wg_x: 64 },
    ];
    for ctx in contexts() {
        for tile in tiles {
            let ga = ctx.upload("a", &a).unwrap();
            let gb = ctx.upload("b", &b).unwrap();
            let gbias = ctx.upload("bias", &bias).unwrap();
            let gc = ctx.zeros("c", [spec.c_len()]).unwrap();
            let used_bias = (spec.bias != BiasMode::None).then_some(&gbias);
            let l = matmul_tiled(ctx, &spec, tile, &ga, &gb, used_bias, &gc).unwrap();
            ctx.run(&[&l]).unwrap();
            let got = ctx.download(&gc).unwrap();
            let desc = format!(
                "matmul {tile:?} {what} batch {} [{}x{}]·[{}x{}] ta={} tb={}",
                spec.batch, spec.m, spec.k, spec.k, spec.n, spec.trans_a, spec.trans_b
            );
            check(ctx, &desc, &got.data, &want, Tolerance::reduction(k_total));
        }
    }
}

/// The default launcher (tile chosen for the adapter) on one shape.
#[test]
fn default_tile() {
    let spec = MatmulSpec::new(19, 23, 29);
    let a = data(&[spec.a_len()], 7);
    let b = data(&[spec.b_len()], 8);
    let want = cpu::matmul::matmul(&spec, &a.data, &b.data, &[]).unwrap();
    for ctx in contexts() {
        let (ga, gb) = (ctx.upload("a", &a).unwrap(), ctx.upload("b", &b).unwrap());
        let gc = ctx.zeros("c", [spec.c_len()]).unwrap();
        ctx.run(&[&matmul(ctx, &spec, &ga, &gb, None, &gc).unwrap()])
            .unwrap();
        let got = ctx.download(&gc).unwrap();
        check(
            ctx,
            "matmul default tile [19x23]·[23x29]",
            &got.data,
            &want,
            Tolerance::reduction(23),
        );
    }
}

#[test]
fn plain_shapes() {
    for (m, k, n) in [
        (1, 1, 1),
        (3, 5, 7),
        (13, 17, 11),
        (64, 1568, 32),
        (1, 300, 1),
        (257, 3, 2),
        (2, 3, 129),
    ] {
        run(MatmulSpec::new(m, k, n), "plain");
    }
}

#[test]
fn transposes() {
    for (ta, tb) in [(true, false), (false, true), (true, true)] {
        for (m, k, n) in [(7, 13, 5), (33, 1, 17), (64, 32, 1568)] {
            let mut s = MatmulSpec::new(m, k, n);
            s.trans_a = ta;
            s.trans_b = tb;
            run(s, "transposed");
        }
    }
}

#[test]
fn batched_broadcast_and_summed() {
    let mut s = MatmulSpec::new(9, 27, 49);
    s.batch = 3;
    run(s, "batched");
    s.broadcast_a = true;
    run(s, "broadcast A");
    let mut s2 = MatmulSpec::new(5, 11, 6);
    s2.batch = 4;
    s2.broadcast_b = true;
    s2.trans_b = true;
    run(s2, "broadcast Bᵀ");
    let mut s3 = MatmulSpec::new(16, 49, 9);
    s3.batch = 5;
    s3.trans_b = true;
    s3.sum_batches = true;
    run(s3, "summed over batch");
}

#[test]
fn fused_epilogues() {
    let acts = [
        Activation::None,
        Activation::Relu,
        Activation::LeakyRelu(0.1),
        Activation::Sigmoid,
        Activation::Tanh,
    ];
    for act in acts {
        for bias in [BiasMode::None, BiasMode::PerRow, BiasMode::PerCol] {
            let mut s = MatmulSpec::new(10, 19, 13);
            s.act = act;
            s.bias = bias;
            run(s, &format!("{act:?} {bias:?}"));
        }
    }
}

#[test]
fn other_workgroup_shapes() {
    let spec = MatmulSpec::new(37, 29, 41);
    let a = data(&[spec.a_len()], 4);
    let b = data(&[spec.b_len()], 5);
    let want = cpu::matmul::matmul(&spec, &a.data, &b.data, &[]).unwrap();
    for ctx in contexts() {
        let tiles = [
            MatmulTile::Blocks { wg_x: 4, wg_y: 4 },
            MatmulTile::Blocks { wg_x: 16, wg_y: 4 },
            MatmulTile::Blocks { wg_x: 8, wg_y: 8 },
            MatmulTile::Rows { wg_x: 8 },
            MatmulTile::Rows { wg_x: 64 },
        ];
        for tile in tiles {
            let ga = ctx.upload("a", &a).unwrap();
            let gb = ctx.upload("b", &b).unwrap();
            let gc = ctx.zeros("c", [spec.c_len()]).unwrap();
            let l = matmul_tiled(ctx, &spec, tile, &ga, &gb, None, &gc).unwrap();
            ctx.run(&[&l]).unwrap();
            let got = ctx.download(&gc).unwrap();
            check(
                ctx,
                &format!("matmul {tile:?} [37x29]·[29x41]"),
                &got.data,
                &want,
                Tolerance::reduction(29),
            );
        }
    }
}

/// More row tiles than one grid dimension holds (65,535): the launcher folds them over y and z
/// and every row is still computed.
#[test]
fn rows_past_the_dispatch_limit_are_folded() {
    let mut spec = MatmulSpec::new(65_535 * 32 + 37, 2, 3);
    spec.bias = BiasMode::PerCol;
    let a = data(&[spec.a_len()], 21);
    let b = data(&[spec.b_len()], 22);
    let bias = data(&[3], 23);
    let want = cpu::matmul::matmul(&spec, &a.data, &b.data, &bias.data).unwrap();
    for ctx in contexts() {
        for tile in [
            MatmulTile::Blocks { wg_x: 8, wg_y: 8 },
            MatmulTile::Rows { wg_x: 64 },
        ] {
            let (ga, gb) = (ctx.upload("a", &a).unwrap(), ctx.upload("b", &b).unwrap());
            let gbias = ctx.upload("bias", &bias).unwrap();
            let gc = ctx.zeros("c", [spec.c_len()]).unwrap();
            let l = matmul_tiled(ctx, &spec, tile, &ga, &gb, Some(&gbias), &gc).unwrap();
            assert!(
                l.workgroups[2] > 1,
                "expected a folded grid, got {:?}",
                l.workgroups
            );
            ctx.run(&[&l]).unwrap();
            let got = ctx.download(&gc).unwrap();
            check(
                ctx,
                &format!("matmul {tile:?} folded [{}x2]·[2x3]", spec.m),
                &got.data,
                &want,
                Tolerance::reduction(2),
            );
        }
    }
}
