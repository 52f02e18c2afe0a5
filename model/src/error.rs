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

    #[error("invalid input: {0}")]
    InvalidInput(String),
}

pub type Result<T> = std::result::Result<T, Error>;

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
