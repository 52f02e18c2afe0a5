//! Bandwidth probes for `stt-cli bench`: what the device can stream, to
//! compare a step's bytes ÷ time against (native only: they block).

use crate::device::compute_pass;
use crate::device::Gpu;
use crate::error::{GpuError, Result};
use crate::kernels;
use crate::pipelines::{bind_group, bind_layout, pipeline, shader, RO, RW};

/// Device-to-device copy bandwidth (bytes read + written per second, in
/// GB/s) over a 256 MiB buffer, or the largest the adapter allows, timed
/// by `best_timing`.
pub fn copy_bandwidth_gbps(gpu: &Gpu) -> Result<f64> {
    let size = (256u64 << 20).min(gpu.caps.max_buffer_size / 2) & !3;
    let usage = wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
    let make = |label: &str| {
        gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            usage,
            mapped_at_creation: false,
        })
    };
    let (a, b) = (make("bandwidth a"), make("bandwidth b"));
    let run = |n: usize| -> Result<f64> {
        let mut enc = gpu.encoder("copy bandwidth");
        for i in 0..n {
            let (src, dst) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
            enc.copy_buffer_to_buffer(src, 0, dst, 0, size);
        }
        time_submit(gpu, enc.finish())
    };
    let (n, secs) = best_timing(run)?;
    gpu.check()?;
    Ok(n as f64 * 2.0 * size as f64 / secs / 1e9)
}

/// Read bandwidth of a compute kernel streaming a 256 MiB buffer (or the
/// largest the adapter binds) with 16-byte loads, in GB/s: the ceiling of
/// a weight-streaming step, timed by `best_timing`.
pub fn read_bandwidth_gbps(gpu: &Gpu) -> Result<f64> {
    let caps = &gpu.caps;
    let size = (256u64 << 20)
        .min(caps.max_storage_buffer_binding_size)
        .min(caps.max_buffer_size)
        & !15;
    let groups = 1024u32;
    let storage = wgpu::BufferUsages::STORAGE;
    let src = gpu.empty_buffer("read bandwidth source", size, storage)?;
    let sink = gpu.empty_buffer("read bandwidth sink", 4 * 256 * groups as u64, storage)?;
    let layout = bind_layout(&gpu.device, "read bandwidth", &[RO, RW]);
    let module = shader(gpu, "read bandwidth", kernels::READ_BANDWIDTH);
    let pipe = pipeline(gpu, "read bandwidth", &layout, &module, &[]);
    let bg = bind_group(&gpu.device, "read bandwidth", &layout, &[&src, &sink]);
    let run = |n: usize| -> Result<f64> {
        let mut enc = gpu.encoder("read bandwidth");
        {
            let mut pass = compute_pass(&mut enc, "read bandwidth");
            pass.set_pipeline(&pipe);
            pass.set_bind_group(0, &bg, &[]);
            for _ in 0..n {
                pass.dispatch_workgroups(groups, 1, 1);
            }
        }
        time_submit(gpu, enc.finish())
    };
    let (n, secs) = best_timing(run)?;
    gpu.check()?;
    Ok(n as f64 * size as f64 / secs / 1e9)
}

/// GPU time of one dispatch in a chain of dependent dispatches (each
/// reads what the previous wrote, so a barrier orders them as it orders a
/// step's kernels) of `workgroups` workgroups doing almost nothing, in µs:
/// what a step pays per kernel before its bytes, timed by `best_timing`.
pub fn dependent_dispatch_us(gpu: &Gpu, workgroups: u32) -> Result<f64> {
    let storage = wgpu::BufferUsages::STORAGE;
    let cells = gpu.empty_buffer("dispatch chain", 4 * 256 * workgroups as u64, storage)?;
    let layout = bind_layout(&gpu.device, "dispatch chain", &[RW]);
    let module = shader(gpu, "dispatch chain", kernels::DISPATCH_CHAIN);
    let pipe = pipeline(gpu, "dispatch chain", &layout, &module, &[]);
    let bg = bind_group(&gpu.device, "dispatch chain", &layout, &[&cells]);
    let run = |n: usize| -> Result<f64> {
        let mut enc = gpu.encoder("dispatch chain");
        {
            let mut pass = compute_pass(&mut enc, "dispatch chain");
            pass.set_pipeline(&pipe);
            pass.set_bind_group(0, &bg, &[]);
            for _ in 0..n {
                pass.dispatch_workgroups(workgroups, 1, 1);
            }
        }
        time_submit(gpu, enc.finish())
    };
    let (n, secs) = best_timing(run)?;
    gpu.check()?;
    Ok(secs / n as f64 * 1e6)
}

/// The probes' timing: `run(n)` submits n repetitions; n grows ×4 until
/// one submit takes ≥ 50 ms (submit and wake-up latency then stay out of
/// it), then the fastest of three such submits counts (clocks ramp up
/// during the first). Returns (n, seconds).
fn best_timing(run: impl Fn(usize) -> Result<f64>) -> Result<(usize, f64)> {
    let mut n = 1;
    let mut secs = run(n)?;
    while secs < 0.05 && n < 4096 {
        n *= 4;
        secs = run(n)?;
    }
    for _ in 0..2 {
        secs = secs.min(run(n)?);
    }
    Ok((n, secs))
}

/// Wall time of one submit, until the device is idle again.
fn time_submit(gpu: &Gpu, cmd: wgpu::CommandBuffer) -> Result<f64> {
    let t = std::time::Instant::now();
    gpu.queue.submit([cmd]);
    gpu.device
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| GpuError::DeviceLost(e.to_string()))?;
    Ok(t.elapsed().as_secs_f64())
}
