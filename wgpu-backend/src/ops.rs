//! The step engine's kernels as Candle custom ops, for native candle code
//! that wants a projection or an attention step on the GPU without the
//! whole engine (and for testing each kernel against candle's own ops).
//!
//! Candle has no wgpu device, so these ops take CPU tensors: `cpu_fwd`
//! uploads the input, runs the same WGSL pipeline the engine runs, and
//! waits for the result (native only: a browser cannot block). Weights are
//! uploaded once, when the op is made.
//!
//! - [`GpuLinear`]: `y = W·in(x)` for every weight layout (F32, F16, Q8_0,
//!   Q4_0, Q4_K), with in(x) = x, RmsNorm(x)·α (a `CustomOp2` with α) or
//!   SiLU(x₁)·x₂ — matvec.wgsl's three input modes. Inputs `[..., K]` (or
//!   `[..., 2K]` gated): a mat-mul runs one matvec dispatch per row.
//! - [`GpuAttention`]: one step of RoPE + KV append + causal attention over
//!   the rolling cache (attention.wgsl), the cache kept on the GPU.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use candle_core::backend::BackendStorage;
use candle_core::quantized::QTensor;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, DType, Layout, Shape, Tensor};

use crate::capabilities::{Capabilities, FeatureRequest, Gpu};
use crate::engine::{rope_inv_freq, rope_table, StepParams};
use crate::error::{GpuError, Result};
use crate::kernels::{self, MatvecInput, MatvecKey, ShaderFeatures};
use crate::pipelines::{
    bind_group, bind_layout, matvec_pipeline, pipeline, shader, MATVEC_BINDINGS, RW, UNIFORM,
};
use crate::repack::{self, GpuFormat, PackedMatrix};

/// One wgpu device and the pipelines the ops have built on it.
pub struct GpuOps {
    gpu: Gpu,
    features: ShaderFeatures,
    matvec_layout: wgpu::BindGroupLayout,
    modules: Mutex<HashMap<GpuFormat, wgpu::ShaderModule>>,
    pipelines: Mutex<HashMap<(MatvecKey, u32), Arc<wgpu::ComputePipeline>>>,
    lanes: u32,
    dummy: wgpu::Buffer,
}

impl GpuOps {
    /// Opens the first high-performance adapter (a software one with
    /// `force_fallback`), with the optional features of `features`.
    pub fn new(force_fallback: bool, features: FeatureRequest) -> Result<Arc<Self>> {
        Self::with_lanes(force_fallback, features, None)
    }

    /// As `new`, with the matvec's lanes per row chosen (8, 16, 32).
    pub fn with_lanes(
        force_fallback: bool,
        features: FeatureRequest,
        lanes: Option<u32>,
    ) -> Result<Arc<Self>> {
        let gpu = pollster::block_on(Gpu::new(force_fallback, features))?;
        let lanes = gpu.caps.matvec_lanes(lanes)?;
        let matvec_layout = bind_layout(&gpu.device, "matvec", &MATVEC_BINDINGS);
        let dummy = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("dummy"),
            size: 16,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
        Ok(Arc::new(Self {
            features: ShaderFeatures {
                f16: gpu.caps.shader_f16,
                subgroups: gpu.caps.subgroups,
            },
            gpu,
            matvec_layout,
            modules: Mutex::new(HashMap::new()),
            pipelines: Mutex::new(HashMap::new()),
            lanes,
            dummy,
        }))
    }

    pub fn capabilities(&self) -> &Capabilities {
        &self.gpu.caps
    }

    fn upload(&self, label: &str, bytes: &[u8], usage: wgpu::BufferUsages) -> Result<wgpu::Buffer> {
        self.gpu.buffer_with(label, bytes, usage)
    }

    fn empty(&self, label: &str, bytes: u64, usage: wgpu::BufferUsages) -> Result<wgpu::Buffer> {
        self.gpu.empty_buffer(label, bytes, usage)
    }

    /// Submits `enc` after copying `floats` f32 of `src` to a staging
    /// buffer, and waits for them.
    fn finish_and_read(
        &self,
        mut enc: wgpu::CommandEncoder,
        src: &wgpu::Buffer,
        floats: usize,
    ) -> Result<Vec<f32>> {
        let bytes = (4 * floats) as u64;
        let staging = self.empty(
            "op staging",
            bytes,
            wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        )?;
        enc.copy_buffer_to_buffer(src, 0, &staging, 0, bytes);
        let submission = self.gpu.queue.submit([enc.finish()]);
        let (tx, rx) = flume::bounded(1);
        staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        pollster::block_on(crate::engine::wait(&self.gpu, &rx, &submission))?
            .map_err(|e| GpuError::Wgpu(format!("reading an op's result: {e}")))?;
        self.gpu.check()?;
        let view = staging
            .slice(..)
            .get_mapped_range()
            .map_err(|e| GpuError::Wgpu(format!("reading an op's result: {e}")))?;
        let out = bytemuck::cast_slice::<u8, f32>(&view[..bytes as usize]).to_vec();
        drop(view);
        staging.unmap();
        Ok(out)
    }

