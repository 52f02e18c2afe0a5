// kv_f32.wgsl — the LM's KV cache as f32 (the default: exactly moshi's
// values), spliced into attention.wgsl at its KV_CACHE marker.
// Bindings (group 0): 2 k_cache, 3 v_cache: storage read_write
//   array<vec4<f32>>, one element per 4 consecutive values; index i is the
//   same in both variants (attention.wgsl computes it).
// CPU function matched: none (storage only); kv_f16.wgsl is the half-size form.

@group(0) @binding(2) var<storage, read_write> k_cache: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> v_cache: array<vec4<f32>>;

fn k_load(i: u32) -> vec4<f32> {
    return k_cache[i];
}

fn v_load(i: u32) -> vec4<f32> {
    return v_cache[i];
}

fn kv_store(i: u32, k: vec4<f32>, v: vec4<f32>) {
    k_cache[i] = k;
    v_cache[i] = v;
}
