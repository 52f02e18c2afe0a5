//! The delayed-streams loop: PCM → Mimi codes → LM steps → words, with the
//! semantics of `moshi::asr::State` (moshi 0.6.4, `asr.rs`) for one stream,
//! generic over the LM stepper.
//!
//! - Step 0 feeds the text start token and the audio pad token on every
//!   codebook; step k ≥ 1 feeds the token chosen at step k−1 and the codes of
//!   frame k−1 (the audio is one step late).
//! - Once `step ≥ delay` (6), a token other than pad (3) and end-of-padding (0)
//!   extends the current word; pad or end-of-padding closes it (a `Word` that
//!   starts at the last end-of-padding time); end-of-padding also stamps
//!   `(step − delay) / 12.5` s as the end of the closed word (`WordEnd`).

use std::sync::Arc;

use crate::config::{
    Config, FRAME_RATE_HZ, FRAME_SAMPLES, SAMPLE_RATE_HZ, TEXT_END_OF_PADDING_TOKEN, TEXT_PAD_TOKEN,
};
use crate::error::{Error, Result};
use crate::mimi::{MimiBackend, MimiEncoder};
use crate::stepper::{LmStepper, StepOutput, TextInput};
use crate::tokenizer::Tokenizer;

/// Frames per Mimi call for a file (2 s): what `stt-cli transcribe` and the
/// page's file path use, so their words stay identical.
pub const FILE_MIMI_CHUNK_FRAMES: usize = 25;

/// What a session reports, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// One LM step finished. `step_idx` counts from 1, as moshi's
    /// `AsrMsg::Step` does; `time_s` is the audio time its text refers to
    /// (steps past the delay, less the silence prefix, at least 0).
    Step {
        step_idx: usize,
        time_s: f64,
        text_token: u32,
        end_of_turn: Vec<f32>,
        text_logits: Option<Vec<f32>>,
    },
    /// The word being spoken changed (not final).
    Partial { text: String, start_s: f64 },
    /// A word is final.
    Word {
        text: String,
        tokens: Vec<u32>,
        start_s: f64,
    },
    /// The last final word ended at `stop_s`.
    WordEnd { stop_s: f64 },
}

impl Event {
    /// The same event with its times moved by `offset_s`: a session started
    /// part-way into a stream (after a lost GPU, a fresh one replays from the
    /// last final word) reports times from its own start.
    pub fn shifted(self, offset_s: f64) -> Event {
        match self {
            Event::Step {
                step_idx,
                time_s,
                text_token,
                end_of_turn,
                text_logits,
            } => Event::Step {
                step_idx,
                time_s: time_s + offset_s,
                text_token,
                end_of_turn,
                text_logits,
            },
            Event::Partial { text, start_s } => Event::Partial {
                text,
                start_s: start_s + offset_s,
            },
            Event::Word {
                text,
                tokens,
                start_s,
            } => Event::Word {
                text,
                tokens,
                start_s: start_s + offset_s,
            },
            Event::WordEnd { stop_s } => Event::WordEnd {
                stop_s: stop_s + offset_s,
            },
        }
    }
}

/// A stream's session over an LM stepper `S` and a Mimi encoder `M`
/// (moshi's on the CPU unless said).
pub struct Session<S, M = MimiEncoder> {
    mimi: M,
    stepper: S,
    tokenizer: Option<Arc<Tokenizer>>,
    delay_steps: usize,
    flush_frames: usize,
    /// Frames Mimi encodes per call (1: as they arrive).
    mimi_chunk_frames: usize,
    prefix_samples: usize,
    /// Seconds of prefix silence, taken off every time as upstream's
    /// timestamp script does (`offset_seconds`).
    time_offset_s: f64,
    audio_pad_token: u32,
    // Input side.
    pending_pcm: Vec<f32>,
    prefix_done: bool,
    previous_codes: Option<Vec<u32>>,
    submitted_steps: usize,
    samples_in: u64,
    // Output side, as moshi's `ItemState`.
    steps_done: usize,
    word_tokens: Vec<u32>,
    unended_word: bool,
    last_stop_s: f64,
}

