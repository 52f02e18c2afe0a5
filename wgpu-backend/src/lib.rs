//! `stt-wgpu`: the GPU-resident LM step engine of stt-web — WGSL kernels over
//! wgpu, for WebGPU in the browser and Vulkan/Metal/DX12 natively.
//!
//! Modules, leaves first (each depends only on those above it):
//! - [`error`]: the engine's errors.
//! - [`readback`]: staging buffers mapped asynchronously, and the wait.
//! - [`kernels`]: the WGSL sources (`src/kernels/*.wgsl`), their limits,
//!   the weight layouts they read ([`kernels::GpuFormat`]).
//! - [`step_params`]: the per-step uniform block and RoPE tables.
//! - [`device`]: the device, its limits, error hooks, buffers and reads.
//! - [`pipelines`]: shader, pipeline and bind-group helpers.
//! - [`repack`]: weights into the kernels' layouts.
//! - [`matvec`]: the mat-vec op: key, pipeline cache, weight upload;
//!   [`attention`]: the attention op's pipeline.
//! - [`engine`]: [`GpuStepper`], which implements `stt_model::LmStepper`,
//!   so `stt_model::Session` runs it unchanged; one queue submit per step.
//! - [`mimi`]: Mimi's encoder on the GPU, stage by stage (SEANet so far).
//! - [`ops`] (native): the kernels as candle custom ops.
//! - [`probe`] (native): bandwidth and dispatch-cost probes for benchmarks.

pub mod attention;
pub mod device;
pub mod engine;
pub mod error;
pub mod kernels;
pub mod matvec;
pub mod mimi;
#[cfg(not(target_arch = "wasm32"))]
pub mod ops;
pub mod pipelines;
#[cfg(not(target_arch = "wasm32"))]
pub mod probe;
pub mod readback;
pub mod repack;
pub mod step_params;

pub use device::FeatureRequest;
pub use engine::{GpuOptions, GpuStepper};
pub use error::{GpuError, Result};
pub use kernels::KvPrecision;
/// `Gpu` exposes its device and queue: callers use the same wgpu.
pub use wgpu;
