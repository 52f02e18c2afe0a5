//! `GpuStepper`: the whole LM step on the GPU, one queue submit per step,
//! for one stream or a batch of them.
//!
//! Per step (see ARCHITECTURE.md and `build.rs` for the dispatches): the
//! host writes each stepping stream's gathered audio embedding rows and a
//! small params block (text-token source, KV slot, RoPE cos/sin of its
//! position, sampling), then one compute pass runs the step for every
//! stream at once (the grid's z is the stream; the weights are shared).
//! The chosen tokens stay on the GPU for the next step's embedding; tokens
//! and probabilities come back through a staging buffer mapped
//! asynchronously, so the host can submit step t+1 before reading step t.
//!
//! Each stream's arithmetic is exactly a lone stream's (same kernels, same
//! order, its own slice of every buffer), so its tokens do not depend on
//! the batch. `LmStepper` drives stream 0; [`lanes`] gives every stream a
//! `LmStepper` of its own over one shared engine.

mod build;
pub mod lanes;
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
use crate::step_params::{rope_inv_freq, rope_table, StepParams, TEXT_IDLE};
pub use build::MAX_STREAMS;
use build::{result_words, Dispatch};

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
    /// Rows per invocation of the batched matvec (2 or 4); default by grid
    /// size (`MatvecKey::with_strides`). For tests of both paths.
    pub batch_rows_per_invocation: Option<u32>,
    /// Independent streams stepped together (each with its own KV cache,
    /// position, text token and sampling): 1 to [`MAX_STREAMS`].
    pub streams: usize,
    /// The KV cache's values: f32 (moshi's, the default) or f16 (half the
    /// bytes attention reads; not bit-identical to moshi).
    pub kv_cache: crate::kernels::KvPrecision,
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
            batch_rows_per_invocation: None,
            streams: 1,
            kv_cache: Default::default(),
        }
    }
}

/// One stream's step in a batch.
#[derive(Debug, Clone, Copy)]
pub struct StreamStep<'a> {
    pub stream: usize,
    pub text: TextInput,
    /// One frame of audio codes, one per codebook.
    pub audio_codes: &'a [u32],
}

/// A stream's host-side state.
#[derive(Debug, Clone, Copy)]
struct StreamState {
    position: u64,
    first_step_done: bool,
    sampling: Sampling,
    keep_logits: bool,
}

impl StreamState {
    const FRESH: Self = Self {
        position: 0,
        first_step_done: false,
        sampling: Sampling::GREEDY,
        keep_logits: false,
    };
}

/// Where a batch's results sit in its staging buffer: the result words of
/// streams 0 .. `span`, then (when some stream kept them) their logits.
#[derive(Debug, Clone, Copy)]
struct ResultLayout {
    span: usize,
    result_words: usize,
    text_vocab: usize,
    logits_stride: usize,
    with_logits: bool,
}

impl ResultLayout {
    fn result_bytes(&self) -> usize {
        4 * self.span * self.result_words
    }

    /// After the result words, rounded up to `wgpu::COPY_BUFFER_ALIGNMENT`
    /// (copies need offsets that are multiples of 4; every word is).
    fn logits_at(&self) -> usize {
        (self.result_bytes() as u64).next_multiple_of(wgpu::COPY_BUFFER_ALIGNMENT) as usize
    }

    fn logits_bytes(&self) -> usize {
        4 * self.span * self.logits_stride
    }

    fn staging_bytes(&self) -> usize {
        if self.with_logits {
            self.logits_at() + self.logits_bytes()
        } else {
            self.result_bytes()
        }
    }
}

/// A submitted batch whose results are on their way back.
pub struct PendingBatch {
    read: PendingRead,
    /// The streams that stepped, and whether each asked for its logits.
    streams: Vec<(usize, bool)>,
    layout: ResultLayout,
}

