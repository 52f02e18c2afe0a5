// attention.wgsl — one LM step of causal self-attention, split over the
// keys (flash-decoding): workgroup (h, s) handles head h and the keys in
// slots [s·CHUNK, s·CHUNK + CHUNK) ∩ [0, n_keys), and writes an unnormalised
// partial result; matvec.wgsl's INPUT_MODE 3 (the out-projection) merges
// the splits. RoPE and the KV-cache append are folded in:
//   1. Rotate this step's q and k (interleaved pairs, candle `rope_i`:
//      (a, b) → (a·cos − b·sin, a·sin + b·cos)) with the cos/sin of the
//      absolute position, which the host computes exactly as moshi does
//      (f32 `pos · inv_freq`, then sin/cos) and passes in params.rope.
//   2. The workgroup whose slot range holds params.kv_slot (= pos % CONTEXT)
//      writes k, v there; no other workgroup reads that slot.
//   3. Over its keys: sⱼ = q·kⱼ/√HEAD_DIM, m = max sⱼ, pⱼ = exp(sⱼ − m),
//      l = Σ pⱼ, o = Σ pⱼ·vⱼ. The set of keys over all splits is moshi's
//      (its rotating cache of CONTEXT steps); slot order does not matter.
//
// Bindings (group 0):
//   0 params   uniform StepParams (rope[i/2] = (cos_2i, sin_2i, cos_2i+1, sin_2i+1)
//              for pairs 2i, 2i+1; see engine.rs)
//   1 qkv      storage read f32 [3 D]: q, k, v, each head-major (h · HEAD_DIM + i)
//   2 k_cache  storage read_write f32 [CONTEXT · D], slot-major (slot · D + h · HEAD_DIM + i)
//   3 v_cache  same layout
//   4 o_part   storage read_write f32 [H · SPLITS · HEAD_DIM]: o of split s of
//              head h at (h · SPLITS + s) · HEAD_DIM
//   5 ml_part  storage read_write vec2<f32> [H · SPLITS]: (m, l); an empty
//              split writes (−3.4e38, 0) and o = 0
// Workgroup: 256 invocations; grid = (H, SPLITS), SPLITS = ceil(CONTEXT / CHUNK).
// Scores: 4 invocations per key (CHUNK = 64), each a quarter of the dot.
// Output: invocation t sums dimension t % HEAD_DIM over every
// (256 / HEAD_DIM)-th key of the chunk; the groups are then added.
// Bounds: HEAD_DIM ≤ 128 and a multiple of 4, CONTEXT ≤ 1024 (checked by the host).
// CPU reference: moshi `StreamingMultiheadAttention::forward` for t = 1
// (no mask), merged by matvec.wgsl. Differences: summation order, the
// split-wise max, exp/sqrt rounding (f32).

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

const WG: u32 = 256u;
const CHUNK: u32 = 64u;
const LANES_PER_KEY: u32 = 4u;
const EMPTY_MAX: f32 = -3.4e38;

@group(0) @binding(0) var<uniform> params: StepParams;
@group(0) @binding(1) var<storage, read> qkv: array<f32>;
@group(0) @binding(2) var<storage, read_write> k_cache: array<f32>;
@group(0) @binding(3) var<storage, read_write> v_cache: array<f32>;
@group(0) @binding(4) var<storage, read_write> o_part: array<f32>;
@group(0) @binding(5) var<storage, read_write> ml_part: array<vec2<f32>>;

var<workgroup> q_rot: array<f32, 128>;
var<workgroup> red: array<f32, WG>;
var<workgroup> probs: array<f32, CHUNK>;

fn cos_sin(pair: u32) -> vec2<f32> {
    let v = params.rope[pair / 2u];
    if pair % 2u == 0u {
        return v.xy;
    }
    return v.zw;
}

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let h = wid.x;
    let split = wid.y;
    let out_at = h * groups.y + split;
    let base = h * HEAD_DIM;
    let n = params.n_keys;
    let j0 = split * CHUNK;
    if j0 >= n {
        if lid < HEAD_DIM {
            o_part[out_at * HEAD_DIM + lid] = 0.0;
        }
        if lid == 0u {
            ml_part[out_at] = vec2<f32>(EMPTY_MAX, 0.0);
        }
        return;
    }
    let count = min(CHUNK, n - j0);
    let slot_new = params.kv_slot;
    let owns_new = slot_new >= j0 && slot_new < j0 + count;
    if lid < HEAD_DIM / 2u {
        let cs = cos_sin(lid);
        let i0 = base + 2u * lid;
        let qa = qkv[i0];
        let qb = qkv[i0 + 1u];
        q_rot[2u * lid] = qa * cs.x - qb * cs.y;
        q_rot[2u * lid + 1u] = qa * cs.y + qb * cs.x;
        if owns_new {
            let ka = qkv[D + i0];
            let kb = qkv[D + i0 + 1u];
            let at = slot_new * D + i0;
            k_cache[at] = ka * cs.x - kb * cs.y;
            k_cache[at + 1u] = ka * cs.y + kb * cs.x;
        }
    }
    if owns_new && lid < HEAD_DIM {
        v_cache[slot_new * D + base + lid] = qkv[2u * D + base + lid];
    }
    storageBarrier();
    workgroupBarrier();

    // Scores: key lid / 4 of the chunk, a quarter of the dimensions each.
    let key = lid / LANES_PER_KEY;
    let quarter = HEAD_DIM / LANES_PER_KEY;
    let i_start = (lid % LANES_PER_KEY) * quarter;
    var dot = 0.0;
    if key < count {
        let row = (j0 + key) * D + base;
        for (var i = i_start; i < i_start + quarter; i = i + 1u) {
            dot = dot + q_rot[i] * k_cache[row + i];
        }
    }
    red[lid] = dot;
    workgroupBarrier();
    let scale = 1.0 / sqrt(f32(HEAD_DIM));
    if lid < count {
        let at = lid * LANES_PER_KEY;
        probs[lid] = ((red[at] + red[at + 1u]) + (red[at + 2u] + red[at + 3u])) * scale;
    }
    workgroupBarrier();
    // Every invocation reads the chunk's max from workgroup memory
    // (broadcast reads), then the owner of each key exponentiates it.
    var m = EMPTY_MAX;
    for (var j = 0u; j < count; j = j + 1u) {
        m = max(m, probs[j]);
    }
    workgroupBarrier();
    if lid < count {
        probs[lid] = exp(probs[lid] - m);
    }
    workgroupBarrier();

    let groups_per_dim = WG / HEAD_DIM;
    let dim = lid % HEAD_DIM;
    let group = lid / HEAD_DIM;
    var acc = 0.0;
    if group < groups_per_dim {
        for (var j = group; j < count; j = j + groups_per_dim) {
            acc = acc + probs[j] * v_cache[(j0 + j) * D + base + dim];
        }
    }
    red[lid] = acc;
    workgroupBarrier();
    if lid < HEAD_DIM {
        var o = 0.0;
        for (var g = 0u; g < groups_per_dim; g = g + 1u) {
            o = o + red[g * HEAD_DIM + lid];
        }
        o_part[out_at * HEAD_DIM + lid] = o;
    }
    if lid == 0u {
        var l = 0.0;
        for (var j = 0u; j < count; j = j + 1u) {
            l = l + probs[j];
        }
        ml_part[out_at] = vec2<f32>(m, l);
    }
}
