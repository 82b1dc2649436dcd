//! matmul cases: one spec per variant the executor uses (plain, each transpose, batched,
//! broadcast operands, batch sums, every bias mode with every fused activation), on shapes that
//! are not multiples of the 4×4 register block or the 8×8 workgroup, plus the autoencoder's
//! Linear shapes and the other tilings: `matmul_rows`, and the workgroup-tiled GPU kernel
//! (`matmul_tiled*`) on each of its four load paths with two of its shapes, so that every
//! adapter (a browser's too) runs it whatever mapping its default is. Tolerance: a reduction
//! over k (times the batch when batches are summed), as tests/gpu/matmul.rs states it.

use super::{Case, data, expect, run_read};
use crate::compare::Tolerance;
use crate::cpu;
use crate::gpu::kernels::matmul::{
    MatmulTile, TILED_SHAPES, entry_and_constants, matmul, matmul_tiled,
};
use crate::spec::{Activation, BiasMode, MatmulSpec};

fn describe(s: &MatmulSpec) -> String {
    let mut d = format!("[{}x{}]·[{}x{}]", s.m, s.k, s.k, s.n);
    if s.batch > 1 {
        d = format!("batch {} {d}", s.batch);
    }
    d
}

/// A case for `spec` under `op`, through the default launcher or an explicit tiling.
fn case(op: &str, spec: MatmulSpec, tile: Option<MatmulTile>) -> Case {
    if let Some(t) = tile {
        // An explicit tiling's case is named after the entry point it runs.
        let entry = entry_and_constants(&spec, t).0;
        debug_assert_eq!(op.split(' ').next(), Some(entry), "{op}");
    }
    let a = data(&[spec.a_len()], 1);
    let b = data(&[spec.b_len()], 2);
    let bias = data(&[spec.bias_len()], 3);
    let shape = describe(&spec);
    let k_total = spec.k * if spec.sum_batches { spec.batch } else { 1 };
    let (op_name, shape_ref) = (op.to_string(), shape.clone());
    let (ra, rb, rbias) = (a.clone(), b.clone(), bias.clone());
    Case::new(
        op,
        shape,
        move || {
            let want = cpu::matmul::matmul(&spec, &ra.data, &rb.data, &rbias.data)?;
            let tol = Tolerance::reduction(k_total);
            Ok(vec![expect(&op_name, &shape_ref, want, tol)])
        },
        move |ctx| {
            let (a, b, bias) = (a.clone(), b.clone(), bias.clone());
            async move {
                let ctx = &ctx;
                let ga = ctx.upload("a", &a)?;
                let gb = ctx.upload("b", &b)?;
                let gbias = ctx.upload("bias", &bias)?;
                let gc = super::nans(ctx, "c", [spec.c_len()])?;
                let used_bias = (spec.bias != BiasMode::None).then_some(&gbias);
                let l = match tile {
                    Some(t) => matmul_tiled(ctx, &spec, t, &ga, &gb, used_bias, &gc)?,
                    None => matmul(ctx, &spec, &ga, &gb, used_bias, &gc)?,
                };
                run_read(ctx, &[&l], &[&gc]).await
            }
        },
    )
}

fn spec(m: usize, k: usize, n: usize, f: impl FnOnce(&mut MatmulSpec)) -> MatmulSpec {
    let mut s = MatmulSpec::new(m, k, n);
    f(&mut s);
    s
}

pub(super) fn cases() -> Vec<Case> {
    let mut v = vec![
        case("matmul", MatmulSpec::new(13, 17, 11), None),
        case(
            "matmul (encoder Linear)",
            MatmulSpec::new(64, 1568, 32),
            None,
        ),
        case("matmul trans_a", spec(7, 13, 5, |s| s.trans_a = true), None),
        case("matmul trans_b", spec(7, 13, 5, |s| s.trans_b = true), None),
        case(
            "matmul trans_a trans_b",
            spec(33, 1, 17, |s| (s.trans_a, s.trans_b) = (true, true)),
            None,
        ),
        case(
            "matmul trans_b (decoder Linear)",
            spec(64, 32, 1568, |s| s.trans_b = true),
            None,
        ),
        case("matmul batched", spec(9, 27, 49, |s| s.batch = 3), None),
        case(
            "matmul broadcast_a",
            spec(9, 27, 49, |s| (s.batch, s.broadcast_a) = (3, true)),
            None,
        ),
        case(
            "matmul broadcast_b trans_b",
            spec(5, 11, 6, |s| {
                (s.batch, s.broadcast_b, s.trans_b) = (4, true, true);
            }),
            None,
        ),
        case(
            "matmul sum_batches trans_b",
            spec(16, 49, 9, |s| {
                (s.batch, s.trans_b, s.sum_batches) = (5, true, true);
            }),
            None,
        ),
    ];
    let acts = [
        ("", Activation::None),
        (" relu", Activation::Relu),
        (" leaky_relu 0.1", Activation::LeakyRelu(0.1)),
        (" sigmoid", Activation::Sigmoid),
        (" tanh", Activation::Tanh),
    ];
    for (act_name, act) in acts {
        for (bias_name, bias) in [
            ("", BiasMode::None),
            (" +bias per row", BiasMode::PerRow),
            (" +bias per col", BiasMode::PerCol),
        ] {
            if act == Activation::None && bias == BiasMode::None {
                continue; // the plain case above
            }
            let s = spec(10, 19, 13, |s| (s.act, s.bias) = (act, bias));
            v.push(case(&format!("matmul{bias_name}{act_name}"), s, None));
        }
    }
    // The other workgroup mapping: every shader entry runs somewhere.
    let rows = Some(MatmulTile::Rows { wg_x: 64 });
    v.push(case("matmul_rows", MatmulSpec::new(37, 29, 41), rows));
    let s = spec(7, 13, 5, |s| {
        (s.trans_a, s.trans_b, s.batch) = (true, true, 2)
    });
    v.push(case("matmul_rows trans_a trans_b", s, rows));
    // The workgroup-tiled kernel: scalar loads, vec4 A, vec4 B, both; the 128×128 (8×8 per
    // invocation) and 32×32 (4×4) shapes; a split batch sum; epilogues. Four cases only: each
    // is a pipeline compile of 0.6–1.5 s on a browser's SwiftShader (the 8×8 tiles the most).
    let [big, _, _, small, _, _] = TILED_SHAPES.map(Some);
    let s = spec(12, 7, 20, |s| s.trans_a = true);
    v.push(case("matmul_tiled4 trans_a", s, small));
    let s = spec(132, 33, 131, |s| {
        (s.trans_a, s.bias, s.act) = (true, BiasMode::PerCol, Activation::Sigmoid);
    });
    v.push(case(
        "matmul_tiled_a4 trans_a +bias per col sigmoid",
        s,
        big,
    ));
    let s = spec(16, 9, 196, |s| {
        (s.batch, s.broadcast_a) = (2, true);
        (s.bias, s.act) = (BiasMode::PerRow, Activation::Relu);
    });
    v.push(case(
        "matmul_tiled_b4 broadcast_a +bias per row relu",
        s,
        small,
    ));
    let s = spec(16, 50, 9, |s| {
        (s.batch, s.trans_b, s.sum_batches) = (12, true, true);
        (s.bias, s.act) = (BiasMode::PerCol, Activation::Tanh);
    });
    v.push(case(
        "matmul_tiled split sum_batches trans_b tanh",
        s,
        small,
    ));
    v
}
