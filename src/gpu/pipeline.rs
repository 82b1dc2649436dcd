//! Shader modules and compute pipelines, created once per (file, entry point, constants) and
//! cached in the context. Creation runs inside a wgpu error scope so that a bad shader becomes an
//! [`Error::Shader`] naming the file and entry point instead of a panic in wgpu's default handler
//! (in a browser the scope answers later, and the error comes from the next step or read-back).

use crate::error::{Error, Result};
use crate::gpu::context::GpuContext;
use crate::gpu::shaders::ShaderFile;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

type PipelineKey = (&'static str, &'static str, Vec<(&'static str, u64)>);

#[derive(Default)]
pub(crate) struct PipelineCache {
    modules: Mutex<HashMap<&'static str, Arc<wgpu::ShaderModule>>>,
    pipelines: Mutex<HashMap<PipelineKey, Arc<wgpu::ComputePipeline>>>,
}

impl GpuContext {
    fn module(&self, file: ShaderFile) -> Result<Arc<wgpu::ShaderModule>> {
        let mut modules = self
            .pipelines
            .modules
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(m) = modules.get(file.name) {
            return Ok(m.clone());
        }
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = self
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(file.name),
                source: wgpu::ShaderSource::Wgsl(file.source.into()),
            });
        if let Some(message) = self.pop_scope(file.name, scope) {
            return Err(Error::Shader {
                file: file.name.into(),
                entry: "(module)".into(),
                message,
            });
        }
        let module = Arc::new(module);
        modules.insert(file.name, module.clone());
        Ok(module)
    }

    /// The compute pipeline for `entry` in `file` with pipeline-overridable `constants` set; the
    /// file's subgroup variant where [`GpuContext::uses_subgroups`].
    pub fn pipeline(
        &self,
        file: ShaderFile,
        entry: &'static str,
        constants: &[(&'static str, f64)],
    ) -> Result<Arc<wgpu::ComputePipeline>> {
        let file = match file.subgroup_variant() {
            Some(variant) if self.uses_subgroups() => variant,
            _ => file,
        };
        let key: PipelineKey = (
            file.name,
            entry,
            constants.iter().map(|(k, v)| (*k, v.to_bits())).collect(),
        );
        if let Some(p) = self
            .pipelines
            .pipelines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok(p.clone());
        }
        let module = self.module(file)?;
        let label = format!("{} {entry} pipeline", file.name);
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let pipeline = self
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(&label),
                layout: None,
                module: &module,
                entry_point: Some(entry),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants,
                    // Kernels that use workgroup memory write it before reading it.
                    zero_initialize_workgroup_memory: false,
                },
                cache: None,
            });
        if let Some(message) = self.pop_scope(&label, scope) {
            return Err(Error::Shader {
                file: file.name.into(),
                entry: entry.into(),
                message,
            });
        }
        let pipeline = Arc::new(pipeline);
        self.pipelines
            .pipelines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, pipeline.clone());
        Ok(pipeline)
    }
}
