//! A [`Launch`] is one kernel dispatch ready to record: pipeline, bind group (uniform parameters
//! at binding 0, storage tensors at bindings 1..), and workgroup counts already folded to fit the
//! device's per-dimension limit. Launches are built once and can be recorded any number of times,
//! so an executor builds them when it compiles a graph and a step allocates nothing.

use crate::error::{Error, Result};
use crate::gpu::buffer::GpuTensor;
use crate::gpu::context::GpuContext;
use crate::gpu::shaders::ShaderFile;
use std::sync::Arc;

/// How many workgroups a kernel needs.
#[derive(Clone, Copy, Debug)]
pub enum Workgroups {
    /// A one-dimensional count, folded into x and y when it exceeds the per-dimension limit.
    /// Shaders recover the linear index as `wid.x + wid.y * num_workgroups.x` and skip groups
    /// past the end.
    Linear(u64),
    /// An explicit grid; every dimension must fit the limit.
    Grid([u32; 3]),
}

/// One recorded-ready dispatch.
#[derive(Debug)]
pub struct Launch {
    pub label: String,
    pub pipeline: Arc<wgpu::ComputePipeline>,
    pub bind_group: wgpu::BindGroup,
    pub workgroups: [u32; 3],
    /// Keeps the uniform buffer alive as long as the bind group.
    pub params: wgpu::Buffer,
    /// A dispatch recorded right after this one, as part of the same operation (a split
    /// matmul's summing pass), so that callers still see one launch per operation.
    pub then: Option<Box<Launch>>,
}

impl Launch {
    /// Records this dispatch (and the ones chained after it) into a compute pass.
    pub fn record(&self, pass: &mut wgpu::ComputePass<'_>) {
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &self.bind_group, &[]);
        let [x, y, z] = self.workgroups;
        pass.dispatch_workgroups(x, y, z);
        if let Some(next) = &self.then {
            next.record(pass);
        }
    }

    /// This launch followed by `next` (recorded in that order, in the same pass).
    pub fn followed_by(mut self, next: Launch) -> Launch {
        match self.then.take() {
            Some(t) => self.then = Some(Box::new(t.followed_by(next))),
            None => self.then = Some(Box::new(next)),
        }
        self
    }
}

impl Launch {
    /// Overwrites the launch's uniform parameters (the same struct it was built with, e.g. an
    /// optimizer's next step) before the next submission; allocates nothing on the device.
    pub fn write_params(&self, ctx: &GpuContext, params: &[u8]) -> Result<()> {
        let mut bytes = params.to_vec();
        bytes.resize(bytes.len().div_ceil(16).max(1) * 16, 0);
        if bytes.len() as u64 != self.params.size() {
            return Err(Error::invalid(
                &self.label,
                format!(
                    "new parameters are {} bytes, the launch's are {}",
                    bytes.len(),
                    self.params.size()
                ),
            ));
        }
        ctx.queue.write_buffer(&self.params, 0, &bytes);
        ctx.count_upload(bytes.len() as u64);
        Ok(())
    }
}

/// Folds a linear workgroup count into the smallest (x, y) grid with x ≤ `max`.
pub fn fold_workgroups(op: &str, total: u64, max: u32) -> Result<[u32; 3]> {
    let max64 = max as u64;
    if total <= max64 {
        return Ok([total.max(1) as u32, 1, 1]);
    }
    let y = total.div_ceil(max64);
    if y > max64 {
        return Err(Error::Limit {
            op: op.into(),
            what: format!("{total} workgroups"),
            needed: total,
            limit_name: "max_compute_workgroups_per_dimension (squared)",
            limit: max64 * max64,
        });
    }
    let x = total.div_ceil(y);
    Ok([x as u32, y as u32, 1])
}

impl GpuContext {
    /// Builds a launch of `entry` in `file`. `params` is the kernel's uniform struct (binding 0)
    /// and `tensors` are bound in order at bindings 1, 2, ...
    pub fn launch(
        &self,
        file: ShaderFile,
        entry: &'static str,
        constants: &[(&'static str, f64)],
        params: &[u8],
        tensors: &[&GpuTensor],
        workgroups: Workgroups,
    ) -> Result<Launch> {
        let max = self.limits.max_compute_workgroups_per_dimension;
        let workgroups = match workgroups {
            Workgroups::Linear(n) => fold_workgroups(entry, n, max)?,
            Workgroups::Grid(g) => {
                if let Some(&d) = g.iter().find(|&&d| d > max) {
                    return Err(Error::Limit {
                        op: entry.into(),
                        what: format!("a grid of {g:?} workgroups"),
                        needed: d as u64,
                        limit_name: "max_compute_workgroups_per_dimension",
                        limit: max as u64,
                    });
                }
                g
            }
        };
        for t in tensors {
            self.check_size(
                entry,
                &format!("tensor {} {}", t.label, t.shape),
                t.byte_len(),
            )?;
        }
        let pipeline = self.pipeline(file, entry, constants)?;
        let label = format!("{entry} ({})", file.name);
        // Uniform buffers must be at least 16 bytes on some backends; pad. Written through the
        // queue rather than mapped at creation, which panics on a lost device.
        let mut bytes = params.to_vec();
        bytes.resize(bytes.len().div_ceil(16).max(1) * 16, 0);
        let params_buf = self.create_buffer(
            entry,
            &wgpu::BufferDescriptor {
                label: Some(&format!("{entry} params")),
                size: bytes.len() as u64,
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            },
        )?;
        self.queue.write_buffer(&params_buf, 0, &bytes);
        self.count_upload(bytes.len() as u64);
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: params_buf.as_entire_binding(),
        }];
        for (i, t) in tensors.iter().enumerate() {
            entries.push(wgpu::BindGroupEntry {
                binding: i as u32 + 1,
                resource: t.binding(),
            });
        }
        let bind_group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(&label),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        });
        if let Some(message) = self.pop_scope(&label, scope) {
            let names: Vec<String> = tensors
                .iter()
                .map(|t| format!("{} {}", t.label, t.shape))
                .collect();
            return Err(Error::Shader {
                file: file.name.into(),
                entry: entry.into(),
                message: format!("binding [{}]: {message}", names.join(", ")),
            });
        }
        Ok(Launch {
            label,
            pipeline,
            bind_group,
            workgroups,
            params: params_buf,
            then: None,
        })
    }

    /// Records `launches` in order into one compute pass and submits them. Returns once submitted
    /// (never waits); [`GpuContext::download_async`] or [`GpuContext::wait_async`] wait for the
    /// results.
    pub fn run(&self, launches: &[&Launch]) -> Result<()> {
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let mut enc = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("wgrad run"),
            });
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("wgrad run"),
                timestamp_writes: None,
            });
            for l in launches {
                l.record(&mut pass);
            }
        }
        self.queue.submit([enc.finish()]);
        let names: Vec<&str> = launches.iter().map(|l| l.label.as_str()).collect();
        let names = names.join(", ");
        if let Some(message) = self.pop_scope(&names, scope) {
            return Err(Error::gpu(names, message));
        }
        Ok(())
    }
}
