//! The workgroup-tiled matmul (`MatmulTile::Tiled`: `matmul_tiled`, `_a4`, `_b4`,
//! `matmul_tiled4`) on every adapter: every shape the tuner may pick and a few more (each
//! register tile, stage depth and load path), for every layout and mode of `MatmulSpec`, on
//! sizes that are not multiples of anything, against the CPU twin and bit for bit against the
//! other mappings; and the option that forces GPU-class kernels (`Options::kernels`): the
//! default choice, the tuner's candidates, tier-up, and a training run that matches an unforced
//! one to the bit.

use crate::common::{check, contexts, data, tag};
use crate::train::images;
use std::sync::{Arc, OnceLock};
use wgrad::compare::Tolerance;
use wgrad::exec::Device;
use wgrad::gpu::kernels::matmul::{
    MatmulTile, TILED_SHAPES, entry_and_constants, gpu_tile, matmul, matmul_tiled, split_chunk,
    vec4_a, vec4_b,
};
use wgrad::gpu::tune;
use wgrad::nn::{AutoencoderConfig, Optimizer};
use wgrad::train::Trainer;
use wgrad::{
    Activation, AdamConfig, BiasMode, GpuContext, KernelClass, MatmulSpec, Options, Tensor, cpu,
};

/// The mapping every result is compared with bit for bit: the original 4×4 kernel.
const REFERENCE: MatmulTile = MatmulTile::Blocks { wg_x: 8, wg_y: 8 };

/// Tiles beyond [`TILED_SHAPES`]: the register tiles 8×4 and 4×8 (each branch of the kernel on
/// its own), stages of 4 and 32, and scalar loads forced on a shape the tuner uses with vec4s.
const EXTRA_TILES: [MatmulTile; 3] = [
    MatmulTile::Tiled {
        tm: 8,
        tn: 4,
        wg_x: 8,
        wg_y: 4,
        tk: 4,
        vec4: true,
    },
    MatmulTile::Tiled {
        tm: 4,
        tn: 8,
        wg_x: 4,
        wg_y: 8,
        tk: 32,
        vec4: true,
    },
    MatmulTile::Tiled {
        tm: 8,
        tn: 8,
        wg_x: 8,
        wg_y: 8,
        tk: 16,
        vec4: false,
    },
];

fn all_tiles() -> Vec<MatmulTile> {
    TILED_SHAPES.iter().chain(&EXTRA_TILES).copied().collect()
}

/// Runs `spec` with `tile` on `ctx` and returns C.
fn run_tile(
    ctx: &GpuContext,
    spec: &MatmulSpec,
    tile: MatmulTile,
    [a, b, bias]: [&Tensor; 3],
) -> Vec<f32> {
    let ga = ctx.upload("a", a).unwrap();
    let gb = ctx.upload("b", b).unwrap();
    let gbias = ctx.upload("bias", bias).unwrap();
    // NaN, so that an element the kernel forgets to write fails.
    let gc = ctx
        .upload("c", &Tensor::full([spec.c_len()], f32::NAN))
        .unwrap();
    let used_bias = (spec.bias != BiasMode::None).then_some(&gbias);
    let l = matmul_tiled(ctx, spec, tile, &ga, &gb, used_bias, &gc).unwrap();
    ctx.run(&[&l]).unwrap();
    ctx.download(&gc).unwrap().data
}

fn describe(spec: &MatmulSpec, tile: MatmulTile, what: &str) -> String {
    format!(
        "{} {tile:?} {what} batch {} [{}x{}]·[{}x{}] ta={} tb={}",
        entry_and_constants(spec, tile).0,
        spec.batch,
        spec.m,
        spec.k,
        spec.k,
        spec.n,
        spec.trans_a,
        spec.trans_b
    )
}

