//! Timing GPU work by wall clock with a full device wait (works on every adapter; timestamp
//! queries come with the profiler).

use crate::error::Result;
use crate::gpu::{GpuContext, Launch};
use std::time::{Duration, Instant};

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
