//! The library behind `stt-cli`: synthetic models, quantization, weight-file
//! writers and exports (`stt_model::export`). The binary in `main.rs` stays thin.

pub mod args;
pub mod bench;
pub mod decode_pcm;
pub mod eval;
pub mod gpu_args;
pub mod hub;
pub(crate) mod parallel;
pub mod quantize;
pub mod serve;
pub mod soak;
pub mod synth;
pub mod tensor_writer;
pub mod transcribe;
