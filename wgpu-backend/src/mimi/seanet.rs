//! Mimi's SEANet encoder on the GPU: 24 kHz samples in, 25 Hz latents of
//! 512 channels out (two per 80 ms frame), streaming — the same chain as
//! moshi's `SeaNetEncoder::step` (moshi 0.6.4, `seanet.rs`), for the
//! stt-1b-en_fr Mimi (`mimi::Config::v0_1`: 64 filters, ratios 8·6·5·4
//! applied in reverse, one residual block per stage with kernel 3 and
//! compress 2, ELU(1), kernel 7 first and 3 last, no LSTM).
//!
//! ```text
//! pcm ─conv k7─► x0 ─┬─elu─conv k3─► y ─elu─conv k1─(+x)─► d ─elu─conv k2r/r─► x1 … x4 ─elu─conv k3─► out
//!                    └──────────────── residual ───────┘
//! ```

use stt_model::config::{Config, FRAME_SAMPLES};
use stt_model::weights::safetensors::SafetensorsFile;

use super::conv::{Act, Conv, ConvParams, ConvSpec, HistoryShift, Signal};
use super::record::Recorder;
use crate::device::{compute_pass, Gpu};
use crate::error::{GpuError, Result};

/// The SEANet stage: its convs, their histories, its output (the
/// transformer's input).
pub(crate) struct Seanet {
    input: Signal,
    convs: Vec<Conv>,
    shifts: Vec<HistoryShift>,
    /// Every signal with a history, to clear on reset.
    signals: Vec<Signal>,
    pub(crate) output: Signal,
}

impl Seanet {
    /// Uploads the encoder's convs from the Mimi file and sizes every
    /// buffer for calls of up to `max_frames` frames; `params` is the
    /// caller's `ConvParams` uniform.
    pub fn new(
        gpu: &Gpu,
        weights: &SafetensorsFile,
        cfg: &Config,
        params: &wgpu::Buffer,
        max_frames: usize,
    ) -> Result<Self> {
        let mc = cfg.mimi_config();
        let sc = &mc.seanet;
        if sc.lstm != 0 || sc.n_residual_layers != 1 || !sc.true_skip || !sc.causal {
            return Err(GpuError::Unsupported(
                "a SEANet other than Mimi v0.1's (LSTM, several residual layers, a skip conv)"
                    .into(),
            ));
        }
        let hop: usize = sc.ratios.iter().product();
        if !FRAME_SAMPLES.is_multiple_of(hop) {
            return Err(GpuError::Unsupported(format!(
                "SEANet hop {hop} does not divide a frame"
            )));
        }
        let max_frames = max_frames.max(1);
        let mut convs = vec![];
        let mut signals = vec![];
        let mut per_frame = FRAME_SAMPLES;
        let mut channels = sc.n_filters;
        let signal = |name: &str, channels: usize, history: usize, per_frame: usize| {
            Signal::new(gpu, name, channels, history, per_frame, max_frames)
        };
        let layer = |i: usize| format!("encoder.model.{i}.conv.conv");
        let block = |i: usize, j: usize| format!("encoder.model.{i}.block.{j}.conv.conv");

        let input = signal("seanet input", sc.channels, sc.kernel_size - 1, per_frame)?;
        let mut x = signal(
            "seanet x0",
            channels,
            sc.residual_kernel_size - 1,
            per_frame,
        )?;
        let spec = ConvSpec::conv(&layer(0), sc.kernel_size, 1, Act::None);
        convs.push(Conv::new(gpu, weights, &spec, params, &input, &x, None)?);
        let mut index = 1;
        for (stage, &ratio) in sc.ratios.iter().rev().enumerate() {
            let hidden = channels / sc.compress;
            let y = signal(&format!("seanet y{stage}"), hidden, 0, per_frame)?;
            let d = signal(
                &format!("seanet d{stage}"),
                channels,
                2 * ratio - ratio,
                per_frame,
            )?;
            let a = ConvSpec::conv(&block(index, 1), sc.residual_kernel_size, 1, Act::Elu);
            convs.push(Conv::new(gpu, weights, &a, params, &x, &y, None)?);
            let b = ConvSpec::conv(&block(index, 3), 1, 1, Act::Elu);
            convs.push(Conv::new(gpu, weights, &b, params, &y, &d, Some(&x))?);
            per_frame /= ratio;
            let next_history = if stage + 1 == sc.ratios.len() {
                sc.last_kernel_size - 1
            } else {
                sc.residual_kernel_size - 1
            };
            let next = signal(
                &format!("seanet x{}", stage + 1),
                2 * channels,
                next_history,
                per_frame,
            )?;
            let down = ConvSpec::conv(&layer(index + 2), 2 * ratio, ratio, Act::Elu);
            convs.push(Conv::new(gpu, weights, &down, params, &d, &next, None)?);
            signals.push(std::mem::replace(&mut x, next));
            signals.push(d);
            index += 3;
            channels *= 2;
        }
        let output = signal("seanet output", sc.dimension, 0, per_frame)?;
        let last = ConvSpec::conv(&layer(index + 1), sc.last_kernel_size, 1, Act::Elu);
        convs.push(Conv::new(gpu, weights, &last, params, &x, &output, None)?);
        signals.push(x);
        let mut shifts = vec![HistoryShift::new(
            gpu,
            "seanet input history",
            params,
            &input,
        )?];
        for (i, s) in signals.iter().enumerate() {
            shifts.push(HistoryShift::new(
                gpu,
                &format!("seanet history {i}"),
                params,
                s,
            )?);
        }
        gpu.check()?;
        Ok(Self {
            input,
            convs,
            shifts,
            signals,
            output,
        })
    }

