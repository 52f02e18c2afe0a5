//! The library behind `stt-cli`: synthetic models, quantization, weight-file
//! writers and transcript formats. The binary in `main.rs` stays thin.

pub mod bench;
pub mod gpu_args;
pub mod hub;
pub mod output;
pub mod quantize;
pub mod synth;
pub mod tensor_writer;
pub mod transcribe;
