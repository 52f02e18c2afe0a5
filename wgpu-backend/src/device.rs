//! The GPU device: one adapter, its real limits requested explicitly,
//! error and device-loss hooks that report instead of aborting, checked
//! buffer creation, and reads back to the host.

use std::sync::{Arc, Mutex};
use std::thread::ThreadId;

use crate::error::{GpuError, Result};
use crate::readback::PendingRead;

const SUBGROUP_PROBE: &str = include_str!("kernels/subgroup_probe.wgsl");

/// What the engine may rely on, read once from the adapter.
#[derive(Debug, Clone)]
pub struct Capabilities {
    pub adapter: String,
    /// A software renderer (lavapipe, SwiftShader: WebGPU's fallback
    /// adapter): Mimi runs faster on the CPU than there.
    pub software: bool,
    /// A discrete GPU (the matvec takes more lanes per row there:
    /// `matvec::lanes`). Browsers do not say, so there it is false.
    pub discrete: bool,
    pub backend: String,
    pub max_storage_buffer_binding_size: u64,
    pub max_buffer_size: u64,
    /// `maxComputeWorkgroupStorageSize`: the batched matvec needs more
    /// than WebGPU's default 16 KiB.
    pub max_workgroup_storage_bytes: u32,
    /// `shader-f16` is enabled on the device: f16 weights are read as
    /// `array<f16>` instead of unpacked from u32 words.
    pub shader_f16: bool,
    /// Subgroup operations are enabled and the probe found subgroups laid
    /// out as the kernels assume (see `subgroup_probe.wgsl`): the matvec
    /// reductions use subgroup shuffles instead of workgroup-memory trees.
    pub subgroups: bool,
    /// The size the probe measured (0 when subgroups are off).
    pub subgroup_size: u32,
    /// Timestamp queries inside compute passes are enabled.
    pub timestamps: bool,
}

/// Which optional features to use when the adapter offers them. Both off
/// gives the path every WebGPU adapter can run (tests force it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeatureRequest {
    pub shader_f16: bool,
    pub subgroups: bool,
    /// Timestamp queries inside passes, for `GpuStepper::profile_step`
    /// (native benchmarks; off by default).
    pub timestamps: bool,
}

impl Default for FeatureRequest {
    fn default() -> Self {
        Self {
            shader_f16: true,
            subgroups: true,
            timestamps: false,
        }
    }
}

impl FeatureRequest {
    pub const NONE: Self = Self {
        shader_f16: false,
        subgroups: false,
        timestamps: false,
    };
}

/// Device, queue and the state its callbacks report into. Clones share
/// them (the LM engine and the GPU Mimi run on one device).
#[derive(Clone)]
pub struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub caps: Capabilities,
    lost: Arc<Mutex<Option<String>>>,
    /// Errors with the thread whose call raised them: wgpu reports a
    /// validation or memory error on the calling thread, and each thread's
    /// `check` takes only its own, so lanes building or running on parallel
    /// threads never take each other's failures.
    errors: Arc<Mutex<Vec<(ThreadId, GpuError)>>>,
}

