//! Building one LM step: checks that the model fits the kernels, allocates
//! the activations, uploads every weight (dropping each host copy as it
//! goes) and records the step's dispatches in order:
//! embed → per layer [qkv(+norm1), attention(+RoPE, KV append),
//! out_proj(+merge, +residual), linear_in(+norm2, +SiLU gate on its output),
//! linear_out(+residual)] → text head(+out_norm) → end-of-turn heads →
//! argmax. Every activation has one slice per stream of the batch
//! (`GpuOptions::streams`); each dispatch runs over the streams along its
//! grid's z, sharing the weights.

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
    self, MatvecInput, MatvecKey, MatvecOutput, MatvecPipelines, MatvecWeights, StreamStrides,
    RMS_NORM_EPS,
};
use crate::pipelines::{bind_group, bind_layout, pipeline, shader, RO, RW};
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
    /// Per stream (the grid's z is the batch's streams).
    pub workgroups: (u32, u32),
    /// Streams per workgroup along z (4 for the batched matvec, else 1).
    pub streams_per_workgroup: u32,
}

/// The step's buffers, each with one slice per stream: the host writes
/// `params` and `audio_rows`, reads `result` (and `logits`); the rest stays
/// on the GPU.
pub(super) struct Activations {
    /// `StepParams` per stream.
    pub params: wgpu::Buffer,
    pub audio_rows: wgpu::Buffer,
    /// The token each stream's last argmax chose, read by its next embed.
    prev_token: wgpu::Buffer,
    /// The residual stream.
    x: wgpu::Buffer,
    qkv: wgpu::Buffer,
    attention_partial_out: wgpu::Buffer,
    attention_partial_max_sum: wgpu::Buffer,
    /// The merged attention output per stream (batched matvec only: a lone
    /// stream's out-projection merges in its prologue).
    attention_merged: Option<wgpu::Buffer>,
    /// silu(a)·b of the MLP.
    mlp_hidden: wgpu::Buffer,
    /// Per stream `logits_stride` f32: text logits, then the end-of-turn heads'.
    pub logits: wgpu::Buffer,
    /// Per stream [token, end-of-turn probability per head (f32 bits)].
    pub result: wgpu::Buffer,
}

impl Activations {
    fn bytes(&self) -> u64 {
        [
            &self.params,
            &self.audio_rows,
            &self.prev_token,
            &self.x,
            &self.qkv,
            &self.attention_partial_out,
            &self.attention_partial_max_sum,
            &self.mlp_hidden,
            &self.logits,
            &self.result,
        ]
        .iter()
        .map(|b| b.size())
        .sum::<u64>()
            + self.attention_merged.as_ref().map_or(0, |b| b.size())
    }
}

/// What the stepper keeps of a built step.
pub(super) struct StepGraph {
    pub dispatches: Vec<Dispatch>,
    pub activations: Activations,
    /// The 32 audio embedding tables, gathered on the host per step.
    pub audio_tables: Vec<HostTable>,
    pub end_of_turn_heads: usize,
    /// f32s between two streams' logits.
    pub logits_stride: usize,
    pub attention: AttentionShape,
    /// Matrix bytes the step reads (the embedding reads one row; norms
    /// are negligible).
    pub weight_bytes: u64,
    /// KV caches and activations, all streams.
    pub activation_bytes: u64,
    /// The projections run matvec_batch.wgsl (four streams per workgroup).
    pub batched_matvec: bool,
}

/// The most streams one engine steps: a grid's z is the stream, and every
/// WebGPU adapter allows 65535 workgroups per dimension. (Memory runs out
/// far earlier: each stream has its own KV cache, checked at allocation.)
pub const MAX_STREAMS: usize = 65535;

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
    kv: kernels::KvPrecision,
    streams: usize,
    /// Streams the activations hold: `streams`, rounded up to whole
    /// groups of the batched matvec when it runs.
    allocated_streams: usize,
    /// Projections run matvec_batch.wgsl.
    batch: bool,
    /// Its rows per invocation, where asked (else by grid size).
    batch_rows: Option<u32>,
    /// attention_merge.wgsl's layout and pipeline (batched only), built once.
    merge_pipeline: Option<(wgpu::BindGroupLayout, Arc<wgpu::ComputePipeline>)>,
    weight_bytes: u64,
    activation_bytes: u64,
}

