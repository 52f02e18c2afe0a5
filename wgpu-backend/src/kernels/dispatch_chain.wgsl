// dispatch_chain.wgsl — the bench's cost of one dependent dispatch: each
// invocation adds 1 to its element of `cells`, which the previous dispatch
// wrote, so consecutive dispatches are ordered by a barrier as a step's
// are, and almost no bytes move. Time per dispatch = what a step pays per
// kernel before any of its work.
// Bindings (group 0):
//   0 cells  storage read_write f32 [workgroups · 256]
// Workgroup: 256 invocations; grid: as many as the host dispatches (x).
// Bounds: none (the host sizes `cells` to the grid). CPU reference: none
// (a measurement).

@group(0) @binding(0) var<storage, read_write> cells: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    cells[gid.x] = cells[gid.x] + 1.0;
}
