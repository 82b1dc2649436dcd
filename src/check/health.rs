//! The divergence check (shaders/health.wgsl) against its CPU twin: where the first infinity or
//! NaN of a tensor is, in the kernel's encoding.

use super::{Case, data, expect};
use crate::compare::Tolerance;
use crate::cpu;
use crate::gpu::kernels::health;

pub(super) fn cases() -> Vec<Case> {
    let mut x = data(&[1000], 9);
    x.data[321] = f32::NAN;
    x.data[700] = f32::INFINITY;
    let reference = x.clone();
    let exact = Tolerance {
        atol: 0.0,
        rtol: 0.0,
    };
    vec![Case::new(
        "first_nonfinite",
        "[1000], NaN at 321, inf at 700",
        move || {
            let want = cpu::health::first_nonfinite(&reference.data) as f32;
            Ok(vec![expect("first_nonfinite", "[1000]", vec![want], exact)])
        },
        move |ctx| {
            let submitted = (|| {
                let gx = ctx.upload("x", &x)?;
                let flag = ctx.upload_labels("flag", &[0])?;
                ctx.run(&[&health::first_nonfinite(&ctx, &gx, &flag)?])?;
                Ok::<_, crate::error::Error>(flag)
            })();
            async move {
                let flag = submitted?;
                let b = ctx
                    .read_bytes_async("flag", &flag.buffer, flag.offset, 4)
                    .await?;
                Ok(vec![vec![
                    u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32
                ]])
            }
        },
    )]
}
