// conv_params.wgsl — the per-call uniform of Mimi's GPU encoder kernels
// (spliced at `//! CONV_PARAMS`; Rust: `mimi::conv::ConvParams`).
//   frames: 80 ms frames in this call
//   start:  stream position of the call's first transformer column (25 Hz)
//   first:  1 on a stream's first call (replicate padding), else 0

struct ConvParams {
    frames: u32,
    start: u32,
    first: u32,
    _pad: u32,
}