impl Gpu {
    /// The first high-performance adapter; `force_fallback` asks for a
    /// software one. Features in `want` are enabled where offered.
    pub async fn new(force_fallback: bool, want: FeatureRequest) -> Result<Self> {
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
        desc.backends = wgpu::Backends::PRIMARY | wgpu::Backends::BROWSER_WEBGPU;
        // WGPU_BACKEND and friends still override, for debugging.
        let instance = wgpu::Instance::new(desc.with_env());
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                force_fallback_adapter: force_fallback,
                ..Default::default()
            })
            .await
            .map_err(|e| GpuError::NoAdapter(e.to_string()))?;
        let info = adapter.get_info();
        let features = adapter.features();
        // The adapter's real limits: WebGPU's defaults (128 MiB bindings)
        // would split the 1B model's largest matrices for nothing.
        let limits = adapter.limits();
        let mut required = wgpu::Features::empty();
        if want.shader_f16 && features.contains(wgpu::Features::SHADER_F16) {
            required |= wgpu::Features::SHADER_F16;
        }
        // The matvec lanes of a row are 8 consecutive invocations: subgroups
        // must hold whole rows, so sizes below 8 cannot take that path.
        let subgroup_sizes_fit = info.subgroup_min_size >= 8 && info.subgroup_max_size <= 256;
        if want.subgroups && features.contains(wgpu::Features::SUBGROUP) && subgroup_sizes_fit {
            required |= wgpu::Features::SUBGROUP;
        }
        let timestamps =
            wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES;
        if want.timestamps && features.contains(timestamps) {
            required |= timestamps;
        }
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("stt-wgpu"),
                required_features: required,
                required_limits: limits.clone(),
                ..Default::default()
            })
            .await
            .map_err(|e| GpuError::RequestDevice(e.to_string()))?;
        let lost = Arc::new(Mutex::new(None));
        let errors = Arc::new(Mutex::new(Vec::new()));
        {
            let lost = lost.clone();
            device.set_device_lost_callback(move |reason, msg| {
                if let Ok(mut l) = lost.lock() {
                    *l = Some(format!("{reason:?}: {msg}"));
                }
            });
            let errors = errors.clone();
            device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
                let e = match e {
                    wgpu::Error::OutOfMemory { .. } => GpuError::OutOfMemory(e.to_string()),
                    e => GpuError::Wgpu(e.to_string()),
                };
                if let Ok(mut v) = errors.lock() {
                    v.push((std::thread::current().id(), e));
                }
            }));
        }
        let caps = Capabilities {
            adapter: adapter_label(&info),
            software: info.device_type == wgpu::DeviceType::Cpu,
            discrete: info.device_type == wgpu::DeviceType::DiscreteGpu,
            backend: format!("{:?}", info.backend),
            max_storage_buffer_binding_size: limits.max_storage_buffer_binding_size as u64,
            max_buffer_size: limits.max_buffer_size,
            max_workgroup_storage_bytes: limits.max_compute_workgroup_storage_size,
            shader_f16: required.contains(wgpu::Features::SHADER_F16),
            subgroups: false,
            subgroup_size: 0,
            timestamps: required.contains(wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES),
        };
        let mut gpu = Self {
            device,
            queue,
            caps,
            lost,
            errors,
        };
        if required.contains(wgpu::Features::SUBGROUP) {
            if let Some(size) = gpu.probe_subgroups().await? {
                gpu.caps.subgroups = true;
                gpu.caps.subgroup_size = size;
            }
        }
        Ok(gpu)
    }

    /// Runs `subgroup_probe.wgsl` once: the subgroup size when every
    /// subgroup of a 256-invocation workgroup is 8·n consecutive local
    /// invocations (what the matvec shuffles assume), else `None`.
    async fn probe_subgroups(&self) -> Result<Option<u32>> {
        let dev = &self.device;
        let module = dev.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("subgroup probe"),
            source: wgpu::ShaderSource::Wgsl(
                crate::kernels::subgroup_source(SUBGROUP_PROBE).into(),
            ),
        });
        let pipeline = dev.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some("subgroup probe"),
            layout: None,
            module: &module,
            entry_point: Some("main"),
            compilation_options: Default::default(),
            cache: None,
        });
        let bytes = 2 * 256 * 4;
        let out = dev.create_buffer(&wgpu::BufferDescriptor {
            label: Some("subgroup probe out"),
            size: bytes,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let bg = dev.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("subgroup probe"),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &[wgpu::BindGroupEntry {
                binding: 0,
                resource: out.as_entire_binding(),
            }],
        });
        let mut enc = self.encoder("subgroup probe");
        {
            let mut pass = compute_pass(&mut enc, "subgroup probe");
            pass.set_pipeline(&pipeline);
            pass.set_bind_group(0, &bg, &[]);
            pass.dispatch_workgroups(1, 1, 1);
        }
        let view = self
            .submit_and_read(enc, &out, bytes, "the subgroup probe")
            .await?;
        let words: Vec<u32> = bytemuck::pod_collect_to_vec(&view);
        let (ids, sizes) = words.split_at(256);
        let size = sizes[0];
        let fits = size >= 8
            && size.is_power_of_two()
            && size <= 256
            && sizes.iter().all(|&s| s == size)
            && ids.iter().enumerate().all(|(i, &id)| id == i as u32 % size);
        Ok(fits.then_some(size))
    }

    /// A labelled command encoder.
    pub fn encoder(&self, label: &str) -> wgpu::CommandEncoder {
        (self.device).create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) })
    }

    /// Waits for a requested read and copies its first `bytes` out; the
    /// staging buffer comes back unmapped. A failed wait reports the
    /// device's own error behind it when there is one.
    pub async fn read(
        &self,
        pending: PendingRead,
        bytes: usize,
        what: &str,
    ) -> Result<(Vec<u8>, wgpu::Buffer)> {
        let read = pending.read(&self.device, bytes, what).await;
        self.check()?;
        read
    }

    /// Submits `enc` after copying the first `bytes` of `src` (a `COPY_SRC`
    /// buffer) to a fresh staging buffer, and reads them back.
    pub async fn submit_and_read(
        &self,
        mut enc: wgpu::CommandEncoder,
        src: &wgpu::Buffer,
        bytes: u64,
        what: &str,
    ) -> Result<Vec<u8>> {
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(what),
            size: bytes.max(4),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        enc.copy_buffer_to_buffer(src, 0, &staging, 0, bytes);
        let submission = self.queue.submit([enc.finish()]);
        let pending = PendingRead::new(staging, submission);
        Ok(self.read(pending, bytes as usize, what).await?.0)
    }

    /// A lost device, else the first error this thread's calls raised
    /// since its last check (the rest of them are dropped with it).
    pub fn check(&self) -> Result<()> {
        if let Some(l) = self.lost.lock().ok().and_then(|l| l.clone()) {
            return Err(GpuError::DeviceLost(l));
        }
        let here = std::thread::current().id();
        let Ok(mut errors) = self.errors.lock() else {
            return Ok(());
        };
        let Some(i) = errors.iter().position(|(thread, _)| *thread == here) else {
            return Ok(());
        };
        let (_, first) = errors.remove(i);
        errors.retain(|(thread, _)| *thread != here);
        Err(first)
    }

    /// A buffer holding `bytes` (checked against the binding limits; padded
    /// to one word, as zero-sized bindings are invalid).
    pub fn buffer_with(
        &self,
        name: &str,
        bytes: &[u8],
        usage: wgpu::BufferUsages,
    ) -> Result<wgpu::Buffer> {
        use wgpu::util::DeviceExt;
        self.check_size(name, bytes.len() as u64)?;
        let padded;
        let contents = if bytes.len() < 4 {
            padded = [bytes, &[0u8; 4][..4 - bytes.len()]].concat();
            &padded[..]
        } else {
            bytes
        };
        Ok(self
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(name),
                contents,
                usage,
            }))
    }

    /// An uninitialised buffer of `bytes` (checked, at least one word).
    pub fn empty_buffer(
        &self,
        name: &str,
        bytes: u64,
        usage: wgpu::BufferUsages,
    ) -> Result<wgpu::Buffer> {
        self.check_size(name, bytes)?;
        Ok(self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(name),
            size: bytes.max(4),
            usage,
            mapped_at_creation: false,
        }))
    }

    /// Refuses a buffer the adapter cannot bind.
    pub fn check_size(&self, name: &str, bytes: u64) -> Result<()> {
        let c = &self.caps;
        let limits = [
            (
                "maxStorageBufferBindingSize",
                c.max_storage_buffer_binding_size,
            ),
            ("maxBufferSize", c.max_buffer_size),
        ];
        match limits.into_iter().find(|&(_, limit)| bytes > limit) {
            Some((limit_name, limit)) => Err(GpuError::BufferTooLarge {
                name: name.to_string(),
                bytes,
                limit_name,
                limit,
            }),
            None => Ok(()),
        }
    }
}

/// A labelled compute pass without timestamp writes.
pub fn compute_pass<'e>(enc: &'e mut wgpu::CommandEncoder, label: &str) -> wgpu::ComputePass<'e> {
    enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
        label: Some(label),
        timestamp_writes: None,
    })
}

/// The adapter in words: its name and kind ("NVIDIA H200 (discrete GPU)").
/// Browsers do not give the name to WebGPU pages, so there it is the kind.
fn adapter_label(info: &wgpu::AdapterInfo) -> String {
    let kind = match info.device_type {
        wgpu::DeviceType::DiscreteGpu => "discrete GPU",
        wgpu::DeviceType::IntegratedGpu => "integrated GPU",
        wgpu::DeviceType::VirtualGpu => "virtual GPU",
        wgpu::DeviceType::Cpu => "software renderer",
        wgpu::DeviceType::Other => "GPU",
    };
    if info.name.trim().is_empty() {
        kind.to_string()
    } else {
        format!("{} ({kind})", info.name)
    }
}
