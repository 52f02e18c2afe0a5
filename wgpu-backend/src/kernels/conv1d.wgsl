// conv1d.wgsl — one streaming causal 1-D convolution of Mimi's encoder
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
// Workgroup: 64 output columns of one output channel; grid = (ceil(T_out /
// 64), C_OUT) with T_out = frames · T_OUT_PER_FRAME; invocations past T_out
// return.
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

//! CONV1D_COMMON

const WG: u32 = 64u;

// The activated input of reduction index r = ci·K + j for output column t.
fn tap(r: u32, t: u32) -> f32 {
    let ci = r / K;
    var col = t * STRIDE + (r % K) * DILATION;
    if REPLICATE == 1u && params.first == 1u && col < IN_HISTORY {
        col = IN_HISTORY;
    }
    return activate(input[ci * IN_ROW + col]);
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let t = gid.x;
    let co = gid.y;
    if t >= params.frames * T_OUT_PER_FRAME || co >= C_OUT {
        return;
    }
    // r = ci·K + j in increasing order (conv1d_tiled.wgsl's order), four
    // taps' loads issued before their products are added.
    let reduction = C_IN * K;
    let w = co * reduction;
    var acc = 0.0;
    var r = 0u;
    for (; r + 3u < reduction; r += 4u) {
        let x0 = tap(r, t);
        let x1 = tap(r + 1u, t);
        let x2 = tap(r + 2u, t);
        let x3 = tap(r + 3u, t);
        acc = fma(weight[w + r], x0, acc);
        acc = fma(weight[w + r + 1u], x1, acc);
        acc = fma(weight[w + r + 2u], x2, acc);
        acc = fma(weight[w + r + 3u], x3, acc);
    }
    for (; r < reduction; r++) {
        acc = fma(weight[w + r], tap(r, t), acc);
    }
    acc += bias[co];
    if SCALE == 1u {
        acc *= scale[co];
    }
    if RESIDUAL == 1u {
        acc = residual[co * RES_ROW + RES_OFFSET + t] + acc;
    }
    output[co * OUT_ROW + OUT_OFFSET + t] = acc;
}
