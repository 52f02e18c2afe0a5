//! [`GpuMimiEncoder`]: Mimi's whole encoder on the GPU — SEANet, the
//! encoder transformer, the downsampling conv and the split quantizer — in
//! one submit per call, 24 kHz samples in, 32 codes per 80 ms frame out.
//! One frame per call (a microphone) or many (files) give the same codes:
//! every stage's state (conv histories, KV caches, positions) stays on the
//! GPU between calls.

use stt_model::config::{Config, FRAME_SAMPLES};
use stt_model::weights::safetensors::SafetensorsFile;

use super::conv::{Act, Conv, ConvParams, ConvSpec, HistoryShift, Signal};
use super::record::{Recorder, MAX_PROFILED};
use super::seanet::Seanet;
use super::transformer::GpuTransformer;
use crate::device::{compute_pass, Gpu};
use crate::error::{GpuError, Result};
use crate::kernels::{mimi_source, MimiKernel, MIMI_RVQ_ROWS, MIMI_RVQ_WORKGROUP};
use crate::pipelines::{bind_group, bind_layout, pipeline, shader, RO, RW, UNIFORM};

/// The encoder's stages in order (for [`GpuMimiEncoder::time_stages`]).
pub const STAGES: [&str; 4] = ["seanet", "transformer", "downsample+projections", "rvq"];

pub struct GpuMimiEncoder {
    gpu: Gpu,
    params: wgpu::Buffer,
    seanet: Seanet,
    transformer: GpuTransformer,
    down_input: Signal,
    downsample: Conv,
    down_history: HistoryShift,
    latents: Signal,
    projections: [Conv; 2],
    _projected: [Signal; 2],
    /// mimi_rvq_score.wgsl then mimi_rvq_pick.wgsl, per level.
    rvq_pipelines: [wgpu::ComputePipeline; 2],
    /// One bind group per level (each with its level's uniform).
    rvq_bind_groups: Vec<wgpu::BindGroup>,
    codes: wgpu::Buffer,
    _tables: [wgpu::Buffer; 5],
    _levels: Vec<wgpu::Buffer>,
    n_q: usize,
    bins: usize,
    max_frames: usize,
    /// No call since the last reset: the downsampling conv replicates.
    fresh: bool,
}

/// Codewords of one quantizer level as moshi makes them —
/// embedding_sum / max(cluster_usage, 1e-5), in f32, `[bins][dim]` — and
/// their ‖e‖²/2.
fn codebook(
    weights: &SafetensorsFile,
    prefix: &str,
    bins: usize,
    dim: usize,
) -> Result<(Vec<f32>, Vec<f32>)> {
    let get = |name: &str, n: usize| -> Result<Vec<f32>> {
        let full = format!("{prefix}.{name}");
        let t = weights.tensor(&full, &candle_core::Device::Cpu)?;
        match t.flatten_all().and_then(|t| t.to_vec1::<f32>()) {
            Ok(v) if v.len() == n => Ok(v),
            Ok(v) => Err(GpuError::InvalidInput(format!(
                "{full}: {} values, expected {n}",
                v.len()
            ))),
            Err(e) => Err(GpuError::InvalidInput(format!("{full}: {e}"))),
        }
    };
    let sum = get("embedding_sum", bins * dim)?;
    let usage = get("cluster_usage", bins)?;
    let words: Vec<f32> = sum
        .iter()
        .enumerate()
        .map(|(i, s)| s / usage[i / dim].max(1e-5))
        .collect();
    let half_norms = words
        .chunks_exact(dim)
        .map(|e| e.iter().map(|x| x * x).sum::<f32>() / 2.0)
        .collect();
    Ok((words, half_norms))
}

