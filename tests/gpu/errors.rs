//! Bad calls to the context and the matmul launcher return errors that name the op and the
//! shapes; none panics.

use crate::common::contexts;
use wgrad::gpu::kernels::matmul::{MatmulTile, matmul};
use wgrad::gpu::{AdapterChoice, GpuContext};
use wgrad::{MatmulSpec, Tensor};

#[test]
fn matmul_with_wrong_lengths_is_refused() {
    for ctx in contexts() {
        let a = ctx.zeros("a", [6]).unwrap();
        let b = ctx.zeros("b", [13]).unwrap();
        let c = ctx.zeros("c", [8]).unwrap();
        let e = matmul(ctx, &MatmulSpec::new(2, 3, 4), &a, &b, None, &c)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("matmul:") && e.contains("B has 13 elements") && e.contains("needs 12"),
            "{e}"
        );
    }
}

#[test]
fn columns_over_the_grid_limit_are_refused_with_the_limit_named() {
    for ctx in contexts() {
        // 65,535 · (columns per workgroup) + 1 columns needs more than 65,535 workgroups along
        // x (32 columns per workgroup on CPU drivers: n = 2,097,121).
        let cols = MatmulTile::for_shape(ctx, &MatmulSpec::new(1, 1, 1 << 21)).c_tile()[1];
        let n = 65_535 * cols as usize + 1;
        let a = ctx.zeros("a", [1]).unwrap();
        let b = ctx.zeros("b", [n]).unwrap();
        let c = ctx.zeros("c", [n]).unwrap();
        let e = matmul(ctx, &MatmulSpec::new(1, 1, n), &a, &b, None, &c)
            .unwrap_err()
            .to_string();
        assert!(e.contains("max_compute_workgroups_per_dimension"), "{e}");
    }
}

#[test]
fn tensor_over_the_binding_limit_is_refused() {
    for ctx in contexts() {
        let limit = ctx.limits.max_storage_buffer_binding_size as usize;
        let e = ctx.zeros("huge", [limit / 4 + 1]).unwrap_err().to_string();
        assert!(
            e.contains("max_storage_buffer_binding_size") && e.contains("huge"),
            "{e}"
        );
    }
}

#[test]
fn write_with_wrong_length_is_refused() {
    for ctx in contexts() {
        let t = ctx.upload("x", &Tensor::zeros([4])).unwrap();
        let e = ctx.write(&t, &[1.0; 3]).unwrap_err().to_string();
        assert!(e.contains("x has 4 elements"), "{e}");
    }
}

#[test]
fn unknown_backend_and_index_are_errors() {
    let e = wgrad::gpu::BackendKind::parse("glide")
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown backend 'glide'"), "{e}");
    let e = GpuContext::new(&wgrad::Options::with_adapter(AdapterChoice {
        backend: None,
        index: Some(999),
    }))
    .unwrap_err()
    .to_string();
    assert!(e.contains("no adapter with index 999"), "{e}");
}

/// A host application that owns its device hands it to wgrad; two contexts live side by side.
#[test]
fn context_from_a_host_device() {
    for ctx in contexts() {
        let host = GpuContext::from_device(
            ctx.device.clone(),
            ctx.queue.clone(),
            ctx.info.clone(),
            wgrad::Options::default(),
        );
        let t = host.upload("t", &Tensor::full([3], 2.5)).unwrap();
        assert_eq!(host.download(&t).unwrap().data, vec![2.5; 3]);
        assert_eq!(host.limits, ctx.limits);
    }
}

/// wgpu's validation errors are caught with error scopes and come back naming file and entry.
#[test]
fn broken_shaders_are_errors_naming_file_and_entry() {
    use wgrad::gpu::shaders::ShaderFile;
    let bad = ShaderFile::new(
        "broken.wgsl",
        "@compute @workgroup_size(1) fn main() { let x: f32 = 1u; }",
    );
    let missing = ShaderFile::new("fine.wgsl", "@compute @workgroup_size(1) fn main() {}");
    for ctx in contexts() {
        let e = ctx.pipeline(bad, "main", &[]).unwrap_err().to_string();
        assert!(e.starts_with("shader broken.wgsl"), "{e}");
        let e = ctx.pipeline(missing, "nope", &[]).unwrap_err().to_string();
        assert!(e.contains("fine.wgsl") && e.contains("'nope'"), "{e}");
        // The context is still usable afterwards.
        let t = ctx.upload("t", &Tensor::full([2], 1.0)).unwrap();
        assert_eq!(ctx.download(&t).unwrap().data, vec![1.0, 1.0]);
    }
}
