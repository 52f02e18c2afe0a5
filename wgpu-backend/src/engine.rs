//! `GpuStepper`: the whole LM step on the GPU, one queue submit per step.
//!
//! Per step (see ARCHITECTURE.md): the host writes the gathered audio
//! embedding rows and a small params block (text-token source, KV slot, RoPE
//! cos/sin of the position), then one compute pass runs
//! embed → 16 × [qkv(+norm1), attention(+RoPE, KV append), out_proj(+residual),
//! linear_in(+norm2), linear_out(+SiLU gate, +residual)] → text head(+out_norm)
//! → end-of-turn heads → argmax. The chosen token stays on the GPU for the
//! next step's embedding; token and probabilities come back through a
//! staging buffer mapped asynchronously, so the host can submit step t+1
//! before reading step t.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use stt_model::config::Config;
use stt_model::stepper::{LmStepper, StepOutput, TextInput};
use stt_model::weights::LmWeights;

use stt_model::weights::quant::QuantType;

use crate::capabilities::{FeatureRequest, Gpu};
use crate::error::{GpuError, Result};
use crate::kernels::{self, MatvecInput, MatvecKey, ShaderFeatures};
use crate::pipelines::{
    bind_group, bind_layout, matvec_pipeline, pipeline, shader, MATVEC_BINDINGS, RO, RW, UNIFORM,
};
use crate::repack::{self, GpuFormat, HostTable, PackedMatrix};

/// The params block every step writes; `StepParams` in embed.wgsl and
/// attention.wgsl.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct StepParams {
    /// 0: use `forced_token`; 1: the token the previous step chose.
    pub text_mode: u32,
    pub forced_token: u32,
    pub kv_slot: u32,
    pub n_keys: u32,
    /// (cos, sin) of RoPE pair 2i and 2i+1 in entry i.
    pub rope: [[f32; 4]; 32],
}

const RESULT_WORDS: u64 = 5;
/// moshi's RmsNorm epsilon (the `EPS` default of matvec.wgsl).
const MATVEC_EPS: f32 = 1e-8;
/// Where the logits start in a staging buffer (after the result words, aligned).
const STAGING_LOGITS_OFFSET: u64 = 32;

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
    /// matvec lanes per row (8, 16, 32); default: the adapter's choice.
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

/// The bandwidth probes' timing: `run(n)` submits n repetitions; n grows
/// ×4 until one submit takes ≥ 50 ms (submit and wake-up latency then stay
/// out of it), then the fastest of three such submits counts (clocks ramp
/// up during the first). Returns (n, seconds).
#[cfg(not(target_arch = "wasm32"))]
fn best_timing(run: impl Fn(usize) -> Result<f64>) -> Result<(usize, f64)> {
    let mut n = 1;
    let mut secs = run(n)?;
    while secs < 0.05 && n < 4096 {
        n *= 4;
        secs = run(n)?;
    }
    for _ in 0..2 {
        secs = secs.min(run(n)?);
    }
    Ok((n, secs))
}

/// RoPE's inverse frequencies, as moshi computes them (f32).
pub(crate) fn rope_inv_freq(head_dim: usize, max_period: f32) -> Vec<f32> {
    (0..head_dim)
        .step_by(2)
        .map(|i| 1f32 / max_period.powf(i as f32 / head_dim as f32))
        .collect()
}

/// `StepParams::rope` for a position: as moshi, the position as f32 times
/// inv_freq (f32), then sin/cos.
pub(crate) fn rope_table(inv_freq: &[f32], position: u64) -> [[f32; 4]; 32] {
    let mut rope = [[0f32; 4]; 32];
    let pos = position as f32;
    for (p, inv) in inv_freq.iter().enumerate() {
        let f = pos * inv;
        let (s, c) = (f.sin(), f.cos());
        rope[p / 2][2 * (p % 2)] = c;
        rope[p / 2][2 * (p % 2) + 1] = s;
    }
    rope
}

/// Where a matvec's rows go.
#[derive(Debug, Clone, Copy)]
enum Out {
    /// y[offset + r] = row r.
    Set(u32),
    /// y[r] += row r (residual).
    Add,
    /// y[p] = silu(row p) · row (p + rows/2) (moshi's gated MLP).
    Gated,
}

