// mimi_rope_kv.wgsl — for each new position of Mimi's encoder transformer:
// RoPE on q and k (interleaved pairs), q kept for attention, k and v
// appended to the rolling KV cache.
//
// Bindings (group 0):
//   0 params   uniform ConvParams (conv_params.wgsl): frames in this call, start
//              = stream position of column 0
//   1 qkv      storage read  f32 [3·D][ROW]: in_proj's output, channel-major;
//              channel j·D + h·HEAD_DIM + d is (q, k, v)[j], head h, dim d
//   2 rope     storage read  f32 [T][2][HEAD_DIM/2]: cos then sin of
//              position (start + t) × inv_freq[i], computed on the host as
//              moshi does (f32 product, f32 sin/cos)
//   3 q        storage read_write f32 [D][ROW]: rotated q
//   4 k_cache  storage read_write f32 [RING][D]: rotated k at row
//              (start + t) mod RING
//   5 v_cache  storage read_write f32 [RING][D]: v, same rows
// Pair i of a head is dims (2i, 2i+1): x' = x₀cos − x₁sin, y' = x₀sin + x₁cos.
// Workgroup: WG pairs of one column; grid = (ceil(D/2 / WG), frames·P).
// CPU reference: moshi `StreamingMultiheadAttention::forward` up to the KV
// cache append (candle `rope_i`). Equal up to one rounding of each product
// (the GPU may fuse a multiply-add).

//! CONV_PARAMS

const WG: u32 = 64u;

override D: u32;
override HEAD_DIM: u32;
override ROW: u32;
override RING: u32;
override P: u32;

@group(0) @binding(0) var<uniform> params: ConvParams;
@group(0) @binding(1) var<storage, read> qkv: array<f32>;
@group(0) @binding(2) var<storage, read> rope: array<f32>;
@group(0) @binding(3) var<storage, read_write> q: array<f32>;
@group(0) @binding(4) var<storage, read_write> k_cache: array<f32>;
@group(0) @binding(5) var<storage, read_write> v_cache: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let pair = gid.x;
    let t = gid.y;
    if pair >= D / 2u || t >= params.frames * P {
        return;
    }
    let half = HEAD_DIM / 2u;
    let i = pair % half;
    let c0 = (pair / half) * HEAD_DIM + 2u * i;
    let c1 = c0 + 1u;
    let cs = rope[t * HEAD_DIM + i];
    let sn = rope[t * HEAD_DIM + half + i];
    let q0 = qkv[c0 * ROW + t];
    let q1 = qkv[c1 * ROW + t];
    q[c0 * ROW + t] = q0 * cs - q1 * sn;
    q[c1 * ROW + t] = q0 * sn + q1 * cs;
    let k0 = qkv[(D + c0) * ROW + t];
    let k1 = qkv[(D + c1) * ROW + t];
    let slot = ((params.start + t) % RING) * D;
    k_cache[slot + c0] = k0 * cs - k1 * sn;
    k_cache[slot + c1] = k0 * sn + k1 * cs;
    v_cache[slot + c0] = qkv[(2u * D + c0) * ROW + t];
    v_cache[slot + c1] = qkv[(2u * D + c1) * ROW + t];
}
