//! The GPU device: one adapter, its real limits requested explicitly, and
//! error and device-loss hooks that report instead of aborting.

use std::sync::{Arc, Mutex};

use crate::error::{GpuError, Result};

/// What the engine may rely on, read once from the adapter.
#[derive(Debug, Clone)]
pub struct Capabilities {
    pub adapter: String,
    pub backend: String,
    pub max_storage_buffer_binding_size: u64,
    pub max_buffer_size: u64,
    /// Offered by the adapter; the current kernels use neither (f32 only,
    /// workgroup-memory reductions), so every adapter takes the same path.
    pub shader_f16: bool,
    pub subgroups: bool,
}

/// Device, queue and the state its callbacks report into.
pub struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub caps: Capabilities,
    lost: Arc<Mutex<Option<String>>>,
    errors: Arc<Mutex<Vec<String>>>,
}

impl Gpu {
    /// The first high-performance adapter; `force_fallback` asks for a
    /// software one.
    pub async fn new(force_fallback: bool) -> Result<Self> {
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
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("stt-wgpu"),
                required_features: wgpu::Features::empty(),
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
                if let Ok(mut v) = errors.lock() {
                    v.push(e.to_string());
                }
            }));
        }
        let caps = Capabilities {
            adapter: format!("{} ({:?})", info.name, info.device_type),
            backend: format!("{:?}", info.backend),
            max_storage_buffer_binding_size: limits.max_storage_buffer_binding_size as u64,
            max_buffer_size: limits.max_buffer_size,
            shader_f16: features.contains(wgpu::Features::SHADER_F16),
            subgroups: features.contains(wgpu::Features::SUBGROUP),
        };
        Ok(Self {
            device,
            queue,
            caps,
            lost,
            errors,
        })
    }

    /// The first error the device reported since the last check, if any.
    pub fn check(&self) -> Result<()> {
        if let Some(l) = self.lost.lock().ok().and_then(|l| l.clone()) {
            return Err(GpuError::DeviceLost(l));
        }
        if let Some(e) = self.errors.lock().ok().and_then(|mut v| v.drain(..).next()) {
            return Err(GpuError::Wgpu(e));
        }
        Ok(())
    }

    /// Refuses a buffer the adapter cannot bind.
    pub fn check_size(&self, name: &str, bytes: u64) -> Result<()> {
        let c = &self.caps;
        if bytes > c.max_storage_buffer_binding_size {
            return Err(GpuError::BufferTooLarge {
                name: name.to_string(),
                bytes,
                limit_name: "maxStorageBufferBindingSize",
                limit: c.max_storage_buffer_binding_size,
            });
        }
        if bytes > c.max_buffer_size {
            return Err(GpuError::BufferTooLarge {
                name: name.to_string(),
                bytes,
                limit_name: "maxBufferSize",
                limit: c.max_buffer_size,
            });
        }
        Ok(())
    }
}
