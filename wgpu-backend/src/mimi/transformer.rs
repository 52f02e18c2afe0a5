//! Mimi's encoder transformer on the GPU: 8 pre-norm layers (d 512, 8
//! heads, RoPE, layer scale, GELU MLP of 2048) over the SEANet latents,
//! many frames per call with the keys each position sees when moshi steps
//! it one frame at a time (`mimi_attention.wgsl` says which). Per layer:
//!
//! ```text
//! x ─norm1─► h ─in_proj─► qkv ─rope, cache─► q ─attention─► a ─out_proj·ls1 (+x)─► x'
//! x' ─norm2─► h ─linear1─► f ─gelu, linear2·ls2 (+x')─► x
//! ```
//!
//! CPU reference: moshi `transformer::ProjectedTransformer::step` (no input
//! or output projection for Mimi: both are 512 wide).

use stt_model::config::Config;
use stt_model::weights::safetensors::SafetensorsFile;

use super::conv::{Act, Conv, ConvParams, ConvSpec, Signal};
use super::record::Recorder;
use crate::device::{compute_pass, Gpu};
use crate::error::{GpuError, Result};
use crate::kernels::{
    mimi_source, MimiKernel, MIMI_ATTENTION_MAX_KEYS, MIMI_ATTENTION_WORKGROUP, MIMI_ROPE_WORKGROUP,
};
use crate::pipelines::{bind_group, bind_layout, pipeline, shader, RO, RW, UNIFORM};

/// A kernel with its bind group; its grid is (x, columns, z), columns =
/// frames · positions per frame.
struct Dispatch {
    label: &'static str,
    pipeline: wgpu::ComputePipeline,
    bind_group: wgpu::BindGroup,
    x: u32,
    z: u32,
}

enum Step {
    Kernel(Dispatch),
    Conv(Conv),
}

pub(crate) struct GpuTransformer {
    steps: Vec<Step>,
    rope: wgpu::Buffer,
    inv_freq: Vec<f32>,
    head_dim: usize,
    positions_per_frame: usize,
    max_frames: usize,
    position: u64,
    _buffers: Vec<wgpu::Buffer>,
    _signals: Vec<Signal>,
}

fn vector(weights: &SafetensorsFile, name: &str, n: usize) -> Result<Vec<f32>> {
    let t = weights.tensor(name, &candle_core::Device::Cpu)?;
    let v = t.flatten_all().and_then(|t| t.to_vec1::<f32>());
    match v {
        Ok(v) if v.len() == n => Ok(v),
        Ok(v) => Err(GpuError::InvalidInput(format!(
            "{name}: {} values, expected {n}",
            v.len()
        ))),
        Err(e) => Err(GpuError::InvalidInput(format!("{name}: {e}"))),
    }
}

