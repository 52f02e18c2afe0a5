//! What the engine keeps so a stream survives its GPU going away (a driver
//! reset, `device.destroy()`, a GPU process crash): the stream's recent
//! audio and where its last final word ended. A fresh session on the CPU is
//! fed again from there, its times shifted to the stream's; words already
//! shown stay as they are, and the word being spoken when the device went
//! is heard again from its start.
//!
//! Target-independent, so it is tested natively.

use std::collections::VecDeque;

use stt_model::config::SAMPLE_RATE_HZ;
use stt_model::Event;

/// Seconds of audio kept: far more than the model's delay plus a word, so
/// the restart point is always inside it unless nobody spoke for that long
/// (then the replay starts at the oldest sample kept, in the silence).
pub const KEEP_SECONDS: usize = 30;

pub struct Replay {
    samples: VecDeque<f32>,
    capacity: usize,
    /// Stream samples dropped before `samples[0]`.
    dropped: u64,
    /// Start (stream seconds) of the word being spoken, if any.
    partial_start_s: Option<f64>,
    /// End (stream seconds) of the last final word, or 0.
    last_word_end_s: f64,
    last_step_s: f64,
}

impl Default for Replay {
    fn default() -> Self {
        Self::new(KEEP_SECONDS * SAMPLE_RATE_HZ as usize)
    }
}

impl Replay {
    /// Keeps the last `capacity` samples (24 kHz).
    pub fn new(capacity: usize) -> Self {
        Self {
            samples: VecDeque::with_capacity(capacity.min(1 << 20)),
            capacity,
            dropped: 0,
            partial_start_s: None,
            last_word_end_s: 0.0,
            last_step_s: 0.0,
        }
    }

    /// A new stream.
    pub fn clear(&mut self) {
        *self = Self::new(self.capacity);
    }

    /// Audio fed to the stream's session, in order. A chunk holding a
    /// non-finite sample is not kept: the session refuses it whole.
    pub fn push(&mut self, pcm: &[f32]) {
        if pcm.iter().any(|x| !x.is_finite()) {
            return;
        }
        let keep = &pcm[pcm.len().saturating_sub(self.capacity)..];
        let overflow = (self.samples.len() + keep.len()).saturating_sub(self.capacity);
        self.samples.drain(..overflow);
        self.dropped += (overflow + pcm.len() - keep.len()) as u64;
        self.samples.extend(keep);
    }

    /// A stream event (times already in stream seconds), as the transcript
    /// sees it: the restart point follows the words.
    pub fn observe(&mut self, event: &Event) {
        match event {
            Event::Step { time_s, .. } => self.last_step_s = *time_s,
            Event::Partial { start_s, .. } => {
                self.partial_start_s.get_or_insert(*start_s);
            }
            Event::Word { start_s, .. } => {
                // As `Transcript` closes it: at this step, unless stamped later.
                self.last_word_end_s = self.last_step_s.max(*start_s);
                self.partial_start_s = None;
            }
            Event::WordEnd { stop_s } => self.last_word_end_s = *stop_s,
        }
    }

    /// Where a fresh session restarts (a stream sample index) and the audio
    /// from there on: the start of the word being spoken, else the end of
    /// the last final word, within what is kept.
    pub fn resume(&self) -> (u64, Vec<f32>) {
        let at_s = self.partial_start_s.unwrap_or(self.last_word_end_s);
        let wanted = (at_s.max(0.0) * SAMPLE_RATE_HZ as f64).floor() as u64;
        let end = self.dropped + self.samples.len() as u64;
        let start = wanted.clamp(self.dropped, end);
        let skip = (start - self.dropped) as usize;
        (start, self.samples.iter().skip(skip).copied().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(text: &str, start_s: f64) -> Event {
        Event::Word {
            text: text.into(),
            tokens: vec![],
            start_s,
        }
    }

    fn step(time_s: f64) -> Event {
        Event::Step {
            step_idx: 0,
            time_s,
            text_token: 3,
            end_of_turn: vec![],
            text_logits: None,
        }
    }

    fn ramp(from: usize, n: usize) -> Vec<f32> {
        (from..from + n).map(|i| i as f32).collect()
    }

    #[test]
    fn restarts_at_the_word_being_spoken() {
        let mut r = Replay::new(48_000);
        r.push(&ramp(0, 36_000));
        r.observe(&step(0.5));
        r.observe(&word("hello", 0.25));
        r.observe(&Event::WordEnd { stop_s: 0.75 });
        r.observe(&Event::Partial {
            text: "wor".into(),
            start_s: 1.0,
        });
        // A longer partial of the same word keeps the word's first start.
        r.observe(&Event::Partial {
            text: "world".into(),
            start_s: 1.0,
        });
        let (start, pcm) = r.resume();
        assert_eq!(start, 24_000);
        assert_eq!(pcm, ramp(24_000, 12_000));
    }

    #[test]
    fn without_a_partial_restarts_where_the_last_word_ended() {
        let mut r = Replay::new(48_000);
        r.push(&ramp(0, 30_000));
        r.observe(&step(0.5));
        r.observe(&word("hello", 0.25));
        assert_eq!(r.resume().0, 12_000, "closed at the step: 0.5 s");
        r.observe(&Event::WordEnd { stop_s: 0.625 });
        assert_eq!(r.resume().0, 15_000, "stamped end: 0.625 s");
        assert_eq!(r.resume().1, ramp(15_000, 15_000));
    }

    #[test]
    fn keeps_only_the_newest_samples_and_counts_the_rest() {
        let mut r = Replay::new(10);
        r.push(&ramp(0, 4));
        r.push(&ramp(4, 8)); // 12 pushed: 0 and 1 dropped
        assert_eq!(
            r.resume(),
            (2, ramp(2, 10)),
            "no word yet: from the oldest kept"
        );
        r.push(&ramp(12, 25)); // a chunk larger than the capacity
        assert_eq!(r.resume(), (27, ramp(27, 10)));
        r.push(&[f32::NAN, 1.0]);
        assert_eq!(r.resume().0, 27, "a refused chunk is not kept");
        r.clear();
        assert_eq!(r.resume(), (0, vec![]));
    }

    #[test]
    fn a_restart_point_past_the_audio_is_its_end() {
        let mut r = Replay::new(100);
        r.push(&ramp(0, 50));
        r.observe(&Event::WordEnd { stop_s: 10.0 });
        assert_eq!(r.resume(), (50, vec![]));
    }

    #[test]
    fn shifted_events_move_every_time() {
        let e = word("a", 1.0).shifted(2.5);
        assert!(matches!(e, Event::Word { start_s, .. } if start_s == 3.5));
        let e = step(1.0).shifted(2.5);
        assert!(matches!(e, Event::Step { time_s, .. } if time_s == 3.5));
        let e = Event::WordEnd { stop_s: 1.0 }.shifted(0.5);
        assert_eq!(e, Event::WordEnd { stop_s: 1.5 });
        let e = Event::Partial {
            text: "x".into(),
            start_s: 0.0,
        }
        .shifted(0.5);
        assert!(matches!(e, Event::Partial { start_s, .. } if start_s == 0.5));
    }
}
