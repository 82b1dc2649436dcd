// `tree_sum` with subgroup operations, for devices with wgpu's SUBGROUP feature. See
// tree_sum.wgsl for what the including file declares; this variant gives the same bits.
//
// The tree's first strides (s ≥ the subgroup width w) run in workgroup memory as there; the last
// log2(w) strides run in registers with subgroupShuffleXor, saving a barrier each. A butterfly
// over lane masks w/2, …, 1 adds, at each step, exactly the pairs the tree adds (lane i with lane
// i ^ s, which for i < s is i + s), and float addition is commutative, so every lane ends with
// the tree's total, bit for bit. Lanes read partial[] by their own lane id, so nothing depends on
// how the driver groups invocations into subgroups. The shuffles need every subgroup full and of
// one size: the shader checks, and falls back to the whole tree in workgroup memory if not.

struct Lanes {
    @builtin(local_invocation_index) index: u32,
    @builtin(subgroup_invocation_id) lane: u32,
    @builtin(subgroup_size) size: u32,
}

var<workgroup> tree_width: u32;
var<workgroup> tree_fallback: u32;

fn tree_sum(l: Lanes) -> f32 {
    if l.index == 0u {
        tree_width = l.size;
        tree_fallback = 0u;
    }
    // A barrier as well: every partial[] is stored after it.
    let width = workgroupUniformLoad(&tree_width);
    if subgroupAdd(1u) != width || l.size != width {
        tree_fallback = 1u; // every writer writes the same value
    }
    let usable = workgroupUniformLoad(&tree_fallback) == 0u && width <= WG
        && (width & (width - 1u)) == 0u;
    let w = select(1u, width, usable);
    var s = WG / 2u;
    for (; s >= w; s >>= 1u) {
        if l.index < s {
            partial[l.index] += partial[l.index + s];
        }
        workgroupBarrier();
    }
    // partial[0..w] now holds what the tree holds at stride w/2.
    var v = partial[select(0u, l.lane, w > 1u)];
    for (; s > 0u; s >>= 1u) {
        v += subgroupShuffleXor(v, s);
    }
    return v;
}

