//! Reading results back from the GPU. A browser cannot block on the GPU, so
//! every read is the same asynchronous sequence: copy into a staging buffer,
//! submit, request the map, then wait for its callback — natively by
//! polling the device, in a browser by yielding to the event loop.
//!
//! This module depends only on wgpu: the device's own probe reads through it.

use crate::error::{GpuError, Result};

type MapResult = std::result::Result<(), wgpu::BufferAsyncError>;

/// How long a native wait for the GPU may take before it is reported as a
/// hang (a full-size step on a CPU Vulkan takes seconds, not minutes).
#[cfg(not(target_arch = "wasm32"))]
const GPU_WAIT_LIMIT: std::time::Duration = std::time::Duration::from_secs(120);

/// A staging buffer whose map was requested after `submission`.
pub struct PendingRead {
    staging: wgpu::Buffer,
    submission: wgpu::SubmissionIndex,
    done: flume::Receiver<MapResult>,
}

impl PendingRead {
    /// Requests the map of the whole of `staging` (a `MAP_READ` buffer that
    /// `submission` copies into).
    pub fn new(staging: wgpu::Buffer, submission: wgpu::SubmissionIndex) -> Self {
        let (tx, done) = flume::bounded(1);
        staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        Self {
            staging,
            submission,
            done,
        }
    }

    /// Waits for the map and copies the first `bytes` out; the staging
    /// buffer comes back unmapped, for reuse. `what` names the read in errors.
    pub async fn read(
        self,
        device: &wgpu::Device,
        bytes: usize,
        what: &str,
    ) -> Result<(Vec<u8>, wgpu::Buffer)> {
        // With our usage (each staging buffer mapped once, after its copy)
        // a failed map means the device is gone (destroyed, reset, lost).
        wait(device, &self.done, &self.submission)
            .await?
            .map_err(|e| GpuError::DeviceLost(format!("reading {what}: {e}")))?;
        let out = {
            let view = self
                .staging
                .slice(..)
                .get_mapped_range()
                .map_err(|e| GpuError::Wgpu(format!("reading {what}: {e}")))?;
            view.get(..bytes)
                .ok_or_else(|| {
                    GpuError::Wgpu(format!(
                        "reading {what}: {bytes} bytes from a {}-byte staging buffer",
                        view.len()
                    ))
                })?
                .to_vec()
        };
        self.staging.unmap();
        Ok((out, self.staging))
    }
}

/// Staging buffers kept for reuse, by size (the step engine maps one per
/// step; allocating each time would cost more than the read).
#[derive(Default)]
pub struct StagingPool {
    free: Vec<wgpu::Buffer>,
}

impl StagingPool {
    /// A `MAP_READ | COPY_DST` buffer of exactly `bytes`.
    pub fn take(&mut self, device: &wgpu::Device, bytes: u64) -> wgpu::Buffer {
        match self.free.iter().position(|b| b.size() == bytes) {
            Some(i) => self.free.swap_remove(i),
            None => device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("staging"),
                size: bytes,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }),
        }
    }

    /// Returns an unmapped buffer to the pool.
    pub fn give(&mut self, buffer: wgpu::Buffer) {
        self.free.push(buffer);
    }
}

/// Waits for a map callback: natively by polling the device until
/// `submission` (the one that queued the map's copy) is done — not the
/// latest submission, so a step submitted after it keeps running — and in
/// a browser by yielding to the event loop. A failed poll is reported as a
/// lost device; callers ask the device's error hooks for the validation
/// error behind it (`Gpu::check`).
async fn wait<T>(
    device: &wgpu::Device,
    rx: &flume::Receiver<T>,
    submission: &wgpu::SubmissionIndex,
) -> Result<T> {
    #[cfg(not(target_arch = "wasm32"))]
    loop {
        match rx.try_recv() {
            Ok(v) => return Ok(v),
            Err(flume::TryRecvError::Empty) => {
                let poll = wgpu::PollType::Wait {
                    submission_index: Some(submission.clone()),
                    timeout: Some(GPU_WAIT_LIMIT),
                };
                if let Err(e) = device.poll(poll) {
                    return Err(match e {
                        wgpu::PollError::Timeout => GpuError::DeviceLost(format!(
                            "the GPU did not finish in {} s",
                            GPU_WAIT_LIMIT.as_secs()
                        )),
                        e => GpuError::DeviceLost(e.to_string()),
                    });
                }
            }
            Err(flume::TryRecvError::Disconnected) => {
                return Err(GpuError::DeviceLost("a map callback was dropped".into()));
            }
        }
    }
    #[cfg(target_arch = "wasm32")]
    {
        let _ = (device, submission);
        rx.recv_async()
            .await
            .map_err(|_| GpuError::DeviceLost("a map callback was dropped".into()))
    }
}
