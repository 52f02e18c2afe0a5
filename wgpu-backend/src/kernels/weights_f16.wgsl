// weights_f16.wgsl — spliced into matvec.wgsl when the device has
// `shader-f16`. f16 weights (F16 GGUF tensors, or quantized at load to f16),
// row-major:
//   0 w    storage read vec4<f16> [ROWS * K / 4]
//   1 (unused; bound to a dummy buffer)
// f16 → f32 is exact, then the same f32 dot as weights_f32.wgsl, so this and
// weights_f16_packed.wgsl (no shader-f16) agree to the bit.
@group(0) @binding(0) var<storage, read> w: array<vec4<f16>>;
@group(0) @binding(1) var<storage, read> w_unused: array<f32>;

fn block_dot(r: u32, b: u32) -> f32 {
    let base = (r * K + b * 32u) / 4u;
    let k0 = b * 32u;
    var acc = 0.0;
    for (var j = 0u; j < 8u; j = j + 1u) {
        let k = k0 + 4u * j;
        acc = acc + dot(vec4<f32>(w[base + j]), input4_at(k));
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
    return vec4<f32>(w[bw.base + c]);
}
