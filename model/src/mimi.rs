//! Mimi's encoder, through moshi's modules unmodified: 24 kHz PCM in, one
//! frame of `n_q` codes (32 for stt-1b-en_fr) per 1920 samples out,
//! streaming with state carried between frames.
//!
//! Only the encoder side is built (SEANet encoder, its transformer, the
//! downsampling conv, the split quantizer), wired and stepped as
//! `moshi::mimi::Mimi::encode_step` does; being our own composition, it
//! also hands out the latents before quantization (parity tests use them
//! to tell a near-tie from a bug).

use candle_core::{DType, Device, IndexOp, Shape, Tensor};
use moshi::streaming::StreamingModule;
use moshi::{StreamMask, StreamTensor};

use crate::config::{Config, FRAME_SAMPLES};
use crate::error::{candle_message, Error, Result};
use crate::weights::safetensors::SafetensorsFile;

pub struct MimiEncoder {
    encoder: moshi::seanet::SeaNetEncoder,
    transformer: moshi::transformer::Transformer,
    downsample: moshi::conv::ConvDownsample1d,
    quantizer: moshi::quantization::SplitResidualVectorQuantizer,
    /// Transformer positions per 80 ms frame (the downsampling stride, 2).
    positions_per_frame: usize,
    n_q: usize,
    device: Device,
}

impl MimiEncoder {
    /// Loads Mimi's encoder side from the upstream file, or from one holding
    /// only that side ([`is_encoder_tensor`]; what the browser downloads).
    pub fn load(weights: &SafetensorsFile, cfg: &Config, device: &Device) -> Result<Self> {
        let vb = candle_nn::VarBuilder::from_backend(
            Box::new(EncoderSide(weights.clone())),
            DType::F32,
            device.clone(),
        );
        let bad = |e: candle_core::Error| Error::WeightFile {
            file: weights.file_name().to_string(),
            reason: candle_message(e),
        };
        let mc = cfg.mimi_config();
        let dim = mc.seanet.dimension;
        let encoder =
            moshi::seanet::SeaNetEncoder::new(&mc.seanet, vb.pp("encoder")).map_err(bad)?;
        let transformer = moshi::transformer::Transformer::new(
            None,
            dim,
            &mc.transformer,
            vb.pp("encoder_transformer"),
        )
        .map_err(bad)?;
        // The SEANet runs at sample_rate / prod(ratios) frames per second;
        // the downsampling conv brings that to the codec's frame rate.
        let seanet_rate = mc.sample_rate / mc.seanet.ratios.iter().product::<usize>() as f64;
        let stride = (seanet_rate / mc.frame_rate) as usize;
        let downsample =
            moshi::conv::ConvDownsample1d::new(stride, dim, true, true, vb.pp("downsample"))
                .map_err(bad)?;
        let quantizer = moshi::quantization::SplitResidualVectorQuantizer::new(
            mc.quantizer_dim,
            Some(dim),
            Some(dim),
            mc.quantizer_n_q,
            mc.quantizer_bins,
            vb.pp("quantizer"),
        )
        .map_err(bad)?;
        Ok(Self {
            encoder,
            transformer,
            downsample,
            quantizer,
            positions_per_frame: stride,
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
        Ok(self.encode_frames(pcm)?.pop())
    }

    /// Encodes whole frames at once (`pcm.len()` a multiple of
    /// [`FRAME_SAMPLES`]): the codes of each frame the streaming encoder
    /// completes, one row of `n_q` per frame. The same computation as
    /// [`encode_frame`](Self::encode_frame) on each frame in turn (moshi's
    /// streaming state carries any length) on bigger tensors: equal up to
    /// f32 rounding, so codes agree except at near-ties.
    pub fn encode_frames(&mut self, pcm: &[f32]) -> Result<Vec<Vec<u32>>> {
        match self.latents(pcm)? {
            None => Ok(vec![]),
            Some(latents) => {
                // (batch 1, n_q, frames) → one row of n_q codes per frame.
                let codes = self.quantizer.encode(&latents)?;
                Ok(codes.i(0)?.t()?.to_vec2::<u32>()?)
            }
        }
    }

    /// The latents the quantizer reads (the downsampled transformer output),
    /// one row of the model dimension (512) per frame completed: what
    /// [`encode_frames`](Self::encode_frames) quantizes, for parity tests.
    pub fn encode_latents(&mut self, pcm: &[f32]) -> Result<Vec<Vec<f32>>> {
        match self.latents(pcm)? {
            None => Ok(vec![]),
            Some(latents) => Ok(latents.i(0)?.t()?.to_vec2::<f32>()?),
        }
    }

    /// The streaming encoder side up to the quantizer, as moshi's
    /// `Mimi::encode_step`: (1, dim, frames) or `None`.
    fn latents(&mut self, pcm: &[f32]) -> Result<Option<Tensor>> {
        if pcm.is_empty() || !pcm.len().is_multiple_of(FRAME_SAMPLES) {
            return Err(Error::InvalidInput(format!(
                "Mimi encodes whole frames of {FRAME_SAMPLES} samples, got {}",
                pcm.len()
            )));
        }
        let xs = Tensor::from_slice(pcm, (1, 1, pcm.len()), &self.device)?;
        let mask = StreamMask::empty();
        let xs = self.encoder.step(&StreamTensor::from_tensor(xs), &mask)?;
        let Some(xs) = xs.as_option() else {
            return Ok(None);
        };
        // The convolutions take the whole chunk (their streaming state makes
        // that exact), the transformer one frame's positions at a time: its
        // KV cache holds the last `context` positions, so a longer chunk
        // would drop keys its first queries see when stepped frame by frame
        // (relative error ~1e-2 once 10 s have passed, against ~1e-6).
        let mut outs = Vec::with_capacity(pcm.len() / FRAME_SAMPLES);
        let mut at = 0;
        while at < xs.dim(2)? {
            let n = self.positions_per_frame.min(xs.dim(2)? - at);
            let step = StreamTensor::from_tensor(xs.narrow(2, at, n)?);
            if let Some(y) = self.transformer.step(&step, &mask)?.as_option() {
                outs.push(y.clone());
            }
            at += n;
        }
        if outs.is_empty() {
            return Ok(None);
        }
        let xs = StreamTensor::from_tensor(Tensor::cat(&outs, 2)?);
        let xs = self.downsample.step(&xs, &mask)?;
        Ok(xs.as_option().cloned())
    }

    pub fn reset(&mut self) {
        self.encoder.reset_state();
        self.transformer.reset_state();
        self.downsample.reset_state();
    }
}

/// Where Mimi's encoder runs — moshi's modules on the CPU
/// ([`MimiEncoder`]) or stt-wgpu's kernels on the GPU — as a
/// [`Session`](crate::Session) drives it.
#[allow(async_fn_in_trait)]
pub trait MimiBackend {
    fn num_codebooks(&self) -> usize;
    /// Encodes whole frames (`pcm.len()` a positive multiple of
    /// [`FRAME_SAMPLES`]): one row of codes per frame completed.
    async fn encode(&mut self, pcm: &[f32]) -> Result<Vec<Vec<u32>>>;
    /// A new stream.
    fn reset(&mut self);
}

impl MimiBackend for MimiEncoder {
    fn num_codebooks(&self) -> usize {
        self.n_q
    }

    async fn encode(&mut self, pcm: &[f32]) -> Result<Vec<Vec<u32>>> {
        self.encode_frames(pcm)
    }

    fn reset(&mut self) {
        MimiEncoder::reset(self)
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
