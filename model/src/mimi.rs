//! Mimi, the audio codec, through `moshi::mimi` unmodified: 24 kHz PCM in,
//! one frame of `n_q` codes (32 for stt-1b-en_fr) per 1920 samples out,
//! streaming with state carried between frames.

use candle_core::{DType, Device, IndexOp, Shape, Tensor};
use moshi::{StreamMask, StreamTensor};

use crate::config::{Config, FRAME_SAMPLES};
use crate::error::{candle_message, Error, Result};
use crate::weights::safetensors::SafetensorsFile;

pub struct MimiEncoder {
    mimi: moshi::mimi::Mimi,
    n_q: usize,
    device: Device,
}

impl MimiEncoder {
    /// Loads Mimi from the upstream file, or from one holding only its
    /// encoder side ([`is_encoder_tensor`]; what the browser downloads).
    pub fn load(weights: &SafetensorsFile, cfg: &Config, device: &Device) -> Result<Self> {
        let vb = candle_nn::VarBuilder::from_backend(
            Box::new(EncoderSide(weights.clone())),
            DType::F32,
            device.clone(),
        );
        let mimi =
            moshi::mimi::Mimi::new(cfg.mimi_config(), vb).map_err(|e| Error::WeightFile {
                file: weights.file_name().to_string(),
                reason: candle_message(e),
            })?;
        Ok(Self {
            mimi,
            n_q: cfg.n_q,
            device: device.clone(),
        })
    }

    pub fn num_codebooks(&self) -> usize {
        self.n_q
    }

    /// Encodes one frame of exactly [`FRAME_SAMPLES`] samples. `None` while
    /// the streaming encoder has not yet produced a frame of codes.
    pub fn encode_frame(&mut self, pcm: &[f32]) -> Result<Option<Vec<u32>>> {
        if pcm.len() != FRAME_SAMPLES {
            return Err(Error::InvalidInput(format!(
                "a Mimi frame is {FRAME_SAMPLES} samples, got {}",
                pcm.len()
            )));
        }
        let xs = Tensor::from_slice(pcm, (1, 1, FRAME_SAMPLES), &self.device)?;
        let codes = self
            .mimi
            .encode_step(&StreamTensor::from_tensor(xs), &StreamMask::empty())?;
        match codes.as_option() {
            None => Ok(None),
            Some(codes) => {
                // (batch 1, n_q, frames 1)
                let codes = codes.i((0, .., 0))?.to_vec1::<u32>()?;
                Ok(Some(codes))
            }
        }
    }

    pub fn reset(&mut self) {
        self.mimi.reset_state();
    }
}

/// Whether encoding reads the Mimi tensor `name`: the SEANet encoder, its
/// transformer, the downsampling conv and the quantizer's input projections
/// and codebooks (58 % of the upstream file). The rest (decoder, its
/// transformer, upsampling, the quantizer's output projections) only
/// decodes. `browser/web/model-store.js` downloads by the same rule.
pub fn is_encoder_tensor(name: &str) -> bool {
    const ENCODER_SIDE: [&str; 4] = [
        "encoder.",
        "encoder_transformer.",
        "downsample.",
        "quantizer.",
    ];
    ENCODER_SIDE.iter().any(|p| name.starts_with(p)) && !name.contains("output_proj")
}

/// Mimi's weights as moshi's constructor asks for them: the file's own, and
/// for a decoder-side tensor the file lacks, zeros — one scalar broadcast to
/// the shape, so no memory — since encoding never reads them. A missing
/// encoder-side tensor is still an error.
struct EncoderSide(SafetensorsFile);

impl candle_nn::var_builder::SimpleBackend for EncoderSide {
    fn get(
        &self,
        s: Shape,
        name: &str,
        init: candle_nn::Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        if !self.0.contains(name) && !is_encoder_tensor(name) {
            return Tensor::zeros((), dtype, dev)?.broadcast_as(s);
        }
        self.0.get(s, name, init, dtype, dev)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        self.0.get_unchecked(name, dtype, dev)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.0.contains(name) || !is_encoder_tensor(name)
    }
}
