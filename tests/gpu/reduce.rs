//! reduce.wgsl against cpu::reduce: sums and means over axis sets of ranks 0 to 4, the shapes
//! training needs (conv and Linear bias gradients, a scalar), more outputs than one dispatch
//! dimension holds, bit-for-bit repeatability, and bad calls.

use crate::common::{check, contexts, data};
use wgrad::compare::Tolerance;
use wgrad::gpu::kernels::reduce as k;
use wgrad::spec::ReduceSpec;
use wgrad::{Result, Tensor, cpu};

type Cpu = fn(&ReduceSpec, &Tensor) -> Result<Tensor>;
type Gpu = fn(
    &wgrad::GpuContext,
    &ReduceSpec,
    &wgrad::GpuTensor,
    &wgrad::GpuTensor,
) -> Result<wgrad::gpu::Launch>;

const ENTRIES: [(&str, Cpu, Gpu); 2] = [
    ("reduce_sum", cpu::reduce::reduce_sum, k::reduce_sum),
    ("reduce_mean", cpu::reduce::reduce_mean, k::reduce_mean),
];

fn run(shape: &[usize], axes: &[usize]) {
    let spec = ReduceSpec::new(shape, axes).unwrap();
    let x = data(shape, 9);
    let tol = Tolerance::reduction(spec.reduced_count());
    for (name, cpu, gpu) in ENTRIES {
        let want = cpu(&spec, &x).unwrap();
        for ctx in contexts() {
            let gx = ctx.upload("x", &x).unwrap();
            let gy = ctx.zeros("y", spec.out_shape()).unwrap();
            let l = gpu(ctx, &spec, &gx, &gy).unwrap();
            ctx.run(&[&l]).unwrap();
            let got = ctx.download(&gy).unwrap();
            assert_eq!(got.shape, want.shape);
            let what = format!("{name} {} axes {axes:?} -> {}", x.shape, want.shape);
            check(ctx, &what, &got.data, &want.data, tol);
        }
    }
}

#[test]
fn training_shapes() {
    run(&[2, 3, 5, 7], &[0, 2, 3]); // conv bias gradient: Σ over n, h, w
    run(&[64, 16, 13, 13], &[0, 2, 3]);
    run(&[64, 10], &[0]); // Linear bias gradient: Σ over the batch
    run(&[3, 4, 5], &[0, 1, 2]); // everything, to a scalar
    run(&[100_003], &[0]); // a long reduction in one workgroup
}

#[test]
fn every_kind_of_axis_set() {
    let shape = [7, 11, 13, 3];
    let sets: &[&[usize]] = &[&[0], &[1], &[2], &[3], &[1, 3], &[3, 0], &[0, 1, 2], &[]];
    for axes in sets {
        run(&shape, axes);
    }
    run(&[], &[]); // rank 0
    run(&[1], &[0]);
    run(&[5, 1, 3], &[1]);
    run(&[257, 3], &[1]);
}

/// 100,003 outputs are 100,003 workgroups: more than one dispatch dimension holds.
#[test]
fn more_outputs_than_one_dimension_allows() {
    run(&[100_003, 3], &[1]);
}

#[test]
fn same_input_same_bits() {
    let spec = ReduceSpec::new([8, 6, 9, 11], &[0, 2, 3]).unwrap();
    let x = data(&[8, 6, 9, 11], 10);
    for ctx in contexts() {
        let gx = ctx.upload("x", &x).unwrap();
        let results: Vec<Vec<u32>> = (0..3)
            .map(|_| {
                let gy = ctx.zeros("y", spec.out_shape()).unwrap();
                let l = k::reduce_sum(ctx, &spec, &gx, &gy).unwrap();
                ctx.run(&[&l]).unwrap();
                let y = ctx.download(&gy).unwrap().data;
                y.iter().map(|v| v.to_bits()).collect()
            })
            .collect();
        assert_eq!(results[0], results[1]);
        assert_eq!(results[0], results[2]);
    }
}

#[test]
fn bad_calls_are_errors() {
    for ctx in contexts() {
        let x = ctx.zeros("x", [2, 3, 4]).unwrap();
        let y = ctx.zeros("y", [3]).unwrap();
        let labels = ctx.upload_labels("labels", &[0; 24]).unwrap();
        let labels = labels.reshaped([2, 3, 4]).unwrap();
        let spec = ReduceSpec::new([2, 3, 4], &[0, 2]).unwrap();
        let cases = [
            (
                k::reduce_sum(ctx, &ReduceSpec::new([2, 4, 3], &[0, 2]).unwrap(), &x, &y),
                "reduce_sum",
                "[2, 4, 3]",
            ),
            (k::reduce_mean(ctx, &spec, &x, &x), "reduce_mean", "output"),
            (k::reduce_sum(ctx, &spec, &labels, &y), "reduce_sum", "f32"),
            (
                k::reduce_sum(
                    ctx,
                    &ReduceSpec {
                        shape: [2, 3, 4].into(),
                        axes: vec![0, 3],
                    },
                    &x,
                    &y,
                ),
                "reduce_sum",
                "out of range",
            ),
            (
                k::reduce_mean(
                    ctx,
                    &ReduceSpec {
                        shape: [2, 3, 4].into(),
                        axes: vec![2, 2],
                    },
                    &x,
                    &y,
                ),
                "reduce_mean",
                "twice",
            ),
        ];
        for (launch, op, mentions) in cases {
            let msg = launch.unwrap_err().to_string();
            assert!(
                msg.contains(op) && msg.contains(mentions),
                "error should name {op} and {mentions}: {msg}"
            );
        }
        let empty = ctx.zeros("empty", [0, 3]).unwrap();
        let spec0 = ReduceSpec {
            shape: [0, 3].into(),
            axes: vec![0],
        };
        let msg = k::reduce_sum(ctx, &spec0, &empty, &y)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("reduce_sum") && msg.contains("zero-sized"),
            "{msg}"
        );
    }
}

/// Few outputs of long reductions are split into slices summed by separate workgroups, then a
/// second pass adds each output's partials (and divides, for the mean).
#[test]
fn long_reductions_are_split() {
    assert!(k::slices(1, 1 << 16) > 1);
    assert!(k::slices(3, 40_000) > 1);
    assert_eq!(
        k::slices(64, 1 << 20),
        1,
        "enough outputs to fill the device"
    );
    assert_eq!(k::slices(1, 1000), 1, "too short to split");
    run(&[1 << 16], &[0]);
    run(&[4, 3, 100, 100], &[0, 2, 3]);
    run(&[3, 70_001], &[1]);
}