impl<S: LmStepper, M: MimiBackend> Session<S, M> {
    pub fn new(cfg: &Config, mimi: M, stepper: S, tokenizer: Option<Arc<Tokenizer>>) -> Self {
        let delay_steps = cfg.asr_delay_in_tokens();
        // Upstream stt-rs pads `audio_delay_seconds + 1` s of silence at the end.
        let flush_s = cfg.stt_config.audio_delay_seconds + 1.0;
        let flush_frames = (flush_s * FRAME_RATE_HZ).ceil() as usize;
        let prefix_samples =
            (cfg.stt_config.audio_silence_prefix_seconds.max(0.0) * SAMPLE_RATE_HZ as f64) as usize;
        Self {
            mimi,
            stepper,
            tokenizer,
            delay_steps,
            flush_frames,
            mimi_chunk_frames: 1,
            prefix_samples,
            time_offset_s: prefix_samples as f64 / SAMPLE_RATE_HZ as f64,
            audio_pad_token: cfg.audio_pad_token(),
            pending_pcm: Vec::with_capacity(2 * FRAME_SAMPLES),
            prefix_done: false,
            previous_codes: None,
            submitted_steps: 0,
            samples_in: 0,
            steps_done: 0,
            word_tokens: vec![],
            unended_word: false,
            last_stop_s: 0.0,
        }
    }

    pub fn mimi(&self) -> &M {
        &self.mimi
    }

    pub fn stepper(&self) -> &S {
        &self.stepper
    }

    pub fn stepper_mut(&mut self) -> &mut S {
        &mut self.stepper
    }

    /// Lets Mimi encode `frames` frames per call (at least 1): faster for
    /// files (bigger tensors), but no step runs until a chunk is complete
    /// (or the stream is flushed), so a live stream keeps 1. Chunks are cut
    /// at fixed positions of the stream, so the result does not depend on
    /// how the audio is pushed; codes equal frame-by-frame ones up to f32
    /// rounding ([`MimiEncoder::encode_frames`]).
    pub fn set_mimi_chunk_frames(&mut self, frames: usize) {
        self.mimi_chunk_frames = frames.max(1);
    }

    /// Text lags audio by this many steps.
    pub fn delay_steps(&self) -> usize {
        self.delay_steps
    }

    /// Silence frames [`flush`](Self::flush) feeds after the audio.
    pub fn flush_frames(&self) -> usize {
        self.flush_frames
    }

    /// LM steps finished so far.
    pub fn steps_done(&self) -> usize {
        self.steps_done
    }

    /// Seconds of audio pushed so far (24 kHz samples).
    pub fn audio_seconds(&self) -> f64 {
        self.samples_in as f64 / SAMPLE_RATE_HZ as f64
    }

    /// Feeds 24 kHz mono samples, any number; runs every whole frame.
    pub async fn push_pcm(&mut self, pcm: &[f32]) -> Result<Vec<Event>> {
        if let Some(i) = pcm.iter().position(|x| !x.is_finite()) {
            return Err(Error::InvalidInput(format!(
                "sample {i} of this chunk is not a finite number"
            )));
        }
        let mut events = vec![];
        if !self.prefix_done {
            self.prefix_done = true;
            let prefix = vec![0f32; self.prefix_samples];
            self.feed(&prefix, &mut events).await?;
        }
        self.samples_in += pcm.len() as u64;
        self.feed(pcm, &mut events).await?;
        Ok(events)
    }

    /// Appends to the pending samples and encodes every complete chunk.
    async fn feed(&mut self, pcm: &[f32], events: &mut Vec<Event>) -> Result<()> {
        let chunk = self.mimi_chunk_frames * FRAME_SAMPLES;
        let mut rest = pcm;
        while !rest.is_empty() {
            let take = (chunk - self.pending_pcm.len()).min(rest.len());
            self.pending_pcm.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.pending_pcm.len() == chunk {
                let frames = std::mem::take(&mut self.pending_pcm);
                self.run_frames(&frames, events).await?;
                self.pending_pcm = frames;
                self.pending_pcm.clear();
            }
        }
        Ok(())
    }

    /// Feeds one frame of Mimi codes directly (goldens, tests).
    pub async fn push_codes(&mut self, codes: &[u32]) -> Result<Vec<Event>> {
        let mut events = vec![];
        self.step_codes(codes.to_vec(), &mut events).await?;
        Ok(events)
    }

