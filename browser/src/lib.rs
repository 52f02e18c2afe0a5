//! `stt-browser`: stt-web in a browser tab. A dedicated Web Worker
//! (`web/worker.js`) downloads the model and hands its bytes to
//! [`Engine`](engine::Engine), which owns the whole pipeline from there:
//! audio decode and resampling, Mimi (CPU), the LM on WebGPU
//! (`stt_wgpu::GpuStepper`) or on the CPU (moshi's `LmModel`), words, exports.
//!
//! - [`protocol`]: the messages between the page and the worker (serde
//!   types: the one description of the protocol; target-independent so it
//!   is tested natively).
//! - [`replay`]: the recent audio and restart point that let a stream
//!   continue on the CPU when its GPU is lost.
//! - `engine` (wasm32 only): the wasm-bindgen surface.
//! - `bench` (wasm32 only): timing entry points for `bench/browser/`.
//! - `js` (wasm32 only): reading the worker's values, making its errors.

pub mod protocol;
pub mod replay;

#[cfg(target_arch = "wasm32")]
mod bench;
#[cfg(target_arch = "wasm32")]
mod engine;
#[cfg(target_arch = "wasm32")]
mod js;
#[cfg(target_arch = "wasm32")]
mod stepper;
