// matvec_common.wgsl — spliced into matvec.wgsl and matvec_batch.wgsl at
// their MATVEC_COMMON marker: the override constants both take (the host
// sets them all from one `MatvecKey`; see matvec.wgsl's header for their
// meaning, matvec_batch.wgsl uses modes 0 and 1 only) and the bindings
// after the weights (x, alpha, y).
override K: u32;
override ROWS: u32;
override INPUT_MODE: u32 = 0u;
override RESIDUAL: bool = false;
override Y_OFFSET: u32 = 0u;
override EPS: f32 = 1e-8;
override HEAD_DIM: u32 = 1u;
override SPLITS: u32 = 1u;
override GATED_OUT: bool = false;
override X_STRIDE4: u32 = 0u;
override ALPHA_STRIDE4: u32 = 0u;
override Y_STRIDE: u32 = 0u;
// Lanes per row (8, 16 or 32; ≤ the subgroup size with subgroups).
override LANES: u32 = 8u;

const WG: u32 = 256u;
// One vec4 of padding after each 32-block of an input tile: the lanes of a
// row read blocks b, b + 1, … at once, and unpadded those sit 32 floats
// apart, all in one memory bank.
const XIN_STRIDE: u32 = 9u;

@group(0) @binding(2) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> alpha: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
