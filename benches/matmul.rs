//! matmul GFLOP/s at square sizes and at the autoencoder's shapes, on the adapter chosen the
//! usual way (WGRAD_BACKEND=vulkan|gl|..., else the best present). Throughput is reported as
//! "elements" = FLOPs (2·m·n·k per product), so Gelem/s reads as GFLOP/s.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use wgrad::gpu::AdapterChoice;
use wgrad::gpu::kernels::matmul::{MatmulTile, matmul_tiled};
use wgrad::{GpuContext, MatmulSpec, Tensor};

fn bench(c: &mut Criterion) {
    let ctx = match AdapterChoice::from_env().and_then(|ch| GpuContext::new(&ch)) {
        Ok(ctx) => ctx,
        Err(e) => {
            eprintln!("matmul bench: {e}");
            return;
        }
    };
    let adapter = ctx.describe();
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

    let mut group = c.benchmark_group(format!("matmul [{adapter}]"));
    group.sample_size(10);
    for (name, spec) in shapes {
        let a = ctx
            .upload("a", &Tensor::uniform([spec.a_len()], -1.0, 1.0, 1))
            .unwrap();
        let b = ctx
            .upload("b", &Tensor::uniform([spec.b_len()], -1.0, 1.0, 2))
            .unwrap();
        let out = ctx.zeros("c", [spec.c_len()]).unwrap();
        // Both mappings side by side in one run, so the machine's noise does not decide.
        for tile in [
            MatmulTile::Blocks { wg_x: 8, wg_y: 8 },
            MatmulTile::Rows { wg_x: 64 },
        ] {
            let l = matmul_tiled(&ctx, &spec, tile, &a, &b, None, &out).unwrap();
            ctx.time_launches(&[&l], 1).unwrap(); // compile + warm
            group.throughput(Throughput::Elements(spec.flops() as u64));
            group.bench_function(format!("{name} {tile:?}"), |bch| {
                bch.iter_custom(|iters| ctx.time_launches(&[&l], iters as usize).unwrap());
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
