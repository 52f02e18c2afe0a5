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
// Every stream of the batch has its own slice of each buffer (stream b
// = workgroup_id.z at b times the sizes below); an idle stream
// (params.text_mode 2) returns at once, leaving its cache as it was.
// Bindings (group 0):
//   0 params   storage read StepParams [streams] (rope[i/2] = (cos_2i, sin_2i,
//              cos_2i+1, sin_2i+1) for pairs 2i, 2i+1; see step_params.rs)
//   1 qkv      storage read f32 [streams][3 D]: q, k, v, each head-major (h · HEAD_DIM + i)
//   2 k_cache  storage read_write [streams][CONTEXT · D] values, slot-major
//              (slot · D + h · HEAD_DIM + i), f32 or f16 as spliced in at
//              KV_CACHE (kv_f32.wgsl / kv_f16.wgsl: k_load, v_load, kv_store
//              take the index of 4 consecutive values)
//   3 v_cache  same layout
//   4 o_part   storage read_write f32 [streams][H · SPLITS · HEAD_DIM]: o of
//              split s of head h at (h · SPLITS + s) · HEAD_DIM
//   5 ml_part  storage read_write vec2<f32> [streams][H · SPLITS rounded up
//              to even]: (m, l); an empty split writes (−3.4e38, 0) and o = 0
// All vectors are read and written as vec4<f32> (16-byte loads: the kernel
// is bound by load latency, not arithmetic).
// Workgroup: 256 invocations; grid = (H, SPLITS, streams), SPLITS =
// ceil(CONTEXT / CHUNK).
// Scores: 4 invocations per key, 64 keys per pass (2 passes for CHUNK =
// 128), invocation p of a key taking vec4 columns p, p + 4, … of the dot
// (4 invocations read 64 contiguous bytes).
// Output: invocation t sums vec4 column t % (HEAD_DIM/4) over every
// (256 / (HEAD_DIM/4))-th key of the chunk; the groups are then added.
// Bounds: HEAD_DIM ≤ 128 and a multiple of 16, CONTEXT ≤ 1024 (checked by the host).
// CPU reference: moshi `StreamingMultiheadAttention::forward` for t = 1
// (no mask), merged by matvec.wgsl. Differences: summation order, the
// split-wise max, exp/sqrt rounding (f32).

//! STEP_PARAMS

//! KV_CACHE

override D: u32;
override HEAD_DIM: u32;
override CONTEXT: u32;

const WG: u32 = 256u;
// Keys per workgroup. 128 rather than 64: half the workgroups, each paying
// the query load, the trees' barriers and the partial write once for twice
// the keys (H100, full cache: B = 1 within 1 %, B = 8/16/64 6–8 % faster;
// 256 was faster still at B ≥ 16 but 6 % slower at B = 1 with 48
// workgroups; bench/README.md, session 13).
const CHUNK: u32 = 128u;
const LANES_PER_KEY: u32 = 4u;
// Keys scored at once: 4 invocations each.
const KEYS_PER_PASS: u32 = WG / LANES_PER_KEY;
const EMPTY_MAX: f32 = -3.4e38;

@group(0) @binding(0) var<storage, read> params: array<StepParams>;
@group(0) @binding(1) var<storage, read> qkv: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> o_part: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> ml_part: array<vec2<f32>>;

var<workgroup> q_rot: array<vec4<f32>, 32>;
var<workgroup> red: array<f32, WG>;
var<workgroup> red4: array<vec4<f32>, WG>;
var<workgroup> probs: array<f32, CHUNK>;
// Each key's 4 partial dot products.
var<workgroup> score_parts: array<f32, CHUNK * LANES_PER_KEY>;

