// `tree_sum` without subgroup operations: the variant every adapter can run.
//
// src/gpu/shaders.rs puts this file (or tree_sum_subgroups.wgsl, on a device with subgroups) in
// front of each file that sums across a workgroup (reduce.wgsl, loss.wgsl). That file declares
// `const WG: u32` (a power of two) and `var<workgroup> partial: array<f32, WG>`, and its entry
// points take a `Lanes`. Both variants add in the same order, so they give the same bits.

struct Lanes {
    @builtin(local_invocation_index) index: u32,
}

// Adds partial[0..WG] in a fixed tree order: at stride s = WG/2, WG/4, …, 1, partial[i] +=
// partial[i + s] for every i < s. Every invocation calls it (it has barriers), once per dispatch,
// after storing its own partial[l.index]; every invocation gets the total.
fn tree_sum(l: Lanes) -> f32 {
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if l.index < s {
            partial[l.index] += partial[l.index + s];
        }
        workgroupBarrier();
    }
    return partial[0];
}

