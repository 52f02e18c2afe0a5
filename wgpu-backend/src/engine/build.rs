//! Building one LM step: checks that the model fits the kernels, allocates
//! the activations, uploads every weight (dropping each host copy as it
//! goes) and records the step's dispatches in order:
//! embed → per layer [qkv(+norm1), attention(+RoPE, KV append),
//! out_proj(+merge, +residual), linear_in(+norm2, +SiLU gate on its output),
//! linear_out(+residual)] → text head(+out_norm) → end-of-turn heads →
//! argmax.

use std::sync::Arc;

use stt_model::config::Config;
use stt_model::weights::quant::QuantType;
use stt_model::weights::LmWeights;

use super::GpuOptions;
use crate::attention::attention_pipeline;
use crate::device::Gpu;
use crate::error::{GpuError, Result};
use crate::kernels::{self, AttentionShape, GpuFormat};
use crate::matvec::{
    self, MatvecInput, MatvecKey, MatvecOutput, MatvecPipelines, MatvecWeights, RMS_NORM_EPS,
};
use crate::pipelines::{bind_group, bind_layout, pipeline, shader, RO, RW, UNIFORM};
use crate::repack::{self, HostTable, PackedMatrix};
use crate::step_params::StepParams;

/// One recorded dispatch of the step.
pub(super) struct Dispatch {
    /// What it computes (a tensor name without the layer prefix, or the
    /// kernel), for profiles.
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    pub kind: String,
    pub pipeline: Arc<wgpu::ComputePipeline>,
    pub bind_group: wgpu::BindGroup,
    pub workgroups: (u32, u32),
}

/// The step's buffers: the host writes `params` and `audio_rows`, reads
/// `result` (and `logits`); the rest stays on the GPU.
pub(super) struct Activations {
    pub params: wgpu::Buffer,
    /// argmax_heads.wgsl's `Sampling` (engine/mod.rs `SamplingParams`).
    pub sampling: wgpu::Buffer,
    pub audio_rows: wgpu::Buffer,
    /// The token the last argmax chose, read by the next embed.
    prev_token: wgpu::Buffer,
    /// The residual stream.
    x: wgpu::Buffer,
    qkv: wgpu::Buffer,
    attention_partial_out: wgpu::Buffer,
    attention_partial_max_sum: wgpu::Buffer,
    /// silu(a)·b of the MLP.
    mlp_hidden: wgpu::Buffer,
    pub logits: wgpu::Buffer,
    /// [token, end-of-turn probability per head (f32 bits)].
    pub result: wgpu::Buffer,
}

/// What the stepper keeps of a built step.
pub(super) struct StepGraph {
    pub dispatches: Vec<Dispatch>,
    pub activations: Activations,
    /// The 32 audio embedding tables, gathered on the host per step.
    pub audio_tables: Vec<HostTable>,
    pub end_of_turn_heads: usize,
    pub attention: AttentionShape,
    /// Matrix bytes the step reads (the embedding reads one row; norms
    /// are negligible).
    pub weight_bytes: u64,
}

/// Words of the step result: the token, then one per end-of-turn head.
pub(super) fn result_words(end_of_turn_heads: usize) -> usize {
    1 + end_of_turn_heads
}

struct Builder<'a> {
    gpu: &'a Gpu,
    cfg: &'a Config,
    weights: &'a LmWeights,
    quantize: Option<QuantType>,
    matvec: MatvecPipelines,
    /// Lanes per row of each projection.
    lanes: matvec::Lanes,
    attention: AttentionShape,
    weight_bytes: u64,
}

