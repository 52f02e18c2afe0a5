// conv1d_split.wgsl — conv1d.wgsl for convs with few output columns per
// call (the encoder transformer's linears, the downsampling conv, the
// quantizer's projections: 1–2 per frame): the same convolution, but the
// invocations of a workgroup split the input channels of one output channel
// and TILE columns instead of taking one column each — a one-frame call
// would otherwise leave 62 of 64 invocations idle, each walking all
// C_IN·K products in one dependent chain.
//
// Bindings, layout, constants, REPLICATE, activations and bounds: as
// conv1d.wgsl (shared through conv1d_common.wgsl).
// Workgroup: WG invocations for CO_TILE (1 or 4) consecutive output
// channels and 4 consecutive output columns; invocation i sums input
// channels i, i + WG, … over the K taps for each of its CO_TILE·4 outputs
// (a vec4 of columns per channel: fixed registers, not an indexed array),
// then a shared-memory tree adds the WG partial sums; grid = (ceil(T_out /
// 4), ceil(C_OUT / CO_TILE)). Columns and channels past T_out and C_OUT
// read the last valid one and are not written.
// Summation order: each output's partial sums and tree do not depend on
// CO_TILE, so the two pipelines (1 channel for one-frame calls, 4 for
// chunks) give the same bits.
// CPU reference: as conv1d.wgsl (moshi `StreamableConv1d::step`; for
// K = 1 candle `Linear`, `LayerScale`, the residual add). Equal up to f32
// summation order (C_IN·K products per output, here in WG partial sums
// added by a tree) and erf's approximation.

//! CONV_PARAMS

//! CONV1D_COMMON

const WG: u32 = 64u;
const TILE: u32 = 4u;
override CO_TILE: u32 = 1u;

var<workgroup> partial: array<vec4<f32>, 256>; // [WG][4 channels]

// Input channel ci at tap j for output column t (clamped to the last).
fn tap(ci: u32, j: u32, t: u32, t_out: u32) -> f32 {
    var col = min(t, t_out - 1u) * STRIDE + j * DILATION;
    if REPLICATE == 1u && params.first == 1u && col < IN_HISTORY {
        col = IN_HISTORY;
    }
    return activate(input[ci * IN_ROW + col]);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>) {
    let co0 = wid.y * CO_TILE;
    let t0 = wid.x * TILE;
    let lid = lid3.x;
    let t_out = params.frames * T_OUT_PER_FRAME;
    let last = C_OUT - 1u;
    let w0 = min(co0, last) * C_IN;
    let w1 = min(co0 + 1u, last) * C_IN;
    let w2 = min(co0 + 2u, last) * C_IN;
    let w3 = min(co0 + 3u, last) * C_IN;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var ci = lid; ci < C_IN; ci += WG) {
        for (var j = 0u; j < K; j++) {
            let x = vec4<f32>(
                tap(ci, j, t0, t_out),
                tap(ci, j, t0 + 1u, t_out),
                tap(ci, j, t0 + 2u, t_out),
                tap(ci, j, t0 + 3u, t_out),
            );
            acc0 = fma(vec4<f32>(weight[(w0 + ci) * K + j]), x, acc0);
            if CO_TILE > 1u {
                acc1 = fma(vec4<f32>(weight[(w1 + ci) * K + j]), x, acc1);
                acc2 = fma(vec4<f32>(weight[(w2 + ci) * K + j]), x, acc2);
                acc3 = fma(vec4<f32>(weight[(w3 + ci) * K + j]), x, acc3);
            }
        }
    }
    partial[lid * 4u] = acc0;
    partial[lid * 4u + 1u] = acc1;
    partial[lid * 4u + 2u] = acc2;
    partial[lid * 4u + 3u] = acc3;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s /= 2u) {
        if lid < s {
            for (var c = 0u; c < CO_TILE; c++) {
                partial[lid * 4u + c] += partial[(lid + s) * 4u + c];
            }
        }
        workgroupBarrier();
    }
    if lid >= CO_TILE * TILE {
        return;
    }
    let c = lid / TILE;
    let u = lid % TILE;
    let co = co0 + c;
    let t = t0 + u;
    if t >= t_out || co >= C_OUT {
        return;
    }
    var out = partial[c][u] + bias[co];
    if SCALE == 1u {
        out *= scale[co];
    }
    if RESIDUAL == 1u {
        out = residual[co * RES_ROW + RES_OFFSET + t] + out;
    }
    output[co * OUT_ROW + OUT_OFFSET + t] = out;
}
