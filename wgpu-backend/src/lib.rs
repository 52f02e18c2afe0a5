//! `stt-wgpu`: the GPU-resident LM step engine of stt-web — WGSL kernels over
//! wgpu, for WebGPU in the browser and Vulkan/Metal/DX12 natively.
//!
//! - [`GpuStepper`]: implements `stt_model::LmStepper`, so
//!   `stt_model::Session` runs it unchanged; one queue submit per step.
//! - [`capabilities`]: the device, its limits and error hooks.
//! - [`repack`]: weights into the kernels' layouts.
//! - [`kernels`]: the WGSL sources (`src/kernels/*.wgsl`).

pub mod capabilities;
pub mod engine;
pub mod error;
pub mod kernels;
#[cfg(not(target_arch = "wasm32"))]
pub mod ops;
pub mod pipelines;
pub mod repack;

pub use capabilities::FeatureRequest;
pub use engine::{GpuOptions, GpuStepper};
pub use error::{GpuError, Result};

/// Drives a future to completion where blocking is allowed (native). In a
/// browser the reset path only drops results, so it needs no waiting.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn block_on_native<F: std::future::Future>(f: F) -> Option<F::Output> {
    Some(pollster::block_on(f))
}

#[cfg(target_arch = "wasm32")]
pub(crate) fn block_on_native<F: std::future::Future>(_f: F) -> Option<F::Output> {
    None
}