    fn matvec_pipeline(&self, key: MatvecKey, eps: f32) -> Arc<wgpu::ComputePipeline> {
        let mut pipelines = self.pipelines.lock().unwrap_or_else(|e| e.into_inner());
        pipelines
            .entry((key, eps.to_bits()))
            .or_insert_with(|| {
                let mut modules = self.modules.lock().unwrap_or_else(|e| e.into_inner());
                let module = modules.entry(key.format).or_insert_with(|| {
                    let source = kernels::matvec_source(key.format, self.features);
                    shader(&self.gpu, "matvec", &source)
                });
                Arc::new(matvec_pipeline(
                    &self.gpu,
                    &self.matvec_layout,
                    module,
                    &key,
                    eps,
                ))
            })
            .clone()
    }
}

/// The contiguous f32 values of a CPU tensor's storage.
fn f32_slice<'a>(
    op: &str,
    storage: &'a CpuStorage,
    layout: &Layout,
) -> candle_core::Result<&'a [f32]> {
    let CpuStorage::F32(xs) = storage else {
        candle_core::bail!("{op}: expects f32 input, got {:?}", storage.dtype());
    };
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&xs[start..end]),
        None => candle_core::bail!("{op}: expects a contiguous input"),
    }
}

fn wrap(e: GpuError) -> candle_core::Error {
    candle_core::Error::wrap(e)
}

/// A weight matrix on the GPU, applied by matvec.wgsl.
pub struct GpuLinear {
    ops: Arc<GpuOps>,
    format: GpuFormat,
    rows: usize,
    cols: usize,
    data: wgpu::Buffer,
    scales: Option<wgpu::Buffer>,
}

impl GpuLinear {
    /// From a quantized candle matrix `[rows, cols]` (F32, F16, Q8_0, Q4_0,
    /// Q4_K; other ggml types are dequantized to f32).
    pub fn from_qtensor(ops: &Arc<GpuOps>, name: &str, w: &QTensor) -> Result<Self> {
        Self::upload(ops, repack::pack_qtensor(name, w)?)
    }

    /// From a float candle matrix `[rows, cols]`, kept in f32.
    pub fn from_tensor(ops: &Arc<GpuOps>, name: &str, w: &Tensor) -> Result<Self> {
        let &[rows, cols] = w.dims() else {
            return Err(GpuError::Unsupported(format!(
                "`{name}` has shape {:?}, not a matrix",
                w.dims()
            )));
        };
        if !cols.is_multiple_of(32) {
            return Err(GpuError::Unsupported(format!(
                "`{name}` has {cols} columns, not a multiple of 32"
            )));
        }
        let xs = w
            .to_dtype(DType::F32)
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(stt_model::Error::from)?;
        Self::upload(ops, PackedMatrix::from_f32(name, rows, cols, &xs))
    }

    fn upload(ops: &Arc<GpuOps>, m: PackedMatrix) -> Result<Self> {
        let data = ops.upload(&m.name, &m.data, wgpu::BufferUsages::STORAGE)?;
        let scales = match m.format {
            GpuFormat::F32 | GpuFormat::F16 => None,
            GpuFormat::Q8 | GpuFormat::Q4 => Some(ops.upload(
                &format!("{}.scales", m.name),
                &m.scales,
                wgpu::BufferUsages::STORAGE,
            )?),
        };
        Ok(Self {
            ops: ops.clone(),
            format: m.format,
            rows: m.rows,
            cols: m.cols,
            data,
            scales,
        })
    }

    /// The layout the weights were repacked into.
    pub fn format(&self) -> GpuFormat {
        self.format
    }

