//! The LM stepper the worker runs: WebGPU or moshi's CPU LM, chosen at load
//! (`LmStepper` has async methods, so it is an enum, not a trait object).

use stt_model::stepper::{CpuStepper, LmStepper, StepOutput, TextInput};
use stt_wgpu::GpuStepper;

pub enum AnyStepper {
    Gpu(Box<GpuStepper>),
    Cpu(Box<CpuStepper>),
}

impl LmStepper for AnyStepper {
    fn submit(&mut self, text: TextInput, audio_codes: &[u32]) -> stt_model::Result<()> {
        match self {
            Self::Gpu(s) => s.submit(text, audio_codes),
            Self::Cpu(s) => s.submit(text, audio_codes),
        }
    }

    async fn receive(&mut self) -> stt_model::Result<StepOutput> {
        match self {
            Self::Gpu(s) => s.receive().await,
            Self::Cpu(s) => s.receive().await,
        }
    }

    fn in_flight(&self) -> usize {
        match self {
            Self::Gpu(s) => s.in_flight(),
            Self::Cpu(s) => s.in_flight(),
        }
    }

    fn max_in_flight(&self) -> usize {
        match self {
            Self::Gpu(s) => s.max_in_flight(),
            Self::Cpu(s) => s.max_in_flight(),
        }
    }

    async fn reset(&mut self) -> stt_model::Result<()> {
        match self {
            Self::Gpu(s) => s.reset().await,
            Self::Cpu(s) => s.reset().await,
        }
    }

    fn has_end_of_turn(&self) -> bool {
        match self {
            Self::Gpu(s) => s.has_end_of_turn(),
            Self::Cpu(s) => s.has_end_of_turn(),
        }
    }

    fn keep_logits(&mut self, keep: bool) {
        match self {
            Self::Gpu(s) => s.keep_logits(keep),
            Self::Cpu(s) => s.keep_logits(keep),
        }
    }
}
