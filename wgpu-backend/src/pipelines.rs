//! Shader-module, pipeline and bind-group helpers shared by the step engine,
//! the mat-vec op and the probes: every kernel binds plain buffers in group
//! 0, in binding order.

use crate::device::Gpu;

pub const RO: wgpu::BufferBindingType = wgpu::BufferBindingType::Storage { read_only: true };
pub const RW: wgpu::BufferBindingType = wgpu::BufferBindingType::Storage { read_only: false };
pub const UNIFORM: wgpu::BufferBindingType = wgpu::BufferBindingType::Uniform;

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

/// wgpu's runtime checks for our kernels: all of them but the loop counter.
///
/// By default naga gives every loop a 64-bit iteration counter, tested each
/// time round, so a driver may not assume the loop ends: it keeps loops as
/// written (no unrolling, no loads hoisted across iterations). Without it
/// the LM step took 0.88 ms instead of 1.24 on an H100, and B = 64 15.2 ms
/// instead of 24.2 (bench/README.md, session 12). Our loops all end by
/// construction: each counts up by a positive step to a bound set from
/// buffer sizes far below 2³² (so the counter cannot wrap), or halves a
/// positive value down to 0; `kernels::tests::every_loop_is_bounded`
/// checks every kernel has only those forms. Bounds checks and the
/// integer-division guards stay on. (On WebGPU the browser compiles the
/// WGSL itself and this makes no difference.)
const RUNTIME_CHECKS: wgpu::ShaderRuntimeChecks = wgpu::ShaderRuntimeChecks {
    force_loop_bounding: false,
    ..wgpu::ShaderRuntimeChecks::checked()
};

pub fn shader(gpu: &Gpu, label: &str, source: &str) -> wgpu::ShaderModule {
    let desc = wgpu::ShaderModuleDescriptor {
        label: Some(label),
        source: wgpu::ShaderSource::Wgsl(std::borrow::Cow::Owned(source.to_string())),
    };
    // SAFETY: RUNTIME_CHECKS drops only the loop counter, and every loop in
    // our kernels ends (see RUNTIME_CHECKS; checked by a test).
    unsafe {
        gpu.device
            .create_shader_module_trusted(desc, RUNTIME_CHECKS)
    }
}