/// `spec` with each of `tiles` on every adapter: within the reduction tolerance of the CPU twin,
/// and the same bits as [`REFERENCE`] (NaN compared by being NaN).
fn agree(spec: MatmulSpec, what: &str, tiles: &[MatmulTile], a: &Tensor, b: &Tensor) {
    let bias = data(&[spec.bias_len()], 3);
    let want = cpu::matmul::matmul(&spec, &a.data, &b.data, &bias.data).unwrap();
    let k_total = spec.k * if spec.sum_batches { spec.batch } else { 1 };
    for ctx in contexts() {
        let reference = run_tile(ctx, &spec, REFERENCE, [a, b, &bias]);
        for &tile in tiles {
            let got = run_tile(ctx, &spec, tile, [a, b, &bias]);
            let desc = describe(&spec, tile, what);
            check(ctx, &desc, &got, &want, Tolerance::reduction(k_total));
            let diff = got
                .iter()
                .zip(&reference)
                .position(|(x, y)| x.to_bits() != y.to_bits() && !(x.is_nan() && y.is_nan()));
            assert!(
                diff.is_none(),
                "[{}] {desc}: element {} is {} where {REFERENCE:?} gives {}",
                tag(ctx),
                diff.unwrap_or(0),
                got[diff.unwrap_or(0)],
                reference[diff.unwrap_or(0)]
            );
        }
    }
}

fn agree_on(spec: MatmulSpec, what: &str, tiles: &[MatmulTile]) {
    let a = data(&[spec.a_len()], 1);
    let b = data(&[spec.b_len()], 2);
    agree(spec, what, tiles, &a, &b);
}

fn spec(m: usize, k: usize, n: usize, f: impl FnOnce(&mut MatmulSpec)) -> MatmulSpec {
    let mut s = MatmulSpec::new(m, k, n);
    f(&mut s);
    s
}

/// Every tile on every load path (scalar, vec4 A, vec4 B, both) and every transpose, with m, n
/// and k that are not multiples of the tiles (k not of 4 nor of the stage either).
#[test]
fn every_tile_every_layout() {
    let tiles = all_tiles();
    let layouts = [
        (spec(17, 63, 65, |_| ()), "plain, scalar loads"),
        (spec(20, 36, 68, |_| ()), "plain, vec4 A and B"),
        (spec(20, 36, 65, |_| ()), "plain, vec4 A"),
        (spec(20, 37, 68, |_| ()), "plain, vec4 B"),
        (spec(63, 17, 65, |s| s.trans_a = true), "Aᵀ, scalar"),
        (
            spec(12, 7, 20, |s| s.trans_a = true),
            "Aᵀ, vec4 A and B, k 7",
        ),
        (spec(33, 130, 17, |s| s.trans_b = true), "Bᵀ, scalar"),
        (spec(20, 36, 9, |s| s.trans_b = true), "Bᵀ, vec4 A and B"),
        (
            spec(17, 65, 63, |s| (s.trans_a, s.trans_b) = (true, true)),
            "Aᵀ Bᵀ, scalar",
        ),
        (
            spec(12, 40, 9, |s| (s.trans_a, s.trans_b) = (true, true)),
            "Aᵀ Bᵀ, vec4 A and B",
        ),
    ];
    let mut paths = std::collections::BTreeSet::new();
    for (s, what) in layouts {
        paths.insert((vec4_a(&s), vec4_b(&s)));
        agree_on(s, what, &tiles);
    }
    assert_eq!(paths.len(), 4, "every load path is covered");
}

/// Batches, broadcast operands, batch sums (one pass, and split into chunks summed by
/// `matmul_split_sum`, with the epilogue there).
#[test]
fn every_tile_batched_broadcast_and_summed() {
    let tiles = all_tiles();
    agree_on(spec(9, 27, 49, |s| s.batch = 3), "batched", &tiles);
    agree_on(
        spec(12, 28, 20, |s| (s.batch, s.broadcast_a) = (3, true)),
        "broadcast A, vec4",
        &tiles,
    );
    agree_on(
        spec(5, 11, 6, |s| {
            (s.batch, s.broadcast_b, s.trans_b) = (4, true, true);
        }),
        "broadcast Bᵀ",
        &tiles,
    );
    let one_pass = spec(16, 9, 20, |s| {
        (s.batch, s.sum_batches, s.trans_b) = (5, true, true);
    });
    assert_eq!(split_chunk(&one_pass), 5, "one chunk");
    agree_on(one_pass, "summed over batch, one pass", &tiles);
    let chunks_of_1 = spec(16, 50, 9, |s| {
        (s.batch, s.sum_batches, s.trans_b) = (12, true, true);
    });
    assert_eq!(split_chunk(&chunks_of_1), 1);
    agree_on(chunks_of_1, "split sum, chunks of 1", &tiles);
    let chunks_of_4 = spec(132, 8, 124, |s| {
        (s.batch, s.sum_batches, s.trans_a) = (12, true, true);
        (s.bias, s.act) = (BiasMode::PerRow, Activation::Tanh);
    });
    assert_eq!(split_chunk(&chunks_of_4), 4);
    agree_on(chunks_of_4, "split sum, chunks of 4, epilogue", &tiles);
}

