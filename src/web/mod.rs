//! The web page's bindings (wasm32 with the `web` feature): what `web/app.js` calls. Every
//! method returns a JavaScript `Promise` (nothing blocks a browser's thread); structured
//! results are JSON strings, images are `Float32Array`s of `[N, 1, 28, 28]` pixels in `[0, 1]`.
//!
//! - [`Engine`]: the browser's WebGPU adapter, its limits, and `check` (every kernel and one
//!   training step against the CPU twin, compiled to wasm too).
//! - [`WebTrainer`]: the default autoencoder on the built-in shapes, a step at a time; its
//!   reconstructions and codes; a classifier on its encoder, frozen or trained jointly.

mod trainer;

pub use trainer::WebTrainer;

use crate::check;
use crate::gpu::GpuContext;
use crate::options::Options;
use js_sys::Promise;
use std::sync::Arc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

/// wgrad's version.
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").into()
}

/// A wgrad error as the rejection of a promise.
pub(crate) fn js_error(e: crate::Error) -> JsValue {
    JsValue::from(js_sys::Error::new(&e.to_string()))
}

/// The browser's GPU, opened with its adapter's own limits.
#[wasm_bindgen]
pub struct Engine {
    ctx: Arc<GpuContext>,
}

#[wasm_bindgen]
impl Engine {
    /// Opens the browser's WebGPU adapter: a promise of an `Engine`.
    pub fn open() -> Promise {
        future_to_promise(async move {
            let ctx = GpuContext::new_async(&Options::default())
                .await
                .map_err(js_error)?;
            Ok(Engine { ctx: Arc::new(ctx) }.into())
        })
    }

    /// The adapter and what it grants, as JSON: name, backend, device type, driver, and the
    /// limits that shape the kernels.
    pub fn adapter_json(&self) -> String {
        let (i, l) = (&self.ctx.info, &self.ctx.limits);
        serde_json::json!({
            "name": i.name,
            "backend": crate::gpu::backend_name(i.backend),
            "device_type": format!("{:?}", i.device_type),
            "driver": format!("{} {}", i.driver, i.driver_info).trim(),
            "vendor": i.vendor,
            "limits": {
                "max_compute_invocations_per_workgroup": l.max_compute_invocations_per_workgroup,
                "max_compute_workgroup_storage_size": l.max_compute_workgroup_storage_size,
                "max_storage_buffers_per_shader_stage": l.max_storage_buffers_per_shader_stage,
                "max_storage_buffer_binding_size": l.max_storage_buffer_binding_size,
                "max_buffer_size": l.max_buffer_size,
                "max_compute_workgroups_per_dimension": l.max_compute_workgroups_per_dimension,
            },
            "timestamps": self.ctx.has_timestamps(),
        })
        .to_string()
    }

    /// Runs the conformance check on this GPU: every kernel, forward and backward, and one
    /// training step, against the CPU reference. Calls `on_row(json)` as each row is made;
    /// resolves to the whole report as JSON (`passed`, `failed`, `rows`).
    pub fn check(&self, on_row: js_sys::Function) -> Promise {
        let ctx = self.ctx.clone();
        future_to_promise(async move {
            // Small shapes: a browser's software adapter takes seconds over the native ones.
            let cases = check::catalogue_sized(4, 8);
            let mut report_row = |row: &check::Row| {
                if let Ok(json) = serde_json::to_string(row) {
                    let _ = on_row.call1(&JsValue::NULL, &JsValue::from_str(&json));
                }
            };
            let report = check::run_async(&[ctx], &cases, &mut report_row).await;
            serde_json::to_string(&report)
                .map(|s| JsValue::from_str(&s))
                .map_err(|e| JsValue::from_str(&e.to_string()))
        })
    }

    pub(crate) fn context(&self) -> Arc<GpuContext> {
        self.ctx.clone()
    }
}
