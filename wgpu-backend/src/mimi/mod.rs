//! Mimi's encoder on the GPU (issue #15), built up stage by stage against
//! moshi's modules. Each stage streams: one frame or many frames per call
//! give the same outputs, with the state (conv histories) on the GPU.
//!
//! - [`conv`]: streaming causal convolutions and their histories.
//! - [`seanet`]: the SEANet encoder (24 kHz → 25 Hz latents).
//! - [`transformer`]: the encoder transformer (8 layers, rolling window).
//!
//! Still on the CPU (moshi): the downsampling conv and the quantizer.

pub(crate) mod conv;
pub mod seanet;
pub mod transformer;

pub use seanet::GpuSeanet;
pub use transformer::GpuTransformerRunner;