/// Checks, uploads and records the whole step.
pub(super) fn build(
    gpu: &Gpu,
    weights: &LmWeights,
    cfg: &Config,
    opts: &GpuOptions,
) -> Result<StepGraph> {
    let attention = kernels::check_fits(cfg.dim, cfg.num_heads, cfg.context)?;
    let end_of_turn_heads = if weights.has_end_of_turn_heads() {
        cfg.end_of_turn_heads().0
    } else {
        0
    };
    if end_of_turn_heads > kernels::ARGMAX_WORKGROUP {
        return Err(GpuError::Unsupported(format!(
            "{end_of_turn_heads} end-of-turn heads (at most {})",
            kernels::ARGMAX_WORKGROUP
        )));
    }
    let lanes = matvec::lanes(&gpu.caps, opts.matvec_lanes)?;
    let mut builder = Builder {
        gpu,
        cfg,
        weights,
        quantize: opts.quantize,
        matvec: MatvecPipelines::new(gpu, lanes.for_rows(0))?,
        lanes,
        attention,
        weight_bytes: 0,
    };
    let act = builder.allocate_activations(end_of_turn_heads)?;
    let (embed, audio_tables) = builder.embed(&act)?;
    let mut dispatches = vec![embed];
    let attention_pipeline = builder.attention_pipeline();
    for layer in 0..cfg.num_layers {
        dispatches.extend(builder.layer(layer, &act, &attention_pipeline)?);
    }
    dispatches.extend(builder.heads(&act, end_of_turn_heads)?);
    gpu.check()?;
    Ok(StepGraph {
        dispatches,
        activations: act,
        audio_tables,
        end_of_turn_heads,
        attention,
        weight_bytes: builder.weight_bytes,
    })
}

/// Bytes of `n` f32.
fn f32_bytes(n: usize) -> u64 {
    (4 * n) as u64
}

