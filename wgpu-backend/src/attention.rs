//! The attention op (`kernels/attention.wgsl`): its bind layout and
//! pipeline, built the same way for the step engine and the candle op.

use crate::device::Gpu;
use crate::kernels::{self, AttentionShape, KvPrecision};
use crate::pipelines::{bind_layout, pipeline, shader, RO, RW};

/// attention.wgsl's bindings: params, qkv (read); k cache, v cache,
/// partial outputs, partial (max, sum) (read_write).
const BINDINGS: [wgpu::BufferBindingType; 6] = [RO, RO, RW, RW, RW, RW];

/// The layout and pipeline for `dim` split in heads of `shape.head_dim`
/// over a `context`-step cache of `kv` values (`shape` from
/// `kernels::check_fits`).
pub fn attention_pipeline(
    gpu: &Gpu,
    dim: usize,
    shape: AttentionShape,
    context: usize,
    kv: KvPrecision,
) -> (wgpu::BindGroupLayout, wgpu::ComputePipeline) {
    let layout = bind_layout(&gpu.device, "attention", &BINDINGS);
    let module = shader(gpu, "attention", &kernels::attention_source(kv));
    let constants = [
        ("D", dim as f64),
        ("HEAD_DIM", shape.head_dim as f64),
        ("CONTEXT", context as f64),
    ];
    let pipeline = pipeline(gpu, "attention", &layout, &module, &constants);
    (layout, pipeline)
}
