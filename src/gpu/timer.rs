//! Timing a batch of launches (for `wgrad bench`, the criterion benches and the autotuner): GPU
//! timestamp queries around one compute pass where the adapter has them (the device's own clock,
//! no submission or read-back latency in the figure), otherwise wall clock around submission
//! plus a full device wait.

use crate::error::{Error, Result};
use crate::gpu::pipeline::pop_scope;
use crate::gpu::{GpuContext, Launch};
use serde::Serialize;
use std::time::{Duration, Instant};

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
pub fn time(ctx: &GpuContext, method: Method, launches: &[&Launch], reps: usize) -> Result<f64> {
    match method {
        Method::WallClock => Ok(ctx.time_launches(launches, reps)?.as_secs_f64()),
        Method::Timestamps => timestamps(ctx, launches, reps),
    }
}

fn timestamps(ctx: &GpuContext, launches: &[&Launch], reps: usize) -> Result<f64> {
    let op = "bench timestamps";
    let scope = ctx.device.push_error_scope(wgpu::ErrorFilter::Validation);
    let queries = ctx.device.create_query_set(&wgpu::QuerySetDescriptor {
        label: Some("bench timestamps"),
        ty: wgpu::QueryType::Timestamp,
        count: 2,
    });
    let resolved = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("bench timestamps resolved"),
        size: 16,
        usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    let mut enc = ctx
        .device
        .create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("bench timed pass"),
        });
    {
        let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("bench timed pass"),
            timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                query_set: &queries,
                beginning_of_pass_write_index: Some(0),
                end_of_pass_write_index: Some(1),
            }),
        });
        for _ in 0..reps {
            for l in launches {
                l.record(&mut pass);
            }
        }
    }
    enc.resolve_query_set(&queries, 0..2, &resolved, 0);
    ctx.queue.submit([enc.finish()]);
    if let Some(message) = pop_scope(scope) {
        return Err(Error::gpu(op, message));
    }
    let bytes = ctx.read_bytes(op, &resolved, 0, 16)?;
    let tick = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&bytes[i * 8..i * 8 + 8]);
        u64::from_le_bytes(b)
    };
    let (start, end) = (tick(0), tick(1));
    if end <= start {
        return Err(Error::gpu(
            op,
            format!("the end timestamp ({end}) is not after the start ({start})"),
        ));
    }
    let ns = (end - start) as f64 * ctx.queue.get_timestamp_period() as f64;
    Ok(ns * 1e-9)
}

impl GpuContext {
    /// Runs `launches` `reps` times in one submission, waits for the device, and returns the
    /// elapsed wall time of the whole batch.
    pub fn time_launches(&self, launches: &[&Launch], reps: usize) -> Result<Duration> {
        let all: Vec<&Launch> = (0..reps).flat_map(|_| launches.iter().copied()).collect();
        let start = Instant::now();
        self.run(&all)?;
        self.wait()?;
        Ok(start.elapsed())
    }
}
