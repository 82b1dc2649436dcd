//! The WGSL sources, embedded in the library. One file per kernel family.
//!
//! Every file gets float.wgsl put in front of it (`is_nan`: NaN tested by its bits, the one
//! place that rule is written).
//!
//! The files that sum across a workgroup (reduce.wgsl, loss.wgsl, batch_norm.wgsl) get their `tree_sum` from a
//! prelude put in front of them at compile time: tree_sum.wgsl on every device, or
//! tree_sum_subgroups.wgsl where the device has subgroup operations (the same bits, fewer
//! barriers). [`GpuContext::pipeline`](crate::GpuContext::pipeline) picks the variant.

/// One WGSL module.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ShaderFile {
    /// File name under `shaders/` (with " (subgroups)" for a subgroup variant), used in errors,
    /// labels and cache keys.
    pub name: &'static str,
    pub source: &'static str,
    /// Whether the module uses subgroup operations (wgpu's `SUBGROUP` feature).
    pub subgroups: bool,
}

macro_rules! shader {
    ($id:ident, $file:literal) => {
        pub const $id: ShaderFile = ShaderFile {
            name: $file,
            source: concat!(
                include_str!("../../shaders/float.wgsl"),
                include_str!(concat!("../../shaders/", $file))
            ),
            subgroups: false,
        };
    };
}

/// A file that uses `tree_sum`: its plain variant `$id` and its subgroup variant `$sg`.
macro_rules! tree_shader {
    ($id:ident, $sg:ident, $file:literal) => {
        pub const $id: ShaderFile = ShaderFile {
            name: $file,
            source: concat!(
                include_str!("../../shaders/float.wgsl"),
                include_str!("../../shaders/tree_sum.wgsl"),
                include_str!(concat!("../../shaders/", $file))
            ),
            subgroups: false,
        };
        pub const $sg: ShaderFile = ShaderFile {
            name: concat!($file, " (subgroups)"),
            source: concat!(
                include_str!("../../shaders/float.wgsl"),
                include_str!("../../shaders/tree_sum_subgroups.wgsl"),
                include_str!(concat!("../../shaders/", $file))
            ),
            subgroups: true,
        };
    };
}

shader!(MATMUL, "matmul.wgsl");
shader!(IM2COL, "im2col.wgsl");
shader!(NOISE, "noise.wgsl");
shader!(POINTWISE, "pointwise.wgsl");
shader!(POOL, "pool.wgsl");
tree_shader!(REDUCE, REDUCE_SUBGROUPS, "reduce.wgsl");
tree_shader!(LOSS, LOSS_SUBGROUPS, "loss.wgsl");
tree_shader!(BATCH_NORM, BATCH_NORM_SUBGROUPS, "batch_norm.wgsl");
shader!(OPTIM, "optim.wgsl");
shader!(HEALTH, "health.wgsl");

/// Every module, subgroup variants included, for validation and translation tests.
pub const ALL: &[ShaderFile] = &[
    MATMUL,
    IM2COL,
    NOISE,
    POINTWISE,
    POOL,
    REDUCE,
    REDUCE_SUBGROUPS,
    LOSS,
    LOSS_SUBGROUPS,
    BATCH_NORM,
    BATCH_NORM_SUBGROUPS,
    OPTIM,
    HEALTH,
];

impl ShaderFile {
    /// A module of the caller's own (no subgroup operations).
    pub const fn new(name: &'static str, source: &'static str) -> ShaderFile {
        ShaderFile {
            name,
            source,
            subgroups: false,
        }
    }

    /// The variant of this file that uses subgroup operations, if it has one.
    pub fn subgroup_variant(self) -> Option<ShaderFile> {
        ALL.iter()
            .find(|f| f.subgroups && f.name.strip_suffix(" (subgroups)") == Some(self.name))
            .copied()
    }
}
