//! Where a step's time goes: every dispatch of one run timed on its own. On a GPU with
//! timestamp queries each dispatch gets its own compute pass with begin/end timestamps (the
//! device's own clock, no host round trip); otherwise each dispatch is submitted alone and
//! timed by wall clock with a full wait. On the CPU reference each node is timed as it runs.

use super::{Compiled, Feed, Program, Session, Store};
use crate::error::{Error, Result};
use std::time::Instant;

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
    /// `GPU timestamps`, `wall clock per dispatch` or `CPU reference`.
    pub method: &'static str,
}

impl Profile {
    pub fn total_seconds(&self) -> f64 {
        self.dispatches.iter().map(|d| d.seconds).sum()
    }
}

impl Session {
    /// Runs one step of `p` (with the optimizer when `update`), timing every dispatch. The
    /// step counts as a real one: parameters are updated as [`Session::step`] would.
    pub fn profile(
        &mut self,
        p: &mut Program,
        feeds: &[(crate::graph::NodeId, Feed)],
        update: bool,
    ) -> Result<Profile> {
        if matches!(p.compiled, Compiled::Cpu { .. }) {
            let start = Instant::now();
            if update {
                self.step(p, feeds)?;
            } else {
                self.run(p, feeds)?;
            }
            return Ok(Profile {
                dispatches: vec![DispatchTime {
                    label: "whole step".into(),
                    kernel: "cpu reference".into(),
                    seconds: start.elapsed().as_secs_f64(),
                }],
                method: "CPU reference",
            });
        }
        // The same writes as a step, then each dispatch in a pass of its own.
        self.check_feeds(p, feeds)?;
        let (Store::Gpu(store), Compiled::Gpu(prog)) = (&self.store, &p.compiled) else {
            return Err(Error::invalid(
                "profile",
                "the program was compiled for another device",
            ));
        };
        let ctx = store.ctx.clone();
        prog.write_feeds(&ctx, feeds)?;
        let step = self.step + 1;
        let mut launches: Vec<(&crate::gpu::Launch, String)> = prog
            .launches
            .iter()
            .zip(&prog.labels)
            .map(|(l, s)| (l, s.clone()))
            .collect();
        if update {
            let o = self
                .optimizer
                .ok_or_else(|| Error::invalid("profile", "no optimizer"))?;
            store.prepare_step(&o, step)?;
            if let Some(l) = &store.optim_launch {
                launches.push((l, format!("optimizer ({})", o.name())));
            }
        }
        ctx.wait()?;
        let mut dispatches = Vec::new();
        let method = if ctx.has_timestamps() {
            let groups: Vec<[&crate::gpu::Launch; 1]> =
                launches.iter().map(|(l, _)| [*l]).collect();
            let refs: Vec<&[&crate::gpu::Launch]> = groups.iter().map(|g| &g[..]).collect();
            let seconds = crate::gpu::timer::passes(&ctx, &refs)?;
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
                let t = ctx.time_launches(&[l], 1)?;
                dispatches.push(DispatchTime {
                    label: label.clone(),
                    kernel: l.label.clone(),
                    seconds: t.as_secs_f64(),
                });
            }
            "wall clock per dispatch"
        };
        p.runs += 1;
        if update {
            self.step = step;
        }
        Ok(Profile { dispatches, method })
    }
}
