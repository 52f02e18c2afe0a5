//! The step engine's kernels as Candle custom ops, for native candle code
//! that wants a projection or an attention step on the GPU without the
//! whole engine (and for testing each kernel against candle's own ops).
//!
//! Candle has no wgpu device, so these ops take CPU tensors: `cpu_fwd`
//! uploads the input, runs the same WGSL pipeline the engine runs, and
//! waits for the result (native only: a browser cannot block). Weights are
//! uploaded once, when the op is made.
//!
//! - [`GpuLinear`]: `y = W·in(x)` for every weight layout (F32, F16, Q8_0,
//!   Q4_0, Q4_K), with in(x) = x, RmsNorm(x)·α (a `CustomOp2` with α) or
//!   SiLU(x₁)·x₂ — matvec.wgsl's three input modes. Inputs `[..., K]` (or
//!   `[..., 2K]` gated): a mat-mul runs one matvec dispatch per row.
//! - [`GpuAttention`]: one step of RoPE + KV append + causal attention over
//!   the rolling cache (attention.wgsl), the cache kept on the GPU.

mod attention;
mod linear;

pub use attention::GpuAttention;
pub use linear::GpuLinear;

use std::sync::Arc;

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, Layout};

use crate::device::{Capabilities, FeatureRequest, Gpu};
use crate::error::{GpuError, Result};
use crate::matvec::{self, MatvecPipelines};

/// One wgpu device and the mat-vec pipelines the ops have built on it.
pub struct GpuOps {
    gpu: Gpu,
    matvec: MatvecPipelines,
}

impl GpuOps {
    /// Opens the first high-performance adapter (a software one with
    /// `force_fallback`), with the optional features of `features`.
    pub fn new(force_fallback: bool, features: FeatureRequest) -> Result<Arc<Self>> {
        Self::with_lanes(force_fallback, features, None)
    }

    /// As `new`, with the matvec's lanes per row chosen (8, 16, 32).
    pub fn with_lanes(
        force_fallback: bool,
        features: FeatureRequest,
        lanes: Option<u32>,
    ) -> Result<Arc<Self>> {
        let gpu = pollster::block_on(Gpu::new(force_fallback, features))?;
        // One lane count for every op (rows differ per call): the policy's
        // choice for short projections.
        let lanes = matvec::lanes(&gpu.caps, lanes)?.for_rows(0);
        let matvec = MatvecPipelines::new(&gpu, lanes)?;
        Ok(Arc::new(Self { gpu, matvec }))
    }

    pub fn capabilities(&self) -> &Capabilities {
        &self.gpu.caps
    }

    fn upload(&self, label: &str, bytes: &[u8], usage: wgpu::BufferUsages) -> Result<wgpu::Buffer> {
        self.gpu.buffer_with(label, bytes, usage)
    }

    fn empty(&self, label: &str, bytes: u64, usage: wgpu::BufferUsages) -> Result<wgpu::Buffer> {
        self.gpu.empty_buffer(label, bytes, usage)
    }

    /// Submits `enc` after copying `floats` f32 of `src` to a staging
    /// buffer, and waits for them.
    fn finish_and_read(
        &self,
        enc: wgpu::CommandEncoder,
        src: &wgpu::Buffer,
        floats: usize,
    ) -> Result<Vec<f32>> {
        let what = "an op's result";
        let bytes =
            pollster::block_on(self.gpu.submit_and_read(enc, src, 4 * floats as u64, what))?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }
}

/// The contiguous f32 values of a CPU tensor's storage.
fn f32_slice<'a>(
    op: &str,
    storage: &'a CpuStorage,
    layout: &Layout,
) -> candle_core::Result<&'a [f32]> {
    let CpuStorage::F32(xs) = storage else {
        candle_core::bail!("{op}: expects f32 input, got {:?}", storage.dtype());
    };
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&xs[start..end]),
        None => candle_core::bail!("{op}: expects a contiguous input"),
    }
}

fn wrap(e: GpuError) -> candle_core::Error {
    candle_core::Error::wrap(e)
}
