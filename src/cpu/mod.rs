//! The CPU reference: one plain function per GPU kernel entry point, with the same name,
//! accumulating in f64. The tests hold every GPU result to these.

pub mod matmul;
pub mod optim;