impl Builder<'_> {
    fn allocate_activations(&self, end_of_turn_heads: usize) -> Result<Activations> {
        use wgpu::BufferUsages as Usage;
        let (cfg, gpu) = (self.cfg, self.gpu);
        let d = cfg.dim;
        let AttentionShape { head_dim, splits } = self.attention;
        let (_, head_width) = cfg.end_of_turn_heads();
        Ok(Activations {
            params: gpu.empty_buffer(
                "step params",
                std::mem::size_of::<StepParams>() as u64,
                Usage::UNIFORM | Usage::COPY_DST,
            )?,
            sampling: gpu.empty_buffer("sampling params", 16, Usage::UNIFORM | Usage::COPY_DST)?,
            audio_rows: gpu.empty_buffer(
                "audio rows",
                f32_bytes(cfg.n_q * d),
                Usage::STORAGE | Usage::COPY_DST,
            )?,
            prev_token: gpu.empty_buffer("previous token", 4, Usage::STORAGE)?,
            x: gpu.empty_buffer("residual stream", f32_bytes(d), Usage::STORAGE)?,
            qkv: gpu.empty_buffer("qkv", f32_bytes(3 * d), Usage::STORAGE)?,
            attention_partial_out: gpu.empty_buffer(
                "attention partial outputs",
                f32_bytes(cfg.num_heads * splits * head_dim),
                Usage::STORAGE,
            )?,
            attention_partial_max_sum: gpu.empty_buffer(
                "attention partial max and sum",
                // Read as vec4 (two pairs each): round up to whole vec4s.
                f32_bytes((2 * cfg.num_heads * splits).next_multiple_of(4)),
                Usage::STORAGE,
            )?,
            mlp_hidden: gpu.empty_buffer(
                "mlp hidden (gated)",
                f32_bytes(cfg.ffn_hidden()),
                Usage::STORAGE,
            )?,
            logits: gpu.empty_buffer(
                "logits",
                f32_bytes(cfg.text_card + end_of_turn_heads * head_width),
                Usage::STORAGE | Usage::COPY_SRC,
            )?,
            result: gpu.empty_buffer(
                "step result",
                f32_bytes(result_words(end_of_turn_heads)),
                Usage::STORAGE | Usage::COPY_SRC,
            )?,
        })
    }

    fn vector(&mut self, name: &str) -> Result<wgpu::Buffer> {
        let xs = repack::load_vector(self.weights, name, self.cfg.dim)?;
        self.gpu
            .buffer_with(name, bytemuck::cast_slice(&xs), wgpu::BufferUsages::STORAGE)
    }

    fn load_matrix(&self, name: &str, rows: usize, cols: usize) -> Result<PackedMatrix> {
        repack::load_matrix(self.weights, name, rows, cols, self.quantize)
    }

    /// Uploads a matrix (dropping its host copy) and records its dispatch
    /// reading `x` as `input` says and writing `y` as `output` says.
    fn matvec(
        &mut self,
        m: PackedMatrix,
        (x, input): (&wgpu::Buffer, MatvecInput),
        alpha: Option<&wgpu::Buffer>,
        y: &wgpu::Buffer,
        output: MatvecOutput,
    ) -> Result<Dispatch> {
        let weights = MatvecWeights::upload(self.gpu, m)?;
        self.weight_bytes += weights.bytes();
        let attention = (self.attention.head_dim as u32, self.attention.splits as u32);
        let lanes = self.lanes.for_rows(weights.rows);
        let key = MatvecKey::new(&weights, input, output, attention, lanes);
        let kind = match weights.name.strip_prefix("transformer.layers.") {
            Some(rest) => rest.split_once('.').map_or(rest, |(_, t)| t).to_string(),
            None => weights.name.clone(),
        };
        Ok(Dispatch {
            kind,
            pipeline: self.matvec.get(self.gpu, key, RMS_NORM_EPS),
            bind_group: self.matvec.bind(self.gpu, &weights, x, alpha, y),
            workgroups: (key.workgroups(), 1),
        })
    }

    /// text_emb[token] + Σ audio rows → x. The text table goes to the GPU
    /// (f32); the audio tables stay on the host in their file format.
    fn embed(&mut self, act: &Activations) -> Result<(Dispatch, Vec<HostTable>)> {
        let (cfg, gpu) = (self.cfg, self.gpu);
        let d = cfg.dim;
        let text_emb = self
            .load_matrix("text_emb.weight", cfg.text_card + 1, d)?
            .dequantize();
        let text_emb = gpu.buffer_with(
            "text_emb.weight",
            bytemuck::cast_slice(&text_emb),
            wgpu::BufferUsages::STORAGE,
        )?;
        let layout = bind_layout(&gpu.device, "embed", &[UNIFORM, RO, RO, RO, RW]);
        let module = shader(gpu, "embed", &kernels::embed_source());
        let constants = [("D", d as f64), ("N_Q", cfg.n_q as f64)];
        let dispatch = Dispatch {
            kind: "embed".into(),
            pipeline: Arc::new(pipeline(gpu, "embed", &layout, &module, &constants)),
            bind_group: bind_group(
                &gpu.device,
                "embed",
                &layout,
                &[
                    &act.params,
                    &text_emb,
                    &act.audio_rows,
                    &act.prev_token,
                    &act.x,
                ],
            ),
            workgroups: ((d as u32).div_ceil(256), 1),
        };
        let tables = (0..cfg.n_q)
            .map(|c| {
                let name = format!("emb.{c}.weight");
                HostTable::load(self.weights, &name, cfg.card + 1, d, self.quantize)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((dispatch, tables))
    }

    fn attention_pipeline(&self) -> (wgpu::BindGroupLayout, Arc<wgpu::ComputePipeline>) {
        let (layout, pipeline) =
            attention_pipeline(self.gpu, self.cfg.dim, self.attention, self.cfg.context);
        (layout, Arc::new(pipeline))
    }

    /// One transformer layer: five dispatches.
    fn layer(
        &mut self,
        i: usize,
        act: &Activations,
        (attention_layout, attention_pipeline): &(
            wgpu::BindGroupLayout,
            Arc<wgpu::ComputePipeline>,
        ),
    ) -> Result<[Dispatch; 5]> {
        let cfg = self.cfg;
        let (d, hidden) = (cfg.dim, cfg.ffn_hidden());
        let layer = format!("transformer.layers.{i}");
        let norm1 = self.vector(&format!("{layer}.norm1.alpha"))?;
        let norm2 = self.vector(&format!("{layer}.norm2.alpha"))?;

        let m = self.load_matrix(&format!("{layer}.self_attn.in_proj_weight"), 3 * d, d)?;
        let qkv = self.matvec(
            m,
            (&act.x, MatvecInput::RmsNorm),
            Some(&norm1),
            &act.qkv,
            MatvecOutput::Set(0),
        )?;

        let cache_bytes = f32_bytes(cfg.context * d);
        let storage = wgpu::BufferUsages::STORAGE;
        let k_cache = (self.gpu).empty_buffer(&format!("{layer}.k_cache"), cache_bytes, storage)?;
        let v_cache = (self.gpu).empty_buffer(&format!("{layer}.v_cache"), cache_bytes, storage)?;
        let attention = Dispatch {
            kind: "attention".into(),
            pipeline: attention_pipeline.clone(),
            bind_group: bind_group(
                &self.gpu.device,
                &layer,
                attention_layout,
                &[
                    &act.params,
                    &act.qkv,
                    &k_cache,
                    &v_cache,
                    &act.attention_partial_out,
                    &act.attention_partial_max_sum,
                ],
            ),
            workgroups: (cfg.num_heads as u32, self.attention.splits as u32),
        };

        let m = self.load_matrix(&format!("{layer}.self_attn.out_proj.weight"), d, d)?;
        let out_proj = self.matvec(
            m,
            (&act.attention_partial_out, MatvecInput::AttentionMerge),
            Some(&act.attention_partial_max_sum),
            &act.x,
            MatvecOutput::Add,
        )?;
        let m = self.load_matrix(&format!("{layer}.gating.linear_in.weight"), 2 * hidden, d)?;
        let linear_in = self.matvec(
            m,
            (&act.x, MatvecInput::RmsNorm),
            Some(&norm2),
            &act.mlp_hidden,
            MatvecOutput::Gated,
        )?;
        let m = self.load_matrix(&format!("{layer}.gating.linear_out.weight"), d, hidden)?;
        let linear_out = self.matvec(
            m,
            (&act.mlp_hidden, MatvecInput::Plain),
            None,
            &act.x,
            MatvecOutput::Add,
        )?;
        Ok([qkv, attention, out_proj, linear_in, linear_out])
    }

    /// Text head, end-of-turn heads (stacked into one matrix) and argmax.
    fn heads(&mut self, act: &Activations, end_of_turn_heads: usize) -> Result<Vec<Dispatch>> {
        let (cfg, gpu) = (self.cfg, self.gpu);
        let d = cfg.dim;
        let out_norm = self.vector("out_norm.alpha")?;
        let mut dispatches = vec![];
        let m = self.load_matrix("text_linear.weight", cfg.text_card, d)?;
        dispatches.push(self.matvec(
            m,
            (&act.x, MatvecInput::RmsNorm),
            Some(&out_norm),
            &act.logits,
            MatvecOutput::Set(0),
        )?);
        let (_, head_width) = cfg.end_of_turn_heads();
        if end_of_turn_heads > 0 {
            let parts = (0..end_of_turn_heads)
                .map(|h| self.load_matrix(&format!("extra_heads.{h}.weight"), head_width, d))
                .collect::<Result<Vec<_>>>()?;
            dispatches.push(self.matvec(
                stack("extra_heads", parts),
                (&act.x, MatvecInput::RmsNorm),
                Some(&out_norm),
                &act.logits,
                MatvecOutput::Set(cfg.text_card as u32),
            )?);
        }
        let layout = bind_layout(&gpu.device, "argmax", &[RO, RW, RW, UNIFORM]);
        let module = shader(gpu, "argmax_heads", kernels::ARGMAX_HEADS);
        let constants = [
            ("TEXT_VOCAB", cfg.text_card as f64),
            ("N_HEADS", end_of_turn_heads as f64),
            ("HEAD_WIDTH", head_width as f64),
        ];
        dispatches.push(Dispatch {
            kind: "argmax_heads".into(),
            pipeline: Arc::new(pipeline(gpu, "argmax_heads", &layout, &module, &constants)),
            bind_group: bind_group(
                &gpu.device,
                "argmax",
                &layout,
                &[&act.logits, &act.prev_token, &act.result, &act.sampling],
            ),
            workgroups: (1, 1),
        });
        Ok(dispatches)
    }
}

/// Stacks matrices of one width (the end-of-turn heads) into one; mixed
/// formats fall back to f32.
fn stack(name: &str, parts: Vec<PackedMatrix>) -> PackedMatrix {
    let same = parts.windows(2).all(|w| w[0].format == w[1].format);
    let cols = parts.first().map_or(0, |p| p.cols);
    let rows = parts.iter().map(|p| p.rows).sum();
    if same {
        let format = parts.first().map_or(GpuFormat::F32, |p| p.format);
        PackedMatrix {
            name: name.to_string(),
            format,
            rows,
            cols,
            data: parts.iter().flat_map(|p| p.data.iter().copied()).collect(),
            scales: parts
                .iter()
                .flat_map(|p| p.scales.iter().copied())
                .collect(),
        }
    } else {
        let xs: Vec<f32> = parts.iter().flat_map(|p| p.dequantize()).collect();
        PackedMatrix::from_f32(name, rows, cols, &xs)
    }
}
