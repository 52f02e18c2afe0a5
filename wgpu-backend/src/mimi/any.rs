//! [`AnyMimi`]: Mimi's encoder where the caller chose at run time — moshi's
//! on the CPU or [`GpuMimiEncoder`] — behind one `MimiBackend`, so a
//! `Session` type does not depend on the choice.

use stt_model::mimi::{MimiBackend, MimiEncoder};

use super::GpuMimiEncoder;

pub enum AnyMimi {
    Cpu(Box<MimiEncoder>),
    Gpu(Box<GpuMimiEncoder>),
}

impl AnyMimi {
    /// "cpu" or "gpu", for logs and model cards.
    pub fn device_name(&self) -> &'static str {
        match self {
            AnyMimi::Cpu(_) => "cpu",
            AnyMimi::Gpu(_) => "gpu",
        }
    }
}

impl MimiBackend for AnyMimi {
    fn num_codebooks(&self) -> usize {
        match self {
            AnyMimi::Cpu(m) => MimiBackend::num_codebooks(m.as_ref()),
            AnyMimi::Gpu(m) => MimiBackend::num_codebooks(m.as_ref()),
        }
    }

    async fn encode(&mut self, pcm: &[f32]) -> stt_model::Result<Vec<Vec<u32>>> {
        match self {
            AnyMimi::Cpu(m) => m.encode_frames(pcm),
            AnyMimi::Gpu(m) => MimiBackend::encode(m.as_mut(), pcm).await,
        }
    }

    fn reset(&mut self) {
        match self {
            AnyMimi::Cpu(m) => m.reset(),
            AnyMimi::Gpu(m) => m.reset(),
        }
    }
}
