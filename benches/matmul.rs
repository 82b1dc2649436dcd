//! matmul GFLOP/s at square sizes and at the autoencoder's shapes, on the adapter chosen the
//! usual way (WGRAD_BACKEND=vulkan|gl|..., else the best present). Throughput is reported as
//! "elements" = FLOPs (2·m·n·k per product), so Gelem/s reads as GFLOP/s.
//!
//! Every shape runs the old default mapping (`old mm 4x4 wg8x8`: `matmul`, 4×4 blocks) and the
//! one the launcher now picks for it (`new`: `MatmulTile::for_shape`; `reg4` = `matmul_reg4`,
//! `reg` = `matmul_reg`, then the register block and the workgroup; `tl4` = `matmul_tiled4`,
//! `tl` / `tl_a4` / `tl_b4` its other load paths, then register tile, workgroup and stage depth),
//! side by side in one run so that the machine's noise does not decide; square sizes also run a
//! 16×16 register block (`ref`), and on GPU-class adapters (a GPU, or any adapter
//! with `WGRAD_KERNELS=gpu`) every shape also runs `matmul_smem` (`smem`). The group name
//! carries the adapter. Shapes (m×k×n, as `MatmulSpec::new(m, k, n)`):
//!
//! | id | product |
//! |---|---|
//! | `enc 64x1568x32` | encoder Linear, X[64×1568]·W |
//! | `dec 64x32x1568 Bt` | decoder Linear, X·Wᵀ |
//! | `lwg 32x64x1568 At` | Linear weight gradient, dYᵀ·X |
//! | `cfwd b64 32x144x49` | conv forward per image, W·cols[n], W broadcast, bias per row + ReLU |
//! | `cwg b64 32x49x144 Bt sum` | conv weight gradient, Σₙ dY[n]·cols[n]ᵀ |
//! | `cdg b64 144x32x49 At` | conv data gradient, Wᵀ·dY[n], W broadcast |
//!
//! The conv rows are an im2col 3×3, 16→32-channel convolution from 14×14 to 7×7 at batch 64:
//! n or k = 49 is not a multiple of 4, so they take the scalar path.

mod common;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::time::Duration;
use wgrad::gpu::kernels::matmul::{MatmulTile, entry_and_constants, matmul_tiled};
use wgrad::{Activation, BiasMode, MatmulSpec, Tensor};

fn shapes() -> Vec<(&'static str, MatmulSpec)> {
    let mut shapes: Vec<(&str, MatmulSpec)> = vec![
        ("256^3", MatmulSpec::new(256, 256, 256)),
        ("512^3", MatmulSpec::new(512, 512, 512)),
        ("1024^3", MatmulSpec::new(1024, 1024, 1024)),
        ("enc 64x1568x32", MatmulSpec::new(64, 1568, 32)),
    ];
    let mut t = MatmulSpec::new(64, 32, 1568);
    t.trans_b = true; // decoder linear: X·Wᵀ
    shapes.push(("dec 64x32x1568 Bt", t));
    let mut g = MatmulSpec::new(32, 64, 1568);
    g.trans_a = true; // weight gradient: dYᵀ·X
    shapes.push(("lwg 32x64x1568 At", g));
    // Convolution-shaped batched products, as ops::conv issues them (see the table above).
    let mut f = MatmulSpec::new(32, 144, 49);
    f.batch = 64;
    f.broadcast_a = true;
    f.bias = BiasMode::PerRow;
    f.act = Activation::Relu;
    shapes.push(("cfwd b64 32x144x49", f));
    let mut w = MatmulSpec::new(32, 49, 144);
    w.batch = 64;
    w.trans_b = true;
    w.sum_batches = true;
    shapes.push(("cwg b64 32x49x144 Bt sum", w));
    let mut d = MatmulSpec::new(144, 32, 49);
    d.batch = 64;
    d.trans_a = true;
    d.broadcast_a = true;
    shapes.push(("cdg b64 144x32x49 At", d));
    shapes
}

/// `entry block workgroup`, short enough that criterion prints the id whole (100 characters
/// with the group name, which carries the adapter).
fn tile_name(spec: &MatmulSpec, tile: MatmulTile) -> String {
    let entry = match entry_and_constants(spec, tile).0 {
        "matmul" => "mm",
        "matmul_rows" => "rows",
        "matmul_reg4" => "reg4",
        "matmul_reg" => "reg",
        "matmul_smem" => "smem",
        "matmul_tiled" => "tl",
        "matmul_tiled_a4" => "tl_a4",
        "matmul_tiled_b4" => "tl_b4",
        "matmul_tiled4" => "tl4",
        other => other,
    };
    match tile {
        MatmulTile::Blocks { wg_x, wg_y } => format!("{entry} 4x4 wg{wg_x}x{wg_y}"),
        MatmulTile::Rows { wg_x } => format!("{entry} 8x4 wg{wg_x}"),
        MatmulTile::Reg {
            bm, bn, wg_x, wg_y, ..
        } => format!("{entry} {bm}x{bn} wg{wg_x}x{wg_y}"),
        MatmulTile::Shared => format!("{entry} 4x4 wg16x16"),
        MatmulTile::Tiled {
            tm,
            tn,
            wg_x,
            wg_y,
            tk,
            ..
        } => format!("{entry} {tm}x{tn} wg{wg_x}x{wg_y} k{tk}"),
    }
}

fn bench(c: &mut Criterion) {
    let Some(ctx) = common::context("matmul") else {
        return;
    };
    let adapter = ctx.describe();
    let cpu_class = wgrad::gpu::kernels::matmul::cpu_class(&ctx);
    let mut group = c.benchmark_group(format!("matmul [{adapter}]"));
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(4));
    for (name, spec) in shapes() {
        let a = ctx
            .upload("a", &Tensor::uniform([spec.a_len()], -1.0, 1.0, 1))
            .unwrap();
        let b = ctx
            .upload("b", &Tensor::uniform([spec.b_len()], -1.0, 1.0, 2))
            .unwrap();
        let bias = ctx
            .upload(
                "bias",
                &Tensor::uniform([spec.bias_len().max(1)], -1.0, 1.0, 3),
            )
            .unwrap();
        let used_bias = (spec.bias != BiasMode::None).then_some(&bias);
        let out = ctx.zeros("c", [spec.c_len()]).unwrap();
        let chosen = MatmulTile::for_shape(&ctx, &spec);
        let mut tiles = vec![
            ("old", MatmulTile::Blocks { wg_x: 8, wg_y: 8 }),
            ("new", chosen),
        ];
        let reference = MatmulTile::Reg {
            bm: 16,
            bn: 16,
            wg_x: 8,
            wg_y: 1,
            vec4: true,
        };
        if spec.m == spec.n && spec.n == spec.k && chosen != reference {
            tiles.push(("ref", reference));
        }
        if !cpu_class {
            // GPU-class (a GPU, or WGRAD_KERNELS=gpu): the fixed workgroup-memory kernel too.
            tiles.push(("smem", MatmulTile::Shared));
        }
        for (label, tile) in tiles {
            let l = matmul_tiled(&ctx, &spec, tile, &a, &b, used_bias, &out).unwrap();
            let id = format!("{name} {label} {}", tile_name(&spec, tile));
            let flops = Throughput::Elements(spec.flops() as u64);
            common::launches(&mut group, &ctx, id, flops, &[&l]);
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
