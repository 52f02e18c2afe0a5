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

/// How a stepper picks the text token from its logits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampling {
    /// 0: greedy (argmax, exactly moshi's choice); T > 0: a draw from
    /// softmax(logits / T). Kyutai suggests ~0.25 for stt-1b-en_fr, whose
    /// greedy decoding can stop transcribing on some inputs.
    pub temperature: f32,
    /// Seeds the draws of a stream; a reset starts them again, so the same
    /// audio with the same seed gives the same words.
    pub seed: u64,
}

impl Sampling {
    pub const GREEDY: Sampling = Sampling {
        temperature: 0.0,
        seed: 0,
    };

    /// Refuses temperatures that are negative or not finite.
    pub fn new(temperature: f32, seed: u64) -> Result<Self> {
        if !temperature.is_finite() || temperature < 0.0 {
            return Err(Error::InvalidInput(format!(
                "temperature {temperature}: it must be a finite number ≥ 0 (0 = greedy)"
            )));
        }
        Ok(Self { temperature, seed })
    }

    pub fn is_greedy(&self) -> bool {
        self.temperature == 0.0
    }
}

impl Default for Sampling {
    fn default() -> Self {
        Self::GREEDY
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct StepOutput {
    /// The chosen text token: argmax, or sampled (`Sampling`).
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
    /// How later steps choose their text token (from the next step on;
    /// the draws restart from the seed here and at every reset).
    fn set_sampling(&mut self, sampling: Sampling);
}

/// moshi's `LmModel` on the CPU. It computes each step on `submit`.
pub struct CpuStepper {
    lm: moshi::lm::LmModel,
    device: Device,
    start_token: u32,
    has_end_of_turn_heads: bool,
    keep_logits: bool,
    sampling: Sampling,
    /// candle-transformers' `LogitsProcessor` (the sampler moshi's
    /// generation uses), seeded from `sampling`; None when greedy.
    sampler: Option<candle_transformers::generation::LogitsProcessor>,
    previous: Option<u32>,
    done: VecDeque<StepOutput>,
}

fn sampler(s: Sampling) -> Option<candle_transformers::generation::LogitsProcessor> {
    use candle_transformers::generation::{LogitsProcessor, Sampling as CandleSampling};
    (!s.is_greedy()).then(|| {
        LogitsProcessor::from_sampling(
            s.seed,
            CandleSampling::All {
                temperature: s.temperature as f64,
            },
        )
    })
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
            sampling: Sampling::GREEDY,
            sampler: None,
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
        let text_token = match &mut self.sampler {
            None => {
                let token = text_logits.argmax(D::Minus1)?.to_vec1::<u32>()?;
                *token
                    .first()
                    .ok_or_else(|| Error::Stepper("empty argmax".into()))?
            }
            Some(lp) => lp.sample(&text_logits.flatten_all()?)?,
        };
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
        self.sampler = sampler(self.sampling);
        Ok(())
    }

    fn has_end_of_turn(&self) -> bool {
        self.has_end_of_turn_heads
    }

    fn keep_logits(&mut self, keep: bool) {
        self.keep_logits = keep;
    }

    fn set_sampling(&mut self, sampling: Sampling) {
        self.sampling = sampling;
        self.sampler = sampler(sampling);
    }
}
