//! Running graphs: a [`Session`] holds a model's parameters and optimizer state on one
//! [`Device`] (the CPU reference or a GPU context) and compiles graphs into [`Program`]s that
//! run against them. The same graph gives the same numbers on both, within the tolerances of
//! `compare`. Waits are `async`; native code also gets blocking twins.
//!
//! | file | holds |
//! |---|---|
//! | `session.rs` | the session: compile, run, step, record into a host's encoder, read back |
//! | `program.rs` | what a program computes, its plan, and the session that owns it |
//! | `feed.rs` | values fed to inputs (host tensors, labels, GPU tensors) and their checks |
//! | `state.rs` | parameter entries and the checkpointable [`State`] |
//! | `device.rs` | where a session runs, and the backend it gets there |
//! | `backend.rs` | the one interface the CPU and GPU backends implement |
//! | `cpu/` | the CPU reference backend: each node by its kernel's CPU twin |
//! | `gpu/` | the GPU backend: flat parameter buffers, prebuilt launches, the loss ring, tier-up, profiles |
//! | `profile.rs` | per-dispatch timings of one run |
//! | `sizes.rs` | programs kept per batch size, with a bound |

mod backend;
mod cpu;
mod device;
pub(crate) mod feed;
mod gpu;
mod profile;
mod program;
mod session;
mod sizes;
mod state;

pub use device::Device;
pub use feed::Feed;
pub use profile::{DispatchTime, Profile};
pub use program::{Program, ProgramSpec};
pub use session::{Recorded, Session};
pub use sizes::BySize;
pub use state::{ParamEntry, State};
