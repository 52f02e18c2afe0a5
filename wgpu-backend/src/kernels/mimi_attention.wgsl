// mimi_attention.wgsl — causal attention of Mimi's encoder transformer over
// its rolling window, for many new positions at once, with the keys each
// position sees when the transformer is stepped one frame at a time.
//
// Bindings (group 0):
//   0 params   uniform ConvParams (conv_params.wgsl): frames, start
//   1 q        storage read  f32 [D][ROW]: rotated queries (mimi_rope_kv.wgsl)
//   2 k_cache  storage read  f32 [RING][D]
//   3 v_cache  storage read  f32 [RING][D]
//   4 output   storage read_write f32 [D][ROW]: per head, softmax(q·k/√d)·v
// Window: moshi keeps the last CONTEXT keys (a rotating cache of CONTEXT)
// after appending each frame's P positions, and masks k > p. So position p
// sees keys lo … p with lo = max(0, e − CONTEXT + 1), e the last position
// of p's frame (P·⌊p/P⌋ + P − 1). RING ≥ CONTEXT + P·max_frames, so this
// call's writes never overwrite a key it reads.
// Loads: four keys' or values' loads in flight before their terms are
// added, in the order of a plain loop (HEAD_DIM % 4 == 0, host-checked).
// Workgroup: WG (= HEAD_DIM) invocations for one (position, head); grid =
// (1, frames·P, heads). Scores live in workgroup memory (≤ CONTEXT ≤ MAX_KEYS).
// CPU reference: moshi `StreamingMultiheadAttention::forward` with
// `Transformer::step` per frame (candle matmul, softmax_last_dim, matmul).
// Equal up to f32 summation order.

//! CONV_PARAMS

const WG: u32 = 64u;
const MAX_KEYS: u32 = 256u;

override D: u32;
override HEAD_DIM: u32;
override ROW: u32;
override RING: u32;
override P: u32;
override CONTEXT: u32;

@group(0) @binding(0) var<uniform> params: ConvParams;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k_cache: array<f32>;
@group(0) @binding(3) var<storage, read> v_cache: array<f32>;
@group(0) @binding(4) var<storage, read_write> output: array<f32>;

var<workgroup> qh: array<f32, WG>;
var<workgroup> scores: array<f32, MAX_KEYS>;
var<workgroup> partial: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>) {
    let t = wid.y;
    let h = wid.z;
    let lid = lid3.x;
    let p = params.start + t;
    let e = (p / P) * P + P - 1u;
    var lo = 0u;
    if e + 1u > CONTEXT {
        lo = e + 1u - CONTEXT;
    }
    let n = p - lo + 1u;
    let base = h * HEAD_DIM;
    if lid < HEAD_DIM {
        qh[lid] = q[(base + lid) * ROW + t];
    }
    workgroupBarrier();
    let scale = 1.0 / sqrt(f32(HEAD_DIM));
    var m = -3.0e38;
    for (var j = lid; j < n; j += WG) {
        let row = ((lo + j) % RING) * D + base;
        // Four loads in flight per step, added in order (HEAD_DIM % 4 == 0).
        var s = 0.0;
        for (var d = 0u; d < HEAD_DIM; d += 4u) {
            let k0 = k_cache[row + d];
            let k1 = k_cache[row + d + 1u];
            let k2 = k_cache[row + d + 2u];
            let k3 = k_cache[row + d + 3u];
            s = fma(qh[d], k0, s);
            s = fma(qh[d + 1u], k1, s);
            s = fma(qh[d + 2u], k2, s);
            s = fma(qh[d + 3u], k3, s);
        }
        s *= scale;
        scores[j] = s;
        m = max(m, s);
    }
    partial[lid] = m;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s /= 2u) {
        if lid < s {
            partial[lid] = max(partial[lid], partial[lid + s]);
        }
        workgroupBarrier();
    }
    let top = partial[0];
    workgroupBarrier();
    var sum = 0.0;
    for (var j = lid; j < n; j += WG) {
        let w = exp(scores[j] - top);
        scores[j] = w;
        sum += w;
    }
    partial[lid] = sum;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s /= 2u) {
        if lid < s {
            partial[lid] += partial[lid + s];
        }
        workgroupBarrier();
    }
    let total = partial[0];
    if lid < HEAD_DIM {
        let col = base + lid;
        var acc = 0.0;
        var j = 0u;
        for (; j + 3u < n; j += 4u) {
            let v0 = v_cache[((lo + j) % RING) * D + col];
            let v1 = v_cache[((lo + j + 1u) % RING) * D + col];
            let v2 = v_cache[((lo + j + 2u) % RING) * D + col];
            let v3 = v_cache[((lo + j + 3u) % RING) * D + col];
            acc = fma(scores[j], v0, acc);
            acc = fma(scores[j + 1u], v1, acc);
            acc = fma(scores[j + 2u], v2, acc);
            acc = fma(scores[j + 3u], v3, acc);
        }
        for (; j < n; j++) {
            acc = fma(scores[j], v_cache[((lo + j) % RING) * D + col], acc);
        }
        output[(base + lid) * ROW + t] = acc / total;
    }
}
