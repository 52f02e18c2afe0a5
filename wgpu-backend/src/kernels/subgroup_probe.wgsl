// subgroup_probe.wgsl — run once at device creation when subgroups are
// enabled, to check the layout the matvec shuffles assume.
// Bindings (group 0): 0 out storage read_write u32 [512]:
//   out[i] = subgroup_invocation_id of local invocation i,
//   out[256 + i] = subgroup_size seen by invocation i.
// Workgroup: 256 invocations, grid 1 (the matvec shape).
// The host accepts subgroups only if every invocation sees one size S
// (a power of two, 8 ≤ S ≤ 256) and out[i] == i % S: subgroups are then
// runs of S consecutive invocations, so the 8 lanes of a matvec row share
// one and `subgroupShuffleXor(·, 1|2|4)` stays inside the row.
// CPU reference: none (a layout check, see capabilities.rs).

@group(0) @binding(0) var<storage, read_write> out: array<u32>;

@compute @workgroup_size(256)
fn main(
    @builtin(local_invocation_index) lid: u32,
    @builtin(subgroup_invocation_id) lane: u32,
    @builtin(subgroup_size) size: u32,
) {
    out[lid] = lane;
    out[256u + lid] = size;
}
