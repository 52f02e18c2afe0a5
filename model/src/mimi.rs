//! Mimi, the audio codec, through `moshi::mimi` unmodified: 24 kHz PCM in,
//! one frame of `n_q` codes (32 for stt-1b-en_fr) per 1920 samples out,
//! streaming with state carried between frames.

use candle_core::{Device, IndexOp, Tensor};
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
    pub fn load(weights: &SafetensorsFile, cfg: &Config, device: &Device) -> Result<Self> {
        let mimi = moshi::mimi::Mimi::new(cfg.mimi_config(), weights.var_builder(device)).map_err(
            |e| Error::WeightFile {
                file: weights.file_name().to_string(),
                reason: candle_message(e),
            },
        )?;
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