/// f32 pairs between two streams' attention (m, l) partials: rounded up to
/// whole vec4s (matvec.wgsl reads them as vec4; attention.wgsl rounds the
/// same way).
fn max_sum_pairs_per_stream(heads: usize, splits: usize) -> usize {
    (heads * splits).next_multiple_of(2)
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
    if !(1..=MAX_STREAMS).contains(&opts.streams) {
        return Err(GpuError::InvalidInput(format!(
            "{} streams (1 to {MAX_STREAMS})",
            opts.streams
        )));
    }
    if let Some(r) = opts
        .batch_rows_per_invocation
        .filter(|r| ![2, 4].contains(r))
    {
        return Err(GpuError::InvalidInput(format!(
            "{r} rows per batched matvec invocation (2 or 4)"
        )));
    }
    // More than one stream: four per matvec workgroup (one weight read
    // for four streams) where the adapter has the workgroup memory.
    let batch = opts.streams > 1
        && gpu.caps.max_workgroup_storage_bytes >= kernels::MATVEC_BATCH_WORKGROUP_BYTES;
    let mut builder = Builder {
        gpu,
        cfg,
        weights,
        quantize: opts.quantize,
        matvec: MatvecPipelines::new(gpu, lanes.for_rows(0))?,
        lanes,
        attention,
        kv: opts.kv_cache,
        streams: opts.streams,
        allocated_streams: if batch {
            opts.streams.next_multiple_of(kernels::MATVEC_BATCH_STREAMS)
        } else {
            opts.streams
        },
        batch,
        batch_rows: opts.batch_rows_per_invocation,
        merge_pipeline: None,
        weight_bytes: 0,
        activation_bytes: 0,
    };
    let act = builder.allocate_activations(end_of_turn_heads)?;
    builder.activation_bytes = act.bytes();
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
        logits_stride: builder.logits_stride(end_of_turn_heads),
        attention,
        weight_bytes: builder.weight_bytes,
        activation_bytes: builder.activation_bytes,
        batched_matvec: builder.batch,
    })
}

/// Bytes of `n` f32.
fn f32_bytes(n: usize) -> u64 {
    (4 * n) as u64
}

