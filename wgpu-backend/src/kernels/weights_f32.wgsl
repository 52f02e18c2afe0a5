// weights_f32.wgsl — spliced into matvec.wgsl. Plain f32 weights
// (from f32, bf16 or f16 checkpoints, converted exactly at load).
//   0 w    storage read vec4<f32> [ROWS * K / 4], row-major
//   1 (unused; bound to a dummy buffer)
@group(0) @binding(0) var<storage, read> w: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> w_unused: array<f32>;

fn block_dot(r: u32, b: u32) -> f32 {
    let base = (r * K + b * 32u) / 4u;
    let k0 = b * 32u;
    var acc = 0.0;
    for (var j = 0u; j < 8u; j = j + 1u) {
        let k = k0 + 4u * j;
        acc = acc + dot(w[base + j], input4_at(k));
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
    return w[bw.base + c];
}