/// Every bias mode with every activation, on a scalar and a vec4 layout.
#[test]
fn every_epilogue() {
    let tiles = [TILED_SHAPES[3], EXTRA_TILES[1]];
    let acts = [
        Activation::None,
        Activation::Relu,
        Activation::LeakyRelu(0.1),
        Activation::Sigmoid,
        Activation::Tanh,
    ];
    for act in acts {
        for bias in [BiasMode::None, BiasMode::PerRow, BiasMode::PerCol] {
            for (m, k, n) in [(10, 19, 13), (13, 20, 24)] {
                let s = spec(m, k, n, |s| (s.act, s.bias) = (act, bias));
                agree_on(s, &format!("{act:?} {bias:?}"), &tiles);
            }
        }
    }
}

/// NaN and infinities in the operands come out as the CPU twin (and PyTorch) gives them, through
/// every activation: a NaN row stays NaN after ReLU, an infinite product stays infinite.
#[test]
fn nan_and_infinities_propagate() {
    for act in [
        Activation::None,
        Activation::Relu,
        Activation::LeakyRelu(0.1),
        Activation::Sigmoid,
        Activation::Tanh,
    ] {
        let s = spec(9, 12, 10, |s| (s.act, s.bias) = (act, BiasMode::PerCol));
        let mut a = data(&[s.a_len()], 5);
        let b = data(&[s.b_len()], 6);
        a.data[0] = f32::NAN; // row 0
        a.data[12 + 3] = f32::INFINITY; // row 1
        a.data[24 + 5] = f32::NEG_INFINITY; // row 2
        let tiles = [TILED_SHAPES[3], TILED_SHAPES[2]];
        agree(s, &format!("specials, {act:?}"), &tiles, &a, &b);
    }
}

/// Sizes 1, 3, 17, 63, 65 and 130 for m and n, k cycling through them: the default Tiled shape
/// for the product (what a GPU runs) and the 64×64 8×8 one.
#[test]
fn odd_sizes_with_the_default_shape() {
    let sizes = [1, 3, 17, 63, 65, 130];
    for (i, &m) in sizes.iter().enumerate() {
        for (j, &n) in sizes.iter().enumerate() {
            let k = sizes[(i + j) % sizes.len()];
            let s = MatmulSpec::new(m, k, n);
            let chosen = gpu_tile(&s);
            assert!(TILED_SHAPES.contains(&chosen));
            let tiles = if chosen == TILED_SHAPES[2] {
                vec![chosen]
            } else {
                vec![chosen, TILED_SHAPES[2]]
            };
            agree_on(s, "odd size", &tiles);
        }
    }
}

/// More row tiles, or more batches, than one grid dimension holds (65,535): folded over y and z.
#[test]
fn grids_past_the_dispatch_limit_are_folded() {
    let tile = TILED_SHAPES[3]; // 32 rows a workgroup
    let rows = spec(65_535 * 32 + 37, 2, 3, |s| s.bias = BiasMode::PerCol);
    let batches = spec(2, 3, 5, |s| {
        (s.batch, s.broadcast_a, s.act) = (66_000, true, Activation::Relu);
    });
    for s in [rows, batches] {
        let a = data(&[s.a_len()], 21);
        let b = data(&[s.b_len()], 22);
        let bias = data(&[s.bias_len()], 23);
        let want = cpu::matmul::matmul(&s, &a.data, &b.data, &bias.data).unwrap();
        for ctx in contexts() {
            let (ga, gb) = (ctx.upload("a", &a).unwrap(), ctx.upload("b", &b).unwrap());
            let gbias = ctx.upload("bias", &bias).unwrap();
            let gc = ctx.zeros("c", [s.c_len()]).unwrap();
            let used_bias = (s.bias != BiasMode::None).then_some(&gbias);
            let l = matmul_tiled(ctx, &s, tile, &ga, &gb, used_bias, &gc).unwrap();
            assert!(l.workgroups[2] > 1, "a folded grid: {:?}", l.workgroups);
            ctx.run(&[&l]).unwrap();
            let got = ctx.download(&gc).unwrap();
            check(
                ctx,
                &describe(&s, tile, "folded grid"),
                &got.data,
                &want,
                Tolerance::reduction(s.k),
            );
        }
    }
}

