//! Timing a batch of launches (for `wgrad bench`, the criterion benches and the autotuner): GPU
//! timestamp queries around one compute pass where the adapter has them (the device's own clock,
//! no submission or read-back latency in the figure), otherwise wall clock around submission
//! plus a full device wait.

use crate::error::{Error, Result};
use crate::gpu::{GpuContext, Launch};
use serde::Serialize;
use std::time::Duration;
use web_time::Instant;

/// How a figure was timed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// `wgpu::Features::TIMESTAMP_QUERY`: timestamps written at the start and end of the pass.
    Timestamps,
    /// Wall clock from submission to the end of a full device wait.
    WallClock,
}

impl Method {
    /// Timestamps where the adapter has them.
    pub fn for_context(ctx: &GpuContext) -> Self {
        if ctx.has_timestamps() {
            Method::Timestamps
        } else {
            Method::WallClock
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Method::Timestamps => "GPU timestamp queries",
            Method::WallClock => "wall clock with a full device wait",
        }
    }
}

/// Seconds taken by `reps` repetitions of `launches`, recorded in order into one pass.
pub async fn time_async(
    ctx: &GpuContext,
    method: Method,
    launches: &[&Launch],
    reps: usize,
) -> Result<f64> {
    match method {
        Method::WallClock => Ok(ctx.time_launches_async(launches, reps).await?.as_secs_f64()),
        Method::Timestamps => {
            let all: Vec<&Launch> = (0..reps).flat_map(|_| launches.iter().copied()).collect();
            Ok(passes_async(ctx, &[&all]).await?[0])
        }
    }
}

/// Blocking [`time_async`] (native only).
#[cfg(not(target_arch = "wasm32"))]
pub fn time(ctx: &GpuContext, method: Method, launches: &[&Launch], reps: usize) -> Result<f64> {
    ctx.block_on("time launches", time_async(ctx, method, launches, reps))
}

/// Blocking [`passes_async`] (native only).
#[cfg(not(target_arch = "wasm32"))]
pub fn passes(ctx: &GpuContext, groups: &[&[&Launch]]) -> Result<Vec<f64>> {
    ctx.block_on("timestamps", passes_async(ctx, groups))
}

/// GPU seconds of each group of launches, every group recorded in a compute pass of its own
/// with timestamps at its start and end, all in one submission (waits for the result). Needs
/// `wgpu::Features::TIMESTAMP_QUERY` ([`GpuContext::has_timestamps`]).
pub async fn passes_async(ctx: &GpuContext, groups: &[&[&Launch]]) -> Result<Vec<f64>> {
    let op = "timestamps";
    let n = groups.len() as u32 * 2;
    let scope = ctx.device.push_error_scope(wgpu::ErrorFilter::Validation);
    let queries = ctx.device.create_query_set(&wgpu::QuerySetDescriptor {
        label: Some("wgrad timestamps"),
        ty: wgpu::QueryType::Timestamp,
        count: n.max(2),
    });
    let resolved = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("wgrad timestamps resolved"),
        size: n.max(2) as u64 * 8,
        usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    let mut enc = ctx
        .device
        .create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("wgrad timed passes"),
        });
    for (i, group) in groups.iter().enumerate() {
        let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("wgrad timed pass"),
            timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                query_set: &queries,
                beginning_of_pass_write_index: Some(2 * i as u32),
                end_of_pass_write_index: Some(2 * i as u32 + 1),
            }),
        });
        for l in *group {
            l.record(&mut pass);
        }
    }
    enc.resolve_query_set(&queries, 0..n.max(2), &resolved, 0);
    ctx.queue.submit([enc.finish()]);
    if let Some(message) = ctx.pop_scope(op, scope) {
        return Err(Error::gpu(op, message));
    }
    let bytes = ctx
        .read_bytes_async(op, &resolved, 0, n.max(2) as u64 * 8)
        .await?;
    let ticks: Vec<u64> = bytes
        .chunks_exact(8)
        .map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
        .collect();
    let period = ctx.queue.get_timestamp_period() as f64 * 1e-9;
    (0..groups.len())
        .map(|i| {
            let (start, end) = (ticks[2 * i], ticks[2 * i + 1]);
            if end < start {
                return Err(Error::gpu(
                    op,
                    format!("the end timestamp ({end}) is before the start ({start})"),
                ));
            }
            Ok((end - start) as f64 * period)
        })
        .collect()
}

impl GpuContext {
    /// Runs `launches` `reps` times in one submission, waits for the device, and returns the
    /// elapsed wall time of the whole batch.
    pub async fn time_launches_async(&self, launches: &[&Launch], reps: usize) -> Result<Duration> {
        let all: Vec<&Launch> = (0..reps).flat_map(|_| launches.iter().copied()).collect();
        let start = Instant::now();
        self.run(&all)?;
        self.wait_async().await?;
        Ok(start.elapsed())
    }

    /// Blocking [`GpuContext::time_launches_async`] (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn time_launches(&self, launches: &[&Launch], reps: usize) -> Result<Duration> {
        self.block_on("time launches", self.time_launches_async(launches, reps))
    }
}
