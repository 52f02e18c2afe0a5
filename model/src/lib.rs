//! `stt-model`: the target-independent core of stt-web — Kyutai's
//! `stt-1b-en_fr` streaming speech-to-text — for native and wasm32 alike.
//!
//! - [`config`]: the upstream `config.json` and the model's constants.
//! - [`weights`]: safetensors and GGUF read from byte shards, GGML block formats.
//! - [`tokenizer`]: SentencePiece `.model` / `tokenizer.json` decoding.
//! - [`audio`]: decode, downmix, resample to 24 kHz, streaming.
//! - [`mimi`]: the Mimi encoder (moshi crate).
//! - [`stepper`]: the LM step interface and the CPU stepper (moshi's `LmModel`).
//! - [`session`]: the delayed-streams loop; [`transcript`]: timed words;
//!   [`export`]: TXT / SRT / VTT / JSON writers.

pub mod audio;
pub mod bench;
pub mod config;
pub mod error;
pub mod export;
pub mod mimi;
pub mod model;
pub mod segment;
pub mod session;
pub mod stepper;
pub mod tokenizer;
pub mod transcript;
pub mod weights;

pub use config::Config;
pub use error::{Error, Result};
pub use model::Model;
pub use session::{Event, Session};
pub use stepper::{CpuStepper, LmStepper, Sampling, StepOutput, TextInput};
pub use tokenizer::Tokenizer;
pub use transcript::{TimedWord, Transcript};

/// Runs a session future to completion on the calling thread. The CPU
/// stepper never waits, so its futures are ready at once; native callers of
/// a GPU stepper block here too. (Browsers await instead.)
#[cfg(not(target_arch = "wasm32"))]
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    pollster::block_on(f)
}
