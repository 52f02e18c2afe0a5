//! The LM step interface the [`Session`](crate::session::Session) runs, and
//! the CPU stepper: moshi's own Candle `LmModel`, unmodified.
//!
//! A stepper may pipeline: `submit` queues a step and `receive` yields the
//! oldest unreceived result. The text token a step feeds back is the
//! stepper's own previous choice ([`TextInput::Previous`]), so a GPU stepper
//! can keep it on the GPU and run ahead of the host by `max_in_flight` steps.

use std::collections::VecDeque;

use candle_core::{DType, Device, IndexOp, Tensor, D};
use moshi::StreamMask;

use crate::config::Config;
use crate::error::{candle_message, Error, Result};
use crate::weights::LmWeights;

/// The text token fed to a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextInput {
    /// The text start token (first step).
    Start,
    /// The token this stepper chose at its previous step (greedy decoding).
    Previous,
    /// A given token (teacher forcing in parity tests).
    Forced(u32),
}

#[derive(Debug, Clone, PartialEq)]
pub struct StepOutput {
    /// Greedy (argmax) text token.
    pub text_token: u32,
    /// Per extra head, the softmax probability of its first class: the
    /// end-of-turn probabilities at the 0.5/1/2/3 s horizons. Empty when the
    /// checkpoint has no extra heads.
    pub end_of_turn: Vec<f32>,
    /// Raw text logits, when asked for (`keep_logits`).
    pub text_logits: Option<Vec<f32>>,
}

/// One LM step at a time, possibly pipelined.
#[allow(async_fn_in_trait)]
pub trait LmStepper {
    /// Queues one step with one frame of audio codes.
    fn submit(&mut self, text: TextInput, audio_codes: &[u32]) -> Result<()>;
    /// The oldest submitted step's result.
    async fn receive(&mut self) -> Result<StepOutput>;
    /// Steps submitted but not yet received.
    fn in_flight(&self) -> usize;
    /// How many steps may stay unreceived while the session goes on.
    fn max_in_flight(&self) -> usize {
        0
    }
    /// Forgets all state (KV cache, positions, queued results). Steps still
    /// in flight are waited out first (their results belong to the old
    /// stream), the same way natively and in a browser.
    async fn reset(&mut self) -> Result<()>;
    /// Whether outputs carry end-of-turn probabilities.
    fn has_end_of_turn(&self) -> bool;
    /// Whether outputs carry raw text logits.
    fn keep_logits(&mut self, keep: bool);
}

/// moshi's `LmModel` on the CPU. It computes each step on `submit`.
pub struct CpuStepper {
    lm: moshi::lm::LmModel,
    device: Device,
    start_token: u32,
    has_end_of_turn_heads: bool,
    keep_logits: bool,
    previous: Option<u32>,
    done: VecDeque<StepOutput>,
}

impl CpuStepper {
    pub fn load(weights: &LmWeights, cfg: &Config, device: &Device) -> Result<Self> {
        Self::load_with(weights, cfg, device, weights.var_builder(device)?)
    }

    /// moshi's LM on the weights dequantized to f32 (see
    /// [`LmWeights::dequantized_var_builder`]): the reference for engines
    /// that keep activations in f32.
    pub fn load_dequantized(weights: &LmWeights, cfg: &Config, device: &Device) -> Result<Self> {
        Self::load_with(
            weights,
            cfg,
            device,
            weights.dequantized_var_builder(device)?,
        )
    }

    fn load_with(
        weights: &LmWeights,
        cfg: &Config,
        device: &Device,
        vb: moshi::nn::MaybeQuantizedVarBuilder<'_>,
    ) -> Result<Self> {
        // The end-of-turn heads are optional: one upstream file lacks them.
        let has_end_of_turn_heads = weights.has_end_of_turn_heads();
        let lm_cfg = cfg.lm_config(has_end_of_turn_heads);
        let lm = moshi::lm::LmModel::new(&lm_cfg, vb).map_err(|e| Error::WeightFile {
            file: weights.file_name().to_string(),
            reason: candle_message(e),
        })?;
        Ok(Self {
            lm,
            device: device.clone(),
            start_token: cfg.text_start_token(),
            has_end_of_turn_heads,
            keep_logits: false,
            previous: None,
            done: VecDeque::new(),
        })
    }

    pub fn model(&self) -> &moshi::lm::LmModel {
        &self.lm
    }

    fn step(&mut self, text: u32, audio_codes: &[u32]) -> Result<StepOutput> {
        if audio_codes.len() != self.lm.in_audio_codebooks() {
            return Err(Error::InvalidInput(format!(
                "{} audio codes for a model of {} codebooks",
                audio_codes.len(),
                self.lm.in_audio_codebooks()
            )));
        }
        let dev = &self.device;
        let text = Tensor::from_vec(vec![text], (1, 1), dev)?;
        let audio = audio_codes
            .iter()
            .map(|&c| Ok(Some(Tensor::from_vec(vec![c], (1, 1), dev)?)))
            .collect::<Result<Vec<_>>>()?;
        // The same calls, in the same order, as `moshi::asr::State::step_tokens`.
        let (logits, hidden) = self.lm.forward(Some(text), audio, &StreamMask::empty())?;
        let mut end_of_turn = vec![];
        for head in self.lm.extra_heads(&hidden)? {
            let prs = candle_nn::ops::softmax_last_dim(&head.to_dtype(DType::F32)?)?;
            end_of_turn.push(prs.i((0, 0, 0))?.to_scalar::<f32>()?);
        }
        let text_logits = logits.i((.., 0))?;
        let token = text_logits.argmax(D::Minus1)?.to_vec1::<u32>()?;
        let text_token = *token
            .first()
            .ok_or_else(|| Error::Stepper("empty argmax".into()))?;
        let text_logits = match self.keep_logits {
            true => Some(
                text_logits
                    .to_dtype(DType::F32)?
                    .flatten_all()?
                    .to_vec1::<f32>()?,
            ),
            false => None,
        };
        Ok(StepOutput {
            text_token,
            end_of_turn,
            text_logits,
        })
    }
}

impl LmStepper for CpuStepper {
    fn submit(&mut self, text: TextInput, audio_codes: &[u32]) -> Result<()> {
        let text = match text {
            TextInput::Start => self.start_token,
            TextInput::Forced(t) => t,
            TextInput::Previous => self
                .previous
                .ok_or_else(|| Error::Stepper("TextInput::Previous on the first step".into()))?,
        };
        let out = self.step(text, audio_codes)?;
        self.previous = Some(out.text_token);
        self.done.push_back(out);
        Ok(())
    }

    async fn receive(&mut self) -> Result<StepOutput> {
        self.done
            .pop_front()
            .ok_or_else(|| Error::Stepper("receive with no step in flight".into()))
    }

    fn in_flight(&self) -> usize {
        self.done.len()
    }

    async fn reset(&mut self) -> Result<()> {
        self.lm.reset_state();
        self.previous = None;
        self.done.clear();
        Ok(())
    }

    fn has_end_of_turn(&self) -> bool {
        self.has_end_of_turn_heads
    }

    fn keep_logits(&mut self, keep: bool) {
        self.keep_logits = keep;
    }
}