struct Dispatch {
    /// What it computes (a tensor name without the layer prefix, or the
    /// kernel), for profiles (native only).
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    kind: String,
    pipeline: Arc<wgpu::ComputePipeline>,
    bind_group: wgpu::BindGroup,
    workgroups: (u32, u32),
}

struct Pending {
    staging: wgpu::Buffer,
    submission: wgpu::SubmissionIndex,
    done: flume::Receiver<std::result::Result<(), wgpu::BufferAsyncError>>,
    with_logits: bool,
}

pub struct GpuStepper {
    gpu: Gpu,
    dispatches: Vec<Dispatch>,
    params: wgpu::Buffer,
    audio_rows: wgpu::Buffer,
    result: wgpu::Buffer,
    logits: wgpu::Buffer,
    audio_tables: Vec<HostTable>,
    rope_inv_freq: Vec<f32>,
    text_vocab: u32,
    text_in_vocab: u32,
    start_token: u32,
    context: usize,
    n_heads_extra: usize,
    position: u64,
    first_step_done: bool,
    keep_logits: bool,
    max_in_flight: usize,
    pending: VecDeque<Pending>,
    free_staging: Vec<(wgpu::Buffer, bool)>,
    rows_scratch: Vec<f32>,
    weight_bytes: u64,
    dispatches_per_step: usize,
}

struct Builder<'a> {
    gpu: &'a Gpu,
    matvec_layout: wgpu::BindGroupLayout,
    modules: HashMap<GpuFormat, wgpu::ShaderModule>,
    pipelines: HashMap<MatvecKey, Arc<wgpu::ComputePipeline>>,
    features: ShaderFeatures,
    /// (head dim, splits) of attention.wgsl, for the merging matvec.
    attention: (u32, u32),
    lanes: u32,
    dummy: wgpu::Buffer,
    weight_bytes: u64,
}

impl Builder<'_> {
    fn buffer(
        &mut self,
        name: &str,
        bytes: &[u8],
        usage: wgpu::BufferUsages,
    ) -> Result<wgpu::Buffer> {
        self.gpu.buffer_with(name, bytes, usage)
    }

    fn empty(&mut self, name: &str, bytes: u64, usage: wgpu::BufferUsages) -> Result<wgpu::Buffer> {
        self.gpu.empty_buffer(name, bytes, usage)
    }

    /// Uploads a matrix (dropping its host copy) and returns its dispatch
    /// writing into `y` as `out` says.
    fn matvec(
        &mut self,
        m: PackedMatrix,
        input: (&wgpu::Buffer, MatvecInput),
        alpha: Option<&wgpu::Buffer>,
        y: &wgpu::Buffer,
        out: Out,
    ) -> Result<Dispatch> {
        let (residual, y_offset) = match out {
            Out::Set(offset) => (false, offset),
            Out::Add => (true, 0),
            Out::Gated => (false, 0),
        };
        let key = MatvecKey {
            format: m.format,
            k: m.cols as u32,
            rows: m.rows as u32,
            input: input.1,
            residual,
            y_offset,
            head_dim: if input.1 == MatvecInput::AttentionMerge {
                self.attention.0
            } else {
                1
            },
            splits: if input.1 == MatvecInput::AttentionMerge {
                self.attention.1
            } else {
                1
            },
            gated_output: matches!(out, Out::Gated),
            lanes: self.lanes,
        };
        let data = self.buffer(&m.name, &m.data, wgpu::BufferUsages::STORAGE)?;
        let scales = match m.format {
            GpuFormat::F32 | GpuFormat::F16 => None,
            GpuFormat::Q8 | GpuFormat::Q4 => Some(self.buffer(
                &format!("{}.scales", m.name),
                &m.scales,
                wgpu::BufferUsages::STORAGE,
            )?),
        };
        self.weight_bytes += (m.data.len() + m.scales.len()) as u64;
        let pipeline = match self.pipelines.get(&key) {
            Some(p) => p.clone(),
            None => {
                let features = self.features;
                let module = self
                    .modules
                    .entry(m.format)
                    .or_insert_with(|| {
                        shader(
                            self.gpu,
                            "matvec",
                            &kernels::matvec_source(m.format, features),
                        )
                    })
                    .clone();
                let p = Arc::new(matvec_pipeline(
                    self.gpu,
                    &self.matvec_layout,
                    &module,
                    &key,
                    MATVEC_EPS,
                ));
                self.pipelines.insert(key, p.clone());
                p
            }
        };
        let dummy = &self.dummy;
        let bg = bind_group(
            &self.gpu.device,
            &m.name,
            &self.matvec_layout,
            &[
                &data,
                scales.as_ref().unwrap_or(dummy),
                input.0,
                alpha.unwrap_or(dummy),
                y,
            ],
        );
        let workgroups = key.workgroups();
        let kind = match m.name.strip_prefix("transformer.layers.") {
            Some(rest) => rest.split_once('.').map_or(rest, |(_, t)| t).to_string(),
            None => m.name.clone(),
        };
        Ok(Dispatch {
            kind,
            pipeline,
            bind_group: bg,
            workgroups: (workgroups, 1),
        })
    }
}

