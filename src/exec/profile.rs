//! Where a run's time goes: the time of each dispatch of one profiled run
//! ([`super::Session::profile_async`]). The GPU times every dispatch on its own (see
//! `exec/gpu/profile.rs`); the CPU reference times the whole run.

/// The time of one dispatch of a profiled run.
#[derive(Clone, Debug)]
pub struct DispatchTime {
    /// The node (layer and op) the dispatch computes, or `optimizer`.
    pub label: String,
    /// The kernel entry point.
    pub kernel: String,
    pub seconds: f64,
}

/// A profiled run: its dispatches in order, and how they were timed.
#[derive(Clone, Debug)]
pub struct Profile {
    pub dispatches: Vec<DispatchTime>,
    /// `GPU timestamps`, `wall clock per dispatch` or `wall clock around the whole run`.
    pub method: &'static str,
}

impl Profile {
    pub fn total_seconds(&self) -> f64 {
        self.dispatches.iter().map(|d| d.seconds).sum()
    }
}
