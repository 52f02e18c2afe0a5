// weights_q8.wgsl — spliced into matvec.wgsl. Q8_0 repacked for 4-byte
// alignment: quants and scales in separate buffers.
//   0 w_q  storage read vec4<u32> [ROWS * K / 16]: 4 signed bytes per word,
//          element k of a row at byte k % 4 of word k / 4 (little end
//          first); a 32-block is two vec4 (two 16-byte loads)
//   1 w_s  storage read f32 [ROWS * K / 32]: one scale d per 32-block
// Value = d * q, as ggml's dequantize_row_q8_0 (and ours in quant.rs).
@group(0) @binding(0) var<storage, read> w_q: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read> w_s: array<f32>;

fn block_dot(r: u32, b: u32) -> f32 {
    let blk = r * (K / 32u) + b;
    let d = w_s[blk];
    let k0 = b * 32u;
    var acc = 0.0;
    for (var half = 0u; half < 2u; half = half + 1u) {
        let words = w_q[2u * blk + half];
        for (var j = 0u; j < 4u; j = j + 1u) {
            let word = words[j];
            // Sign-extend the 4 bytes: each to the top of a word, then an
            // arithmetic shift back down.
            let bytes = vec4<u32>(word << 24u, word << 16u, word << 8u, word);
            let q = bitcast<vec4<i32>>(bytes) >> vec4<u32>(24u);
            acc = acc + dot(d * vec4<f32>(q), input4_at(k0 + 16u * half + 4u * j));
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
    let word = words[c % 4u];
    let bytes = vec4<u32>(word << 24u, word << 16u, word << 8u, word);
    let q = bitcast<vec4<i32>>(bytes) >> vec4<u32>(24u);
    return bw.d * vec4<f32>(q);
}
