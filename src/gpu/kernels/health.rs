//! Launcher for shaders/health.wgsl, held to [`crate::cpu::health`].

use crate::error::{Error, Result};
use crate::gpu::kernels::pointwise::{check_f32, count};
use crate::gpu::{DType, GpuContext, GpuTensor, Launch, Workgroups, shaders};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    _pad: [u32; 3],
}

/// `flag[0] ← max(flag[0], n − i)` over the non-finite elements `i` of `x` (see the shader):
/// clear `flag` before the dispatch, and decode it with
/// [`crate::cpu::health::decode_first_nonfinite`].
pub fn first_nonfinite(ctx: &GpuContext, x: &GpuTensor, flag: &GpuTensor) -> Result<Launch> {
    let op = "first_nonfinite";
    check_f32(op, "x", x)?;
    count(op, &format!("{} {}", x.label, x.shape), x.numel())?;
    if flag.dtype != DType::U32 || flag.numel() < 1 {
        return Err(Error::invalid(
            op,
            format!(
                "the flag {} must be u32 with at least one element, got {} {:?}",
                flag.label, flag.shape, flag.dtype
            ),
        ));
    }
    let n = x.numel();
    let params = Params {
        n: n as u32,
        _pad: [0; 3],
    };
    ctx.launch(
        shaders::HEALTH,
        op,
        &[],
        bytemuck::bytes_of(&params),
        &[x, flag],
        Workgroups::Linear(n.div_ceil(256).max(1) as u64),
    )
}