impl GpuTransformer {
    /// Reads `x` (512 × positions, no history; also the layers' working
    /// buffer, so it is overwritten) and writes the last layer's output to
    /// `out`, after its history. `params` is the caller's `ConvParams`.
    pub fn new(
        gpu: &Gpu,
        weights: &SafetensorsFile,
        cfg: &Config,
        params: &wgpu::Buffer,
        x: &Signal,
        out: &Signal,
        max_frames: usize,
    ) -> Result<Self> {
        let positions_per_frame = x.per_frame as usize;
        let tc = cfg.mimi_config().transformer;
        let d = tc.d_model;
        let head_dim = d / tc.num_heads;
        if head_dim != MIMI_ATTENTION_WORKGROUP
            || tc.context > MIMI_ATTENTION_MAX_KEYS
            || tc.gating.is_some()
            || tc.kv_repeat != 1
            || tc.bias_attn
            || tc.bias_ff
            || tc.layer_scale.is_none()
        {
            return Err(GpuError::Unsupported(
                "an encoder transformer other than Mimi v0.1's".into(),
            ));
        }
        let t_max = positions_per_frame * max_frames;
        let ring = tc.context + t_max;
        if x.history != 0 || x.channels as usize != d || out.channels as usize != d {
            return Err(GpuError::Unsupported(
                "the transformer's input must be 512 channels without history".into(),
            ));
        }
        use wgpu::BufferUsages as U;
        let rope = gpu.empty_buffer(
            "mimi rope",
            (4 * t_max * head_dim) as u64,
            U::STORAGE | U::COPY_DST,
        )?;
        let signal = |name: &str, channels: usize| {
            Signal::new(gpu, name, channels, 0, positions_per_frame, max_frames)
        };
        let x2 = signal("mimi x'", d)?;
        let h = signal("mimi normed", d)?;
        let qkv = signal("mimi qkv", 3 * d)?;
        let q = signal("mimi q", d)?;
        let att = signal("mimi attention", d)?;
        let ff = signal("mimi mlp hidden", tc.dim_feedforward)?;
        let row = x.row as f64;

        let norm_layout = bind_layout(&gpu.device, "mimi layer norm", &[UNIFORM, RO, RO, RO, RW]);
        let norm_module = shader(gpu, "mimi layer norm", &mimi_source(MimiKernel::LayerNorm));
        let norm_pipeline = pipeline(
            gpu,
            "mimi layer norm",
            &norm_layout,
            &norm_module,
            &[("C", d as f64), ("ROW", row)],
        );
        let rope_layout = bind_layout(&gpu.device, "mimi rope", &[UNIFORM, RO, RO, RW, RW, RW]);
        let rope_module = shader(gpu, "mimi rope", &mimi_source(MimiKernel::RopeKv));
        let shape = [
            ("D", d as f64),
            ("HEAD_DIM", head_dim as f64),
            ("ROW", row),
            ("RING", ring as f64),
            ("P", positions_per_frame as f64),
        ];
        let rope_pipeline = pipeline(gpu, "mimi rope", &rope_layout, &rope_module, &shape);
        let att_layout = bind_layout(&gpu.device, "mimi attention", &[UNIFORM, RO, RO, RO, RW]);
        let att_module = shader(gpu, "mimi attention", &mimi_source(MimiKernel::Attention));
        let mut att_constants = shape.to_vec();
        att_constants.push(("CONTEXT", tc.context as f64));
        let att_pipeline = pipeline(
            gpu,
            "mimi attention",
            &att_layout,
            &att_module,
            &att_constants,
        );

        let mut steps = vec![];
        let mut buffers = vec![];
        for layer in 0..tc.num_layers {
            let name = |n: &str| format!("encoder_transformer.transformer.layers.{layer}.{n}");
            let mut norm = |which: &str, input: &Signal| -> Result<Step> {
                let w = vector(weights, &name(&format!("{which}.weight")), d)?;
                let b = vector(weights, &name(&format!("{which}.bias")), d)?;
                let w = gpu.buffer_with(which, bytemuck::cast_slice(&w), U::STORAGE)?;
                let b = gpu.buffer_with(which, bytemuck::cast_slice(&b), U::STORAGE)?;
                let bind = bind_group(
                    &gpu.device,
                    which,
                    &norm_layout,
                    &[params, &input.buffer, &w, &b, &h.buffer],
                );
                buffers.extend([w, b]);
                Ok(Step::Kernel(Dispatch {
                    label: MimiKernel::LayerNorm.name(),
                    pipeline: norm_pipeline.clone(),
                    bind_group: bind,
                    x: 1,
                    z: 1,
                }))
            };
            // Each layer keeps its own keys and values.
            let k_cache = gpu.empty_buffer("mimi k cache", (4 * ring * d) as u64, U::STORAGE)?;
            let v_cache = gpu.empty_buffer("mimi v cache", (4 * ring * d) as u64, U::STORAGE)?;
            steps.push(norm("norm1", x)?);
            let in_proj = ConvSpec::linear(name("self_attn.in_proj_weight"), Act::None, None);
            steps.push(Step::Conv(Conv::new(
                gpu, weights, &in_proj, params, &h, &qkv, None,
            )?));
            steps.push(Step::Kernel(Dispatch {
                label: MimiKernel::RopeKv.name(),
                pipeline: rope_pipeline.clone(),
                bind_group: bind_group(
                    &gpu.device,
                    "mimi rope",
                    &rope_layout,
                    &[params, &qkv.buffer, &rope, &q.buffer, &k_cache, &v_cache],
                ),
                x: (d as u32 / 2).div_ceil(MIMI_ROPE_WORKGROUP),
                z: 1,
            }));
            steps.push(Step::Kernel(Dispatch {
                label: MimiKernel::Attention.name(),
                pipeline: att_pipeline.clone(),
                bind_group: bind_group(
                    &gpu.device,
                    "mimi attention",
                    &att_layout,
                    &[params, &q.buffer, &k_cache, &v_cache, &att.buffer],
                ),
                x: 1,
                z: tc.num_heads as u32,
            }));
            let out_proj = ConvSpec::linear(
                name("self_attn.out_proj.weight"),
                Act::None,
                Some(name("layer_scale_1.scale")),
            );
            steps.push(Step::Conv(Conv::new(
                gpu,
                weights,
                &out_proj,
                params,
                &att,
                &x2,
                Some(x),
            )?));
            steps.push(norm("norm2", &x2)?);
            let linear1 = ConvSpec::linear(name("linear1.weight"), Act::None, None);
            steps.push(Step::Conv(Conv::new(
                gpu, weights, &linear1, params, &h, &ff, None,
            )?));
            let linear2 = ConvSpec::linear(
                name("linear2.weight"),
                Act::GeluErf,
                Some(name("layer_scale_2.scale")),
            );
            steps.push(Step::Conv(Conv::new(
                gpu,
                weights,
                &linear2,
                params,
                &ff,
                // The last layer's output goes to `out`.
                if layer + 1 == tc.num_layers { out } else { x },
                Some(&x2),
            )?));
            buffers.extend([k_cache, v_cache]);
        }
        let inv_freq = (0..head_dim)
            .step_by(2)
            .map(|i| 1f32 / (tc.max_period as f32).powf(i as f32 / head_dim as f32))
            .collect();
        Ok(Self {
            steps,
            rope,
            inv_freq,
            head_dim,
            positions_per_frame,
            max_frames,
            position: 0,
            _buffers: buffers,
            _signals: vec![x2, h, qkv, q, att, ff],
        })
    }

