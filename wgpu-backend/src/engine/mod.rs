//! `GpuStepper`: the whole LM step on the GPU, one queue submit per step.
//!
//! Per step (see ARCHITECTURE.md and `build.rs` for the dispatches): the
//! host writes the gathered audio embedding rows and a small params block
//! (text-token source, KV slot, RoPE cos/sin of the position), then one
//! compute pass runs the step. The chosen token stays on the GPU for the
//! next step's embedding; token and probabilities come back through a
//! staging buffer mapped asynchronously, so the host can submit step t+1
//! before reading step t.

mod build;
#[cfg(not(target_arch = "wasm32"))]
mod profile;

use std::collections::VecDeque;

use stt_model::config::Config;
use stt_model::stepper::{LmStepper, Sampling, StepOutput, TextInput};
use stt_model::weights::quant::QuantType;
use stt_model::weights::LmWeights;

use crate::device::compute_pass;
use crate::device::{Capabilities, FeatureRequest, Gpu};
use crate::error::{GpuError, Result};
use crate::readback::{PendingRead, StagingPool};
use crate::step_params::{rope_inv_freq, rope_table, StepParams};
use build::{result_words, Dispatch};

/// Where the logits start in a staging buffer: after the result words,
/// rounded up to `wgpu::COPY_BUFFER_ALIGNMENT` (copies need offsets that
/// are multiples of 4; every word is).
fn staging_logits_offset(end_of_turn_heads: usize) -> u64 {
    (4 * result_words(end_of_turn_heads) as u64).next_multiple_of(wgpu::COPY_BUFFER_ALIGNMENT)
}

pub struct GpuOptions {
    /// Ask for a software adapter (tests on machines with a real GPU too).
    pub force_fallback_adapter: bool,
    /// Steps the session may leave unread while it submits the next.
    pub max_in_flight: usize,
    /// Pretend the adapter binds at most this many bytes per buffer (to
    /// check the errors a smaller browser adapter would give).
    pub max_binding_bytes: Option<u64>,
    /// Optional features to use where the adapter offers them.
    pub features: FeatureRequest,
    /// Quantize float (safetensors) weights at load, as `stt-cli quantize`
    /// would; ignored for GGUF files, which are already quantized.
    pub quantize: Option<QuantType>,
    /// matvec lanes per row (8, 16, 32); default `matvec::lanes`'s choice.
    pub matvec_lanes: Option<u32>,
}

impl Default for GpuOptions {
    fn default() -> Self {
        Self {
            force_fallback_adapter: false,
            max_in_flight: 1,
            max_binding_bytes: None,
            features: FeatureRequest::default(),
            quantize: None,
            matvec_lanes: None,
        }
    }
}

/// argmax_heads.wgsl's `Sampling` uniform, written with every step.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct SamplingParams {
    /// 0: greedy.
    temperature: f32,
    seed_lo: u32,
    seed_hi: u32,
    /// Steps since the stream's start (the hash's counter).
    step: u32,
}

/// A submitted step whose result is on its way back.
struct InFlight {
    read: PendingRead,
    with_logits: bool,
}

pub struct GpuStepper {
    gpu: Gpu,
    dispatches: Vec<Dispatch>,
    params: wgpu::Buffer,
    sampling_params: wgpu::Buffer,
    sampling: Sampling,
    audio_rows: wgpu::Buffer,
    result: wgpu::Buffer,
    logits: wgpu::Buffer,
    audio_tables: Vec<crate::repack::HostTable>,
    rope_inv_freq: Vec<f32>,
    text_vocab: u32,
    text_in_vocab: u32,
    start_token: u32,
    context: usize,
    end_of_turn_heads: usize,
    position: u64,
    first_step_done: bool,
    keep_logits: bool,
    max_in_flight: usize,
    in_flight: VecDeque<InFlight>,
    staging: StagingPool,
    rows_scratch: Vec<f32>,
    weight_bytes: u64,
}

impl GpuStepper {
    /// Takes the weights by value: once uploaded, the host bytes are freed
    /// (unless the caller kept a clone), which in a browser tab is most of
    /// the model.
    pub async fn new(weights: LmWeights, cfg: &Config, opts: GpuOptions) -> Result<Self> {
        let gpu = Gpu::new(opts.force_fallback_adapter, opts.features).await?;
        Self::with_gpu(gpu, weights, cfg, opts)
    }

