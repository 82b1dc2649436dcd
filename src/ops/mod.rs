//! Composite ops built from several kernels, each with a CPU reference written directly (naive
//! loops, not the same decomposition) so that the GPU composition is checked independently.

pub mod conv;
