//! Mimi's encoder on the GPU (issue #15), stage by stage against moshi's
//! modules. Each stage streams: one frame or many frames per call
//! give the same outputs, with the state (conv histories) on the GPU.
//!
//! - [`conv`]: streaming causal convolutions and their histories.
//! - [`seanet`]: the SEANet encoder (24 kHz → 25 Hz latents).
//! - [`transformer`]: the encoder transformer (8 layers, rolling window).
//! - [`encoder`]: all of it with the downsampling conv and the split
//!   quantizer: [`GpuMimiEncoder`], PCM to codes in one submit.
//! - [`record`]: dispatches into one pass, timed per kernel for profiles.
//! - [`any`]: [`AnyMimi`], the CPU or the GPU encoder chosen at run time.

pub mod any;
pub(crate) mod conv;
pub mod encoder;
pub(crate) mod record;
pub mod seanet;
pub mod transformer;

pub use any::AnyMimi;
pub use encoder::GpuMimiEncoder;
pub use seanet::GpuSeanet;
pub use transformer::GpuTransformerRunner;
