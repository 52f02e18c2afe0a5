//! Errors of the GPU engine: each names the limit, buffer or device state
//! behind it, so a user (or the browser UI) can say what to do.

use stt_model::error::GpuErrorKind;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GpuError {
    #[error("no GPU adapter is available ({0})")]
    NoAdapter(String),
    #[error("the GPU refused to create a device: {0}")]
    RequestDevice(String),
    #[error(
        "buffer `{name}` needs {bytes} bytes, over the adapter's {limit_name} of {limit} bytes"
    )]
    BufferTooLarge {
        name: String,
        bytes: u64,
        limit_name: &'static str,
        limit: u64,
    },
    #[error("the model does not fit this engine: {0}")]
    Unsupported(String),
    #[error("weights: {0}")]
    Weights(#[from] stt_model::Error),
    #[error("the GPU device was lost: {0}")]
    DeviceLost(String),
    #[error("the GPU is out of memory: {0}")]
    OutOfMemory(String),
    #[error("GPU error: {0}")]
    Wgpu(String),
    #[error("invalid step input: {0}")]
    InvalidInput(String),
}

impl GpuError {
    pub fn kind(&self) -> GpuErrorKind {
        match self {
            Self::NoAdapter(_) | Self::RequestDevice(_) => GpuErrorKind::NoAdapter,
            Self::BufferTooLarge { .. } => GpuErrorKind::LimitExceeded,
            Self::Unsupported(_) => GpuErrorKind::Unsupported,
            Self::Weights(_) => GpuErrorKind::Other,
            Self::DeviceLost(_) => GpuErrorKind::DeviceLost,
            Self::OutOfMemory(_) => GpuErrorKind::OutOfMemory,
            Self::Wgpu(_) => GpuErrorKind::Other,
            Self::InvalidInput(_) => GpuErrorKind::BadInput,
        }
    }
}

impl From<GpuError> for stt_model::Error {
    fn from(e: GpuError) -> Self {
        match e {
            GpuError::Weights(e) => e,
            e => stt_model::Error::Gpu {
                kind: e.kind(),
                message: e.to_string(),
            },
        }
    }
}

pub type Result<T> = std::result::Result<T, GpuError>;
