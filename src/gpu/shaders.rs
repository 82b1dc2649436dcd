//! The WGSL sources, embedded in the library. One file per kernel family.

/// One WGSL file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ShaderFile {
    /// File name under `shaders/`, used in errors and labels.
    pub name: &'static str,
    pub source: &'static str,
}

macro_rules! shader {
    ($id:ident, $file:literal) => {
        pub const $id: ShaderFile = ShaderFile {
            name: $file,
            source: include_str!(concat!("../../shaders/", $file)),
        };
    };
}

shader!(MATMUL, "matmul.wgsl");
shader!(IM2COL, "im2col.wgsl");
shader!(POINTWISE, "pointwise.wgsl");
shader!(REDUCE, "reduce.wgsl");
shader!(LOSS, "loss.wgsl");
shader!(OPTIM, "optim.wgsl");
shader!(HEALTH, "health.wgsl");

/// Every shader file, for validation and translation tests.
pub const ALL: &[ShaderFile] = &[MATMUL, IM2COL, POINTWISE, REDUCE, LOSS, OPTIM, HEALTH];
