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
// Workgroup: WG invocations for one output channel and TILE consecutive
// output columns; invocation i sums input channels i, i + WG, … over the K
// taps for each column, then a shared-memory tree adds the WG partial sums;
// grid = (ceil(T_out / TILE), C_OUT). Columns past T_out read the last
// valid column and are not written.
// CPU reference: as conv1d.wgsl (moshi `StreamableConv1d::step`; for
// K = 1 candle `Linear`, `LayerScale`, the residual add). Equal up to f32
// summation order (C_IN·K products per output, here in WG partial sums
// added by a tree) and erf's approximation.

//! CONV_PARAMS

//! CONV1D_COMMON

const WG: u32 = 64u;
const TILE: u32 = 4u;

var<workgroup> partial: array<vec4<f32>, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>) {
    let co = wid.y;
    let t0 = wid.x * TILE;
    let lid = lid3.x;
    let t_out = params.frames * T_OUT_PER_FRAME;
    var acc = vec4<f32>(0.0);
    for (var ci = lid; ci < C_IN; ci += WG) {
        let w = (co * C_IN + ci) * K;
        for (var j = 0u; j < K; j++) {
            let wt = weight[w + j];
            for (var u = 0u; u < TILE; u++) {
                let t = min(t0 + u, t_out - 1u);
                var col = t * STRIDE + j * DILATION;
                if REPLICATE == 1u && params.first == 1u && col < IN_HISTORY {
                    col = IN_HISTORY;
                }
                acc[u] = fma(wt, activate(input[ci * IN_ROW + col]), acc[u]);
            }
        }
    }
    partial[lid] = acc;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s /= 2u) {
        if lid < s {
            partial[lid] += partial[lid + s];
        }
        workgroupBarrier();
    }
    let t = t0 + lid;
    if lid >= TILE || t >= t_out || co >= C_OUT {
        return;
    }
    var out = partial[0][lid] + bias[co];
    if SCALE == 1u {
        out *= scale[co];
    }
    if RESIDUAL == 1u {
        out = residual[co * RES_ROW + RES_OFFSET + t] + out;
    }
    output[co * OUT_ROW + OUT_OFFSET + t] = out;
}
