//! `stt-wgpu`: the GPU-resident LM step engine (WGSL kernels over wgpu, for
//! WebGPU in the browser and Vulkan/Metal/DX12 natively).
//!
//! Not built yet: this crate is a placeholder in the workspace so that the
//! layout of ARCHITECTURE.md holds. Its stepper will implement
//! `stt_model::LmStepper`, so `stt_model::Session` runs it unchanged.
