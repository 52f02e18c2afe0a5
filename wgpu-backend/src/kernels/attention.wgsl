// attention.wgsl — one LM step of causal self-attention for one head, with
// RoPE and the KV-cache append folded in.
//   1. Rotate this step's q and k (interleaved pairs, candle `rope_i`:
//      (a, b) → (a·cos − b·sin, a·sin + b·cos)) with the cos/sin of the
//      absolute position, which the host computes exactly as moshi does
//      (f32 `pos · inv_freq`, then sin/cos) and passes in params.rope.
//   2. Write k, v at ring slot params.kv_slot (= pos % CONTEXT).
//   3. Attend over the params.n_keys = min(pos + 1, CONTEXT) filled slots:
//      softmax(q·kᵀ / √HEAD_DIM) · V. The set of keys is moshi's (its
//      rotating cache of CONTEXT steps); slot order does not change the set.
//
// Bindings (group 0):
//   0 params   uniform StepParams (rope[i/2] = (cos_2i, sin_2i, cos_2i+1, sin_2i+1)
//              for pairs 2i, 2i+1; see engine.rs)
//   1 qkv      storage read f32 [3 D]: q, k, v, each head-major (h · HEAD_DIM + i)
//   2 k_cache  storage read_write f32 [CONTEXT · D], slot-major (slot · D + h · HEAD_DIM + i)
//   3 v_cache  same layout
//   4 out      storage read_write f32 [D], head-major
// Workgroup: 128 invocations; grid = NUM_HEADS workgroups (one per head).
// Bounds: HEAD_DIM ≤ 128 and even, CONTEXT ≤ 1024 (checked by the host).
// CPU reference: moshi `StreamingMultiheadAttention::forward` for t = 1
// (no mask). Differences: summation order and exp/sqrt rounding (f32).

struct StepParams {
    text_mode: u32,
    forced_token: u32,
    kv_slot: u32,
    n_keys: u32,
    rope: array<vec4<f32>, 32>,
}

override D: u32;
override HEAD_DIM: u32;
override CONTEXT: u32;

const WG: u32 = 128u;
const MAX_CONTEXT: u32 = 1024u;

@group(0) @binding(0) var<uniform> params: StepParams;
@group(0) @binding(1) var<storage, read> qkv: array<f32>;
@group(0) @binding(2) var<storage, read_write> k_cache: array<f32>;
@group(0) @binding(3) var<storage, read_write> v_cache: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

var<workgroup> q_rot: array<f32, 128>;
var<workgroup> scores: array<f32, MAX_CONTEXT>;
var<workgroup> red: array<f32, WG>;

fn cos_sin(pair: u32) -> vec2<f32> {
    let v = params.rope[pair / 2u];
    if pair % 2u == 0u {
        return v.xy;
    }
    return v.zw;
}

@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let base = wid.x * HEAD_DIM;
    let slot = params.kv_slot * D + base;
    if lid < HEAD_DIM / 2u {
        let cs = cos_sin(lid);
        let i0 = base + 2u * lid;
        let qa = qkv[i0];
        let qb = qkv[i0 + 1u];
        q_rot[2u * lid] = qa * cs.x - qb * cs.y;
        q_rot[2u * lid + 1u] = qa * cs.y + qb * cs.x;
        let ka = qkv[D + i0];
        let kb = qkv[D + i0 + 1u];
        k_cache[slot + 2u * lid] = ka * cs.x - kb * cs.y;
        k_cache[slot + 2u * lid + 1u] = ka * cs.y + kb * cs.x;
    }
    if lid < HEAD_DIM {
        v_cache[slot + lid] = qkv[2u * D + base + lid];
    }
    storageBarrier();
    workgroupBarrier();

    let n = params.n_keys;
    let scale = 1.0 / sqrt(f32(HEAD_DIM));
    var local_max = -3.4e38;
    for (var j = lid; j < n; j = j + WG) {
        var s = 0.0;
        for (var i = 0u; i < HEAD_DIM; i = i + 1u) {
            s = s + q_rot[i] * k_cache[j * D + base + i];
        }
        s = s * scale;
        scores[j] = s;
        local_max = max(local_max, s);
    }
    red[lid] = local_max;
    workgroupBarrier();
    for (var half = WG / 2u; half > 0u; half = half / 2u) {
        if lid < half {
            red[lid] = max(red[lid], red[lid + half]);
        }
        workgroupBarrier();
    }
    let m = red[0];
    workgroupBarrier();
    var local_sum = 0.0;
    for (var j = lid; j < n; j = j + WG) {
        let e = exp(scores[j] - m);
        scores[j] = e;
        local_sum = local_sum + e;
    }
    red[lid] = local_sum;
    workgroupBarrier();
    for (var half = WG / 2u; half > 0u; half = half / 2u) {
        if lid < half {
            red[lid] = red[lid] + red[lid + half];
        }
        workgroupBarrier();
    }
    let total = red[0];
    if lid < HEAD_DIM {
        var acc = 0.0;
        for (var j = 0u; j < n; j = j + 1u) {
            acc = acc + (scores[j] / total) * v_cache[j * D + base + lid];
        }
        out[base + lid] = acc;
    }
}
