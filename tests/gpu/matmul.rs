//! matmul.wgsl against cpu::matmul: transposes, batching, broadcast, batch sums, epilogues,
//! on shapes that are not multiples of the register blocks or the workgroups, through every
//! entry point (`matmul`, `matmul_rows`, `matmul_reg4` with vec4 loads, `matmul_reg` scalar,
//! `matmul_smem`, `matmul_tiled*` with the shape a GPU would pick) and the mapping the default
//! launcher picks. tests/gpu/matmul_tiled.rs covers every `Tiled` shape.

use crate::common::{check, contexts, data, tag};
use wgrad::compare::Tolerance;
use wgrad::gpu::kernels::matmul::{
    MatmulTile, TILED_SHAPES, entry_and_constants, gpu_tile, matmul, matmul_tiled, split_chunk,
    vec4_aligned,
};
use wgrad::{Activation, BiasMode, GpuContext, MatmulSpec, cpu};

/// Register-block mappings every shape runs with: small blocks (they compile fast) in both
/// lane layouts, the vec4 entry point where the shape allows it and the scalar one always.
const REG_TILES: [MatmulTile; 2] = [
    MatmulTile::Reg {
        bm: 8,
        bn: 4,
        wg_x: 2,
        wg_y: 4,
        vec4: true,
    },
    MatmulTile::Reg {
        bm: 4,
        bn: 8,
        wg_x: 8,
        wg_y: 1,
        vec4: false,
    },
];

/// The mappings `spec` is checked with on `ctx`: every entry point (`Tiled` with the shape GPUs
/// choose for `spec`), and the default choice.
/// `reg_tiles` adds [`REG_TILES`]; the epilogue tests leave them out, as each activation and
/// bias mode is a separate pipeline of every `Reg` mapping (compile time), and the epilogue
/// code is shared by the `Reg` entry points that the default choice already covers.
fn tiles_for(ctx: &GpuContext, spec: &MatmulSpec, reg_tiles: bool) -> Vec<MatmulTile> {
    let mut tiles = vec![
        MatmulTile::Blocks { wg_x: 8, wg_y: 8 },
        MatmulTile::Rows { wg_x: 64 },
        MatmulTile::Shared,
        gpu_tile(spec),
    ];
    if reg_tiles {
        tiles.extend(REG_TILES);
    }
    let chosen = MatmulTile::for_shape(ctx, spec);
    if !tiles.contains(&chosen) {
        tiles.push(chosen);
    }
    tiles
}

fn run(spec: MatmulSpec, what: &str) {
    run_with(spec, what, true)
}

