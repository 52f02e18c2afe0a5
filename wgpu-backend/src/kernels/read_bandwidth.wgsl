// read_bandwidth.wgsl — the bench's ceiling for kernels that stream
// weights: every invocation sums a grid-stride slice of `src` (16-byte
// loads, as the matvec reads weights) and writes its sum, so no load can
// be optimised away.
// Bindings (group 0):
//   0 src   storage read vec4<f32> [N] (any contents)
//   1 sink  storage read_write f32 [workgroups · 256]
// Workgroup: 256 invocations; grid: as many as the host dispatches (x).
// Bounds: i < arrayLength(&src). CPU reference: none (a measurement).

@group(0) @binding(0) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> sink: array<f32>;

@compute @workgroup_size(256)
fn main(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let stride = groups.x * 256u;
    var acc = vec4<f32>(0.0);
    for (var i = gid.x; i < arrayLength(&src); i = i + stride) {
        acc = acc + src[i];
    }
    sink[gid.x] = acc.x + acc.y + acc.z + acc.w;
}
