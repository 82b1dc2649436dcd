//! health.wgsl against cpu::health on every adapter: which element of a tensor is the first
//! infinity or NaN (the executor's divergence check after each optimizer step), on lengths no
//! workgroup divides, with none, one or several non-finite values anywhere.

use crate::common::{contexts, data, tag};
use wgrad::gpu::kernels::health;
use wgrad::{GpuContext, GpuTensor, cpu};

fn flag_of(ctx: &GpuContext, x: &GpuTensor) -> u32 {
    let flag = ctx.upload_labels("flag", &[0]).unwrap();
    let l = health::first_nonfinite(ctx, x, &flag).unwrap();
    ctx.run(&[&l]).unwrap();
    let bytes = ctx
        .read_bytes("flag", &flag.buffer, flag.offset, 4)
        .unwrap();
    u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

#[test]
fn first_nonfinite_matches_the_cpu() {
    let cases: &[(usize, &[usize])] = &[
        (1, &[]),
        (1, &[0]),
        (257, &[]),
        (257, &[256]),
        (1000, &[321]),
        (100_003, &[99_999, 17, 50_000]),
    ];
    for &(n, bad) in cases {
        let mut x = data(&[n], n as u64);
        for (j, &i) in bad.iter().enumerate() {
            x.data[i] = [f32::NAN, f32::NEG_INFINITY, f32::INFINITY][j % 3];
        }
        let want = cpu::health::first_nonfinite(&x.data);
        assert_eq!(
            cpu::health::decode_first_nonfinite(want, n),
            bad.iter().min().copied()
        );
        for ctx in contexts() {
            let gx = ctx.upload("x", &x).unwrap();
            let got = flag_of(ctx, &gx);
            println!(
                "[{}] first_nonfinite of [{n}] with {bad:?} bad: {got}",
                tag(ctx)
            );
            assert_eq!(got, want, "[{}] n {n}, bad at {bad:?}", tag(ctx));
        }
    }
}

#[test]
fn a_wrong_flag_is_refused() {
    for ctx in contexts() {
        let x = ctx.zeros("x", [8]).unwrap();
        let f32_flag = ctx.zeros("flag", [1]).unwrap();
        let e = health::first_nonfinite(ctx, &x, &f32_flag)
            .unwrap_err()
            .to_string();
        assert!(e.contains("first_nonfinite") && e.contains("u32"), "{e}");
    }
}
