// attention_subgroup.wgsl — attention.wgsl's step (same bindings, same
// partial results, same split layout), for devices with subgroups: the
// workgroup's keys are shared out to groups of LANES invocations, each
// group keeps its own running max, sum and output in registers, and the
// groups meet once at the end (one barrier instead of attention.wgsl's
// ~16 for its workgroup-wide trees).
//   1. Each invocation rotates its own q columns (candle `rope_i`, the
//      cos/sin of params.rope, as attention.wgsl); no shared q.
//   2. Key j of the chunk [j0, j0 + CHUNK) ∩ [0, n_keys) goes to group
//      j % GROUPS. Its score sⱼ = q·kⱼ/√HEAD_DIM: each lane dots COLS vec4
//      columns (lane, lane + LANES, …: the LANES lanes of a key read
//      contiguous 16-byte words), the lanes add by xor-shuffles. The key in
//      slot params.kv_slot (this step's) is taken from qkv (rotated) and
//      written to the caches by the lanes that use it: every invocation
//      takes that slot from qkv, so no barrier orders the write.
//   3. Per group: m = max sⱼ, pⱼ = exp(sⱼ − m), l = Σ pⱼ, o = Σ pⱼ·vⱼ.
//   4. The groups of a subgroup merge by xor-shuffles (o·e^(m−M) + o'·e^(m'−M),
//      the same on both sides of each exchange), the subgroups through
//      workgroup memory; the split's (M, L) and o go out as attention.wgsl's.
//
// Bindings (group 0): attention.wgsl's (params, qkv, k_cache, v_cache,
// o_part, ml_part), same layouts; the cache format is spliced in at
// KV_CACHE (kv_f32.wgsl / kv_f16.wgsl).
// Workgroup: 256 invocations = GROUPS = 256 / LANES groups; grid = (H,
// SPLITS, streams) as attention.wgsl. Subgroups must be runs of SG
// consecutive invocations (device.rs's probe), LANES ≤ SG.
// Bounds (checked by the host, `kernels::attention_subgroup_lanes`):
// HEAD_DIM / 4 = COLS · LANES with COLS ≤ 4, LANES a power of two;
// (256 / SG) · HEAD_DIM / 4 ≤ 512 (the subgroups' partial outputs);
// CHUNK · LANES ≥ 256 (every group has a key slot).
// CPU reference: moshi `StreamingMultiheadAttention::forward` for t = 1, as
// attention.wgsl; differences from it: summation order (the lanes' tree,
// the per-group max), exp rounding (f32).

//! STEP_PARAMS

//! KV_CACHE

override D: u32;
override HEAD_DIM: u32;
override CONTEXT: u32;
// Lanes per key, and the subgroup size the probe measured.
override LANES: u32;
override SG: u32;

const WG: u32 = 256u;
const CHUNK: u32 = 64u;
const EMPTY_MAX: f32 = -3.4e38;
// Vec4 columns per lane, and keys per group, at most.
const MAX_COLS: u32 = 4u;
const MAX_KEYS: u32 = 8u;
// The subgroups' outputs: (WG / SG) · HEAD_DIM / 4 vec4 at most.
const MAX_PARTS: u32 = 512u;

@group(0) @binding(0) var<storage, read> params: array<StepParams>;
@group(0) @binding(1) var<storage, read> qkv: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> o_part: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> ml_part: array<vec2<f32>>;

var<workgroup> part_o: array<vec4<f32>, MAX_PARTS>;
var<workgroup> part_ml: array<vec2<f32>, 32>;

// Pairs (x, y) and (z, w) of `v` rotated by the (cos, sin) pairs in `cs`.
fn rotate(v: vec4<f32>, cs: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(
        v.x * cs.x - v.y * cs.y,
        v.x * cs.y + v.y * cs.x,
        v.z * cs.z - v.w * cs.w,
        v.z * cs.w + v.w * cs.z,
    );
}

