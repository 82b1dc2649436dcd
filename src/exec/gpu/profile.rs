//! A run with every dispatch timed on its own. With timestamp queries each dispatch gets a
//! compute pass of its own with begin/end timestamps (the device's own clock, no host round
//! trip); otherwise each dispatch is submitted alone and timed by wall clock with a full wait.

use super::GpuBackend;
use super::program::GpuProgram;
use crate::error::Result;
use crate::exec::backend::RunArgs;
use crate::exec::program::ProgramInfo;
use crate::exec::{DispatchTime, Profile};
use crate::gpu::Launch;
use crate::gpu::timer;

impl GpuBackend {
    /// The run's writes and GPU feeds, then each dispatch timed. The run counts as a real one
    /// (parameters are updated when it is a step); its loss is not read back.
    pub(super) async fn profile_run(
        &mut self,
        exe: &mut GpuProgram,
        _info: &ProgramInfo,
        run: &RunArgs<'_>,
    ) -> Result<Profile> {
        let ctx = self.store.ctx.clone();
        self.prepare(exe, run)?;
        let mut enc = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("wgrad profile feeds"),
            });
        super::copy_gpu_feeds(exe, run, &mut enc);
        ctx.queue.submit([enc.finish()]);
        let mut launches: Vec<(&Launch, String)> = exe
            .launches
            .iter()
            .zip(&exe.labels)
            .map(|(l, s)| (l, s.clone()))
            .collect();
        if let Some((o, _)) = run.update
            && let Some(l) = &self.store.optim_launch
        {
            launches.push((l, format!("optimizer ({})", o.name())));
        }
        ctx.wait_async().await?;
        let mut dispatches = Vec::new();
        let method = if ctx.has_timestamps() {
            let groups: Vec<[&Launch; 1]> = launches.iter().map(|(l, _)| [*l]).collect();
            let refs: Vec<&[&Launch]> = groups.iter().map(|g| &g[..]).collect();
            let seconds = timer::passes_async(&ctx, &refs).await?;
            for ((l, label), s) in launches.iter().zip(seconds) {
                dispatches.push(DispatchTime {
                    label: label.clone(),
                    kernel: l.label.clone(),
                    seconds: s,
                });
            }
            "GPU timestamps"
        } else {
            for (l, label) in &launches {
                let t = ctx.time_launches_async(&[l], 1).await?;
                dispatches.push(DispatchTime {
                    label: label.clone(),
                    kernel: l.label.clone(),
                    seconds: t.as_secs_f64(),
                });
            }
            "wall clock per dispatch"
        };
        if run.update.is_some() && !exe.updates.is_empty() {
            let mut enc = ctx
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("wgrad profile state updates"),
                });
            super::copy_updates(exe, &mut enc);
            ctx.queue.submit([enc.finish()]);
        }
        Ok(Profile { dispatches, method })
    }
}