    /// `x · Wᵀ` for `x` of shape `[..., cols]`.
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        x.apply_op1_no_bwd(&MatvecOp {
            linear: self,
            input: MatvecInput::Plain,
            gated: false,
        })
    }

    /// `silu(y₁) ⊙ y₂` for `[y₁, y₂] = rms_norm(x, alpha, eps) · Wᵀ` (the
    /// engine's linear_in: norm folded in, moshi's gate applied on output).
    pub fn forward_rms_norm_gated(
        &self,
        x: &Tensor,
        alpha: &Tensor,
        eps: f32,
    ) -> candle_core::Result<Tensor> {
        self.rms_norm_op(x, alpha, eps, true)
    }

    /// `rms_norm(x, alpha, eps) · Wᵀ` (candle_nn's rms_norm), fused.
    pub fn forward_rms_norm(
        &self,
        x: &Tensor,
        alpha: &Tensor,
        eps: f32,
    ) -> candle_core::Result<Tensor> {
        self.rms_norm_op(x, alpha, eps, false)
    }

    fn rms_norm_op(
        &self,
        x: &Tensor,
        alpha: &Tensor,
        eps: f32,
        gated: bool,
    ) -> candle_core::Result<Tensor> {
        let op = NormMatvecOp {
            linear: self,
            eps,
            gated,
        };
        x.apply_op2_no_bwd(alpha, &op)
    }

    /// `(silu(x₁) ⊙ x₂) · Wᵀ` where `x = [x₁, x₂]` along the last dim
    /// (moshi's gated MLP), fused.
    pub fn forward_silu_gated(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        x.apply_op1_no_bwd(&MatvecOp {
            linear: self,
            input: MatvecInput::SiluGate,
            gated: false,
        })
    }

    /// Runs the matvec once per input row, all in one submit.
    fn run(
        &self,
        input: MatvecInput,
        gated: bool,
        eps: f32,
        x: &[f32],
        alpha: Option<&[f32]>,
    ) -> Result<Vec<f32>> {
        let out_rows = if gated { self.rows / 2 } else { self.rows };
        let width = match input {
            MatvecInput::SiluGate => 2 * self.cols,
            _ => self.cols,
        };
        let m = x.len() / width;
        let ops = &self.ops;
        use wgpu::BufferUsages as U;
        let xs = ops.upload("op input", bytemuck::cast_slice(x), U::COPY_SRC)?;
        let x_row = ops.empty("op input row", (4 * width) as u64, U::STORAGE | U::COPY_DST)?;
        let y_row = ops.empty(
            "op output row",
            (4 * out_rows) as u64,
            U::STORAGE | U::COPY_SRC,
        )?;
        let ys = ops.empty(
            "op output",
            (4 * m * out_rows) as u64,
            U::COPY_SRC | U::COPY_DST,
        )?;
        let alpha = alpha
            .map(|a| ops.upload("op alpha", bytemuck::cast_slice(a), U::STORAGE))
            .transpose()?;
        let key = MatvecKey {
            format: self.format,
            k: self.cols as u32,
            rows: self.rows as u32,
            input,
            residual: false,
            y_offset: 0,
            head_dim: 1,
            splits: 1,
            gated_output: gated,
            lanes: ops.lanes,
        };
        let pipeline = ops.matvec_pipeline(key, eps);
        let bg = bind_group(
            &ops.gpu.device,
            "op matvec",
            &ops.matvec_layout,
            &[
                &self.data,
                self.scales.as_ref().unwrap_or(&ops.dummy),
                &x_row,
                alpha.as_ref().unwrap_or(&ops.dummy),
                &y_row,
            ],
        );
        let mut enc = ops.gpu.device.create_command_encoder(&Default::default());
        let (xb, yb) = ((4 * width) as u64, (4 * out_rows) as u64);
        for i in 0..m as u64 {
            enc.copy_buffer_to_buffer(&xs, i * xb, &x_row, 0, xb);
            {
                let mut pass = enc.begin_compute_pass(&Default::default());
                pass.set_pipeline(&pipeline);
                pass.set_bind_group(0, &bg, &[]);
                pass.dispatch_workgroups(key.workgroups(), 1, 1);
            }
            enc.copy_buffer_to_buffer(&y_row, 0, &ys, i * yb, yb);
        }
        ops.finish_and_read(enc, &ys, m * out_rows)
    }

    #[allow(clippy::too_many_arguments)]
    fn output(
        &self,
        op: &str,
        input: MatvecInput,
        gated: bool,
        eps: f32,
        x: &[f32],
        dims: &[usize],
        alpha: Option<&[f32]>,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let width = match input {
            MatvecInput::SiluGate => 2 * self.cols,
            _ => self.cols,
        };
        if dims.last() != Some(&width) {
            candle_core::bail!("{op}: input {dims:?} must end in {width}");
        }
        if gated && !self.rows.is_multiple_of(2) {
            candle_core::bail!("{op}: a gated output needs an even number of rows");
        }
        let y = self.run(input, gated, eps, x, alpha).map_err(wrap)?;
        let mut out_dims = dims.to_vec();
        if let Some(last) = out_dims.last_mut() {
            *last = if gated { self.rows / 2 } else { self.rows };
        }
        Ok((CpuStorage::F32(y), Shape::from(out_dims)))
    }
}

