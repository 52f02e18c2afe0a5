//! The LM stepper the worker runs: WebGPU or moshi's CPU LM, chosen at load
//! (`LmStepper` has async methods, so it is an enum, not a trait object).

use stt_model::stepper::{CpuStepper, LmStepper, StepOutput, TextInput};
use stt_wgpu::GpuStepper;

pub enum AnyStepper {
    Gpu(Box<GpuStepper>),
    Cpu(Box<CpuStepper>),
}

/// Runs `$body` on whichever stepper `$self` holds, bound to `$s`.
macro_rules! either {
    ($self:expr, $s:ident => $body:expr) => {
        match $self {
            AnyStepper::Gpu($s) => $body,
            AnyStepper::Cpu($s) => $body,
        }
    };
}

impl LmStepper for AnyStepper {
    fn submit(&mut self, text: TextInput, audio_codes: &[u32]) -> stt_model::Result<()> {
        either!(self, s => s.submit(text, audio_codes))
    }

    async fn receive(&mut self) -> stt_model::Result<StepOutput> {
        either!(self, s => s.receive().await)
    }

    fn in_flight(&self) -> usize {
        either!(self, s => s.in_flight())
    }

    fn max_in_flight(&self) -> usize {
        either!(self, s => s.max_in_flight())
    }

    async fn reset(&mut self) -> stt_model::Result<()> {
        either!(self, s => s.reset().await)
    }

    fn has_end_of_turn(&self) -> bool {
        either!(self, s => s.has_end_of_turn())
    }

    fn keep_logits(&mut self, keep: bool) {
        either!(self, s => s.keep_logits(keep))
    }

    fn set_sampling(&mut self, sampling: stt_model::Sampling) {
        either!(self, s => s.set_sampling(sampling))
    }
}
