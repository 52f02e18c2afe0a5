//! [`GpuAttention`]: one attention step on the GPU as a candle op
//! (attention.wgsl, merged by matvec.wgsl).

use std::sync::{Arc, Mutex};

use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};

use super::linear::GpuLinear;
use super::{f32_slice, wrap, GpuOps};
use crate::attention::attention_pipeline;
use crate::device::compute_pass;
use crate::error::Result;
use crate::kernels;
use crate::matvec::{MatvecInput, MatvecKey, MatvecOutput};
use crate::pipelines::bind_group;
use crate::repack::PackedMatrix;
use crate::step_params::{rope_inv_freq, rope_table, StepParams};

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
        let shape = kernels::check_fits(dim, num_heads, context)?;
        let kernels::AttentionShape { head_dim, splits } = shape;
        use wgpu::BufferUsages as U;
        let (layout, pipeline) =
            attention_pipeline(&ops.gpu, dim, shape, context, kernels::KvPrecision::F32);
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
                U::STORAGE | U::COPY_DST,
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
            temperature: 0.0,
            seed_lo: 0,
            seed_hi: 0,
            step: 0,
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
        let head_dim = (self.dim / self.num_heads) as u32;
        let key = MatvecKey::new(
            &self.merge.weights,
            MatvecInput::AttentionMerge,
            MatvecOutput::Set(0),
            (head_dim, self.splits as u32),
            ops.matvec.lanes,
        );
        let merge = ops.matvec.get(&ops.gpu, key, 0.0);
        let merge_bg = (ops.matvec).bind(
            &ops.gpu,
            &self.merge.weights,
            &self.o_part,
            Some(&self.ml_part),
            &out,
        );
        let mut enc = ops.gpu.encoder("op attention");
        {
            let mut pass = compute_pass(&mut enc, "op attention");
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