struct MatvecOp<'a> {
    linear: &'a GpuLinear,
    input: MatvecInput,
    gated: bool,
}

impl CustomOp1 for MatvecOp<'_> {
    fn name(&self) -> &'static str {
        match self.input {
            MatvecInput::SiluGate => "gpu-silu-gated-matvec",
            _ => "gpu-matvec",
        }
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = f32_slice(self.name(), storage, layout)?;
        self.linear.output(
            self.name(),
            self.input,
            self.gated,
            0.0,
            x,
            layout.dims(),
            None,
        )
    }
}

struct NormMatvecOp<'a> {
    linear: &'a GpuLinear,
    eps: f32,
    gated: bool,
}

impl CustomOp2 for NormMatvecOp<'_> {
    fn name(&self) -> &'static str {
        "gpu-rms-norm-matvec"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = f32_slice(self.name(), s1, l1)?;
        let alpha = f32_slice(self.name(), s2, l2)?;
        if alpha.len() != self.linear.cols {
            candle_core::bail!(
                "{}: alpha has {} values for {} columns",
                self.name(),
                alpha.len(),
                self.linear.cols
            );
        }
        self.linear.output(
            self.name(),
            MatvecInput::RmsNorm,
            self.gated,
            self.eps,
            x,
            l1.dims(),
            Some(alpha),
        )
    }
}

/// One attention layer's step on the GPU: RoPE on this step's q and k,
/// append k, v to the rolling cache, attend over the cached keys in
/// parallel splits (attention.wgsl), merge the splits (matvec.wgsl's
/// `AttentionMerge` input, here with an identity projection, which is
/// exact: each output is 1·vᵢ plus exact zeros). Apply to a `[3·dim]`
/// q‖k‖v tensor (head-major); each call is the next position.
pub struct GpuAttention {
    ops: Arc<GpuOps>,
    dim: usize,
    num_heads: usize,
    splits: usize,
    context: usize,
    inv_freq: Vec<f32>,
    pipeline: wgpu::ComputePipeline,
    layout: wgpu::BindGroupLayout,
    params: wgpu::Buffer,
    k_cache: wgpu::Buffer,
    v_cache: wgpu::Buffer,
    o_part: wgpu::Buffer,
    ml_part: wgpu::Buffer,
    merge: GpuLinear,
    position: Mutex<u64>,
}

impl GpuAttention {
    pub fn new(
        ops: &Arc<GpuOps>,
        dim: usize,
        num_heads: usize,
        context: usize,
        max_period: f32,
    ) -> Result<Self> {
        let head_dim = dim / num_heads.max(1);
        let splits = context.div_ceil(kernels::ATTENTION_CHUNK);
        if num_heads == 0
            || !dim.is_multiple_of(num_heads)
            || head_dim > kernels::ATTENTION_MAX_HEAD_DIM
            || !head_dim.is_multiple_of(16)
            || context == 0
            || context > kernels::ATTENTION_MAX_CONTEXT
            || dim > kernels::MATVEC_INPUT_CACHE
            || num_heads * splits > kernels::MATVEC_MAX_SPLIT_WEIGHTS
        {
            return Err(GpuError::Unsupported(format!(
                "attention with dim {dim}, {num_heads} heads, context {context} (head dim a \
                 multiple of 16 and ≤ {}, context ≤ {}, dim ≤ {})",
                kernels::ATTENTION_MAX_HEAD_DIM,
                kernels::ATTENTION_MAX_CONTEXT,
                kernels::MATVEC_INPUT_CACHE,
            )));
        }
        use wgpu::BufferUsages as U;
        let layout = bind_layout(
            &ops.gpu.device,
            "attention",
            &[UNIFORM, crate::pipelines::RO, RW, RW, RW, RW],
        );
        let module = shader(&ops.gpu, "attention", &kernels::attention_source());
        let pipeline = pipeline(
            &ops.gpu,
            "attention",
            &layout,
            &module,
            &[
                ("D", dim as f64),
                ("HEAD_DIM", head_dim as f64),
                ("CONTEXT", context as f64),
            ],
        );
        let cache = (4 * context * dim) as u64;
        let identity: Vec<f32> = (0..dim * dim)
            .map(|i| if i / dim == i % dim { 1.0 } else { 0.0 })
            .collect();
        let merge = GpuLinear::upload(
            ops,
            PackedMatrix::from_f32("attention merge (identity)", dim, dim, &identity),
        )?;
        Ok(Self {
            params: ops.empty(
                "attention params",
                std::mem::size_of::<StepParams>() as u64,
                U::UNIFORM | U::COPY_DST,
            )?,
            k_cache: ops.empty("k cache", cache, U::STORAGE)?,
            v_cache: ops.empty("v cache", cache, U::STORAGE)?,
            o_part: ops.empty(
                "attention partial outputs",
                (4 * splits * dim) as u64,
                U::STORAGE,
            )?,
            ml_part: ops.empty(
                "attention partial max and sum",
                (8 * splits * num_heads).next_multiple_of(16) as u64,
                U::STORAGE,
            )?,
            ops: ops.clone(),
            dim,
            num_heads,
            splits,
            context,
            inv_freq: rope_inv_freq(head_dim, max_period),
            pipeline,
            layout,
            merge,
            position: Mutex::new(0),
        })
    }

