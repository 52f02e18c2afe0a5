//! Transcript writers: plain text, SubRip, WebVTT, JSON, JSON lines — one
//! implementation for the CLI and the browser, so their exports are the
//! same bytes.

use std::fmt::Write as _;

use crate::transcript::Transcript;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Txt,
    Srt,
    Vtt,
    Json,
    Jsonl,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Self::Txt => "txt",
            Self::Srt => "srt",
            Self::Vtt => "vtt",
            Self::Json => "json",
            Self::Jsonl => "jsonl",
        }
    }
}

/// A subtitle cue closes after this many words, at an end of turn, or at a
/// pause longer than `CUE_GAP_S`.
const CUE_MAX_WORDS: usize = 12;
const CUE_GAP_S: f64 = 1.0;

struct Cue {
    start_s: f64,
    end_s: f64,
    text: String,
}

fn cues(t: &Transcript) -> Vec<Cue> {
    let mut out: Vec<Cue> = vec![];
    let mut count = 0;
    let mut turn_ends = t.end_of_turn_s.iter().peekable();
    for w in &t.words {
        let mut new_cue = count == 0 || count >= CUE_MAX_WORDS;
        if let Some(last) = out.last() {
            new_cue |= w.start_s - last.end_s > CUE_GAP_S;
        }
        while turn_ends.peek().is_some_and(|&&e| e <= w.start_s) {
            turn_ends.next();
            new_cue = true;
        }
        match out.last_mut() {
            Some(c) if !new_cue => {
                c.text.push(' ');
                c.text.push_str(&w.text);
                c.end_s = w.end_s.max(c.end_s);
                count += 1;
            }
            _ => {
                out.push(Cue {
                    start_s: w.start_s,
                    end_s: w.end_s,
                    text: w.text.clone(),
                });
                count = 1;
            }
        }
    }
    out
}

fn timestamp(s: f64, decimal: char) -> String {
    let ms = (s.max(0.0) * 1000.0).round() as u64;
    format!(
        "{:02}:{:02}:{:02}{decimal}{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

/// The transcript as `format`; `source` names the input in JSON.
pub fn render(t: &Transcript, format: Format, source: &str) -> String {
    let mut s = String::new();
    match format {
        Format::Txt => {
            s.push_str(&t.text());
            s.push('\n');
        }
        Format::Srt => {
            for (i, c) in cues(t).iter().enumerate() {
                let _ = write!(
                    s,
                    "{}\n{} --> {}\n{}\n\n",
                    i + 1,
                    timestamp(c.start_s, ','),
                    timestamp(c.end_s, ','),
                    c.text
                );
            }
        }
        Format::Vtt => {
            s.push_str("WEBVTT\n\n");
            for c in cues(t) {
                let _ = write!(
                    s,
                    "{} --> {}\n{}\n\n",
                    timestamp(c.start_s, '.'),
                    timestamp(c.end_s, '.'),
                    c.text
                );
            }
        }
        Format::Json => {
            let v = serde_json::json!({
                "source": source,
                "text": t.text(),
                "words": t.words,
                // null: the model has no end-of-turn heads (not "no turn ended").
                "end_of_turn_s": t.has_end_of_turn().then_some(&t.end_of_turn_s),
            });
            s = serde_json::to_string_pretty(&v).expect("a JSON value always serialises");
            s.push('\n');
        }
        Format::Jsonl => {
            for w in &t.words {
                let v = serde_json::json!({"source": source, "text": w.text, "start_s": w.start_s, "end_s": w.end_s});
                let _ = writeln!(s, "{v}");
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::Event;

    fn sample() -> Transcript {
        let mut t = Transcript::new();
        for (i, w) in ["Hello", "world"].iter().enumerate() {
            t.push(&Event::Step {
                step_idx: 10 + 5 * i,
                time_s: (4 + 5 * i) as f64 / 12.5,
                text_token: 5,
                end_of_turn: vec![],
                text_logits: None,
            });
            t.push(&Event::Word {
                text: w.to_string(),
                tokens: vec![5],
                start_s: i as f64 * 0.5,
            });
            t.push(&Event::WordEnd {
                stop_s: i as f64 * 0.5 + 0.4,
            });
        }
        t
    }

    #[test]
    fn formats() {
        let t = sample();
        assert_eq!(render(&t, Format::Txt, "x"), "Hello world\n");
        assert_eq!(
            render(&t, Format::Srt, "x"),
            "1\n00:00:00,000 --> 00:00:00,900\nHello world\n\n"
        );
        assert!(
            render(&t, Format::Vtt, "x").starts_with("WEBVTT\n\n00:00:00.000 --> 00:00:00.900\n")
        );
        let j: serde_json::Value = serde_json::from_str(&render(&t, Format::Json, "x")).unwrap();
        assert_eq!(j["words"][1]["text"], "world");
        // The sample's steps carry no end-of-turn probabilities.
        assert!(j["end_of_turn_s"].is_null());
        assert_eq!(render(&t, Format::Jsonl, "x").lines().count(), 2);
        assert_eq!(timestamp(3723.4567, ','), "01:02:03,457");
    }
}