    /// Uploads this call's RoPE table (`frames` ≤ max_frames) and returns
    /// the stream position of its first column (`ConvParams::start`).
    pub fn prepare(&mut self, queue: &wgpu::Queue, frames: usize) -> Result<u32> {
        if frames == 0 || frames > self.max_frames {
            return Err(GpuError::InvalidInput(format!(
                "1 to {} frames per call, got {frames}",
                self.max_frames
            )));
        }
        let columns = frames * self.positions_per_frame;
        // cos then sin of (position as f32) · inv_freq (f32), as moshi's
        // `RotaryEmbedding::rope` computes them.
        let mut table = Vec::with_capacity(columns * self.head_dim);
        for t in 0..columns {
            let pos = (self.position + t as u64) as f32;
            table.extend(self.inv_freq.iter().map(|f| (pos * f).cos()));
            table.extend(self.inv_freq.iter().map(|f| (pos * f).sin()));
        }
        queue.write_buffer(&self.rope, 0, bytemuck::cast_slice(&table));
        let start = self.position as u32;
        self.position += columns as u64;
        Ok(start)
    }

    pub(crate) fn record(&self, rec: &mut Recorder, frames: usize) {
        let columns = (frames * self.positions_per_frame) as u32;
        for step in &self.steps {
            match step {
                Step::Conv(c) => c.record(rec, frames as u32),
                Step::Kernel(k) => {
                    rec.dispatch(k.label, &k.pipeline, &k.bind_group, [k.x, columns, k.z])
                }
            }
        }
    }

    /// A new stream: positions from 0 (the caches are overwritten before
    /// they are read).
    pub fn reset(&mut self) {
        self.position = 0;
    }
}

/// The transformer alone, on latents from the host (for parity tests):
/// `[512][frames · 2]` in, the same shape out.
pub struct GpuTransformerRunner {
    gpu: Gpu,
    params: wgpu::Buffer,
    x: Signal,
    out: Signal,
    transformer: GpuTransformer,
}

impl GpuTransformerRunner {
    pub fn new(
        gpu: Gpu,
        weights: &SafetensorsFile,
        cfg: &Config,
        max_frames: usize,
    ) -> Result<Self> {
        let params = ConvParams::buffer(&gpu, "mimi transformer params")?;
        let d = cfg.mimi_config().transformer.d_model;
        let x = Signal::new(&gpu, "mimi x", d, 0, 2, max_frames)?;
        let out = Signal::new(&gpu, "mimi out", d, 0, 2, max_frames)?;
        let transformer = GpuTransformer::new(&gpu, weights, cfg, &params, &x, &out, max_frames)?;
        Ok(Self {
            gpu,
            params,
            x,
            out,
            transformer,
        })
    }

    pub async fn step(&mut self, latents: &[f32]) -> Result<Vec<f32>> {
        let d = self.x.channels as usize;
        let columns = latents.len() / d;
        let per = self.x.per_frame as usize;
        if latents.is_empty() || !latents.len().is_multiple_of(d) || !columns.is_multiple_of(per) {
            return Err(GpuError::InvalidInput(format!(
                "{} values are not [{d}][a whole number of frames]",
                latents.len()
            )));
        }
        let frames = columns / per;
        let start = self.transformer.prepare(&self.gpu.queue, frames)?;
        let p = ConvParams {
            frames: frames as u32,
            start,
            ..Default::default()
        };
        self.gpu
            .queue
            .write_buffer(&self.params, 0, bytemuck::bytes_of(&p));
        let row = self.x.row as usize;
        let mut padded = vec![0f32; d * row];
        for (c, r) in latents.chunks_exact(columns).enumerate() {
            padded[c * row..c * row + columns].copy_from_slice(r);
        }
        self.gpu
            .queue
            .write_buffer(&self.x.buffer, 0, bytemuck::cast_slice(&padded));
        let mut enc = self.gpu.encoder("mimi transformer");
        {
            let mut pass = compute_pass(&mut enc, "mimi transformer");
            self.transformer
                .record(&mut Recorder::new(&mut pass), frames);
        }
        self.out
            .submit_and_read_columns(&self.gpu, enc, frames, "transformer output")
            .await
    }

    pub fn reset(&mut self) {
        self.transformer.reset();
    }
}
