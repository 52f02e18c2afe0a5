// reduce_subgroup.wgsl — spliced into matvec.wgsl at the REDUCE marker when
// the device has subgroups and the probe (subgroup_probe.wgsl) found them
// to be runs of S consecutive invocations, S a power of two in [8, 256].
// Same functions as reduce_workgroup.wgsl, with fewer barriers:
// `lanes_sum` needs none (xor-shuffles LANES/2, …, 2, 1 inside a subgroup
// of ≥ LANES invocations: the workgroup tree's order), `workgroup_sum` one.

struct Ids {
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
    @builtin(subgroup_size) sg_size: u32,
}

// One partial per subgroup: at most 256 / 8.
var<workgroup> partial: array<f32, 32>;

// Σ v over the 256 invocations, returned to all. Summation order differs
// from the workgroup tree (f32 rounding, ~1e-7 relative).
fn workgroup_sum(v: f32, ids: Ids) -> f32 {
    let s = subgroupAdd(v);
    if ids.lid % ids.sg_size == 0u {
        partial[ids.lid / ids.sg_size] = s;
    }
    workgroupBarrier();
    var total = 0.0;
    for (var i = 0u; i < WG / ids.sg_size; i = i + 1u) {
        total = total + partial[i];
    }
    workgroupBarrier();
    return total;
}

fn lanes_sum(v: f32, ids: Ids) -> f32 {
    var s = v;
    for (var m = LANES / 2u; m > 0u; m = m / 2u) {
        s = s + subgroupShuffleXor(s, m);
    }
    return s;
}

//! BATCH
// lanes_sum of four values at once (matvec_batch.wgsl's streams), each
// component in the same order as lanes_sum (spliced into the batch
// kernel only).
fn lanes_sum4(v: vec4<f32>, ids: Ids) -> vec4<f32> {
    var s = v;
    for (var m = LANES / 2u; m > 0u; m = m / 2u) {
        s = s + subgroupShuffleXor(s, m);
    }
    return s;
}
