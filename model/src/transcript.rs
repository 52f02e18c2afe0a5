//! Session events gathered into timed words and end-of-turn marks: what the
//! TXT/SRT/VTT/JSON writers and the browser UI show.

use crate::config::FRAME_RATE_HZ;
use crate::session::Event;

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TimedWord {
    pub text: String,
    pub start_s: f64,
    /// The model's own end-of-word time when it gave one (an end-of-padding
    /// token before the next word); otherwise the time the word was closed.
    pub end_s: f64,
}

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Transcript {
    pub words: Vec<TimedWord>,
    /// Times (s) at which the 2 s end-of-turn head crossed 0.5, upstream's
    /// `--vad` rule (head 2, first probability > 0.5), rising edges only.
    pub end_of_turn_s: Vec<f64>,
    #[serde(skip)]
    delay_steps: usize,
    #[serde(skip)]
    in_turn_end: bool,
    #[serde(skip)]
    last_step_s: f64,
}

/// Head 2 is the 2 s horizon; upstream stt-rs uses it with threshold 0.5.
pub const END_OF_TURN_HEAD: usize = 2;
pub const END_OF_TURN_THRESHOLD: f32 = 0.5;

impl Transcript {
    pub fn new(delay_steps: usize) -> Self {
        Self {
            delay_steps,
            ..Default::default()
        }
    }

    pub fn push(&mut self, event: &Event) {
        match event {
            Event::Step {
                step_idx,
                end_of_turn,
                ..
            } => {
                let t = step_idx.saturating_sub(self.delay_steps) as f64 / FRAME_RATE_HZ;
                let eot = end_of_turn
                    .get(END_OF_TURN_HEAD)
                    .is_some_and(|&p| p > END_OF_TURN_THRESHOLD);
                if eot && !self.in_turn_end && !self.words.is_empty() {
                    self.end_of_turn_s.push(t);
                }
                self.in_turn_end = eot;
                self.last_step_s = t;
            }
            Event::Word { text, start_s, .. } => {
                // Closed at this step; the model may stamp a later end.
                let end_s = self.last_step_s.max(*start_s);
                self.words.push(TimedWord {
                    text: text.clone(),
                    start_s: *start_s,
                    end_s,
                });
            }
            Event::WordEnd { stop_s } => {
                if let Some(w) = self.words.last_mut() {
                    w.end_s = stop_s.max(w.start_s);
                }
            }
            Event::Partial { .. } => {}
        }
    }

    /// Appends a later part's words and end-of-turn marks, its times moved
    /// by `offset_s` (the part's start in the whole recording).
    pub fn append_shifted(&mut self, part: &Transcript, offset_s: f64) {
        self.words.extend(part.words.iter().map(|w| TimedWord {
            text: w.text.clone(),
            start_s: w.start_s + offset_s,
            end_s: w.end_s + offset_s,
        }));
        (self.end_of_turn_s).extend(part.end_of_turn_s.iter().map(|t| t + offset_s));
    }

    pub fn text(&self) -> String {
        self.words
            .iter()
            .map(|w| w.text.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }
}