// Pairs (x, y) and (z, w) of `v` rotated by the (cos, sin) pairs in `cs`.
fn rotate(v: vec4<f32>, cs: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(
        v.x * cs.x - v.y * cs.y,
        v.x * cs.y + v.y * cs.x,
        v.z * cs.z - v.w * cs.w,
        v.z * cs.w + v.w * cs.z,
    );
}

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let stream = wid.z;
    let p = params[stream];
    if p.text_mode == TEXT_IDLE {
        return;
    }
    let hd4 = HEAD_DIM / 4u;
    let d4 = D / 4u;
    let h = wid.x;
    let split = wid.y;
    // This stream's slices: qkv, caches and partials.
    let qkv0 = stream * 3u * d4;
    let cache0 = stream * CONTEXT * d4;
    let out_at = (stream * groups.x + h) * groups.y + split;
    // (m, l) pairs per stream rounded up to whole vec4s (matvec.wgsl reads
    // them as vec4; engine/build.rs `max_sum_pairs_per_stream`).
    let pairs = groups.x * groups.y;
    let ml_at = stream * (pairs + pairs % 2u) + h * groups.y + split;
    let base4 = h * hd4;
    let n = p.n_keys;
    let j0 = split * CHUNK;
    if j0 >= n {
        if lid < hd4 {
            o_part[out_at * hd4 + lid] = vec4<f32>(0.0);
        }
        if lid == 0u {
            ml_part[ml_at] = vec2<f32>(EMPTY_MAX, 0.0);
        }
        return;
    }
    let count = min(CHUNK, n - j0);
    let slot_new = p.kv_slot;
    let owns_new = slot_new >= j0 && slot_new < j0 + count;
    if lid < hd4 {
        let cs = p.rope[lid];
        q_rot[lid] = rotate(qkv[qkv0 + base4 + lid], cs);
        if owns_new {
            let at = cache0 + slot_new * d4 + base4 + lid;
            kv_store(at, rotate(qkv[qkv0 + d4 + base4 + lid], cs), qkv[qkv0 + 2u * d4 + base4 + lid]);
        }
    }
    storageBarrier();
    workgroupBarrier();

    // Scores: key k0 + lid / 4 in each pass of 64 keys, every 4th vec4
    // column each.
    let part = lid % LANES_PER_KEY;
    for (var k0 = 0u; k0 < CHUNK; k0 = k0 + KEYS_PER_PASS) {
        let key = k0 + lid / LANES_PER_KEY;
        var acc = 0.0;
        if key < count {
            let row = cache0 + (j0 + key) * d4 + base4;
            for (var c = part; c < hd4; c = c + LANES_PER_KEY) {
                acc = acc + dot(q_rot[c], k_load(row + c));
            }
        }
        score_parts[key * LANES_PER_KEY + part] = acc;
    }
    workgroupBarrier();
    let scale = 1.0 / sqrt(f32(HEAD_DIM));
    if lid < count {
        let at = lid * LANES_PER_KEY;
        let sum = (score_parts[at] + score_parts[at + 1u]) + (score_parts[at + 2u] + score_parts[at + 3u]);
        probs[lid] = sum * scale;
    }
    // The chunk's max: a tree over the CHUNK (≤ WG) scores (log2 CHUNK
    // barriers rather than every invocation reading all of them in turn).
    red[lid] = select(EMPTY_MAX, probs[lid % CHUNK], lid < count);
    workgroupBarrier();
    for (var stride = CHUNK / 2u; stride > 0u; stride = stride / 2u) {
        if lid < stride {
            red[lid] = max(red[lid], red[lid + stride]);
        }
        workgroupBarrier();
    }
    let m = red[0];
    workgroupBarrier();
    if lid < count {
        probs[lid] = exp(probs[lid] - m);
    }
    workgroupBarrier();

    let key_groups = WG / hd4;
    let col = lid % hd4;
    let group = lid / hd4;
    var o = vec4<f32>(0.0);
    if group < key_groups {
        for (var j = group; j < count; j = j + key_groups) {
            o = o + probs[j] * v_load(cache0 + (j0 + j) * d4 + base4 + col);
        }
    }
    red4[lid] = o;
    // l = Σ pⱼ as a tree too, beside the output's group sums.
    red[lid] = select(0.0, probs[lid % CHUNK], lid < count);
    workgroupBarrier();
    for (var stride = CHUNK / 2u; stride > 0u; stride = stride / 2u) {
        if lid < stride {
            red[lid] = red[lid] + red[lid + stride];
        }
        workgroupBarrier();
    }
    if lid < hd4 {
        var total = vec4<f32>(0.0);
        for (var g = 0u; g < key_groups; g = g + 1u) {
            total = total + red4[g * hd4 + lid];
        }
        o_part[out_at * hd4 + lid] = total;
    }
    if lid == 0u {
        ml_part[ml_at] = vec2<f32>(m, red[0]);
    }
}