fn run_with(spec: MatmulSpec, what: &str, reg_tiles: bool) {
    let a = data(&[spec.a_len()], 1);
    let b = data(&[spec.b_len()], 2);
    let bias = data(&[spec.bias_len()], 3);
    let want = cpu::matmul::matmul(&spec, &a.data, &b.data, &bias.data).unwrap();
    let k_total = spec.k * if spec.sum_batches { spec.batch } else { 1 };
    for ctx in contexts() {
        for tile in tiles_for(ctx, &spec, reg_tiles) {
            let ga = ctx.upload("a", &a).unwrap();
            let gb = ctx.upload("b", &b).unwrap();
            let gbias = ctx.upload("bias", &bias).unwrap();
            let gc = ctx.zeros("c", [spec.c_len()]).unwrap();
            let used_bias = (spec.bias != BiasMode::None).then_some(&gbias);
            let l = matmul_tiled(ctx, &spec, tile, &ga, &gb, used_bias, &gc).unwrap();
            ctx.run(&[&l]).unwrap();
            let got = ctx.download(&gc).unwrap();
            let desc = format!(
                "matmul {} {tile:?} {what} batch {} [{}x{}]·[{}x{}] ta={} tb={}",
                entry_and_constants(&spec, tile).0,
                spec.batch,
                spec.m,
                spec.k,
                spec.k,
                spec.n,
                spec.trans_a,
                spec.trans_b
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
    assert_eq!(split_chunk(&s3), 1, "split, one chunk per image");
}

/// Batch sums with small outputs are split into chunks and summed in a second pass
/// (`matmul_split_sum`); that pass also applies the epilogue.
#[test]
fn split_batch_sums() {
    // A 3×3 conv's weight gradient: 16×9 summed over 12 images, one chunk per image.
    let mut s = MatmulSpec::new(16, 50, 9);
    s.batch = 12;
    s.trans_b = true;
    s.sum_batches = true;
    assert_eq!(split_chunk(&s), 1);
    run(s, "split sum, chunks of 1");
    // Chunks of 4 images; the transposed A; bias and activation in the summing pass.
    let mut s = MatmulSpec::new(132, 8, 124);
    s.batch = 12;
    s.trans_a = true;
    s.sum_batches = true;
    s.bias = BiasMode::PerRow;
    s.act = Activation::Tanh;
    assert_eq!(split_chunk(&s), 4);
    run(s, "split sum, chunks of 4, epilogue");
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
            run_with(s, &format!("{act:?} {bias:?}"), false);
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
            MatmulTile::Reg {
                bm: 4,
                bn: 4,
                wg_x: 1,
                wg_y: 8,
                vec4: false,
            },
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

/// Shapes whose contiguous dimensions are multiples of 4 (so `matmul_reg4` runs) but whose
/// m, n and k are not multiples of the blocks: every transpose combination.
#[test]
fn vec4_layouts_with_edges() {
    for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
        for (m, k, n) in [(12, 8, 20), (36, 28, 44), (4, 4, 4)] {
            let mut s = MatmulSpec::new(m, k, n);
            s.trans_a = ta;
            s.trans_b = tb;
            assert!(vec4_aligned(&s));
            run(s, "vec4 layout");
        }
    }
    // k % 4 != 0 with A transposed and B not: the vec4 kernel's masked tail step.
    for (m, k, n) in [(8, 7, 12), (20, 1, 4), (4, 13, 36)] {
        let mut s = MatmulSpec::new(m, k, n);
        s.trans_a = true;
        assert!(vec4_aligned(&s));
        run(s, "vec4 layout, k tail");
    }
}

/// Batches, broadcasts and batch sums on vec4-aligned shapes, with and without transposes.
#[test]
fn vec4_batched_broadcast_and_summed() {
    let mut s = MatmulSpec::new(12, 28, 20);
    s.batch = 3;
    run(s, "vec4 batched");
    s.broadcast_a = true;
    run(s, "vec4 broadcast A");
    s.trans_a = true;
    run(s, "vec4 broadcast Aᵀ");
    let mut s2 = MatmulSpec::new(8, 12, 24);
    s2.batch = 4;
    s2.broadcast_b = true;
    s2.trans_b = true;
    run(s2, "vec4 broadcast Bᵀ");
    let mut s3 = MatmulSpec::new(16, 48, 12);
    s3.batch = 5;
    s3.trans_b = true;
    s3.sum_batches = true;
    run(s3, "vec4 summed over batch, Bᵀ");
    let mut s4 = MatmulSpec::new(20, 9, 8);
    s4.batch = 3;
    s4.trans_a = true;
    s4.sum_batches = true;
    run(s4, "vec4 summed over batch, Aᵀ, k tail");
}

/// Every bias mode and activation through the vec4 epilogue.
#[test]
fn vec4_fused_epilogues() {
    let acts = [
        Activation::None,
        Activation::Relu,
        Activation::LeakyRelu(0.1),
        Activation::Sigmoid,
        Activation::Tanh,
    ];
    for act in acts {
        for bias in [BiasMode::None, BiasMode::PerRow, BiasMode::PerCol] {
            let mut s = MatmulSpec::new(13, 20, 24);
            s.act = act;
            s.bias = bias;
            assert!(vec4_aligned(&s));
            run_with(s, &format!("vec4 {act:?} {bias:?}"), false);
            // The scalar Reg entry point on the same aligned shape.
            if act == Activation::Sigmoid {
                run(
                    s,
                    &format!("vec4 shape, all entry points, {act:?} {bias:?}"),
                );
            }
        }
    }
}

/// Every block size the launcher may pick, on an odd shape (scalar entry point) and a vec4 one,
/// each block larger than some dimension of the product. Blocks the launcher would not pick on
/// an adapter are skipped there, as their compile times are: on GL any block over 8×8 (wgpu
/// holds the GL context while a pipeline compiles, and other test threads give up after 6 s),
/// on Vulkan scalar blocks over 128 accumulators (16×16 takes ~7 s to compile on lavapipe).
#[test]
fn every_register_block() {
    let odd = MatmulSpec::new(37, 29, 41);
    let mut even = MatmulSpec::new(36, 28, 44);
    even.bias = BiasMode::PerCol;
    even.act = Activation::Relu;
    for spec in [odd, even] {
        let a = data(&[spec.a_len()], 11);
        let b = data(&[spec.b_len()], 12);
        let bias = data(&[spec.bias_len()], 13);
        let want = cpu::matmul::matmul(&spec, &a.data, &b.data, &bias.data).unwrap();
        for ctx in contexts() {
            let (ga, gb) = (ctx.upload("a", &a).unwrap(), ctx.upload("b", &b).unwrap());
            let gbias = ctx.upload("bias", &bias).unwrap();
            let used_bias = (spec.bias != BiasMode::None).then_some(&gbias);
            for bm in [4, 8, 16, 32] {
                for bn in [4, 8, 16, 32] {
                    for vec4 in [true, false] {
                        if vec4 && !vec4_aligned(&spec) {
                            continue;
                        }
                        let gl = ctx.info.backend == wgpu::Backend::Gl;
                        let cap = match (gl, vec4) {
                            (true, _) => 64,
                            (false, true) => 1024,
                            (false, false) => 128,
                        };
                        if bm * bn > cap {
                            continue;
                        }
                        let tile = MatmulTile::Reg {
                            bm,
                            bn,
                            wg_x: 4,
                            wg_y: 2,
                            vec4,
                        };
                        let gc = ctx.zeros("c", [spec.c_len()]).unwrap();
                        let l = matmul_tiled(ctx, &spec, tile, &ga, &gb, used_bias, &gc).unwrap();
                        ctx.run(&[&l]).unwrap();
                        let got = ctx.download(&gc).unwrap();
                        check(
                            ctx,
                            &format!(
                                "matmul {} {tile:?} [{}x{}]·[{}x{}]",
                                entry_and_constants(&spec, tile).0,
                                spec.m,
                                spec.k,
                                spec.k,
                                spec.n
                            ),
                            &got.data,
                            &want,
                            Tolerance::reduction(spec.k),
                        );
                    }
                }
            }
        }
    }
}

/// Register blocks of unsupported sizes are refused with an error naming the op.
#[test]
fn bad_register_blocks_are_refused() {
    let spec = MatmulSpec::new(4, 4, 4);
    for ctx in contexts() {
        let a = ctx.zeros("a", [16]).unwrap();
        let b = ctx.zeros("b", [16]).unwrap();
        let c = ctx.zeros("c", [16]).unwrap();
        for tile in [
            MatmulTile::Reg {
                bm: 12,
                bn: 4,
                wg_x: 8,
                wg_y: 1,
                vec4: true,
            },
            MatmulTile::Reg {
                bm: 4,
                bn: 4,
                wg_x: 0,
                wg_y: 1,
                vec4: true,
            },
        ] {
            let e = matmul_tiled(ctx, &spec, tile, &a, &b, None, &c)
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("matmul:"), "{e}");
        }
    }
}

/// A mapping larger than the device allows is refused with the limit named, before wgpu sees
/// it; the tuner never offers one.
#[test]
fn tiles_over_the_workgroup_limits_are_refused() {
    let spec = MatmulSpec::new(4, 4, 4);
    for ctx in contexts() {
        let a = ctx.zeros("a", [16]).unwrap();
        let b = ctx.zeros("b", [16]).unwrap();
        let c = ctx.zeros("c", [16]).unwrap();
        let huge = MatmulTile::Blocks { wg_x: 64, wg_y: 32 };
        let e = matmul_tiled(ctx, &spec, huge, &a, &b, None, &c)
            .unwrap_err()
            .to_string();
        assert!(e.contains("max_compute_invocations_per_workgroup"), "{e}");
        for tile in wgrad::gpu::tune::candidates(ctx, &MatmulSpec::new(64, 1568, 32)) {
            assert!(tile.fits(ctx).is_ok(), "[{}] {tile:?}", tag(ctx));
        }
    }
}

/// The default launcher's choice on the autoencoder's shapes (CPU drivers: register blocks,
/// vec4 where aligned), checked for correctness with the chosen mapping.
#[test]
fn default_choice_on_autoencoder_shapes() {
    let mut shapes = vec![MatmulSpec::new(64, 1568, 32)];
    let mut dec = MatmulSpec::new(64, 32, 1568);
    dec.trans_b = true;
    shapes.push(dec);
    let mut wg = MatmulSpec::new(32, 64, 1568);
    wg.trans_a = true;
    shapes.push(wg);
    let mut conv = MatmulSpec::new(32, 144, 49);
    conv.batch = 8;
    conv.broadcast_a = true;
    conv.bias = BiasMode::PerRow;
    conv.act = Activation::Relu;
    shapes.push(conv);
    for spec in shapes {
        let a = data(&[spec.a_len()], 31);
        let b = data(&[spec.b_len()], 32);
        let bias = data(&[spec.bias_len()], 33);
        let want = cpu::matmul::matmul(&spec, &a.data, &b.data, &bias.data).unwrap();
        for ctx in contexts() {
            let tile = MatmulTile::for_shape(ctx, &spec);
            if ctx.info.device_type == wgpu::DeviceType::Cpu {
                assert!(matches!(tile, MatmulTile::Reg { .. }), "{tile:?}");
            }
            let (ga, gb) = (ctx.upload("a", &a).unwrap(), ctx.upload("b", &b).unwrap());
            let gbias = ctx.upload("bias", &bias).unwrap();
            let used_bias = (spec.bias != BiasMode::None).then_some(&gbias);
            let gc = ctx.zeros("c", [spec.c_len()]).unwrap();
            let l = matmul(ctx, &spec, &ga, &gb, used_bias, &gc).unwrap();
            ctx.run(&[&l]).unwrap();
            let got = ctx.download(&gc).unwrap();
            check(
                ctx,
                &format!(
                    "matmul default {} {tile:?} batch {} [{}x{}]·[{}x{}]",
                    entry_and_constants(&spec, tile).0,
                    spec.batch,
                    spec.m,
                    spec.k,
                    spec.k,
                    spec.n
                ),
                &got.data,
                &want,
                Tolerance::reduction(spec.k),
            );
        }
    }
}

/// Every mapping computes each element of C the same way (one accumulator, `fma` in k order,
/// batches in order, then bias, then activation), so they agree to the bit, not just within a
/// tolerance. The executor relies on this: it may start a program on a mapping that compiles
/// fast and switch to a faster one later, and the autotuner may pick any of them, without a
/// single bit of a training run changing.
#[test]
fn every_mapping_gives_the_same_bits() {
    let mut specs = Vec::new();
    let mut s = MatmulSpec::new(37, 29, 41);
    s.bias = BiasMode::PerCol;
    s.act = Activation::Sigmoid;
    specs.push(s);
    let mut s = MatmulSpec::new(36, 28, 44);
    s.trans_a = true;
    s.bias = BiasMode::PerRow;
    s.act = Activation::Relu;
    specs.push(s);
    let mut s = MatmulSpec::new(12, 33, 20);
    s.trans_b = true;
    specs.push(s);
    let mut s = MatmulSpec::new(16, 9, 20);
    s.batch = 5;
    s.sum_batches = true;
    s.trans_b = true;
    specs.push(s);
    let mut s = MatmulSpec::new(16, 40, 9);
    s.batch = 12;
    s.sum_batches = true;
    s.bias = BiasMode::PerCol;
    s.act = Activation::LeakyRelu(0.1);
    assert!(split_chunk(&s) < s.batch, "a split sum");
    specs.push(s);
    let mut s = MatmulSpec::new(8, 12, 18);
    s.batch = 3;
    s.trans_a = true;
    s.act = Activation::Tanh;
    specs.push(s);
    for spec in specs {
        let a = data(&[spec.a_len()], 41);
        let b = data(&[spec.b_len()], 42);
        let bias = data(&[spec.bias_len()], 43);
        for ctx in contexts() {
            let (ga, gb) = (ctx.upload("a", &a).unwrap(), ctx.upload("b", &b).unwrap());
            let gbias = ctx.upload("bias", &bias).unwrap();
            let used_bias = (spec.bias != BiasMode::None).then_some(&gbias);
            let mut tiles = vec![
                MatmulTile::Blocks { wg_x: 8, wg_y: 8 },
                MatmulTile::Rows { wg_x: 64 },
                MatmulTile::Shared,
                MatmulTile::for_shape(ctx, &spec),
            ];
            for vec4 in [true, false] {
                tiles.push(MatmulTile::Reg {
                    bm: 8,
                    bn: 4,
                    wg_x: 8,
                    wg_y: 1,
                    vec4,
                });
                tiles.push(MatmulTile::Tiled {
                    tm: 8,
                    tn: 4,
                    wg_x: 4,
                    wg_y: 8,
                    tk: 8,
                    vec4,
                });
            }
            tiles.extend([TILED_SHAPES[0], TILED_SHAPES[1], TILED_SHAPES[3]]);
            let mut first: Option<(MatmulTile, Vec<u32>)> = None;
            for tile in tiles {
                let gc = ctx.zeros("c", [spec.c_len()]).unwrap();
                let l = matmul_tiled(ctx, &spec, tile, &ga, &gb, used_bias, &gc).unwrap();
                ctx.run(&[&l]).unwrap();
                let bits: Vec<u32> = ctx
                    .download(&gc)
                    .unwrap()
                    .data
                    .iter()
                    .map(|x| x.to_bits())
                    .collect();
                match &first {
                    None => first = Some((tile, bits)),
                    Some((t0, b0)) => {
                        let diff = b0.iter().zip(&bits).position(|(x, y)| x != y);
                        assert!(
                            diff.is_none(),
                            "{}: {spec:?}: {tile:?} and {t0:?} differ at element {}",
                            ctx.describe(),
                            diff.unwrap_or(0)
                        );
                    }
                }
            }
        }
    }
}
