// weights_q4.wgsl — spliced into matvec.wgsl. Q4_0 and Q4_K repacked to one
// affine 4-bit layout of 32-element blocks (Q4_K sub-blocks are 32 wide):
//   0 w_q   storage read vec4<u32> [ROWS * K / 32]: one 32-block per vec4
//           (one 16-byte load); element k of a row at bits 4·(k % 8) of
//           word (k % 32) / 8 of block k / 32
//   1 w_sb  storage read vec2<f32> [ROWS * K / 32]: (scale, bias) per block
// Value = scale * q + bias: Q4_0 has scale d, bias −8d; Q4_K has scale
// d·sc, bias −dmin·m (both computed in f32 at load, as ggml does).
@group(0) @binding(0) var<storage, read> w_q: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read> w_sb: array<vec2<f32>>;

fn block_dot(r: u32, b: u32) -> f32 {
    let blk = r * (K / 32u) + b;
    let sb = w_sb[blk];
    let k0 = b * 32u;
    let words = w_q[blk];
    var acc = 0.0;
    for (var j = 0u; j < 4u; j = j + 1u) {
        let word = words[j];
        let lo = vec4<u32>(word, word >> 4u, word >> 8u, word >> 12u) & vec4<u32>(15u);
        let hi = vec4<u32>(word >> 16u, word >> 20u, word >> 24u, word >> 28u) & vec4<u32>(15u);
        let w_lo = sb.x * vec4<f32>(lo) + sb.y;
        let w_hi = sb.x * vec4<f32>(hi) + sb.y;
        acc = acc + dot(w_lo, input4_at(k0 + 8u * j));
        acc = acc + dot(w_hi, input4_at(k0 + 8u * j + 4u));
    }
    return acc;
}

//! BATCH
// For matvec_batch.wgsl: block b of row r loaded once (`block_load`), then
// its weights 4c … 4c + 3 (`block_chunk`, c = 0 … 7) computed exactly as
// block_dot computes them, for every stream and row of a workgroup.
struct BlockW {
    words: vec4<u32>,
    sb: vec2<f32>,
}

fn block_load(r: u32, b: u32) -> BlockW {
    let blk = r * (K / 32u) + b;
    return BlockW(w_q[blk], w_sb[blk]);
}

fn block_chunk(bw: BlockW, c: u32) -> vec4<f32> {
    let word = bw.words[c / 2u];
    var q: vec4<u32>;
    if c % 2u == 0u {
        q = vec4<u32>(word, word >> 4u, word >> 8u, word >> 12u) & vec4<u32>(15u);
    } else {
        q = vec4<u32>(word >> 16u, word >> 20u, word >> 24u, word >> 28u) & vec4<u32>(15u);
    }
    return bw.sb.x * vec4<f32>(q) + bw.sb.y;
}
