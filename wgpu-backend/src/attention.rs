//! The attention op (`kernels/attention.wgsl`, or
//! `kernels/attention_subgroup.wgsl` where the device's subgroups fit the
//! head): its bind layout and pipeline, built the same way for the step
//! engine and the candle op.

use crate::device::Gpu;
use crate::kernels::{self, AttentionKernel, AttentionShape, KvPrecision};
use crate::pipelines::{bind_layout, pipeline, shader, RO, RW};

/// attention.wgsl's bindings: params, qkv (read); k cache, v cache,
/// partial outputs, partial (max, sum) (read_write).
const BINDINGS: [wgpu::BufferBindingType; 6] = [RO, RO, RW, RW, RW, RW];

/// Which attention kernel `gpu` runs for heads of `head_dim`:
/// attention_subgroup.wgsl where the probed subgroups fit it and
/// `subgroups` allows it (`None`: on hardware adapters only — on lavapipe
/// its shuffles make it ~5× slower than attention.wgsl, tiny model), else
/// attention.wgsl.
pub fn attention_kernel(gpu: &Gpu, head_dim: usize, subgroups: Option<bool>) -> AttentionKernel {
    if subgroups.unwrap_or(!gpu.caps.software) && gpu.caps.subgroups {
        AttentionKernel::for_device(head_dim, gpu.caps.subgroup_size)
    } else {
        AttentionKernel::Workgroup
    }
}

/// The layout and pipeline of `kernel` for `dim` split in heads of
/// `shape.head_dim` over a `context`-step cache of `kv` values (`shape`
/// from `kernels::check_fits`).
pub fn attention_pipeline(
    gpu: &Gpu,
    dim: usize,
    shape: AttentionShape,
    context: usize,
    kv: KvPrecision,
    kernel: AttentionKernel,
) -> (wgpu::BindGroupLayout, wgpu::ComputePipeline) {
    let layout = bind_layout(&gpu.device, "attention", &BINDINGS);
    let module = shader(gpu, "attention", &kernels::attention_source(kv, kernel));
    let mut constants = vec![
        ("D", dim as f64),
        ("HEAD_DIM", shape.head_dim as f64),
        ("CONTEXT", context as f64),
    ];
    if let AttentionKernel::Subgroup {
        lanes,
        subgroup_size,
    } = kernel
    {
        constants.extend([("LANES", lanes as f64), ("SG", subgroup_size as f64)]);
    }
    let pipeline = pipeline(gpu, "attention", &layout, &module, &constants);
    (layout, pipeline)
}
