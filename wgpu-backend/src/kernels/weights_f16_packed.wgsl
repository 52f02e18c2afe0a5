// weights_f16_packed.wgsl — spliced into matvec.wgsl when the device lacks
// `shader-f16`: the same f16 buffer as weights_f16.wgsl, read as words and
// widened with unpack2x16float (core WGSL).
//   0 w    storage read vec2<u32> [ROWS * K / 4]: 4 halves, low half first
//   1 (unused; bound to a dummy buffer)
@group(0) @binding(0) var<storage, read> w: array<vec2<u32>>;
@group(0) @binding(1) var<storage, read> w_unused: array<f32>;

fn block_dot(r: u32, b: u32) -> f32 {
    let base = (r * K + b * 32u) / 4u;
    let k0 = b * 32u;
    var acc = 0.0;
    for (var j = 0u; j < 8u; j = j + 1u) {
        let k = k0 + 4u * j;
        let p = w[base + j];
        let wv = vec4<f32>(unpack2x16float(p.x), unpack2x16float(p.y));
        acc = acc + dot(wv, input4_at(k));
    }
    return acc;
}

//! BATCH
// For matvec_batch.wgsl: block b of row r loaded once (`block_load`), then
// its weights 4c … 4c + 3 (`block_chunk`, c = 0 … 7) computed exactly as
// block_dot computes them, for every stream and row of a workgroup.
struct BlockW {
    base: u32,
}

fn block_load(r: u32, b: u32) -> BlockW {
    return BlockW((r * K + b * 32u) / 4u);
}

fn block_chunk(bw: BlockW, c: u32) -> vec4<f32> {
    let p = w[bw.base + c];
    return vec4<f32>(unpack2x16float(p.x), unpack2x16float(p.y));
}
