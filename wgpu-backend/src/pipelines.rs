//! Shader-module, pipeline and bind-group helpers shared by the step engine
//! and the Candle ops: every kernel binds plain buffers in group 0, in
//! binding order.

use crate::capabilities::Gpu;
use crate::kernels::MatvecKey;

pub const RO: wgpu::BufferBindingType = wgpu::BufferBindingType::Storage { read_only: true };
pub const RW: wgpu::BufferBindingType = wgpu::BufferBindingType::Storage { read_only: false };
pub const UNIFORM: wgpu::BufferBindingType = wgpu::BufferBindingType::Uniform;

/// matvec.wgsl: weights, scales, x, alpha (read) and y (read_write).
pub const MATVEC_BINDINGS: [wgpu::BufferBindingType; 5] = [RO, RO, RO, RO, RW];

fn layout_entry(binding: u32, ty: wgpu::BufferBindingType) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty,
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }
}

pub fn bind_layout(
    device: &wgpu::Device,
    label: &str,
    types: &[wgpu::BufferBindingType],
) -> wgpu::BindGroupLayout {
    let entries: Vec<_> = types
        .iter()
        .enumerate()
        .map(|(i, t)| layout_entry(i as u32, *t))
        .collect();
    device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some(label),
        entries: &entries,
    })
}

pub fn bind_group(
    device: &wgpu::Device,
    label: &str,
    layout: &wgpu::BindGroupLayout,
    buffers: &[&wgpu::Buffer],
) -> wgpu::BindGroup {
    let entries: Vec<_> = buffers
        .iter()
        .enumerate()
        .map(|(i, b)| wgpu::BindGroupEntry {
            binding: i as u32,
            resource: b.as_entire_binding(),
        })
        .collect();
    device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some(label),
        layout,
        entries: &entries,
    })
}

pub fn pipeline(
    gpu: &Gpu,
    label: &str,
    layout: &wgpu::BindGroupLayout,
    module: &wgpu::ShaderModule,
    constants: &[(&str, f64)],
) -> wgpu::ComputePipeline {
    let pl = gpu
        .device
        .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(label),
            bind_group_layouts: &[Some(layout)],
            ..Default::default()
        });
    gpu.device
        .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(label),
            layout: Some(&pl),
            module,
            entry_point: Some("main"),
            compilation_options: wgpu::PipelineCompilationOptions {
                constants,
                // Every kernel writes its workgroup memory before reading
                // it; naga's zeroing prologue would cost each workgroup a
                // serial pass over ~13 KB. (Browsers always zero it.)
                zero_initialize_workgroup_memory: false,
            },
            cache: None,
        })
}

pub fn shader(gpu: &Gpu, label: &str, source: &str) -> wgpu::ShaderModule {
    gpu.device
        .create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(label),
            source: wgpu::ShaderSource::Wgsl(std::borrow::Cow::Owned(source.to_string())),
        })
}

/// matvec.wgsl specialised to `key` (its override constants).
pub fn matvec_pipeline(
    gpu: &Gpu,
    layout: &wgpu::BindGroupLayout,
    module: &wgpu::ShaderModule,
    key: &MatvecKey,
    eps: f32,
) -> wgpu::ComputePipeline {
    let constants = [
        ("K", key.k as f64),
        ("ROWS", key.rows as f64),
        ("INPUT_MODE", key.input as u32 as f64),
        ("RESIDUAL", if key.residual { 1.0 } else { 0.0 }),
        ("Y_OFFSET", key.y_offset as f64),
        ("EPS", eps as f64),
        ("HEAD_DIM", key.head_dim as f64),
        ("SPLITS", key.splits as f64),
        ("GATED_OUT", if key.gated_output { 1.0 } else { 0.0 }),
        ("LANES", key.lanes as f64),
    ];
    pipeline(gpu, "matvec", layout, module, &constants)
}