    /// Writes this call's samples after the input's history.
    pub fn upload(&self, queue: &wgpu::Queue, pcm: &[f32]) {
        let at = 4 * self.input.history as u64;
        queue.write_buffer(&self.input.buffer, at, bytemuck::cast_slice(pcm));
    }

    pub fn record(&self, rec: &mut Recorder, frames: u32) {
        for conv in &self.convs {
            conv.record(rec, frames);
        }
        // Each dispatch sees the writes of those before it (WebGPU's
        // per-dispatch usage scopes); the shifts come after every conv
        // has read its history.
        for shift in &self.shifts {
            shift.record(rec);
        }
    }

    /// Every history back to zeros (a new stream).
    pub fn clear(&self, enc: &mut wgpu::CommandEncoder) {
        enc.clear_buffer(&self.input.buffer, 0, None);
        for s in &self.signals {
            enc.clear_buffer(&s.buffer, 0, None);
        }
    }
}

/// The SEANet stage alone, on samples from the host (tests, benchmarks).
pub struct GpuSeanet {
    gpu: Gpu,
    params: wgpu::Buffer,
    seanet: Seanet,
    max_frames: usize,
}

impl GpuSeanet {
    pub fn new(
        gpu: Gpu,
        weights: &SafetensorsFile,
        cfg: &Config,
        max_frames: usize,
    ) -> Result<Self> {
        let params = ConvParams::buffer(&gpu, "seanet params")?;
        let seanet = Seanet::new(&gpu, weights, cfg, &params, max_frames)?;
        Ok(Self {
            gpu,
            params,
            seanet,
            max_frames: max_frames.max(1),
        })
    }

    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    /// Latent columns per frame (2 for Mimi: 25 Hz).
    pub fn latents_per_frame(&self) -> usize {
        self.seanet.output.per_frame as usize
    }

    /// Encodes whole frames (`pcm.len()` a multiple of 1920, at most
    /// `max_frames` of them): the SEANet latents, channel-major
    /// `[512][frames · 2]`.
    pub async fn encode(&mut self, pcm: &[f32]) -> Result<Vec<f32>> {
        let frames = pcm.len() / FRAME_SAMPLES;
        if pcm.is_empty() || !pcm.len().is_multiple_of(FRAME_SAMPLES) || frames > self.max_frames {
            return Err(GpuError::InvalidInput(format!(
                "the GPU SEANet takes 1 to {} whole frames of {FRAME_SAMPLES} samples, got {} samples",
                self.max_frames,
                pcm.len()
            )));
        }
        let q = &self.gpu.queue;
        let p = ConvParams {
            frames: frames as u32,
            ..Default::default()
        };
        q.write_buffer(&self.params, 0, bytemuck::bytes_of(&p));
        self.seanet.upload(q, pcm);
        let mut enc = self.gpu.encoder("seanet");
        {
            let mut pass = compute_pass(&mut enc, "seanet");
            self.seanet
                .record(&mut Recorder::new(&mut pass), frames as u32);
        }
        (self.seanet.output)
            .submit_and_read_columns(&self.gpu, enc, frames, "SEANet latents")
            .await
    }

    pub fn reset(&mut self) {
        let mut enc = self.gpu.encoder("seanet reset");
        self.seanet.clear(&mut enc);
        self.gpu.queue.submit([enc.finish()]);
    }
}