    pub fn with_gpu(
        mut gpu: Gpu,
        weights: LmWeights,
        cfg: &Config,
        opts: GpuOptions,
    ) -> Result<Self> {
        if let Some(limit) = opts.max_binding_bytes {
            let caps = &mut gpu.caps;
            caps.max_storage_buffer_binding_size = caps.max_storage_buffer_binding_size.min(limit);
        }
        let graph = build::build(&gpu, &weights, cfg, &opts)?;
        drop(weights);
        let head_dim = graph.attention.head_dim;
        Ok(Self {
            gpu,
            dispatches: graph.dispatches,
            params: graph.activations.params,
            sampling_params: graph.activations.sampling,
            sampling: Sampling::GREEDY,
            audio_rows: graph.activations.audio_rows,
            result: graph.activations.result,
            logits: graph.activations.logits,
            audio_tables: graph.audio_tables,
            rope_inv_freq: rope_inv_freq(head_dim, cfg.max_period as f32),
            text_vocab: cfg.text_card as u32,
            text_in_vocab: cfg.text_card as u32 + 1,
            start_token: cfg.text_start_token(),
            context: cfg.context,
            end_of_turn_heads: graph.end_of_turn_heads,
            position: 0,
            first_step_done: false,
            keep_logits: false,
            max_in_flight: opts.max_in_flight,
            in_flight: VecDeque::new(),
            staging: StagingPool::default(),
            rows_scratch: Vec::with_capacity(cfg.n_q * cfg.dim),
            weight_bytes: graph.weight_bytes,
        })
    }

    /// Destroys the device, as a driver reset or an unplugged GPU would:
    /// every later call reports `DeviceLost` (for tests of that path).
    pub fn destroy_device(&self) {
        self.gpu.device.destroy();
    }

    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    pub fn capabilities(&self) -> &Capabilities {
        &self.gpu.caps
    }

    /// Weight bytes the step reads (all of them, once).
    pub fn weight_bytes(&self) -> u64 {
        self.weight_bytes
    }

    pub fn dispatches_per_step(&self) -> usize {
        self.dispatches.len()
    }

    fn step_params(&self, text: TextInput) -> Result<StepParams> {
        let (text_mode, forced_token) = match text {
            TextInput::Start => (0, self.start_token),
            TextInput::Forced(t) if t < self.text_in_vocab => (0, t),
            TextInput::Forced(t) => {
                return Err(GpuError::InvalidInput(format!(
                    "text token {t} ≥ {}",
                    self.text_in_vocab
                )))
            }
            TextInput::Previous if self.first_step_done => (1, 0),
            TextInput::Previous => {
                return Err(GpuError::InvalidInput(
                    "TextInput::Previous on the first step".into(),
                ))
            }
        };
        let ctx = self.context as u64;
        Ok(StepParams {
            text_mode,
            forced_token,
            kv_slot: (self.position % ctx) as u32,
            n_keys: (self.position + 1).min(ctx) as u32,
            rope: rope_table(&self.rope_inv_freq, self.position),
        })
    }

    /// Writes the step's inputs: the gathered audio rows and the params.
    fn write_inputs(&mut self, text: TextInput, audio_codes: &[u32]) -> Result<()> {
        if audio_codes.len() != self.audio_tables.len() {
            return Err(GpuError::InvalidInput(format!(
                "{} audio codes for {} codebooks",
                audio_codes.len(),
                self.audio_tables.len()
            )));
        }
        let params = self.step_params(text)?;
        self.rows_scratch.clear();
        for (table, &code) in self.audio_tables.iter().zip(audio_codes) {
            if code as usize >= table.rows {
                return Err(GpuError::InvalidInput(format!(
                    "audio code {code} ≥ {}",
                    table.rows
                )));
            }
            table.row(code as usize, &mut self.rows_scratch);
        }
        let queue = &self.gpu.queue;
        let rows = bytemuck::cast_slice(&self.rows_scratch);
        queue.write_buffer(&self.audio_rows, 0, rows);
        queue.write_buffer(&self.params, 0, bytemuck::bytes_of(&params));
        let sampling = SamplingParams {
            temperature: self.sampling.temperature,
            seed_lo: self.sampling.seed as u32,
            seed_hi: (self.sampling.seed >> 32) as u32,
            step: self.position as u32,
        };
        queue.write_buffer(&self.sampling_params, 0, bytemuck::bytes_of(&sampling));
        Ok(())
    }