/// Stacks matrices of one width (the end-of-turn heads) into one.
fn stack(name: &str, parts: Vec<PackedMatrix>) -> PackedMatrix {
    let same = parts.windows(2).all(|w| w[0].format == w[1].format);
    let cols = parts.first().map_or(0, |p| p.cols);
    let rows = parts.iter().map(|p| p.rows).sum();
    if same {
        let format = parts.first().map_or(GpuFormat::F32, |p| p.format);
        let data = parts.iter().flat_map(|p| p.data.iter().copied()).collect();
        let scales = parts
            .iter()
            .flat_map(|p| p.scales.iter().copied())
            .collect();
        PackedMatrix {
            name: name.to_string(),
            format,
            rows,
            cols,
            data,
            scales,
        }
    } else {
        let xs: Vec<f32> = parts.iter().flat_map(|p| p.dequantize()).collect();
        PackedMatrix {
            name: name.to_string(),
            format: GpuFormat::F32,
            rows,
            cols,
            data: bytemuck::cast_slice(&xs).to_vec(),
            scales: vec![],
        }
    }
}

impl GpuStepper {
    pub async fn new(weights: &LmWeights, cfg: &Config, opts: GpuOptions) -> Result<Self> {
        let gpu = Gpu::new(opts.force_fallback_adapter, opts.features).await?;
        Self::with_gpu(gpu, weights, cfg, opts)
    }

