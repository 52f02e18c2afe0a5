//! The one error type of `stt-model`. Variants carry what a user needs to act:
//! the tensor name, the expected and found shapes, the file, the limit.

use crate::audio::AudioError;
use crate::tokenizer::TokenizerError;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),

    #[error("invalid model config: {0}")]
    Config(String),

    #[error("weight file {file}: {reason}")]
    WeightFile { file: String, reason: String },

    #[error("tensor `{name}` is missing from the weights")]
    MissingTensor { name: String },

    #[error("tensor `{name}` has shape {found:?}, expected {expected:?}")]
    ShapeMismatch {
        name: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },

    #[error("tensor `{name}`: {reason}")]
    BadTensor { name: String, reason: String },

    #[error("audio: {0}")]
    Audio(#[from] AudioError),

    #[error("tokenizer: {0}")]
    Tokenizer(#[from] TokenizerError),

    #[error("model computation failed: {0}")]
    Candle(candle_core::Error),

    #[error("the LM stepper failed: {0}")]
    Stepper(String),

    /// A GPU engine failure, with its kind kept so callers can react (the
    /// browser falls back to the CPU on a lost device and words its message).
    #[error("{message}")]
    Gpu { kind: GpuErrorKind, message: String },

    #[error("invalid input: {0}")]
    InvalidInput(String),
}

pub type Result<T> = std::result::Result<T, Error>;

/// What went wrong on the GPU, in terms a caller can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum GpuErrorKind {
    /// No adapter, or it refused to make a device.
    NoAdapter,
    /// The device was lost (driver reset, GPU removed, tab in background too
    /// long) or stopped answering; a new device, or the CPU, may work.
    DeviceLost,
    OutOfMemory,
    /// A buffer over the adapter's limits.
    LimitExceeded,
    /// A model shape the kernels cannot run.
    Unsupported,
    /// A bad step input (token, code, call order).
    BadInput,
    Other,
}

impl GpuErrorKind {
    /// A stable name (`snake_case`) for messages to JavaScript.
    pub fn code(self) -> &'static str {
        match self {
            Self::NoAdapter => "no_adapter",
            Self::DeviceLost => "device_lost",
            Self::OutOfMemory => "out_of_memory",
            Self::LimitExceeded => "limit_exceeded",
            Self::Unsupported => "unsupported",
            Self::BadInput => "bad_input",
            Self::Other => "gpu",
        }
    }
}

impl From<candle_core::Error> for Error {
    /// Drops candle's captured backtraces: a user needs the message, not
    /// our stack.
    fn from(e: candle_core::Error) -> Self {
        match e {
            candle_core::Error::WithBacktrace { inner, .. } => Self::from(*inner),
            e => Self::Candle(e),
        }
    }
}

/// A candle error's message without its captured backtrace.
pub(crate) fn candle_message(e: candle_core::Error) -> String {
    match Error::from(e) {
        Error::Candle(c) => c.to_string(),
        other => other.to_string(),
    }
}
