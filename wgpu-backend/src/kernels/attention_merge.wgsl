// attention_merge.wgsl — the attention output of each stream of a batch,
// merged from attention.wgsl's per-split partials once per step, for the
// batched out-projection (matvec_batch.wgsl reads it as a plain input).
// A lone stream's out-projection merges in its input prologue instead
// (matvec.wgsl INPUT_MODE 3), which a batch would repeat in every
// workgroup of every group of four streams (B = 64: 10 of 39 ms, H200).
//   out[h·HEAD_DIM + i] = Σₛ wₛ·o_part[(h·SPLITS + s)·HEAD_DIM + i],
//   wₛ = exp(mₛ − M) / Σₛ' exp(mₛ' − M)·lₛ', M = maxₛ mₛ
// with the same operations in the same order as matvec.wgsl's mode 3, so
// the merged values are bit-identical to the lone stream's.
//
// Bindings (group 0):
//   0 o_part   storage read vec4<f32> [streams][H · SPLITS · HEAD_DIM / 4]
//   1 ml_part  storage read vec4<f32> [streams][pairs / 2]: (m, l) pairs,
//              two per vec4, H · SPLITS pairs rounded up to even per stream
//   2 out      storage read_write vec4<f32> [streams][D / 4]
// Workgroup: 256 invocations, one output vec4 each; grid = (ceil(D / 4 /
// 256), 1, streams). Bounds: D / 4 outputs per stream (others return).
// CPU reference: moshi's attention output (the softmax-weighted sum of
// values over all keys); split-wise max and exp rounding only (f32).

override D: u32;
override HEAD_DIM: u32;
override SPLITS: u32;
override HEADS: u32;

@group(0) @binding(0) var<storage, read> o_part: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> ml_part: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> out: array<vec4<f32>>;

fn ml(base: u32, t: u32) -> vec2<f32> {
    let two = ml_part[base + t / 2u];
    return select(two.xy, two.zw, t % 2u == 1u);
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    let stream = gid.z;
    let d4 = D / 4u;
    if i >= d4 {
        return;
    }
    let hd4 = HEAD_DIM / 4u;
    let h = i / hd4;
    let c = i % hd4;
    let pairs = HEADS * SPLITS;
    let ml0 = stream * (pairs + pairs % 2u) / 2u;
    let o0 = stream * pairs * hd4;
    let first = h * SPLITS;
    var m = -3.4e38;
    for (var s = 0u; s < SPLITS; s = s + 1u) {
        m = max(m, ml(ml0, first + s).x);
    }
    var l = 0.0;
    for (var s = 0u; s < SPLITS; s = s + 1u) {
        let p = ml(ml0, first + s);
        l = l + exp(p.x - m) * p.y;
    }
    var v = vec4<f32>(0.0);
    for (var s = 0u; s < SPLITS; s = s + 1u) {
        let at = first + s;
        let w = exp(ml(ml0, at).x - m) / l;
        v = v + w * o_part[o0 + at * hd4 + c];
    }
    out[stream * d4 + i] = v;
}
