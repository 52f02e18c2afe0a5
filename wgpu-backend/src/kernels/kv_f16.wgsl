// kv_f16.wgsl — the LM's KV cache stored as IEEE half floats, half the
// bytes attention reads per step (the largest read at a full cache with
// many streams), spliced into attention.wgsl at its KV_CACHE marker.
// Bindings (group 0): 2 k_cache, 3 v_cache: storage read_write
//   array<vec2<u32>>, element i = 4 consecutive values as two
//   pack2x16float pairs (x, y) and (z, w); index i as in kv_f32.wgsl.
// Core WGSL (pack2x16float / unpack2x16float): no shader-f16 needed.
// Rounding: to nearest half (relative error ≤ 2⁻¹¹ for |x| ≥ 6.1e-5; values
// past 65504 become ±inf). CPU function: moshi's f32 cache, which this
// matches only to that rounding: cli/tests/gpu.rs bounds the logits
// (KV_F16_LOGIT_TOLERANCE, derived there) and requires the same tokens.

@group(0) @binding(2) var<storage, read_write> k_cache: array<vec2<u32>>;
@group(0) @binding(3) var<storage, read_write> v_cache: array<vec2<u32>>;

fn unpack4(p: vec2<u32>) -> vec4<f32> {
    return vec4<f32>(unpack2x16float(p.x), unpack2x16float(p.y));
}

fn pack4(v: vec4<f32>) -> vec2<u32> {
    return vec2<u32>(pack2x16float(v.xy), pack2x16float(v.zw));
}

fn k_load(i: u32) -> vec4<f32> {
    return unpack4(k_cache[i]);
}

fn v_load(i: u32) -> vec4<f32> {
    return unpack4(v_cache[i]);
}

fn kv_store(i: u32, k: vec4<f32>, v: vec4<f32>) {
    k_cache[i] = pack4(k);
    v_cache[i] = pack4(v);
}
