// conv1d_common.wgsl — what conv1d.wgsl and conv1d_split.wgsl share
// (spliced at `//! CONV1D_COMMON`): the pipeline constants, the bindings
// (described in conv1d.wgsl's header) and the input activations.

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