    pub fn with_gpu(
        mut gpu: Gpu,
        weights: &LmWeights,
        cfg: &Config,
        opts: GpuOptions,
    ) -> Result<Self> {
        if let Some(limit) = opts.max_binding_bytes {
            let c = &mut gpu.caps;
            c.max_storage_buffer_binding_size = c.max_storage_buffer_binding_size.min(limit);
        }
        let d = cfg.dim;
        let head_dim = d / cfg.num_heads;
        let hidden = cfg.ffn_hidden();
        if head_dim > kernels::ATTENTION_MAX_HEAD_DIM || !head_dim.is_multiple_of(16) {
            return Err(GpuError::Unsupported(format!(
                "head dim {head_dim} (at most {} and a multiple of 16)",
                kernels::ATTENTION_MAX_HEAD_DIM
            )));
        }
        let splits = cfg.context.div_ceil(kernels::ATTENTION_CHUNK);
        if d > kernels::MATVEC_INPUT_CACHE
            || cfg.num_heads * splits > kernels::MATVEC_MAX_SPLIT_WEIGHTS
        {
            return Err(GpuError::Unsupported(format!(
                "dim {d} with {} heads × {splits} key splits (at most {} and {})",
                cfg.num_heads,
                kernels::MATVEC_INPUT_CACHE,
                kernels::MATVEC_MAX_SPLIT_WEIGHTS
            )));
        }
        if cfg.context > kernels::ATTENTION_MAX_CONTEXT {
            return Err(GpuError::Unsupported(format!(
                "context {} (at most {})",
                cfg.context,
                kernels::ATTENTION_MAX_CONTEXT
            )));
        }
        let dev = gpu.device.clone();
        let matvec_layout = bind_layout(&dev, "matvec", &MATVEC_BINDINGS);
        let dummy = dev.create_buffer(&wgpu::BufferDescriptor {
            label: Some("dummy"),
            size: 16,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
        let q = opts.quantize;
        let mut b = Builder {
            gpu: &gpu,
            matvec_layout,
            modules: HashMap::new(),
            pipelines: HashMap::new(),
            features: ShaderFeatures {
                f16: gpu.caps.shader_f16,
                subgroups: gpu.caps.subgroups,
            },
            attention: (head_dim as u32, splits as u32),
            lanes: gpu.caps.matvec_lanes(opts.matvec_lanes)?,
            dummy,
            weight_bytes: 0,
        };
        use wgpu::BufferUsages as U;
        let f4 = |n: usize| (4 * n) as u64;

        let params = b.empty(
            "step params",
            std::mem::size_of::<StepParams>() as u64,
            U::UNIFORM | U::COPY_DST,
        )?;
        let audio_rows = b.empty("audio rows", f4(cfg.n_q * d), U::STORAGE | U::COPY_DST)?;
        let prev_token = b.empty("previous token", 4, U::STORAGE)?;
        let x = b.empty("residual stream", f4(d), U::STORAGE)?;
        let qkv = b.empty("qkv", f4(3 * d), U::STORAGE)?;
        let attn_o = b.empty(
            "attention partial outputs",
            f4(cfg.num_heads * splits * head_dim),
            U::STORAGE,
        )?;
        let attn_ml = b.empty(
            "attention partial max and sum",
            // Read as vec4 (two pairs each): round up to whole vec4s.
            f4((2 * cfg.num_heads * splits).next_multiple_of(4)),
            U::STORAGE,
        )?;
        let ffn = b.empty("mlp hidden (gated)", f4(hidden), U::STORAGE)?;
        let has_vad = weights.contains("extra_heads.0.weight");
        let n_heads_extra = if has_vad {
            cfg.extra_heads_num_heads
                .unwrap_or(stt_model::config::VAD_HEADS)
        } else {
            0
        };
        let head_width = cfg
            .extra_heads_dim
            .unwrap_or(stt_model::config::VAD_HEAD_DIM);
        let logits = b.empty(
            "logits",
            f4(cfg.text_card + n_heads_extra * head_width),
            U::STORAGE | U::COPY_SRC,
        )?;
        let result = b.empty("step result", 4 * RESULT_WORDS, U::STORAGE | U::COPY_SRC)?;

        let mut dispatches = vec![];
        // Embedding.
        let text_emb =
            repack::load_matrix(weights, "text_emb.weight", cfg.text_card + 1, d, q)?.dequantize();
        let text_emb = b.buffer(
            "text_emb.weight",
            bytemuck::cast_slice(&text_emb),
            U::STORAGE,
        )?;
        let embed_layout = bind_layout(&dev, "embed", &[UNIFORM, RO, RO, RO, RW]);
        let embed_module = shader(&gpu, "embed", &kernels::embed_source());
        let embed = Arc::new(pipeline(
            &gpu,
            "embed",
            &embed_layout,
            &embed_module,
            &[("D", d as f64), ("N_Q", cfg.n_q as f64)],
        ));
        dispatches.push(Dispatch {
            kind: "embed".into(),
            pipeline: embed,
            bind_group: bind_group(
                &dev,
                "embed",
                &embed_layout,
                &[&params, &text_emb, &audio_rows, &prev_token, &x],
            ),
            workgroups: ((d as u32).div_ceil(256), 1),
        });
        let audio_tables = (0..cfg.n_q)
            .map(|c| HostTable::load(weights, &format!("emb.{c}.weight"), cfg.card + 1, d, q))
            .collect::<Result<Vec<_>>>()?;

        let attn_layout = bind_layout(&dev, "attention", &[UNIFORM, RO, RW, RW, RW, RW]);
        let attn_module = shader(&gpu, "attention", &kernels::attention_source());
        let attn_pipeline = Arc::new(pipeline(
            &gpu,
            "attention",
            &attn_layout,
            &attn_module,
            &[
                ("D", d as f64),
                ("HEAD_DIM", head_dim as f64),
                ("CONTEXT", cfg.context as f64),
            ],
        ));
        for i in 0..cfg.num_layers {
            let p = format!("transformer.layers.{i}");
            let norm1 = repack::load_vector(weights, &format!("{p}.norm1.alpha"), d)?;
            let norm1 = b.buffer(
                &format!("{p}.norm1.alpha"),
                bytemuck::cast_slice(&norm1),
                U::STORAGE,
            )?;
            let norm2 = repack::load_vector(weights, &format!("{p}.norm2.alpha"), d)?;
            let norm2 = b.buffer(
                &format!("{p}.norm2.alpha"),
                bytemuck::cast_slice(&norm2),
                U::STORAGE,
            )?;
            let m = repack::load_matrix(
                weights,
                &format!("{p}.self_attn.in_proj_weight"),
                3 * d,
                d,
                q,
            )?;
            dispatches.push(b.matvec(
                m,
                (&x, MatvecInput::RmsNorm),
                Some(&norm1),
                &qkv,
                Out::Set(0),
            )?);
            let k_cache = b.empty(&format!("{p}.k_cache"), f4(cfg.context * d), U::STORAGE)?;
            let v_cache = b.empty(&format!("{p}.v_cache"), f4(cfg.context * d), U::STORAGE)?;
            dispatches.push(Dispatch {
                kind: "attention".into(),
                pipeline: attn_pipeline.clone(),
                bind_group: bind_group(
                    &dev,
                    &p,
                    &attn_layout,
                    &[&params, &qkv, &k_cache, &v_cache, &attn_o, &attn_ml],
                ),
                workgroups: (cfg.num_heads as u32, splits as u32),
            });
            let m =
                repack::load_matrix(weights, &format!("{p}.self_attn.out_proj.weight"), d, d, q)?;
            dispatches.push(b.matvec(
                m,
                (&attn_o, MatvecInput::AttentionMerge),
                Some(&attn_ml),
                &x,
                Out::Add,
            )?);
            let m = repack::load_matrix(
                weights,
                &format!("{p}.gating.linear_in.weight"),
                2 * hidden,
                d,
                q,
            )?;
            dispatches.push(b.matvec(
                m,
                (&x, MatvecInput::RmsNorm),
                Some(&norm2),
                &ffn,
                Out::Gated,
            )?);
            let m = repack::load_matrix(
                weights,
                &format!("{p}.gating.linear_out.weight"),
                d,
                hidden,
                q,
            )?;
            dispatches.push(b.matvec(m, (&ffn, MatvecInput::Plain), None, &x, Out::Add)?);
        }
        let out_norm = repack::load_vector(weights, "out_norm.alpha", d)?;
        let out_norm = b.buffer(
            "out_norm.alpha",
            bytemuck::cast_slice(&out_norm),
            U::STORAGE,
        )?;
        let m = repack::load_matrix(weights, "text_linear.weight", cfg.text_card, d, q)?;
        dispatches.push(b.matvec(
            m,
            (&x, MatvecInput::RmsNorm),
            Some(&out_norm),
            &logits,
            Out::Set(0),
        )?);
        if n_heads_extra > 0 {
            let parts = (0..n_heads_extra)
                .map(|h| {
                    repack::load_matrix(
                        weights,
                        &format!("extra_heads.{h}.weight"),
                        head_width,
                        d,
                        q,
                    )
                })
                .collect::<Result<Vec<_>>>()?;
            let m = stack("extra_heads", parts);
            dispatches.push(b.matvec(
                m,
                (&x, MatvecInput::RmsNorm),
                Some(&out_norm),
                &logits,
                Out::Set(cfg.text_card as u32),
            )?);
        }
        let argmax_layout = bind_layout(&dev, "argmax", &[RO, RW, RW]);
        let argmax_module = shader(&gpu, "argmax_heads", kernels::ARGMAX_HEADS);
        let argmax = Arc::new(pipeline(
            &gpu,
            "argmax_heads",
            &argmax_layout,
            &argmax_module,
            &[
                ("TEXT_VOCAB", cfg.text_card as f64),
                ("N_HEADS", n_heads_extra as f64),
                ("HEAD_WIDTH", head_width as f64),
            ],
        ));
        dispatches.push(Dispatch {
            kind: "argmax_heads".into(),
            pipeline: argmax,
            bind_group: bind_group(
                &dev,
                "argmax",
                &argmax_layout,
                &[&logits, &prev_token, &result],
            ),
            workgroups: (1, 1),
        });
        let weight_bytes = b.weight_bytes;
        drop(b);
        gpu.check()?;

        let rope_inv_freq = rope_inv_freq(head_dim, cfg.max_period as f32);
        let dispatches_per_step = dispatches.len();
        Ok(Self {
            gpu,
            dispatches,
            params,
            audio_rows,
            result,
            logits,
            audio_tables,
            rope_inv_freq,
            text_vocab: cfg.text_card as u32,
            text_in_vocab: cfg.text_card as u32 + 1,
            start_token: cfg.text_start_token(),
            context: cfg.context,
            n_heads_extra,
            position: 0,
            first_step_done: false,
            keep_logits: false,
            max_in_flight: opts.max_in_flight,
            pending: VecDeque::new(),
            free_staging: vec![],
            rows_scratch: Vec::with_capacity(cfg.n_q * d),
            weight_bytes,
            dispatches_per_step,
        })
    }

    /// Device-to-device copy bandwidth (bytes read + written per second, in
    /// GB/s) over a 256 MiB buffer, or the largest the adapter allows,
    /// timed by `best_timing`.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn measure_copy_bandwidth_gbps(&self) -> Result<f64> {
        let dev = &self.gpu.device;
        let size = (256u64 << 20).min(self.gpu.caps.max_buffer_size / 2) & !3;
        let mk = |label| {
            dev.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size,
                usage: wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        };
        let (a, b) = (mk("bandwidth a"), mk("bandwidth b"));
        let run = |n: usize| -> Result<f64> {
            let mut enc = dev.create_command_encoder(&Default::default());
            for i in 0..n {
                let (src, dst) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
                enc.copy_buffer_to_buffer(src, 0, dst, 0, size);
            }
            self.time_submit(enc.finish())
        };
        let (n, secs) = best_timing(run)?;
        self.gpu.check()?;
        Ok(n as f64 * 2.0 * size as f64 / secs / 1e9)
    }

    /// Read bandwidth of a compute kernel streaming a 256 MiB buffer (or
    /// the largest the adapter binds) with 16-byte loads, in GB/s: the
    /// ceiling of a weight-streaming step, timed by `best_timing`.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn measure_read_bandwidth_gbps(&self) -> Result<f64> {
        let caps = &self.gpu.caps;
        let size = (256u64 << 20)
            .min(caps.max_storage_buffer_binding_size)
            .min(caps.max_buffer_size)
            & !15;
        let groups = 1024u32;
        let dev = &self.gpu.device;
        let src = dev.create_buffer(&wgpu::BufferDescriptor {
            label: Some("read bandwidth source"),
            size,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
        let sink = dev.create_buffer(&wgpu::BufferDescriptor {
            label: Some("read bandwidth sink"),
            size: 4 * 256 * groups as u64,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
        let layout = bind_layout(dev, "read bandwidth", &[RO, RW]);
        let module = shader(&self.gpu, "read bandwidth", kernels::READ_BANDWIDTH);
        let pipe = pipeline(&self.gpu, "read bandwidth", &layout, &module, &[]);
        let bg = bind_group(dev, "read bandwidth", &layout, &[&src, &sink]);
        let run = |n: usize| -> Result<f64> {
            let mut enc = dev.create_command_encoder(&Default::default());
            {
                let mut pass = enc.begin_compute_pass(&Default::default());
                pass.set_pipeline(&pipe);
                pass.set_bind_group(0, &bg, &[]);
                for _ in 0..n {
                    pass.dispatch_workgroups(groups, 1, 1);
                }
            }
            self.time_submit(enc.finish())
        };
        let (n, secs) = best_timing(run)?;
        self.gpu.check()?;
        Ok(n as f64 * size as f64 / secs / 1e9)
    }

    /// Wall time of one submit, until the device is idle again.
    #[cfg(not(target_arch = "wasm32"))]
    fn time_submit(&self, cmd: wgpu::CommandBuffer) -> Result<f64> {
        let t = std::time::Instant::now();
        self.gpu.queue.submit([cmd]);
        self.gpu
            .device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| GpuError::DeviceLost(e.to_string()))?;
        Ok(t.elapsed().as_secs_f64())
    }

    /// Destroys the device, as a driver reset or an unplugged GPU would:
    /// every later call reports `DeviceLost` (for tests of that path).
    pub fn destroy_device(&self) {
        self.gpu.device.destroy();
    }

    pub fn capabilities(&self) -> &crate::capabilities::Capabilities {
        &self.gpu.caps
    }

    /// Weight bytes the step reads (all of them, once).
    pub fn weight_bytes(&self) -> u64 {
        self.weight_bytes
    }

    pub fn dispatches_per_step(&self) -> usize {
        self.dispatches_per_step
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
        let rope = rope_table(&self.rope_inv_freq, self.position);
        let ctx = self.context as u64;
        Ok(StepParams {
            text_mode,
            forced_token,
            kv_slot: (self.position % ctx) as u32,
            n_keys: (self.position + 1).min(ctx) as u32,
            rope,
        })
    }

    fn submit_step(&mut self, text: TextInput, audio_codes: &[u32]) -> Result<()> {
        self.submit_step_with(text, audio_codes, None)
    }

    /// One step, every dispatch timed on the GPU: (kind, ns) in dispatch
    /// order. Needs `FeatureRequest::timestamps` and an adapter that has
    /// timestamp queries inside passes; blocks (native benchmarks only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn profile_step(&mut self, audio_codes: &[u32]) -> Result<Vec<(String, f64)>> {
        if !self.gpu.caps.timestamps {
            return Err(GpuError::Unsupported(
                "timestamp queries inside passes are not enabled on this device".into(),
            ));
        }
        while !self.pending.is_empty() {
            pollster::block_on(self.receive_step())?;
        }
        let n = self.dispatches.len() as u32 + 1;
        let set = self.gpu.device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("step profile"),
            ty: wgpu::QueryType::Timestamp,
            count: n,
        });
        let text = if self.first_step_done {
            TextInput::Previous
        } else {
            TextInput::Start
        };
        self.submit_step_with(text, audio_codes, Some(&set))?;
        let bytes = 8 * n as u64;
        let resolved = self.gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("profile resolve"),
            size: bytes,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let staging = self.gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("profile staging"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc = self.gpu.device.create_command_encoder(&Default::default());
        enc.resolve_query_set(&set, 0..n, &resolved, 0);
        enc.copy_buffer_to_buffer(&resolved, 0, &staging, 0, bytes);
        let submission = self.gpu.queue.submit([enc.finish()]);
        let (tx, rx) = flume::bounded(1);
        staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        pollster::block_on(self.receive_step())?;
        pollster::block_on(wait(&self.gpu, &rx, &submission))?
            .map_err(|e| GpuError::Wgpu(format!("reading the profile: {e}")))?;
        let view = staging
            .slice(..)
            .get_mapped_range()
            .map_err(|e| GpuError::Wgpu(format!("reading the profile: {e}")))?;
        let ticks: Vec<u64> = bytemuck::pod_collect_to_vec(&view[..]);
        let period = self.gpu.queue.get_timestamp_period() as f64;
        Ok(self
            .dispatches
            .iter()
            .zip(ticks.windows(2))
            .map(|(d, t)| (d.kind.clone(), t[1].saturating_sub(t[0]) as f64 * period))
            .collect())
    }

    fn submit_step_with(
        &mut self,
        text: TextInput,
        audio_codes: &[u32],
        timestamps: Option<&wgpu::QuerySet>,
    ) -> Result<()> {
        self.gpu.check()?;
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
        let q = &self.gpu.queue;
        q.write_buffer(
            &self.audio_rows,
            0,
            bytemuck::cast_slice(&self.rows_scratch),
        );
        q.write_buffer(&self.params, 0, bytemuck::bytes_of(&params));

        let with_logits = self.keep_logits;
        let staging = match self
            .free_staging
            .iter()
            .position(|(_, l)| *l == with_logits)
        {
            Some(i) => self.free_staging.swap_remove(i).0,
            None => {
                let size = if with_logits {
                    STAGING_LOGITS_OFFSET + 4 * self.text_vocab as u64
                } else {
                    4 * RESULT_WORDS
                };
                self.gpu.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("step staging"),
                    size,
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                })
            }
        };
        let mut enc = self
            .gpu
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("lm step"),
            });
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("lm step"),
                timestamp_writes: None,
            });
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
        enc.copy_buffer_to_buffer(&self.result, 0, &staging, 0, 4 * RESULT_WORDS);
        if with_logits {
            enc.copy_buffer_to_buffer(
                &self.logits,
                0,
                &staging,
                STAGING_LOGITS_OFFSET,
                4 * self.text_vocab as u64,
            );
        }
        let submission = q.submit([enc.finish()]);
        let (tx, rx) = flume::bounded(1);
        staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.pending.push_back(Pending {
            staging,
            submission,
            done: rx,
            with_logits,
        });
        self.position += 1;
        self.first_step_done = true;
        Ok(())
    }

    async fn receive_step(&mut self) -> Result<StepOutput> {
        let p = self
            .pending
            .pop_front()
            .ok_or_else(|| GpuError::InvalidInput("receive with no step in flight".into()))?;
        let mapped = wait(&self.gpu, &p.done, &p.submission).await;
        let mapped = match mapped {
            Ok(r) => r.map_err(|e| GpuError::Wgpu(format!("reading the step result: {e}"))),
            Err(e) => Err(e),
        };
        if let Err(e) = mapped {
            self.gpu.check()?;
            return Err(e);
        }
        let out = {
            let view = p
                .staging
                .slice(..)
                .get_mapped_range()
                .map_err(|e| GpuError::Wgpu(format!("reading the step result: {e}")))?;
            let words: &[u32] = bytemuck::cast_slice(&view[..4 * RESULT_WORDS as usize]);
            let text_token = words[0];
            let end_of_turn = words[1..1 + self.n_heads_extra]
                .iter()
                .map(|w| f32::from_bits(*w))
                .collect();
            let text_logits = p.with_logits.then(|| {
                let at = STAGING_LOGITS_OFFSET as usize;
                bytemuck::cast_slice::<u8, f32>(&view[at..at + 4 * self.text_vocab as usize])
                    .to_vec()
            });
            StepOutput {
                text_token,
                end_of_turn,
                text_logits,
            }
        };
        p.staging.unmap();
        self.free_staging.push((p.staging, p.with_logits));
        self.gpu.check()?;
        Ok(out)
    }
}