impl PendingBatch {
    /// Waits for the results: each stepping stream's output, in the order
    /// they were submitted, and the staging buffer (for
    /// [`GpuStepper::return_staging`]).
    pub async fn wait(self, gpu: &Gpu) -> Result<(Vec<(usize, StepOutput)>, wgpu::Buffer)> {
        let l = self.layout;
        let (data, staging) = gpu
            .read(self.read, l.staging_bytes(), "the step result")
            .await?;
        let words: Vec<u32> = bytemuck::pod_collect_to_vec(&data[..l.result_bytes()]);
        let outputs = self
            .streams
            .iter()
            .map(|&(stream, with_logits)| {
                let w = &words[stream * l.result_words..][..l.result_words];
                let text_logits = with_logits.then(|| {
                    let at = l.logits_at() + 4 * stream * l.logits_stride;
                    bytemuck::pod_collect_to_vec(&data[at..at + 4 * l.text_vocab])
                });
                let out = StepOutput {
                    text_token: w[0],
                    end_of_turn: w[1..].iter().map(|w| f32::from_bits(*w)).collect(),
                    text_logits,
                };
                (stream, out)
            })
            .collect();
        Ok((outputs, staging))
    }
}

pub struct GpuStepper {
    gpu: Gpu,
    dispatches: Vec<Dispatch>,
    params: wgpu::Buffer,
    audio_rows: wgpu::Buffer,
    result: wgpu::Buffer,
    logits: wgpu::Buffer,
    logits_stride: usize,
    audio_tables: Vec<crate::repack::HostTable>,
    rope_inv_freq: Vec<f32>,
    text_vocab: u32,
    text_in_vocab: u32,
    start_token: u32,
    context: usize,
    end_of_turn_heads: usize,
    streams: Vec<StreamState>,
    max_in_flight: usize,
    in_flight: VecDeque<PendingBatch>,
    staging: StagingPool,
    rows_scratch: Vec<f32>,
    weight_bytes: u64,
    activation_bytes: u64,
    batched_matvec: bool,
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
            audio_rows: graph.activations.audio_rows,
            result: graph.activations.result,
            logits: graph.activations.logits,
            logits_stride: graph.logits_stride,
            audio_tables: graph.audio_tables,
            rope_inv_freq: rope_inv_freq(head_dim, cfg.max_period as f32),
            text_vocab: cfg.text_card as u32,
            text_in_vocab: cfg.text_card as u32 + 1,
            start_token: cfg.text_start_token(),
            context: cfg.context,
            end_of_turn_heads: graph.end_of_turn_heads,
            streams: vec![StreamState::FRESH; opts.streams],
            max_in_flight: opts.max_in_flight,
            in_flight: VecDeque::new(),
            staging: StagingPool::default(),
            rows_scratch: Vec::with_capacity(cfg.n_q * cfg.dim),
            weight_bytes: graph.weight_bytes,
            activation_bytes: graph.activation_bytes,
            batched_matvec: graph.batched_matvec,
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

    /// GPU bytes of everything but the weights: KV caches and activations
    /// of every stream.
    pub fn activation_bytes(&self) -> u64 {
        self.activation_bytes
    }

    /// Whether the projections read each weight once for four streams
    /// (matvec_batch.wgsl): more than one stream, and the adapter has the
    /// workgroup memory.
    pub fn batched_matvec(&self) -> bool {
        self.batched_matvec
    }

    /// Streams this engine steps together.
    pub fn streams(&self) -> usize {
        self.streams.len()
    }

    /// Batches submitted and not yet received.
    pub fn batches_in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Back to a fresh stream (position 0, start token next), keeping its
    /// sampling and logits choices; results of its steps already submitted
    /// still come back.
    pub fn reset_stream(&mut self, stream: usize) -> Result<()> {
        let state = self.stream_mut(stream)?;
        *state = StreamState {
            sampling: state.sampling,
            keep_logits: state.keep_logits,
            ..StreamState::FRESH
        };
        Ok(())
    }

    /// How a stream's later steps choose their token (its draws restart
    /// with the stream: the step counter).
    pub fn set_stream_sampling(&mut self, stream: usize, sampling: Sampling) -> Result<()> {
        self.stream_mut(stream)?.sampling = sampling;
        Ok(())
    }

    /// Whether a stream's later outputs carry its text logits.
    pub fn keep_stream_logits(&mut self, stream: usize, keep: bool) -> Result<()> {
        self.stream_mut(stream)?.keep_logits = keep;
        Ok(())
    }

    fn stream_mut(&mut self, stream: usize) -> Result<&mut StreamState> {
        let n = self.streams.len();
        (self.streams.get_mut(stream))
            .ok_or_else(|| GpuError::InvalidInput(format!("stream {stream} of {n}")))
    }