    /// The next step: `qkv` of shape `[3·dim]` → `[dim]`.
    pub fn step(&self, qkv: &Tensor) -> candle_core::Result<Tensor> {
        qkv.apply_op1_no_bwd(self)
    }

    /// Forgets the cache: the next step is position 0.
    pub fn reset(&self) {
        *self.position.lock().unwrap_or_else(|e| e.into_inner()) = 0;
    }

    fn run(&self, qkv: &[f32]) -> Result<Vec<f32>> {
        let mut position = self.position.lock().unwrap_or_else(|e| e.into_inner());
        let ctx = self.context as u64;
        let params = StepParams {
            text_mode: 0,
            forced_token: 0,
            kv_slot: (*position % ctx) as u32,
            n_keys: (*position + 1).min(ctx) as u32,
            rope: rope_table(&self.inv_freq, *position),
        };
        let ops = &self.ops;
        ops.gpu
            .queue
            .write_buffer(&self.params, 0, bytemuck::bytes_of(&params));
        use wgpu::BufferUsages as U;
        let qkv = ops.upload("attention qkv", bytemuck::cast_slice(qkv), U::STORAGE)?;
        let out = ops.empty(
            "attention out",
            (4 * self.dim) as u64,
            U::STORAGE | U::COPY_SRC,
        )?;
        let bg = bind_group(
            &ops.gpu.device,
            "attention",
            &self.layout,
            &[
                &self.params,
                &qkv,
                &self.k_cache,
                &self.v_cache,
                &self.o_part,
                &self.ml_part,
            ],
        );
        let key = MatvecKey {
            format: GpuFormat::F32,
            k: self.dim as u32,
            rows: self.dim as u32,
            input: MatvecInput::AttentionMerge,
            residual: false,
            y_offset: 0,
            head_dim: (self.dim / self.num_heads) as u32,
            splits: self.splits as u32,
            gated_output: false,
            lanes: ops.lanes,
        };
        let merge = ops.matvec_pipeline(key, 0.0);
        let merge_bg = bind_group(
            &ops.gpu.device,
            "attention merge",
            &ops.matvec_layout,
            &[
                &self.merge.data,
                &ops.dummy,
                &self.o_part,
                &self.ml_part,
                &out,
            ],
        );
        let mut enc = ops.gpu.device.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            pass.set_pipeline(&self.pipeline);
            pass.set_bind_group(0, &bg, &[]);
            pass.dispatch_workgroups(self.num_heads as u32, self.splits as u32, 1);
            pass.set_pipeline(&merge);
            pass.set_bind_group(0, &merge_bg, &[]);
            pass.dispatch_workgroups(key.workgroups(), 1, 1);
        }
        let y = ops.finish_and_read(enc, &out, self.dim)?;
        *position += 1;
        Ok(y)
    }
}

impl CustomOp1 for GpuAttention {
    fn name(&self) -> &'static str {
        "gpu-attention-step"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let qkv = f32_slice(self.name(), storage, layout)?;
        if qkv.len() != 3 * self.dim {
            candle_core::bail!(
                "{}: input {:?} is not [{}]",
                self.name(),
                layout.dims(),
                3 * self.dim
            );
        }
        let y = self.run(qkv).map_err(wrap)?;
        Ok((CpuStorage::F32(y), Shape::from(self.dim)))
    }
}