    /// End of input: completes the last partial frame with silence, feeds
    /// `audio_delay_seconds + 1` s of silence as upstream does so the last
    /// words come out, and waits for every step in flight.
    pub async fn flush(&mut self) -> Result<Vec<Event>> {
        let mut events = vec![];
        // The last partial frame completed with silence, then the flush
        // frames, through the same chunking; then what is left.
        let partial = self.pending_pcm.len() % FRAME_SAMPLES;
        let mut silence = vec![0f32; self.flush_frames * FRAME_SAMPLES];
        if partial > 0 {
            silence.resize(silence.len() + FRAME_SAMPLES - partial, 0.0);
        }
        self.feed(&silence, &mut events).await?;
        if !self.pending_pcm.is_empty() {
            let frames = std::mem::take(&mut self.pending_pcm);
            self.run_frames(&frames, &mut events).await?;
        }
        while self.stepper.in_flight() > 0 {
            let out = self.stepper.receive().await?;
            self.on_output(out, &mut events);
        }
        Ok(events)
    }

    /// Waits for one step still in flight (a pipelined stepper) and returns
    /// its events; nothing when none is.
    pub async fn drain(&mut self) -> Result<Vec<Event>> {
        let mut events = vec![];
        if self.stepper.in_flight() > 0 {
            let out = self.stepper.receive().await?;
            self.on_output(out, &mut events);
        }
        Ok(events)
    }

    /// Back to a fresh session: Mimi state, KV cache, words, time.
    pub async fn reset(&mut self) -> Result<()> {
        self.mimi.reset();
        self.stepper.reset().await?;
        self.pending_pcm.clear();
        self.prefix_done = false;
        self.previous_codes = None;
        self.submitted_steps = 0;
        self.samples_in = 0;
        self.steps_done = 0;
        self.word_tokens.clear();
        self.unended_word = false;
        self.last_stop_s = 0.0;
        Ok(())
    }

    /// Encodes whole frames and steps the LM on each frame of codes.
    async fn run_frames(&mut self, pcm: &[f32], events: &mut Vec<Event>) -> Result<()> {
        for codes in self.mimi.encode(pcm).await? {
            self.step_codes(codes, events).await?;
        }
        Ok(())
    }

    async fn step_codes(&mut self, codes: Vec<u32>, events: &mut Vec<Event>) -> Result<()> {
        let n_q = self.mimi.num_codebooks();
        if codes.len() != n_q {
            return Err(Error::InvalidInput(format!(
                "{} codes for {n_q} codebooks",
                codes.len()
            )));
        }
        // The audio is fed one step late: step 0 sees pads.
        let fed = match self.previous_codes.replace(codes) {
            Some(prev) => prev,
            None => vec![self.audio_pad_token; n_q],
        };
        let text = if self.submitted_steps == 0 {
            TextInput::Start
        } else {
            TextInput::Previous
        };
        self.stepper.submit(text, &fed)?;
        self.submitted_steps += 1;
        while self.stepper.in_flight() > self.stepper.max_in_flight() {
            let out = self.stepper.receive().await?;
            self.on_output(out, events);
        }
        Ok(())
    }

    fn decode(&self, tokens: &[u32]) -> String {
        match &self.tokenizer {
            Some(t) => t.decode(tokens),
            None => tokens
                .iter()
                .map(|t| format!("<{t}>"))
                .collect::<Vec<_>>()
                .join(""),
        }
    }

    fn on_output(&mut self, out: StepOutput, events: &mut Vec<Event>) {
        let token = out.text_token;
        self.steps_done += 1;
        let time_s = (self.steps_done.saturating_sub(self.delay_steps) as f64 / FRAME_RATE_HZ
            - self.time_offset_s)
            .max(0.0);
        events.push(Event::Step {
            step_idx: self.steps_done,
            time_s,
            text_token: token,
            end_of_turn: out.end_of_turn,
            text_logits: out.text_logits,
        });
        if self.steps_done < self.delay_steps {
            return;
        }
        if token == TEXT_PAD_TOKEN || token == TEXT_END_OF_PADDING_TOKEN {
            if !self.word_tokens.is_empty() {
                let tokens = std::mem::take(&mut self.word_tokens);
                let text = self.decode(&tokens);
                events.push(Event::Word {
                    text,
                    tokens,
                    start_s: self.last_stop_s,
                });
                self.unended_word = true;
            }
        } else {
            self.word_tokens.push(token);
            let text = self.decode(&self.word_tokens);
            events.push(Event::Partial {
                text,
                start_s: self.last_stop_s,
            });
        }
        if token == TEXT_END_OF_PADDING_TOKEN {
            let stop_s = time_s;
            if self.unended_word {
                self.unended_word = false;
                events.push(Event::WordEnd { stop_s });
            }
            self.last_stop_s = stop_s;
        }
    }
}
