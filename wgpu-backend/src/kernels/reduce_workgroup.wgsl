// reduce_workgroup.wgsl — spliced into matvec.wgsl at the REDUCE marker:
// the reductions through workgroup memory, which every WebGPU adapter runs.
// Defines `Ids` (the entry point's builtins), `workgroup_sum` and
// `lanes_sum`; reduce_subgroup.wgsl defines the same with subgroup ops.
// Both must be called from uniform control flow (they hold barriers).

struct Ids {
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
}

var<workgroup> partial: array<f32, 256>;

// Σ v over the 256 invocations, returned to all: a halving tree.
fn workgroup_sum(v: f32, ids: Ids) -> f32 {
    partial[ids.lid] = v;
    workgroupBarrier();
    for (var half = WG / 2u; half > 0u; half = half / 2u) {
        if ids.lid < half {
            partial[ids.lid] = partial[ids.lid] + partial[ids.lid + half];
        }
        workgroupBarrier();
    }
    let total = partial[0];
    workgroupBarrier();
    return total;
}

// Σ v over the LANES consecutive invocations of a row, valid in its lane 0:
// a halving tree (for 8 lanes ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7))),
// the order the subgroup version's xor-shuffles give: both agree to the bit.
fn lanes_sum(v: f32, ids: Ids) -> f32 {
    partial[ids.lid] = v;
    workgroupBarrier();
    let lane = ids.lid % LANES;
    for (var half = LANES / 2u; half > 0u; half = half / 2u) {
        if lane < half {
            partial[ids.lid] = partial[ids.lid] + partial[ids.lid + half];
        }
        workgroupBarrier();
    }
    return partial[ids.lid];
}

//! BATCH
// lanes_sum of four values at once (matvec_batch.wgsl's streams), each
// component in the same order as lanes_sum (spliced into the batch
// kernel only).
var<workgroup> partial4: array<vec4<f32>, 256>;

fn lanes_sum4(v: vec4<f32>, ids: Ids) -> vec4<f32> {
    partial4[ids.lid] = v;
    workgroupBarrier();
    let lane = ids.lid % LANES;
    for (var half = LANES / 2u; half > 0u; half = half / 2u) {
        if lane < half {
            partial4[ids.lid] = partial4[ids.lid] + partial4[ids.lid + half];
        }
        workgroupBarrier();
    }
    return partial4[ids.lid];
}