// Σ over the LANES lanes of a key (all of them get the same sum: each
// exchange adds the same two values).
fn key_sum(v: f32) -> f32 {
    var s = v;
    for (var m = LANES / 2u; m > 0u; m = m / 2u) {
        s = s + subgroupShuffleXor(s, m);
    }
    return s;
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
    let qkv0 = stream * 3u * d4;
    let cache0 = stream * CONTEXT * d4;
    let out_at = (stream * groups.x + h) * groups.y + split;
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
    let cols = hd4 / LANES;
    let key_groups = WG / LANES;
    let keys = CHUNK / key_groups;
    let lane = lid % LANES;
    let group = lid / LANES;

    var q: array<vec4<f32>, MAX_COLS>;
    for (var c = 0u; c < MAX_COLS; c = c + 1u) {
        if c < cols {
            let col = c * LANES + lane;
            q[c] = rotate(qkv[qkv0 + base4 + col], p.rope[col]);
        }
    }
    let scale = 1.0 / sqrt(f32(HEAD_DIM));

    // Scores of this group's keys (EMPTY_MAX past the chunk's end).
    var s: array<f32, MAX_KEYS>;
    var m = EMPTY_MAX;
    for (var t = 0u; t < MAX_KEYS; t = t + 1u) {
        if t < keys {
            let valid = group + t * key_groups < count;
            let slot = j0 + min(group + t * key_groups, count - 1u);
            let row = cache0 + slot * d4 + base4;
            var acc = 0.0;
            for (var c = 0u; c < MAX_COLS; c = c + 1u) {
                if c < cols {
                    let col = c * LANES + lane;
                    var k: vec4<f32>;
                    if slot == slot_new {
                        k = rotate(qkv[qkv0 + d4 + base4 + col], p.rope[col]);
                        if valid {
                            kv_store(row + col, k, qkv[qkv0 + 2u * d4 + base4 + col]);
                        }
                    } else {
                        k = k_load(row + col);
                    }
                    acc = acc + dot(q[c], k);
                }
            }
            let score = key_sum(acc) * scale;
            s[t] = select(EMPTY_MAX, score, valid);
            m = max(m, s[t]);
        }
    }

    var o: array<vec4<f32>, MAX_COLS>;
    var l = 0.0;
    for (var t = 0u; t < MAX_KEYS; t = t + 1u) {
        if t < keys {
            let valid = group + t * key_groups < count;
            let slot = j0 + min(group + t * key_groups, count - 1u);
            let row = cache0 + slot * d4 + base4;
            let pj = select(0.0, exp(s[t] - m), valid);
            l = l + pj;
            for (var c = 0u; c < MAX_COLS; c = c + 1u) {
                if c < cols {
                    let col = c * LANES + lane;
                    var v: vec4<f32>;
                    if slot == slot_new {
                        v = qkv[qkv0 + 2u * d4 + base4 + col];
                    } else {
                        v = v_load(row + col);
                    }
                    o[c] = o[c] + pj * v;
                }
            }
        }
    }

    // The groups of one subgroup.
    for (var mask = LANES; mask < SG; mask = mask * 2u) {
        let m2 = subgroupShuffleXor(m, mask);
        let l2 = subgroupShuffleXor(l, mask);
        let top = max(m, m2);
        let a = exp(m - top);
        let b = exp(m2 - top);
        l = l * a + l2 * b;
        for (var c = 0u; c < MAX_COLS; c = c + 1u) {
            if c < cols {
                o[c] = o[c] * a + subgroupShuffleXor(o[c], mask) * b;
            }
        }
        m = top;
    }
    // The subgroups, through workgroup memory.
    let sg = lid / SG;
    if lid % SG < LANES {
        for (var c = 0u; c < MAX_COLS; c = c + 1u) {
            if c < cols {
                part_o[sg * hd4 + c * LANES + lane] = o[c];
            }
        }
        if lane == 0u {
            part_ml[sg] = vec2<f32>(m, l);
        }
    }
    workgroupBarrier();
    let subgroups = WG / SG;
    if lid < hd4 {
        var top = EMPTY_MAX;
        for (var g = 0u; g < subgroups; g = g + 1u) {
            top = max(top, part_ml[g].x);
        }
        var total_l = 0.0;
        var total = vec4<f32>(0.0);
        for (var g = 0u; g < subgroups; g = g + 1u) {
            let w = exp(part_ml[g].x - top);
            total_l = total_l + w * part_ml[g].y;
            total = total + w * part_o[g * hd4 + lid];
        }
        o_part[out_at * hd4 + lid] = total;
        if lid == 0u {
            ml_part[ml_at] = vec2<f32>(top, total_l);
        }
    }
}