    /// Checks one stream's inputs (codes per codebook, code and token
    /// ranges) without changing anything.
    pub fn check_step(&self, text: TextInput, audio_codes: &[u32]) -> Result<()> {
        if audio_codes.len() != self.audio_tables.len() {
            return Err(GpuError::InvalidInput(format!(
                "{} audio codes for {} codebooks",
                audio_codes.len(),
                self.audio_tables.len()
            )));
        }
        for (table, &code) in self.audio_tables.iter().zip(audio_codes) {
            if code as usize >= table.rows {
                return Err(GpuError::InvalidInput(format!(
                    "audio code {code} ≥ {}",
                    table.rows
                )));
            }
        }
        match text {
            TextInput::Forced(t) if t >= self.text_in_vocab => Err(GpuError::InvalidInput(
                format!("text token {t} ≥ {}", self.text_in_vocab),
            )),
            _ => Ok(()),
        }
    }

    fn step_params(&self, step: &StreamStep) -> Result<StepParams> {
        let state = &self.streams[step.stream];
        let (text_mode, forced_token) = match step.text {
            TextInput::Start => (0, self.start_token),
            TextInput::Forced(t) => (0, t),
            TextInput::Previous if state.first_step_done => (1, 0),
            TextInput::Previous => {
                return Err(GpuError::InvalidInput(format!(
                    "TextInput::Previous on stream {}'s first step",
                    step.stream
                )))
            }
        };
        let ctx = self.context as u64;
        let sampling = state.sampling;
        Ok(StepParams {
            text_mode,
            forced_token,
            kv_slot: (state.position % ctx) as u32,
            n_keys: (state.position + 1).min(ctx) as u32,
            temperature: sampling.temperature,
            seed_lo: sampling.seed as u32,
            seed_hi: (sampling.seed >> 32) as u32,
            step: state.position as u32,
            rope: rope_table(&self.rope_inv_freq, state.position),
        })
    }

    /// Checks a batch (known, distinct streams; valid inputs) and returns
    /// the params of streams 0 ..= the highest one (idle ones marked so).
    fn batch_params(&self, steps: &[StreamStep]) -> Result<Vec<StepParams>> {
        let n = self.streams.len();
        let span = steps.iter().map(|s| s.stream + 1).max();
        let span = span.ok_or_else(|| GpuError::InvalidInput("an empty batch".into()))?;
        if span > n {
            return Err(GpuError::InvalidInput(format!(
                "stream {} of {n}",
                span - 1
            )));
        }
        let idle = StepParams {
            text_mode: TEXT_IDLE,
            ..bytemuck::Zeroable::zeroed()
        };
        let mut params = vec![idle; span];
        for step in steps {
            if params[step.stream].text_mode != TEXT_IDLE {
                return Err(GpuError::InvalidInput(format!(
                    "stream {} twice in one batch",
                    step.stream
                )));
            }
            self.check_step(step.text, step.audio_codes)?;
            params[step.stream] = self.step_params(step)?;
        }
        Ok(params)
    }

    /// Writes the batch's inputs: the params and each stepping stream's
    /// gathered audio rows.
    fn write_inputs(&mut self, steps: &[StreamStep], params: &[StepParams]) {
        let queue = &self.gpu.queue;
        queue.write_buffer(&self.params, 0, bytemuck::cast_slice(params));
        for step in steps {
            self.rows_scratch.clear();
            for (table, &code) in self.audio_tables.iter().zip(step.audio_codes) {
                table.row(code as usize, &mut self.rows_scratch);
            }
            let at = (step.stream * 4 * self.rows_scratch.len()) as u64;
            queue.write_buffer(
                &self.audio_rows,
                at,
                bytemuck::cast_slice(&self.rows_scratch),
            );
        }
    }

    /// Records the step's compute pass over `span` streams, with a
    /// timestamp before each dispatch and after the last when profiling.
    fn encode_step(
        &self,
        enc: &mut wgpu::CommandEncoder,
        span: usize,
        timestamps: Option<&wgpu::QuerySet>,
    ) {
        let mut pass = compute_pass(enc, "lm step");
        for (i, d) in self.dispatches.iter().enumerate() {
            if let Some(set) = timestamps {
                pass.write_timestamp(set, i as u32);
            }
            pass.set_pipeline(&d.pipeline);
            pass.set_bind_group(0, &d.bind_group, &[]);
            let z = (span as u32).div_ceil(d.streams_per_workgroup);
            pass.dispatch_workgroups(d.workgroups.0, d.workgroups.1, z);
        }
        if let Some(set) = timestamps {
            pass.write_timestamp(set, self.dispatches.len() as u32);
        }
    }

