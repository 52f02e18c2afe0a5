// argmax_heads.wgsl — the step's outputs: the text token and the
// end-of-turn probabilities.
//   token = argmax(logits[0 .. TEXT_VOCAB]) (first index among equal maxima,
//           as candle's CPU argmax) when sampling.temperature is 0; else
//           argmax_k(logits[k] / T + G_k), G_k iid Gumbel(0, 1) — the
//           Gumbel-max trick: a draw from softmax(logits / T), on the GPU,
//           no logits to the host. G_k = −log(−log u), u ∈ (0, 1) from 24
//           bits of a pcg3d hash (Jarzynski & Olano 2020, "Hash Functions
//           for GPU Rendering") of (k, step, seed): reproducible per seed.
//           Written to prev_token (read by the next step's embed) and to
//           result[0]. Temperature, seed and step are the stream's params.
//   for each end-of-turn head h < N_HEADS (invocation h):
//           softmax(logits[TEXT_VOCAB + h·HEAD_WIDTH ..][..HEAD_WIDTH])[0]
//           → result[1 + h] (f32 bits), as moshi `asr::State` reads them.
// Per stream b of the batch (workgroup_id.z); an idle stream (params
// text_mode 2) writes nothing.
// Bindings (group 0):
//   0 logits      storage read f32 [streams][LOGITS_STRIDE], LOGITS_STRIDE =
//                 TEXT_VOCAB + N_HEADS · HEAD_WIDTH
//   1 prev_token  storage read_write u32 [streams]
//   2 result      storage read_write u32 [streams][1 + N_HEADS]
//   3 params      storage read StepParams [streams] (step_params.wgsl):
//                 temperature (0 = greedy), seed (two words), step since reset
// Workgroup: 256 invocations; grid = (1, 1, streams). Bounds: N_HEADS ≤ 256
// (checked by the host, `kernels::ARGMAX_WORKGROUP`).
// CPU reference: candle argmax / softmax_last_dim. Exact for the token
// given equal logits; probabilities within exp rounding. Sampled tokens
// follow the distribution of candle-transformers' LogitsProcessor
// (`Sampling::All`, softmax(logits / T)) but not its draws (another RNG).

//! STEP_PARAMS

override TEXT_VOCAB: u32;
override N_HEADS: u32 = 0u;
override HEAD_WIDTH: u32 = 6u;

const WG: u32 = 256u;

@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read_write> prev_token: array<u32>;
@group(0) @binding(2) var<storage, read_write> result: array<u32>;

@group(0) @binding(3) var<storage, read> params: array<StepParams>;

fn pcg3d(seed: vec3<u32>) -> vec3<u32> {
    var v = seed * 1664525u + 1013904223u;
    v.x += v.y * v.z;
    v.y += v.z * v.x;
    v.z += v.x * v.y;
    v ^= v >> vec3<u32>(16u);
    v.x += v.y * v.z;
    v.y += v.z * v.x;
    v.z += v.x * v.y;
    return v;
}

// Gumbel(0, 1) noise for logit k of this step of a stream (its params `p`).
fn gumbel(k: u32, p: StepParams) -> f32 {
    let h = pcg3d(vec3<u32>(k, p.step ^ (p.seed_hi * 0x9e3779b9u), p.seed_lo));
    let u = (f32(h.x >> 8u) + 0.5) / 16777216.0;
    return -log(-log(u));
}

var<workgroup> best_v: array<f32, WG>;
var<workgroup> best_i: array<u32, WG>;

@compute @workgroup_size(256)
fn main(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let stream = wid.z;
    let p = params[stream];
    if p.text_mode == TEXT_IDLE {
        return;
    }
    let logits0 = stream * (TEXT_VOCAB + N_HEADS * HEAD_WIDTH);
    let result0 = stream * (1u + N_HEADS);
    var bv = -3.4e38;
    var bi = 0xffffffffu;
    let t = p.temperature;
    for (var k = lid; k < TEXT_VOCAB; k = k + WG) {
        var v = logits[logits0 + k];
        if t > 0.0 {
            v = v / t + gumbel(k, p);
        }
        if v > bv || bi == 0xffffffffu {
            bv = v;
            bi = k;
        }
    }
    best_v[lid] = bv;
    best_i[lid] = bi;
    workgroupBarrier();
    for (var half = WG / 2u; half > 0u; half = half / 2u) {
        if lid < half {
            let ov = best_v[lid + half];
            let oi = best_i[lid + half];
            if ov > best_v[lid] || (ov == best_v[lid] && oi < best_i[lid]) {
                best_v[lid] = ov;
                best_i[lid] = oi;
            }
        }
        workgroupBarrier();
    }
    if lid == 0u {
        prev_token[stream] = best_i[0];
        result[result0] = best_i[0];
    }
    if lid < N_HEADS {
        let base = logits0 + TEXT_VOCAB + lid * HEAD_WIDTH;
        var m = logits[base];
        for (var i = 1u; i < HEAD_WIDTH; i = i + 1u) {
            m = max(m, logits[base + i]);
        }
        var s = 0.0;
        for (var i = 0u; i < HEAD_WIDTH; i = i + 1u) {
            s = s + exp(logits[base + i] - m);
        }
        result[result0 + 1u + lid] = bitcast<u32>(exp(logits[base] - m) / s);
    }
}
