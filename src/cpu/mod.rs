//! The CPU reference: one plain function per GPU kernel entry point, with the same name,
//! accumulating in f64. The tests hold every GPU result to these.

pub mod batch_norm;
pub mod conv;
#[cfg(test)]
pub(crate) mod finite_diff;
pub mod health;
pub mod im2col;
pub mod loss;
pub mod matmul;
pub mod noise;
pub mod optim;
pub mod pointwise;
pub mod pool;
pub mod reduce;
