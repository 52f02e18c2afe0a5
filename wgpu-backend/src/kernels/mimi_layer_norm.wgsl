// mimi_layer_norm.wgsl — LayerNorm over the channels of each column of a
// channel-major activation (Mimi's encoder transformer, norm1 / norm2).
//
// Bindings (group 0):
//   0 params  uniform ConvParams (conv_params.wgsl): frames in this call
//   1 input   storage read  f32 [C][ROW]
//   2 weight  storage read  f32 [C]
//   3 bias    storage read  f32 [C]
//   4 output  storage read_write f32 [C][ROW]
// out[c][t] = (x[c][t] − mean_t) / sqrt(var_t + EPS) · weight[c] + bias[c],
// mean and (biased) variance over the C channels of column t.
// Workgroup: WG invocations for one column; grid = (1, columns of this
// call, 1): the host dispatches exactly one per column.
// CPU reference: candle_nn `LayerNorm` (moshi `transformer::LayerNorm`,
// eps 1e-5). Equal up to f32 summation order (two sums of C terms).

//! CONV_PARAMS

const WG: u32 = 256u;

override C: u32;
override ROW: u32;
override EPS: f32 = 1e-5;

@group(0) @binding(0) var<uniform> params: ConvParams;
@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> output: array<f32>;

var<workgroup> partial: array<f32, WG>;

fn workgroup_sum(lid: u32, v: f32) -> f32 {
    partial[lid] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s /= 2u) {
        if lid < s {
            partial[lid] += partial[lid + s];
        }
        workgroupBarrier();
    }
    let total = partial[0];
    workgroupBarrier();
    return total;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>) {
    let t = wid.y;
    let lid = lid3.x;
    var s = 0.0;
    for (var c = lid; c < C; c += WG) {
        s += input[c * ROW + t];
    }
    let mean = workgroup_sum(lid, s) / f32(C);
    var v = 0.0;
    for (var c = lid; c < C; c += WG) {
        let d = input[c * ROW + t] - mean;
        v += d * d;
    }
    let inv = 1.0 / sqrt(workgroup_sum(lid, v) / f32(C) + EPS);
    for (var c = lid; c < C; c += WG) {
        output[c * ROW + t] = (input[c * ROW + t] - mean) * inv * weight[c] + bias[c];
    }
}
