//! matmul GFLOP/s at square sizes and at the autoencoder's shapes, on the adapter chosen the
//! usual way (WGRAD_BACKEND=vulkan|gl|..., else the best present). Throughput is reported as
//! "elements" = FLOPs (2·m·n·k per product), so Gelem/s reads as GFLOP/s.
//!
//! Every shape runs the old default mapping (`Blocks { 8, 8 }`: `matmul`, 4×4 blocks) and the
//! one the launcher now picks for it (`MatmulTile::for_shape`, printed with its entry point),
//! side by side in one run so that the machine's noise does not decide; square sizes also run a
//! 16×16 register block for reference. The group name carries the adapter.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::time::Duration;
use wgrad::gpu::AdapterChoice;
use wgrad::gpu::kernels::matmul::{MatmulTile, entry_and_constants, matmul_tiled};
use wgrad::{Activation, BiasMode, GpuContext, MatmulSpec, Tensor};

fn shapes() -> Vec<(&'static str, MatmulSpec)> {
    let mut shapes: Vec<(&str, MatmulSpec)> = vec![
        ("256^3", MatmulSpec::new(256, 256, 256)),
        ("1024^3", MatmulSpec::new(1024, 1024, 1024)),
        ("64x1568x32 (encoder linear)", MatmulSpec::new(64, 1568, 32)),
    ];
    let mut t = MatmulSpec::new(64, 32, 1568);
    t.trans_b = true; // decoder linear: X·Wᵀ
    shapes.push(("64x32x1568 Bt (decoder linear)", t));
    let mut g = MatmulSpec::new(32, 64, 1568);
    g.trans_a = true; // weight gradient: dYᵀ·X
    shapes.push(("32x64x1568 At (weight grad)", g));
    // Convolution-shaped batched products (im2col of a 3×3, 16→32-channel conv on 14×14 → 7×7,
    // batch 64), as ops::conv issues them: forward W·cols[n] with the weights broadcast and a
    // per-row bias + ReLU fused; the weight gradient Σₙ dY[n]·cols[n]ᵀ; the data gradient
    // Wᵀ·dY[n]. n = 49 and k = 49 are not multiples of 4, so these take the scalar path.
    let mut f = MatmulSpec::new(32, 144, 49);
    f.batch = 64;
    f.broadcast_a = true;
    f.bias = BiasMode::PerRow;
    f.act = Activation::Relu;
    shapes.push(("b64 32x144x49 bcastA bias relu (conv fwd)", f));
    let mut w = MatmulSpec::new(32, 49, 144);
    w.batch = 64;
    w.trans_b = true;
    w.sum_batches = true;
    shapes.push(("b64 32x49x144 Bt sum (conv weight grad)", w));
    let mut d = MatmulSpec::new(144, 32, 49);
    d.batch = 64;
    d.trans_a = true;
    d.broadcast_a = true;
    shapes.push(("b64 144x32x49 At bcastA (conv data grad)", d));
    shapes
}

fn bench(c: &mut Criterion) {
    let ctx = match AdapterChoice::from_env().and_then(|ch| GpuContext::new(&ch)) {
        Ok(ctx) => ctx,
        Err(e) => {
            eprintln!("matmul bench: {e}");
            return;
        }
    };
    let adapter = ctx.describe();
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
        for (label, tile) in tiles {
            let l = matmul_tiled(&ctx, &spec, tile, &a, &b, used_bias, &out).unwrap();
            ctx.time_launches(&[&l], 1).unwrap(); // compile + warm
            let entry = entry_and_constants(&spec, tile).0;
            group.throughput(Throughput::Elements(spec.flops() as u64));
            group.bench_function(format!("{name} {label} {entry} {tile:?}"), |bch| {
                bch.iter_custom(|iters| ctx.time_launches(&[&l], iters as usize).unwrap());
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