    /// Submits one step of each listed stream (distinct streams; the
    /// others keep their state). Nothing changes on an error.
    pub fn submit_batch(&mut self, steps: &[StreamStep]) -> Result<()> {
        self.submit_timed(steps, None)
    }

    fn submit_timed(
        &mut self,
        steps: &[StreamStep],
        timestamps: Option<&wgpu::QuerySet>,
    ) -> Result<()> {
        self.gpu.check()?;
        let params = self.batch_params(steps)?;
        self.write_inputs(steps, &params);
        let streams: Vec<(usize, bool)> = (steps.iter())
            .map(|s| (s.stream, self.streams[s.stream].keep_logits))
            .collect();
        let layout = ResultLayout {
            span: params.len(),
            result_words: result_words(self.end_of_turn_heads),
            text_vocab: self.text_vocab as usize,
            logits_stride: self.logits_stride,
            with_logits: streams.iter().any(|&(_, keep)| keep),
        };
        let staging = (self.staging).take(&self.gpu.device, layout.staging_bytes() as u64);
        let mut enc = self.gpu.encoder("lm step");
        self.encode_step(&mut enc, layout.span, timestamps);
        let result_bytes = layout.result_bytes() as u64;
        enc.copy_buffer_to_buffer(&self.result, 0, &staging, 0, result_bytes);
        if layout.with_logits {
            let (at, bytes) = (layout.logits_at() as u64, layout.logits_bytes() as u64);
            enc.copy_buffer_to_buffer(&self.logits, 0, &staging, at, bytes);
        }
        let submission = self.gpu.queue.submit([enc.finish()]);
        self.in_flight.push_back(PendingBatch {
            read: PendingRead::new(staging, submission),
            streams,
            layout,
        });
        for step in steps {
            let state = &mut self.streams[step.stream];
            state.position += 1;
            state.first_step_done = true;
        }
        Ok(())
    }

    /// The oldest batch in flight, to wait for without borrowing the
    /// engine ([`PendingBatch::wait`]); None when none is.
    pub fn take_pending(&mut self) -> Option<PendingBatch> {
        self.in_flight.pop_front()
    }

    /// Gives a waited batch's staging buffer back for reuse.
    pub fn return_staging(&mut self, staging: wgpu::Buffer) {
        self.staging.give(staging);
    }

    /// The oldest batch's outputs, per stream in submission order.
    pub async fn receive_batch(&mut self) -> Result<Vec<(usize, StepOutput)>> {
        let pending = (self.take_pending())
            .ok_or_else(|| GpuError::InvalidInput("receive with no step in flight".into()))?;
        let (outputs, staging) = pending.wait(&self.gpu).await?;
        self.return_staging(staging);
        Ok(outputs)
    }

    /// Stream 0's oldest result.
    async fn receive_step(&mut self) -> Result<StepOutput> {
        let outputs = self.receive_batch().await?;
        (outputs.into_iter().find(|(s, _)| *s == 0).map(|(_, o)| o))
            .ok_or_else(|| GpuError::InvalidInput("stream 0 took no step in this batch".into()))
    }
}

impl LmStepper for GpuStepper {
    fn submit(&mut self, text: TextInput, audio_codes: &[u32]) -> stt_model::Result<()> {
        let step = StreamStep {
            stream: 0,
            text,
            audio_codes,
        };
        Ok(self.submit_batch(&[step])?)
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
            self.receive_batch().await?;
        }
        Ok(self.reset_stream(0)?)
    }

    fn has_end_of_turn(&self) -> bool {
        self.end_of_turn_heads > 0
    }

    fn keep_logits(&mut self, keep: bool) {
        self.streams[0].keep_logits = keep;
    }

    /// Sampling happens on the GPU (argmax_heads.wgsl): the draws follow
    /// softmax(logits / T) like the CPU stepper's but are not the same
    /// draws. They restart with the stream (the step counter).
    fn set_sampling(&mut self, sampling: Sampling) {
        self.streams[0].sampling = sampling;
    }
}
