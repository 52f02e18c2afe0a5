//! Timing one step dispatch by dispatch with GPU timestamps (native
//! benchmarks only: it blocks).

use stt_model::stepper::TextInput;

use super::{GpuStepper, StreamStep};
use crate::error::{GpuError, Result};

impl GpuStepper {
    /// One step of every stream (all fed `audio_codes`), every dispatch
    /// timed on the GPU: (kind, ns) in dispatch order. Needs
    /// `FeatureRequest::timestamps` and an adapter that has timestamp
    /// queries inside passes.
    pub fn profile_step(&mut self, audio_codes: &[u32]) -> Result<Vec<(String, f64)>> {
        if !self.gpu.caps.timestamps {
            return Err(GpuError::Unsupported(
                "timestamp queries inside passes are not enabled on this device".into(),
            ));
        }
        while !self.in_flight.is_empty() {
            pollster::block_on(self.receive_batch())?;
        }
        let n = self.dispatches.len() as u32 + 1;
        let device = &self.gpu.device;
        let set = device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("step profile"),
            ty: wgpu::QueryType::Timestamp,
            count: n,
        });
        let steps: Vec<StreamStep> = (self.streams.iter().enumerate())
            .map(|(stream, state)| StreamStep {
                stream,
                text: if state.first_step_done {
                    TextInput::Previous
                } else {
                    TextInput::Start
                },
                audio_codes,
            })
            .collect();
        self.submit_timed(&steps, Some(&set))?;
        let bytes = 8 * n as u64;
        let resolved = self.gpu.empty_buffer(
            "profile resolve",
            bytes,
            wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
        )?;
        let mut enc = self.gpu.encoder("profile resolve");
        enc.resolve_query_set(&set, 0..n, &resolved, 0);
        let ticks =
            pollster::block_on(
                self.gpu
                    .submit_and_read(enc, &resolved, bytes, "the profile"),
            )?;
        pollster::block_on(self.receive_batch())?;
        let ticks: Vec<u64> = bytemuck::pod_collect_to_vec(&ticks);
        let period = self.gpu.queue.get_timestamp_period() as f64;
        Ok(self
            .dispatches
            .iter()
            .zip(ticks.windows(2))
            .map(|(d, t)| (d.kind.clone(), t[1].saturating_sub(t[0]) as f64 * period))
            .collect())
    }
}