/// Tiles the kernel does not implement, or over the device's limits, are refused before wgpu
/// sees them; every shape the tuner may pick fits every adapter here (and a browser: 256
/// invocations, 16 KiB of workgroup memory).
#[test]
fn bad_tiles_are_refused_and_the_shapes_fit() {
    let s = MatmulSpec::new(4, 4, 4);
    let t = |tm, tn, wg_x, wg_y, tk| MatmulTile::Tiled {
        tm,
        tn,
        wg_x,
        wg_y,
        tk,
        vec4: true,
    };
    for ctx in contexts() {
        let a = ctx.zeros("a", [16]).unwrap();
        let b = ctx.zeros("b", [16]).unwrap();
        let c = ctx.zeros("c", [16]).unwrap();
        for bad in [
            t(2, 4, 8, 8, 16),
            t(4, 16, 8, 8, 16),
            t(4, 4, 8, 8, 12),
            t(4, 4, 0, 8, 8),
        ] {
            let e = matmul_tiled(ctx, &s, bad, &a, &b, None, &c)
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("matmul:"), "{e}");
        }
        // 64 KiB of workgroup memory: more than any adapter here grants.
        let e = matmul_tiled(ctx, &s, t(8, 8, 32, 32, 32), &a, &b, None, &c)
            .unwrap_err()
            .to_string();
        assert!(e.contains("max_compute"), "{e}");
        for tile in TILED_SHAPES {
            tile.fits(ctx).unwrap();
            let ([x, y], memory) = tile.workgroup();
            assert!(x * y <= 256 && memory <= 16 << 10, "{tile:?}");
        }
    }
}

/// Contexts on every adapter with GPU-class kernels forced.
fn forced() -> &'static [Arc<GpuContext>] {
    static FORCED: OnceLock<Vec<Arc<GpuContext>>> = OnceLock::new();
    FORCED.get_or_init(|| {
        let o = Options {
            kernels: KernelClass::Gpu,
            ..Options::default()
        };
        GpuContext::all(&o)
            .into_iter()
            .filter_map(|c| c.ok())
            .map(Arc::new)
            .collect()
    })
}