impl GpuMimiEncoder {
    /// Uploads Mimi's encoder side (the upstream file or its encoder half)
    /// and sizes every buffer for calls of up to `max_frames` frames.
    pub fn new(
        gpu: Gpu,
        weights: &SafetensorsFile,
        cfg: &Config,
        max_frames: usize,
    ) -> Result<Self> {
        let max_frames = max_frames.max(1);
        let mc = cfg.mimi_config();
        let (dim, qdim, bins, n_q) = (
            mc.seanet.dimension,
            mc.quantizer_dim,
            mc.quantizer_bins,
            cfg.n_q,
        );
        if qdim > MIMI_RVQ_WORKGROUP
            || qdim % (MIMI_RVQ_WORKGROUP / MIMI_RVQ_ROWS) != 0
            || bins % MIMI_RVQ_ROWS != 0
            || n_q < 2
        {
            return Err(GpuError::Unsupported(format!(
                "a Mimi quantizer of dimension {qdim} with {n_q} codebooks of {bins}"
            )));
        }
        use wgpu::BufferUsages as U;
        let params = gpu.empty_buffer(
            "mimi params",
            std::mem::size_of::<ConvParams>() as u64,
            U::UNIFORM | U::COPY_DST,
        )?;
        let seanet = Seanet::new(&gpu, weights, cfg, &params, max_frames)?;
        let per = seanet.output.per_frame as usize;
        let stride = per; // the downsampling conv brings 25 Hz to 12.5 Hz
        let down_input = Signal::new(&gpu, "mimi downsample input", dim, stride, per, max_frames)?;
        let transformer = GpuTransformer::new(
            &gpu,
            weights,
            cfg,
            &params,
            &seanet.output,
            &down_input,
            max_frames,
        )?;
        let latents = Signal::new(&gpu, "mimi latents", dim, 0, 1, max_frames)?;
        let down = ConvSpec {
            weight: "downsample.conv.conv.conv.weight".into(),
            bias: None,
            scale: None,
            kernel: 2 * stride,
            stride,
            linear: false,
            act: Act::None,
            replicate: true,
        };
        let downsample = Conv::new(&gpu, weights, &down, &params, &down_input, &latents, None)?;
        let down_history =
            HistoryShift::new(&gpu, "mimi downsample history", &params, &down_input)?;
        let projected = [
            Signal::new(&gpu, "mimi rvq_first input", qdim, 0, 1, max_frames)?,
            Signal::new(&gpu, "mimi rvq_rest input", qdim, 0, 1, max_frames)?,
        ];
        let proj = |group: &str, out: &Signal| {
            let spec = ConvSpec {
                weight: format!("quantizer.{group}.input_proj.weight"),
                bias: None,
                scale: None,
                kernel: 1,
                stride: 1,
                linear: false,
                act: Act::None,
                replicate: false,
            };
            Conv::new(&gpu, weights, &spec, &params, &latents, out, None)
        };
        let projections = [
            proj("rvq_first", &projected[0])?,
            proj("rvq_rest", &projected[1])?,
        ];
        let (semantic, mut half_norms) = codebook(
            weights,
            "quantizer.rvq_first.vq.layers.0._codebook",
            bins,
            qdim,
        )?;
        let mut books = vec![];
        for level in 0..n_q - 1 {
            let (words, norms) = codebook(
                weights,
                &format!("quantizer.rvq_rest.vq.layers.{level}._codebook"),
                bins,
                qdim,
            )?;
            books.extend(words);
            half_norms.extend(norms);
        }
        let semantic = gpu.buffer_with(
            "mimi semantic codebook",
            bytemuck::cast_slice(&semantic),
            U::STORAGE,
        )?;
        let books = gpu.buffer_with(
            "mimi acoustic codebooks",
            bytemuck::cast_slice(&books),
            U::STORAGE,
        )?;
        let half_norms = gpu.buffer_with(
            "mimi codeword norms",
            bytemuck::cast_slice(&half_norms),
            U::STORAGE,
        )?;
        let codes = gpu.empty_buffer(
            "mimi codes",
            (4 * n_q * max_frames) as u64,
            U::STORAGE | U::COPY_SRC,
        )?;
        let residual = gpu.empty_buffer(
            "mimi rvq residual",
            (4 * qdim * max_frames) as u64,
            U::STORAGE,
        )?;
        let candidates = gpu.empty_buffer(
            "mimi rvq candidates",
            (8 * (bins / MIMI_RVQ_ROWS) * max_frames) as u64,
            U::STORAGE,
        )?;
        let layout = bind_layout(
            &gpu.device,
            "mimi rvq",
            &[UNIFORM, RO, RO, RO, RO, RW, RO, RW, UNIFORM, RW],
        );
        let constants = [
            ("DIM", qdim as f64),
            ("BINS", bins as f64),
            ("N_Q", n_q as f64),
            ("ROW", projected[0].row as f64),
        ];
        let rvq_pipelines = [
            (MimiKernel::RvqScore, "mimi rvq score"),
            (MimiKernel::RvqPick, "mimi rvq pick"),
        ]
        .map(|(kernel, name)| {
            let module = shader(&gpu, name, &mimi_source(kernel));
            pipeline(&gpu, name, &layout, &module, &constants)
        });
        let levels = (0..n_q as u32)
            .map(|level| {
                gpu.buffer_with(
                    "mimi rvq level",
                    bytemuck::cast_slice(&[level, 0, 0, 0]),
                    U::UNIFORM,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let rvq_bind_groups = levels
            .iter()
            .map(|level| {
                bind_group(
                    &gpu.device,
                    "mimi rvq",
                    &layout,
                    &[
                        &params,
                        &projected[0].buffer,
                        &projected[1].buffer,
                        &semantic,
                        &half_norms,
                        &codes,
                        &books,
                        &residual,
                        level,
                        &candidates,
                    ],
                )
            })
            .collect();
        gpu.check()?;
        Ok(Self {
            gpu,
            params,
            seanet,
            transformer,
            down_input,
            downsample,
            down_history,
            latents,
            projections,
            _projected: projected,
            rvq_pipelines,
            rvq_bind_groups,
            codes,
            _tables: [semantic, books, half_norms, residual, candidates],
            _levels: levels,
            n_q,
            bins,
            max_frames,
            fresh: true,
        })
    }

    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    pub fn num_codebooks(&self) -> usize {
        self.n_q
    }

    pub fn max_frames(&self) -> usize {
        self.max_frames
    }

    fn run(&mut self, pcm: &[f32]) -> Result<(wgpu::CommandEncoder, usize)> {
        self.run_stages(pcm, STAGES.len(), None)
    }

    /// Records the first `stages` of [`STAGES`] for `pcm` (all of them but
    /// in [`time_stages`](Self::time_stages)); with `profile`, a timestamp
    /// before each dispatch and its label.
    fn run_stages(
        &mut self,
        pcm: &[f32],
        stages: usize,
        profile: Option<(&wgpu::QuerySet, &mut Vec<String>)>,
    ) -> Result<(wgpu::CommandEncoder, usize)> {
        let frames = pcm.len() / FRAME_SAMPLES;
        if pcm.is_empty() || !pcm.len().is_multiple_of(FRAME_SAMPLES) || frames > self.max_frames {
            return Err(GpuError::InvalidInput(format!(
                "the GPU Mimi takes 1 to {} whole frames of {FRAME_SAMPLES} samples, got {} samples",
                self.max_frames,
                pcm.len()
            )));
        }
        let q = &self.gpu.queue;
        let start = self.transformer.prepare(q, frames)?;
        let p = ConvParams {
            frames: frames as u32,
            start,
            first: self.fresh as u32,
            _pad: 0,
        };
        self.fresh = false;
        q.write_buffer(&self.params, 0, bytemuck::bytes_of(&p));
        self.seanet.upload(q, pcm);
        let mut enc = self.gpu.encoder("mimi");
        {
            let mut pass = compute_pass(&mut enc, "mimi");
            let mut rec = match profile {
                Some((set, labels)) => Recorder::profiled(&mut pass, set, labels),
                None => Recorder::new(&mut pass),
            };
            self.seanet.record(&mut rec, frames as u32);
            if stages > 1 {
                self.transformer.record(&mut rec, frames);
            }
            if stages > 2 {
                self.downsample.record(&mut rec, frames as u32);
                self.down_history.record(&mut rec);
                for proj in &self.projections {
                    proj.record(&mut rec, frames as u32);
                }
            }
            if stages > 3 {
                let groups = (self.bins / MIMI_RVQ_ROWS) as u32;
                let [score, pick] = &self.rvq_pipelines;
                for level in &self.rvq_bind_groups {
                    let score_label = MimiKernel::RvqScore.name();
                    rec.dispatch(score_label, score, level, [groups, frames as u32, 1]);
                    let pick_label = MimiKernel::RvqPick.name();
                    rec.dispatch(pick_label, pick, level, [1, frames as u32, 1]);
                }
            }
            rec.finish();
        }
        Ok((enc, frames))
    }

    /// Encodes whole frames (1 to `max_frames` of them): one row of
    /// `n_q` codes per frame.
    pub async fn encode_frames(&mut self, pcm: &[f32]) -> Result<Vec<Vec<u32>>> {
        let (enc, frames) = self.run(pcm)?;
        let bytes = (4 * self.n_q * frames) as u64;
        let raw = self
            .gpu
            .submit_and_read(enc, &self.codes, bytes, "Mimi codes")
            .await?;
        let codes: Vec<u32> = bytemuck::pod_collect_to_vec(&raw);
        Ok(codes.chunks_exact(self.n_q).map(<[u32]>::to_vec).collect())
    }

    /// As [`encode_frames`](Self::encode_frames), and the latents the
    /// quantizer read (one row of 512 per frame), for parity tests.
    pub async fn encode_frames_with_latents(
        &mut self,
        pcm: &[f32],
    ) -> Result<(Vec<Vec<u32>>, Vec<Vec<f32>>)> {
        let (mut enc, frames) = self.run(pcm)?;
        let row = self.latents.row as usize;
        let dim = self.latents.channels as usize;
        let code_bytes = (4 * self.n_q * frames) as u64;
        let latent_bytes = (4 * dim * row) as u64;
        // Codes and latents side by side in one read.
        let both = self.gpu.empty_buffer(
            "mimi codes and latents",
            code_bytes + latent_bytes,
            wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
        )?;
        enc.copy_buffer_to_buffer(&self.codes, 0, &both, 0, code_bytes);
        enc.copy_buffer_to_buffer(&self.latents.buffer, 0, &both, code_bytes, latent_bytes);
        let raw = self
            .gpu
            .submit_and_read(
                enc,
                &both,
                code_bytes + latent_bytes,
                "Mimi codes and latents",
            )
            .await?;
        let (c, l) = raw.split_at(code_bytes as usize);
        let codes: Vec<u32> = bytemuck::pod_collect_to_vec(c);
        let latents: Vec<f32> = bytemuck::pod_collect_to_vec(l);
        let per_frame = (0..frames)
            .map(|f| (0..dim).map(|c| latents[c * row + f]).collect())
            .collect();
        Ok((
            codes.chunks_exact(self.n_q).map(<[u32]>::to_vec).collect(),
            per_frame,
        ))
    }

    /// Wall time of one call on `pcm` (whole frames, at most `max_frames`)
    /// through each prefix of [`STAGES`], best of `repeats`, submit and
    /// wait included: what each stage adds is the difference between
    /// neighbours. Leaves the stream reset.
    pub async fn time_stages(
        &mut self,
        pcm: &[f32],
        repeats: usize,
        now_ms: impl Fn() -> f64,
    ) -> Result<Vec<(&'static str, f64)>> {
        let mut out = vec![];
        for (i, name) in STAGES.iter().enumerate() {
            let mut best = f64::INFINITY;
            for _ in 0..repeats.max(1) + 1 {
                self.reset();
                // The reset's clears finish before the clock starts.
                let idle = self.gpu.encoder("mimi idle");
                self.gpu
                    .submit_and_read(idle, &self.codes, 4, "Mimi codes")
                    .await?;
                let start = now_ms();
                let (enc, _) = self.run_stages(pcm, i + 1, None)?;
                self.gpu
                    .submit_and_read(enc, &self.codes, 4, "Mimi codes")
                    .await?;
                best = best.min(now_ms() - start);
            }
            out.push((*name, best));
        }
        self.reset();
        Ok(out)
    }

    /// GPU time of each dispatch of one call on `pcm` (whole frames, at
    /// most `max_frames`), from timestamps written before each: (label,
    /// ns) in dispatch order. The call continues the stream like
    /// [`encode_frames`](Self::encode_frames). Needs timestamp queries
    /// inside passes (`FeatureRequest::timestamps`).
    pub async fn profile_call(&mut self, pcm: &[f32]) -> Result<Vec<(String, f64)>> {
        if !self.gpu.caps.timestamps {
            return Err(GpuError::Unsupported(
                "timestamp queries inside passes are not enabled on this device".into(),
            ));
        }
        let set = self.gpu.device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("mimi profile"),
            ty: wgpu::QueryType::Timestamp,
            count: MAX_PROFILED,
        });
        let mut labels = vec![];
        let (mut enc, _) = self.run_stages(pcm, STAGES.len(), Some((&set, &mut labels)))?;
        let n = labels.len() as u32 + 1;
        let bytes = 8 * n as u64;
        let resolved = self.gpu.empty_buffer(
            "mimi profile resolve",
            bytes,
            wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
        )?;
        enc.resolve_query_set(&set, 0..n, &resolved, 0);
        let ticks = self
            .gpu
            .submit_and_read(enc, &resolved, bytes, "the Mimi profile")
            .await?;
        let ticks: Vec<u64> = bytemuck::pod_collect_to_vec(&ticks);
        let period = self.gpu.queue.get_timestamp_period() as f64;
        Ok(labels
            .into_iter()
            .zip(ticks.windows(2))
            .map(|(label, t)| (label, t[1].saturating_sub(t[0]) as f64 * period))
            .collect())
    }

    /// Encodes any number of whole frames, `max_frames` per submit.
    pub async fn encode(&mut self, pcm: &[f32]) -> Result<Vec<Vec<u32>>> {
        if pcm.is_empty() || !pcm.len().is_multiple_of(FRAME_SAMPLES) {
            return Err(GpuError::InvalidInput(format!(
                "Mimi encodes whole frames of {FRAME_SAMPLES} samples, got {}",
                pcm.len()
            )));
        }
        let mut codes = Vec::with_capacity(pcm.len() / FRAME_SAMPLES);
        for part in pcm.chunks(self.max_frames * FRAME_SAMPLES) {
            codes.extend(self.encode_frames(part).await?);
        }
        Ok(codes)
    }

    /// A new stream: histories to zeros, positions from 0.
    pub fn reset(&mut self) {
        let mut enc = self.gpu.encoder("mimi reset");
        self.seanet.clear(&mut enc);
        enc.clear_buffer(&self.down_input.buffer, 0, None);
        self.gpu.queue.submit([enc.finish()]);
        self.transformer.reset();
        self.fresh = true;
    }
}

impl stt_model::mimi::MimiBackend for GpuMimiEncoder {
    fn num_codebooks(&self) -> usize {
        self.n_q
    }

    async fn encode(&mut self, pcm: &[f32]) -> stt_model::Result<Vec<Vec<u32>>> {
        Ok(GpuMimiEncoder::encode(self, pcm).await?)
    }

    fn reset(&mut self) {
        GpuMimiEncoder::reset(self)
    }
}