impl Builder<'_> {
    /// f32s per stream of the logits buffer.
    fn logits_stride(&self, end_of_turn_heads: usize) -> usize {
        self.cfg.text_card + end_of_turn_heads * self.cfg.end_of_turn_heads().1
    }

    fn allocate_activations(&self, end_of_turn_heads: usize) -> Result<Activations> {
        use wgpu::BufferUsages as Usage;
        let (cfg, gpu, b) = (self.cfg, self.gpu, self.allocated_streams);
        let d = cfg.dim;
        let AttentionShape { head_dim, splits } = self.attention;
        let storage = |label: &str, floats: usize| {
            gpu.empty_buffer(label, f32_bytes(b * floats), Usage::STORAGE)
        };
        Ok(Activations {
            params: gpu.empty_buffer(
                "step params",
                (b * std::mem::size_of::<StepParams>()) as u64,
                Usage::STORAGE | Usage::COPY_DST,
            )?,
            audio_rows: gpu.empty_buffer(
                "audio rows",
                f32_bytes(b * cfg.n_q * d),
                Usage::STORAGE | Usage::COPY_DST,
            )?,
            prev_token: storage("previous token", 1)?,
            x: storage("residual stream", d)?,
            qkv: storage("qkv", 3 * d)?,
            attention_partial_out: storage(
                "attention partial outputs",
                cfg.num_heads * splits * head_dim,
            )?,
            attention_partial_max_sum: storage(
                "attention partial max and sum",
                2 * max_sum_pairs_per_stream(cfg.num_heads, splits),
            )?,
            attention_merged: match self.batch {
                true => Some(storage("attention merged", d)?),
                false => None,
            },
            mlp_hidden: storage("mlp hidden (gated)", cfg.ffn_hidden())?,
            logits: gpu.empty_buffer(
                "logits",
                f32_bytes(b * self.logits_stride(end_of_turn_heads)),
                Usage::STORAGE | Usage::COPY_SRC,
            )?,
            result: gpu.empty_buffer(
                "step result",
                f32_bytes(b * result_words(end_of_turn_heads)),
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
    /// reading `x` as `input` says and writing `y` as `output` says, each
    /// stream at its slice (`strides`).
    fn matvec(
        &mut self,
        m: PackedMatrix,
        (x, input): (&wgpu::Buffer, MatvecInput),
        alpha: Option<&wgpu::Buffer>,
        (y, output): (&wgpu::Buffer, MatvecOutput),
        strides: StreamStrides,
    ) -> Result<Dispatch> {
        let weights = MatvecWeights::upload(self.gpu, m)?;
        self.weight_bytes += weights.bytes();
        let attention = (self.attention.head_dim as u32, self.attention.splits as u32);
        let lanes = self.lanes.for_rows(weights.rows);
        let groups = self
            .batch
            .then_some((self.allocated_streams / kernels::MATVEC_BATCH_STREAMS) as u32);
        let mut key =
            MatvecKey::new(&weights, input, output, attention, lanes).with_strides(strides, groups);
        if let (true, Some(rows)) = (key.batch, self.batch_rows) {
            key.rows_per_invocation = rows;
        }
        let kind = match weights.name.strip_prefix("transformer.layers.") {
            Some(rest) => rest.split_once('.').map_or(rest, |(_, t)| t).to_string(),
            None => weights.name.clone(),
        };
        Ok(Dispatch {
            kind,
            pipeline: self.matvec.get(self.gpu, key, RMS_NORM_EPS),
            bind_group: self.matvec.bind(self.gpu, &weights, x, alpha, y),
            workgroups: (key.workgroups(), 1),
            streams_per_workgroup: key.streams_per_workgroup(),
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
        let layout = bind_layout(&gpu.device, "embed", &[RO, RO, RO, RO, RW]);
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
            streams_per_workgroup: 1,
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
        let (layout, pipeline) = attention_pipeline(
            self.gpu,
            self.cfg.dim,
            self.attention,
            self.cfg.context,
            self.kv,
        );
        (layout, Arc::new(pipeline))
    }

    /// One transformer layer: five dispatches (six when batched: the
    /// attention merge runs on its own).
    fn layer(
        &mut self,
        i: usize,
        act: &Activations,
        (attention_layout, attention_pipeline): &(
            wgpu::BindGroupLayout,
            Arc<wgpu::ComputePipeline>,
        ),
    ) -> Result<Vec<Dispatch>> {
        let cfg = self.cfg;
        let (d, hidden) = (cfg.dim, cfg.ffn_hidden());
        let layer = format!("transformer.layers.{i}");
        let norm1 = self.vector(&format!("{layer}.norm1.alpha"))?;
        let norm2 = self.vector(&format!("{layer}.norm2.alpha"))?;

        let AttentionShape { head_dim, splits } = self.attention;
        let strides = |x: usize, alpha: usize, y: usize| StreamStrides {
            x4: (x / 4) as u32,
            alpha4: (alpha / 4) as u32,
            y: y as u32,
        };
        let m = self.load_matrix(&format!("{layer}.self_attn.in_proj_weight"), 3 * d, d)?;
        let qkv = self.matvec(
            m,
            (&act.x, MatvecInput::RmsNorm),
            Some(&norm1),
            (&act.qkv, MatvecOutput::Set(0)),
            strides(d, 0, 3 * d),
        )?;

        let cache_bytes = (self.streams * cfg.context * d * self.kv.bytes()) as u64;
        let storage = wgpu::BufferUsages::STORAGE;
        let k_cache = (self.gpu).empty_buffer(&format!("{layer}.k_cache"), cache_bytes, storage)?;
        let v_cache = (self.gpu).empty_buffer(&format!("{layer}.v_cache"), cache_bytes, storage)?;
        self.activation_bytes += 2 * cache_bytes;
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
            streams_per_workgroup: 1,
        };

        let m = self.load_matrix(&format!("{layer}.self_attn.out_proj.weight"), d, d)?;
        let mut merge = None;
        let out_proj = match &act.attention_merged {
            // Batched: merge once per stream, then a plain projection.
            Some(merged) => {
                merge = Some(self.attention_merge(act, merged, &layer));
                self.matvec(
                    m,
                    (merged, MatvecInput::Plain),
                    None,
                    (&act.x, MatvecOutput::Add),
                    strides(d, 0, d),
                )?
            }
            None => self.matvec(
                m,
                (&act.attention_partial_out, MatvecInput::AttentionMerge),
                Some(&act.attention_partial_max_sum),
                (&act.x, MatvecOutput::Add),
                strides(
                    cfg.num_heads * splits * head_dim,
                    2 * max_sum_pairs_per_stream(cfg.num_heads, splits),
                    d,
                ),
            )?,
        };
        let m = self.load_matrix(&format!("{layer}.gating.linear_in.weight"), 2 * hidden, d)?;
        let linear_in = self.matvec(
            m,
            (&act.x, MatvecInput::RmsNorm),
            Some(&norm2),
            (&act.mlp_hidden, MatvecOutput::Gated),
            strides(d, 0, hidden),
        )?;
        let m = self.load_matrix(&format!("{layer}.gating.linear_out.weight"), d, hidden)?;
        let linear_out = self.matvec(
            m,
            (&act.mlp_hidden, MatvecInput::Plain),
            None,
            (&act.x, MatvecOutput::Add),
            strides(hidden, 0, d),
        )?;
        let mut dispatches = vec![qkv, attention];
        dispatches.extend(merge);
        dispatches.extend([out_proj, linear_in, linear_out]);
        Ok(dispatches)
    }

    /// attention_merge.wgsl over every stream: partials → merged output.
    fn attention_merge(
        &mut self,
        act: &Activations,
        merged: &wgpu::Buffer,
        layer: &str,
    ) -> Dispatch {
        let (cfg, gpu) = (self.cfg, self.gpu);
        let AttentionShape { head_dim, splits } = self.attention;
        let (layout, pipe) = self.merge_pipeline.get_or_insert_with(|| {
            let layout = bind_layout(&gpu.device, "attention merge", &[RO, RO, RW]);
            let module = shader(gpu, "attention_merge", kernels::ATTENTION_MERGE);
            let constants = [
                ("D", cfg.dim as f64),
                ("HEAD_DIM", head_dim as f64),
                ("SPLITS", splits as f64),
                ("HEADS", cfg.num_heads as f64),
            ];
            let p = pipeline(gpu, "attention merge", &layout, &module, &constants);
            (layout, Arc::new(p))
        });
        Dispatch {
            kind: "attention_merge".into(),
            pipeline: pipe.clone(),
            bind_group: bind_group(
                &gpu.device,
                layer,
                layout,
                &[
                    &act.attention_partial_out,
                    &act.attention_partial_max_sum,
                    merged,
                ],
            ),
            workgroups: ((cfg.dim as u32 / 4).div_ceil(256), 1),
            streams_per_workgroup: 1,
        }
    }

    /// Text head, end-of-turn heads (stacked into one matrix) and argmax.
    fn heads(&mut self, act: &Activations, end_of_turn_heads: usize) -> Result<Vec<Dispatch>> {
        let (cfg, gpu) = (self.cfg, self.gpu);
        let d = cfg.dim;
        let out_norm = self.vector("out_norm.alpha")?;
        let mut dispatches = vec![];
        let strides = StreamStrides {
            x4: (d / 4) as u32,
            alpha4: 0,
            y: self.logits_stride(end_of_turn_heads) as u32,
        };
        let m = self.load_matrix("text_linear.weight", cfg.text_card, d)?;
        dispatches.push(self.matvec(
            m,
            (&act.x, MatvecInput::RmsNorm),
            Some(&out_norm),
            (&act.logits, MatvecOutput::Set(0)),
            strides,
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
                (&act.logits, MatvecOutput::Set(cfg.text_card as u32)),
                strides,
            )?);
        }
        let layout = bind_layout(&gpu.device, "argmax", &[RO, RW, RW, RO]);
        let module = shader(gpu, "argmax_heads", &kernels::argmax_heads_source());
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
                &[&act.logits, &act.prev_token, &act.result, &act.params],
            ),
            workgroups: (1, 1),
            streams_per_workgroup: 1,
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