/// How long a native wait for the GPU may take before it is reported as a
/// hang (a full-size step on a CPU Vulkan takes seconds, not minutes).
#[cfg(not(target_arch = "wasm32"))]
const GPU_WAIT_LIMIT: std::time::Duration = std::time::Duration::from_secs(120);

/// Waits for a map callback: natively by polling the device until
/// `submission` (the one that queued the map's copy) is done — not the
/// latest submission, so a step submitted after it keeps running — and in
/// a browser by yielding to the event loop.
pub(crate) async fn wait<T>(
    gpu: &Gpu,
    rx: &flume::Receiver<T>,
    submission: &wgpu::SubmissionIndex,
) -> Result<T> {
    #[cfg(not(target_arch = "wasm32"))]
    loop {
        match rx.try_recv() {
            Ok(v) => return Ok(v),
            Err(flume::TryRecvError::Empty) => {
                let poll = wgpu::PollType::Wait {
                    submission_index: Some(submission.clone()),
                    timeout: Some(GPU_WAIT_LIMIT),
                };
                // A failed submission shows up here as a poll error; the
                // validation error behind it says more.
                if let Err(e) = gpu.device.poll(poll) {
                    gpu.check()?;
                    return Err(match e {
                        wgpu::PollError::Timeout => GpuError::DeviceLost(format!(
                            "the GPU did not finish in {} s",
                            GPU_WAIT_LIMIT.as_secs()
                        )),
                        e => GpuError::DeviceLost(e.to_string()),
                    });
                }
            }
            Err(flume::TryRecvError::Disconnected) => {
                gpu.check()?;
                return Err(GpuError::DeviceLost(
                    "the step result callback was dropped".into(),
                ));
            }
        }
    }
    #[cfg(target_arch = "wasm32")]
    {
        let _ = (gpu, submission);
        rx.recv_async()
            .await
            .map_err(|_| GpuError::DeviceLost("the step result callback was dropped".into()))
    }
}

