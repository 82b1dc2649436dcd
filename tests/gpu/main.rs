//! GPU-versus-CPU tests: every kernel entry point on every adapter of the machine, against its
//! CPU twin. One test binary (one set of devices opened once); one file per kernel family.
#![cfg(not(target_arch = "wasm32"))] // native: blocking calls, files, processes

mod batch_norm;
mod common;
mod conv;
mod diverge;
mod errors;
mod faults;
mod health;
mod host;
mod im2col;
mod long_run;
mod loss;
mod matmul;
mod matmul_tiled;
mod nan;
mod noise;
mod optim;
mod pointwise;
mod pool;
mod reduce;
mod subgroups;
mod train;
mod tune;
