//! tree_sum with subgroup operations (tree_sum_subgroups.wgsl) gives the bits of the plain tree
//! (tree_sum.wgsl): each adapter with subgroups runs the reductions and losses twice, on a
//! device opened with `Options::subgroups` forced on (CPU drivers included, where the default
//! leaves them off) and one with it off, and every output must match bit for bit. The plain tree
//! is held to the CPU twins by reduce.rs and loss.rs, and `wgrad check --kernels gpu` (GPU-class
//! contexts use subgroups) holds the subgroup one to them as well.

use crate::common::{data, tag};
use wgrad::gpu::kernels::{loss, reduce};
use wgrad::spec::ReduceSpec;
use wgrad::{GpuContext, Options};

/// Every output of reduce_sum/reduce_mean/mse_loss/softmax_cross_entropy on these inputs, as bits.
fn outputs(ctx: &GpuContext) -> Vec<u32> {
    let mut bits = Vec::new();
    // A scalar sum (one pass and split), row sums, a conv bias gradient, sizes no lane count divides.
    let cases: &[(&[usize], &[usize])] = &[
        (&[1], &[0]),
        (&[37], &[0]),
        (&[1 << 16], &[0]),
        (&[3, 70_001], &[1]),
        (&[8, 5, 9, 11], &[0, 2, 3]),
        (&[130, 67], &[0]),
    ];
    for (i, &(shape, axes)) in cases.iter().enumerate() {
        let spec = ReduceSpec::new(shape, axes).unwrap();
        let x = ctx.upload("x", &data(shape, 40 + i as u64)).unwrap();
        for f in [reduce::reduce_sum, reduce::reduce_mean] {
            let y = ctx.zeros("y", spec.out_shape()).unwrap();
            ctx.run(&[&f(ctx, &spec, &x, &y).unwrap()]).unwrap();
            bits.extend(ctx.download(&y).unwrap().data.iter().map(|v| v.to_bits()));
        }
    }
    for (i, n) in [1usize, 255, 257, 50_021].into_iter().enumerate() {
        let y = ctx.upload("y", &data(&[n], 60 + i as u64)).unwrap();
        let t = ctx.upload("t", &data(&[n], 70 + i as u64)).unwrap();
        let out = ctx.zeros("mse", [1]).unwrap();
        ctx.run(&[&loss::mse_loss(ctx, &y, &t, &out).unwrap()])
            .unwrap();
        bits.push(ctx.download(&out).unwrap().data[0].to_bits());
    }
    for (i, rows) in [3usize, 513, 5000].into_iter().enumerate() {
        let z = ctx.upload("z", &data(&[rows, 10], 80 + i as u64)).unwrap();
        let labels: Vec<u32> = (0..rows as u32).map(|r| (r * 7) % 10).collect();
        let l = loss::upload_labels(ctx, "labels", &labels, 10).unwrap();
        let out = ctx.zeros("ce", [1]).unwrap();
        ctx.run(&[&loss::softmax_cross_entropy(ctx, &z, &l, &out).unwrap()])
            .unwrap();
        bits.push(ctx.download(&out).unwrap().data[0].to_bits());
    }
    bits
}

#[test]
fn subgroup_tree_sums_give_the_plain_trees_bits() {
    let open = |on| {
        let o = Options {
            subgroups: Some(on),
            ..Options::default()
        };
        GpuContext::all(&o)
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
    };
    let (with, without) = (open(true), open(false));
    let mut compared = 0;
    for ctx in &with {
        if !ctx.uses_subgroups() {
            println!("[{}] no subgroups: only the plain tree runs", tag(ctx));
            continue;
        }
        let twin = without
            .iter()
            .find(|p| p.info.name == ctx.info.name && p.backend() == ctx.backend())
            .expect("the same adapter opens with subgroups off");
        assert!(!twin.uses_subgroups());
        let (a, b) = (outputs(ctx), outputs(twin));
        assert_eq!(a.len(), b.len());
        let differ: Vec<usize> = (0..a.len()).filter(|&i| a[i] != b[i]).collect();
        assert!(
            differ.is_empty(),
            "[{}] subgroup and plain tree sums differ at outputs {differ:?}",
            tag(ctx)
        );
        println!(
            "[{}] {} outputs, subgroups ({}–{} lanes) = plain, bit for bit",
            tag(ctx),
            a.len(),
            ctx.info.subgroup_min_size,
            ctx.info.subgroup_max_size
        );
        compared += 1;
    }
    // lavapipe and SwiftShader both have subgroups: in CI this test must have compared something.
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        assert!(
            compared > 0,
            "no adapter with subgroups: nothing was compared"
        );
    }
}
