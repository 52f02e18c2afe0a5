//! Session events gathered into timed words and end-of-turn marks: what the
//! TXT/SRT/VTT/JSON writers and the browser UI show.

use crate::session::Event;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
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
    /// A step carried end-of-turn probabilities: the model has the heads
    /// (stt-2.6b-en has none, and says so rather than "no turn ended").
    #[serde(skip)]
    end_of_turn_heads: bool,
    #[serde(skip)]
    in_turn_end: bool,
    #[serde(skip)]
    last_step_s: f64,
}

/// Head 2 is the 2 s horizon; upstream stt-rs uses it with threshold 0.5.
pub const END_OF_TURN_HEAD: usize = 2;
pub const END_OF_TURN_THRESHOLD: f32 = 0.5;

impl Transcript {
    pub fn new() -> Self {
        Self::default()
    }

    /// A finished transcript from its words and end-of-turn times (a
    /// restarted browser worker gets the page's copy back);
    /// `end_of_turn_heads`: the model has the heads.
    pub fn restored(
        words: Vec<TimedWord>,
        end_of_turn_s: Vec<f64>,
        end_of_turn_heads: bool,
    ) -> Self {
        Self {
            words,
            end_of_turn_s,
            end_of_turn_heads,
            ..Self::default()
        }
    }

    pub fn push(&mut self, event: &Event) {
        match event {
            Event::Step {
                time_s,
                end_of_turn,
                ..
            } => {
                let t = *time_s;
                self.end_of_turn_heads |= !end_of_turn.is_empty();
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
        self.end_of_turn_heads |= part.end_of_turn_heads;
    }

    /// Whether the model gave end-of-turn probabilities (false for a
    /// checkpoint without the heads, or before any step).
    pub fn has_end_of_turn(&self) -> bool {
        self.end_of_turn_heads
    }

    pub fn text(&self) -> String {
        self.words
            .iter()
            .map(|w| w.text.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }
}