impl LmStepper for GpuStepper {
    fn submit(&mut self, text: TextInput, audio_codes: &[u32]) -> stt_model::Result<()> {
        Ok(self.submit_step(text, audio_codes)?)
    }

    async fn receive(&mut self) -> stt_model::Result<StepOutput> {
        Ok(self.receive_step().await?)
    }

    fn in_flight(&self) -> usize {
        self.pending.len()
    }

    fn max_in_flight(&self) -> usize {
        self.max_in_flight
    }

    fn reset(&mut self) -> stt_model::Result<()> {
        // Results still in flight belong to the old stream: wait them out.
        while !self.pending.is_empty() {
            if crate::block_on_native(self.receive_step()).is_none() {
                self.pending.clear();
            }
        }
        self.position = 0;
        self.first_step_done = false;
        Ok(())
    }

    fn has_end_of_turn(&self) -> bool {
        self.n_heads_extra > 0
    }

    fn keep_logits(&mut self, keep: bool) {
        self.keep_logits = keep;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// StepParams must match the WGSL struct: 4 u32 then array<vec4<f32>, 32> at offset 16.
    #[test]
    fn step_params_layout() {
        assert_eq!(std::mem::size_of::<StepParams>(), 16 + 32 * 16);
        assert_eq!(std::mem::offset_of!(StepParams, rope), 16);
    }
}
