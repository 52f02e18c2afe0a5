//! Weight files, read from a list of byte shards so that no single buffer must
//! hold a whole file (a browser caps one ArrayBuffer at 2 GB; the bf16 LM is
//! 2 GB). Safetensors and GGUF both go through moshi's own var builders.

pub mod finite;
pub mod gguf;
mod gguf_header;
pub mod quant;
pub mod safetensors;
mod shards;

pub use shards::{ShardReader, Shards};

use candle_core::Device;
use moshi::nn::MaybeQuantizedVarBuilder;

use crate::error::Result;

/// An LM checkpoint in one of the two upstream formats.
#[derive(Clone)]
pub enum LmWeights {
    Safetensors(safetensors::SafetensorsFile),
    Gguf(gguf::GgufFile),
}

impl LmWeights {
    /// Picks the format from the file's first bytes, not its name.
    pub fn from_shards(name: &str, shards: Shards) -> Result<Self> {
        let mut magic = [0u8; 4];
        if shards.len() >= 4 {
            shards.read_at(0, &mut magic)?;
        }
        if &magic == gguf::GGUF_MAGIC {
            Ok(Self::Gguf(gguf::GgufFile::from_shards(name, shards)?))
        } else {
            Ok(Self::Safetensors(
                safetensors::SafetensorsFile::from_shards(name, shards)?,
            ))
        }
    }

    pub fn contains(&self, name: &str) -> bool {
        match self {
            Self::Safetensors(f) => f.contains(name),
            Self::Gguf(f) => f.contains(name),
        }
    }

    /// Whether the checkpoint has the end-of-turn heads (`extra_heads.*`;
    /// the plain `kyutai/stt-1b-en_fr` file reportedly lacks them).
    pub fn has_end_of_turn_heads(&self) -> bool {
        self.contains("extra_heads.0.weight")
    }

    pub fn file_name(&self) -> &str {
        match self {
            Self::Safetensors(f) => f.file_name(),
            Self::Gguf(f) => f.file_name(),
        }
    }

    pub fn is_quantized(&self) -> bool {
        matches!(self, Self::Gguf(_))
    }

    /// moshi's var builder over these weights with quantized tensors
    /// dequantized to f32: the arithmetic of an engine that reads the
    /// quantized weights but keeps activations in f32 (the GPU engine).
    pub fn dequantized_var_builder(&self, device: &Device) -> Result<MaybeQuantizedVarBuilder<'_>> {
        Ok(match self {
            Self::Safetensors(f) => MaybeQuantizedVarBuilder::Real(f.var_builder(device)),
            Self::Gguf(f) => MaybeQuantizedVarBuilder::Real(candle_nn::VarBuilder::from_backend(
                Box::new(f),
                candle_core::DType::F32,
                device.clone(),
            )),
        })
    }

    /// moshi's var builder over these weights; safetensors become f32 on the
    /// CPU (candle's CPU bf16 matmul is slow and upstream stt-rs does the same).
    pub fn var_builder(&self, device: &Device) -> Result<MaybeQuantizedVarBuilder<'static>> {
        Ok(match self {
            Self::Safetensors(f) => MaybeQuantizedVarBuilder::Real(f.var_builder(device)),
            Self::Gguf(f) => MaybeQuantizedVarBuilder::Quantized(f.var_builder(device)?),
        })
    }
}