    /// Records the step's compute pass, with a timestamp before each
    /// dispatch and after the last when profiling.
    fn encode_step(&self, enc: &mut wgpu::CommandEncoder, timestamps: Option<&wgpu::QuerySet>) {
        let mut pass = compute_pass(enc, "lm step");
        for (i, d) in self.dispatches.iter().enumerate() {
            if let Some(set) = timestamps {
                pass.write_timestamp(set, i as u32);
            }
            pass.set_pipeline(&d.pipeline);
            pass.set_bind_group(0, &d.bind_group, &[]);
            pass.dispatch_workgroups(d.workgroups.0, d.workgroups.1, 1);
        }
        if let Some(set) = timestamps {
            pass.write_timestamp(set, self.dispatches.len() as u32);
        }
    }

    fn submit_step(
        &mut self,
        text: TextInput,
        audio_codes: &[u32],
        timestamps: Option<&wgpu::QuerySet>,
    ) -> Result<()> {
        self.gpu.check()?;
        self.write_inputs(text, audio_codes)?;
        let with_logits = self.keep_logits;
        let result_bytes = 4 * result_words(self.end_of_turn_heads) as u64;
        let logits_at = staging_logits_offset(self.end_of_turn_heads);
        let logits_bytes = 4 * self.text_vocab as u64;
        let staging_bytes = if with_logits {
            logits_at + logits_bytes
        } else {
            result_bytes
        };
        let staging = self.staging.take(&self.gpu.device, staging_bytes);
        let mut enc = self.gpu.encoder("lm step");
        self.encode_step(&mut enc, timestamps);
        enc.copy_buffer_to_buffer(&self.result, 0, &staging, 0, result_bytes);
        if with_logits {
            enc.copy_buffer_to_buffer(&self.logits, 0, &staging, logits_at, logits_bytes);
        }
        let submission = self.gpu.queue.submit([enc.finish()]);
        self.in_flight.push_back(InFlight {
            read: PendingRead::new(staging, submission),
            with_logits,
        });
        self.position += 1;
        self.first_step_done = true;
        Ok(())
    }

    async fn receive_step(&mut self) -> Result<StepOutput> {
        let step = (self.in_flight.pop_front())
            .ok_or_else(|| GpuError::InvalidInput("receive with no step in flight".into()))?;
        let result_bytes = 4 * result_words(self.end_of_turn_heads);
        let logits_at = staging_logits_offset(self.end_of_turn_heads) as usize;
        let bytes = if step.with_logits {
            logits_at + 4 * self.text_vocab as usize
        } else {
            result_bytes
        };
        let (data, staging) = self.gpu.read(step.read, bytes, "the step result").await?;
        self.staging.give(staging);
        let words: Vec<u32> = bytemuck::pod_collect_to_vec(&data[..result_bytes]);
        Ok(StepOutput {
            text_token: words[0],
            end_of_turn: words[1..].iter().map(|w| f32::from_bits(*w)).collect(),
            text_logits: step
                .with_logits
                .then(|| bytemuck::pod_collect_to_vec(&data[logits_at..])),
        })
    }
}

impl LmStepper for GpuStepper {
    fn submit(&mut self, text: TextInput, audio_codes: &[u32]) -> stt_model::Result<()> {
        Ok(self.submit_step(text, audio_codes, None)?)
    }

    async fn receive(&mut self) -> stt_model::Result<StepOutput> {
        Ok(self.receive_step().await?)
    }

    fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    fn max_in_flight(&self) -> usize {
        self.max_in_flight
    }

    async fn reset(&mut self) -> stt_model::Result<()> {
        // Results still in flight belong to the old stream: wait them out
        // (their staging buffers return to the pool).
        while !self.in_flight.is_empty() {
            self.receive_step().await?;
        }
        self.position = 0;
        self.first_step_done = false;
        Ok(())
    }

    fn has_end_of_turn(&self) -> bool {
        self.end_of_turn_heads > 0
    }

    fn keep_logits(&mut self, keep: bool) {
        self.keep_logits = keep;
    }

    /// Sampling happens on the GPU (argmax_heads.wgsl): the draws follow
    /// softmax(logits / T) like the CPU stepper's but are not the same
    /// draws. They restart with the stream (the step counter).
    fn set_sampling(&mut self, sampling: Sampling) {
        self.sampling = sampling;
    }
}