/// Forced, every adapter chooses Tiled shapes by default, the tuner offers GPU-class mappings
/// only, cached CPU-class winners are not used, and the default launcher gives the bits an
/// unforced context gives. Unforced, CPU drivers keep their register blocks and ignore cached
/// GPU-class winners.
#[test]
fn the_option_forces_gpu_class_kernels() {
    let mut shapes = vec![
        MatmulSpec::new(64, 1568, 32),
        spec(32, 144, 49, |s| {
            (s.batch, s.broadcast_a) = (8, true);
            (s.bias, s.act) = (BiasMode::PerRow, Activation::Relu);
        }),
        spec(32, 49, 144, |s| {
            (s.batch, s.trans_b, s.sum_batches) = (8, true, true)
        }),
        spec(1, 20, 300, |_| ()),
        spec(300, 20, 2, |_| ()),
    ];
    shapes.push(MatmulSpec::new(256, 256, 256));
    for (ctx, auto) in forced().iter().zip(contexts()) {
        assert_eq!(ctx.info.name, auto.info.name);
        let reg = MatmulTile::Reg {
            bm: 8,
            bn: 8,
            wg_x: 8,
            wg_y: 1,
            vec4: true,
        };
        assert!(reg.usable(ctx).is_err(), "Reg is refused when forced");
        assert!(reg.usable(auto).is_ok());
        if auto.is_cpu_driver() {
            // A winner cached by a forced run is not used by an unforced one, nor the reverse.
            for gpu_class in [TILED_SHAPES[1], MatmulTile::Shared, REFERENCE] {
                assert!(gpu_class.usable(auto).is_err(), "{gpu_class:?}");
                assert!(gpu_class.usable(ctx).is_ok(), "{gpu_class:?}");
            }
            assert!(MatmulTile::Rows { wg_x: 64 }.usable(ctx).is_err());
        }
        for s in &shapes {
            let tile = MatmulTile::for_shape(ctx, s);
            assert!(matches!(tile, MatmulTile::Tiled { .. }), "{tile:?}");
            assert_eq!(tile, gpu_tile(s));
            assert_eq!(tune::choose_now(ctx, s), tile);
            let candidates = tune::candidates(ctx, s);
            assert!(candidates.len() >= 4, "{candidates:?}");
            for c in &candidates {
                assert!(c.is_gpu_class() && c.fits(ctx).is_ok(), "{c:?}");
            }
            if auto.is_cpu_driver() {
                let own = MatmulTile::for_shape(auto, s);
                assert!(matches!(own, MatmulTile::Reg { .. }), "{own:?}");
            }
            let a = data(&[s.a_len()], 61);
            let b = data(&[s.b_len()], 62);
            let bias = data(&[s.bias_len()], 63);
            let mut bits = Vec::new();
            for c in [ctx, auto] {
                let (ga, gb) = (c.upload("a", &a).unwrap(), c.upload("b", &b).unwrap());
                let gbias = c.upload("bias", &bias).unwrap();
                let gc = c.zeros("c", [s.c_len()]).unwrap();
                let used_bias = (s.bias != BiasMode::None).then_some(&gbias);
                c.run(&[&matmul(c, s, &ga, &gb, used_bias, &gc).unwrap()])
                    .unwrap();
                let got = c.download(&gc).unwrap().data;
                bits.push(got.iter().map(|x| x.to_bits()).collect::<Vec<u32>>());
            }
            assert!(
                bits[0] == bits[1],
                "[{}] {s:?}: forced {tile:?} and the default differ",
                tag(ctx)
            );
        }
    }
}

fn trainer(ctx: &Arc<GpuContext>) -> Trainer {
    let adam = Optimizer::Adam(AdamConfig::adam());
    Trainer::new(
        Device::Gpu(ctx.clone()),
        AutoencoderConfig::default(),
        8,
        adam,
        7,
    )
    .unwrap()
}

/// A training run with GPU-class kernels forced gives the losses and parameters of an unforced
/// one, bit for bit, on every adapter: every mapping computes the same bits. Forced, programs
/// build their final (Tiled) matmuls up front: no tier-up, no `Reg` kernel.
#[test]
fn forced_training_matches_unforced_to_the_bit() {
    for (ctx, auto) in forced().iter().zip(contexts()) {
        let run = |c: &Arc<GpuContext>| {
            let mut t = trainer(c);
            for i in 0..4 {
                t.step(&images(8, 500 + i)).unwrap();
            }
            let losses: Vec<u32> = t
                .flush_losses()
                .unwrap()
                .iter()
                .map(|l| l.1.to_bits())
                .collect();
            let params: Vec<u32> = t
                .state()
                .unwrap()
                .params
                .iter()
                .flat_map(|(_, v)| v.data.iter().map(|x| x.to_bits()))
                .collect();
            let kernels: Vec<String> = t
                .profile(&images(8, 1))
                .unwrap()
                .dispatches
                .iter()
                .map(|d| d.kernel.clone())
                .filter(|k| k.starts_with("matmul"))
                .collect();
            (losses, params, kernels)
        };
        let (forced_losses, forced_params, kernels) = run(ctx);
        let (losses, params, _) = run(auto);
        assert_eq!(forced_losses, losses, "[{}] losses", tag(ctx));
        assert!(forced_params == params, "[{}] parameters differ", tag(ctx));
        assert!(!kernels.is_empty());
        for k in &kernels {
            assert!(
                k.starts_with("matmul_tiled") || k.starts_with("matmul_split_sum"),
                "[{}] forced, yet {k} ran: {kernels:?}",
                tag(ctx)
            );
        }
    }
}
