// weights_q8.wgsl — spliced into matvec.wgsl. Q8_0 repacked for 4-byte
// alignment: quants and scales in separate buffers.
//   0 w_q  storage read vec4<u32> [ROWS * K / 16]: 4 signed bytes per word,
//          element k of a row at byte k % 4 of word k / 4 (little end
//          first); a 32-block is two vec4 (two 16-byte loads)
//   1 w_s  storage read f32 [ROWS * K / 32]: one scale d per 32-block
// Value = d * q, as ggml's dequantize_row_q8_0 (and ours in quant.rs).
// Bytes become f32 without an int → float conversion (a quarter of the FMA
// rate on NVIDIA GPUs): byte ^ 0x80 is q + 128 in [0, 255]; 0x4B000000 |
// that is the f32 2²³ + 128 + q, and subtracting 2²³ + 128 leaves q
// exactly, so the weights are bit-identical to d * f32(q).
@group(0) @binding(0) var<storage, read> w_q: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read> w_s: array<f32>;

const F32_2_POW_23_BITS: u32 = 0x4B000000u;
const F32_2_POW_23_PLUS_128: f32 = 8388736.0;

// The 4 signed bytes of `word` as f32 (little end first).
fn signed_bytes_f32(word: u32) -> vec4<f32> {
    let w = word ^ 0x80808080u;
    let u = vec4<u32>(w, w >> 8u, w >> 16u, w >> 24u) & vec4<u32>(255u);
    return bitcast<vec4<f32>>(u | vec4<u32>(F32_2_POW_23_BITS)) - F32_2_POW_23_PLUS_128;
}

fn block_dot(r: u32, b: u32) -> f32 {
    let blk = r * (K / 32u) + b;
    let d = w_s[blk];
    var acc = 0.0;
    for (var half = 0u; half < 2u; half = half + 1u) {
        let words = w_q[2u * blk + half];
        for (var j = 0u; j < 4u; j = j + 1u) {
            let q = signed_bytes_f32(words[j]);
            acc = acc + dot(d * q, input4(b, 4u * half + j));
        }
    }
    return acc;
}

//! BATCH
// For matvec_batch.wgsl: block b of row r loaded once (`block_load`), then
// its weights 4c … 4c + 3 (`block_chunk`, c = 0 … 7) computed exactly as
// block_dot computes them, for every stream and row of a workgroup.
struct BlockW {
    lo: vec4<u32>,
    hi: vec4<u32>,
    d: f32,
}

fn block_load(r: u32, b: u32) -> BlockW {
    let blk = r * (K / 32u) + b;
    return BlockW(w_q[2u * blk], w_q[2u * blk + 1u], w_s[blk]);
}

fn block_chunk(bw: BlockW, c: u32) -> vec4<f32> {
    let words = select(bw.lo, bw.hi, c >= 4u);
    return bw.d * signed_bytes_f32(words[c % 4u]);
}
