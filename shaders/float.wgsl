// Float helpers every shader file gets: src/gpu/shaders.rs puts this file in front of each one
// (before tree_sum.wgsl, where a file has that too), so the rule below lives in one place.

// NaN, by its bits: WGSL lets a compiler assume floats are never NaN, so a comparison cannot be
// trusted to see one. Kernels keep NaN as NaN where PyTorch does (ReLU of NaN is NaN). There is
// no NaN constant either: Tint refuses a NaN literal (even one made by bitcast), so a NaN is
// passed on from an input.
fn is_nan(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}

