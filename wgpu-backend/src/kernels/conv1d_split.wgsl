// conv1d_split.wgsl — conv1d.wgsl for convs with few output columns per
// call (the encoder transformer's linears, the downsampling conv, the
// quantizer's projections: 1–2 per frame): the same convolution, but the
// invocations of a workgroup split the input channels of one output channel
// and TILE columns instead of taking one column each — a one-frame call
// would otherwise leave 62 of 64 invocations idle, each walking all
// C_IN·K products in one dependent chain. Otherwise as conv1d.wgsl:
//
// (conv1d.wgsl:) one streaming causal 1-D convolution of Mimi's encoder
// (SEANet convs, the downsampling conv; with K = 1, the encoder
// transformer's linear layers), optionally with an activation on its
// inputs, a per-channel scale on its outputs and a residual added.
//
// Bindings (group 0):
//   0 params    uniform ConvParams (conv_params.wgsl): frames = 80 ms frames in this call;
//               first = 1 on a stream's first call
//   1 input     storage read  f32 [C_IN][IN_ROW]: per channel, IN_HISTORY
//               columns kept from the previous call (zeros at stream start),
//               then this call's frames·T_IN_PER_FRAME new columns
//   2 weight    storage read  f32 [C_OUT][C_IN][K], as stored upstream
//   3 bias      storage read  f32 [C_OUT] (zeros for a conv without bias)
//   4 residual  storage read  f32 [C_OUT][RES_ROW]; read at RES_OFFSET + t
//               when RESIDUAL == 1 (SEANet's skip: x + block(x)), else unused
//   5 output    storage read_write f32 [C_OUT][OUT_ROW]; written at
//               OUT_OFFSET + t (the next conv's history comes first)
//   6 scale     storage read  f32 [C_OUT]: multiplies the conv's output
//               before the residual when SCALE == 1 (moshi's LayerScale)
// REPLICATE == 1 (moshi `PadMode::Replicate`, the downsampling conv): on a
// stream's first call the history columns read as the first new column.
// Layout: channel-major rows; column t of the output reads input columns
// t·STRIDE … t·STRIDE + (K−1)·DILATION (IN_HISTORY = (K−1)·DILATION + 1 −
// STRIDE, so output 0 is the first window ending in new input).
// Workgroup: WG invocations for one output channel and TILE consecutive
// output columns; invocation i sums input channels i, i + WG, … over the K
// taps for each column, then a shared-memory tree adds the WG partial sums;
// grid = (ceil(T_out / TILE), C_OUT). Columns past T_out read the last
// valid column and are not written.
// Bounds: the host sizes every row for the largest chunk it accepts.
// Activation on inputs (ACT): 0 none, 1 ELU(1) (`SeaNetEncoder::step`,
// `SeaNetResnetBlock::step`), 2 GELU with erf (moshi `Mlp`: `gelu_erf`).
// CPU reference: moshi `StreamableConv1d::step` (candle conv1d, padding 0,
// on the history ‖ input concatenation); for K = 1, candle `Linear`
// without bias, then `LayerScale` and the residual add of
// `StreamingTransformerLayer::forward`. Equal up to f32 summation order
// (C_IN·K products per output) and, for GELU, erf's approximation
// (|error| ≤ 1.5e-7, Abramowitz–Stegun 7.1.26).

//! CONV_PARAMS

override C_IN: u32;
override C_OUT: u32;
override K: u32;
override STRIDE: u32;
override DILATION: u32 = 1u;
override ACT: u32 = 0u;
override SCALE: u32 = 0u;
override RESIDUAL: u32 = 0u;
override REPLICATE: u32 = 0u;
override IN_HISTORY: u32 = 0u;
override IN_ROW: u32;
override OUT_ROW: u32;
override OUT_OFFSET: u32;
override RES_ROW: u32 = 0u;
override RES_OFFSET: u32 = 0u;
override T_OUT_PER_FRAME: u32;

@group(0) @binding(0) var<uniform> params: ConvParams;
@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> residual: array<f32>;
@group(0) @binding(5) var<storage, read_write> output: array<f32>;
@group(0) @binding(6) var<storage, read> scale: array<f32>;

// ELU with alpha 1, as candle's `Activation::Elu(1.)`: x for x ≥ 0, else e^x − 1.
fn elu(x: f32) -> f32 {
    if x >= 0.0 {
        return x;
    }
    return exp(x) - 1.0;
}

// erf by Abramowitz–Stegun 7.1.26 (|error| ≤ 1.5e-7).
fn erf(x: f32) -> f32 {
    let z = abs(x);
    let t = 1.0 / (1.0 + 0.3275911 * z);
    let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    return sign(x) * (1.0 - poly * exp(-z * z));
}

fn activate(x: f32) -> f32 {
    if ACT == 1u {
        return elu(x);
    }
    if ACT == 2u {
        return 0.5 * x * (1.0 + erf(x * 0.70710678118654752));
    }
    return x;
}

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
