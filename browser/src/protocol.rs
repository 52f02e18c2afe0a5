//! The worker protocol, page ↔ worker, as serde types (`type`-tagged,
//! snake_case fields). `web/worker.js` handles `load` itself (download and
//! cache) and forwards the other requests to the engine; every request is
//! answered by `done {request, ok}` (posted by worker.js) after its last
//! output, and failures by `error {code, message}` first.
//!
//! Binary payloads (`audio.samples`, `file.bytes`) are typed arrays, read
//! by the engine directly rather than through serde.

use serde::{Deserialize, Serialize};
use stt_model::export::Format;
use stt_model::TimedWord;

/// Page → worker.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    /// Download (or read from the cache) and load a model. Handled by
    /// worker.js; `base_url` null means the default location.
    Load {
        base_url: Option<String>,
        lm_file: String,
        backend: Backend,
        /// Text sampling temperature (absent or 0: greedy) and its seed,
        /// passed to `Engine.create` as `temperature` and `seed`.
        #[serde(default)]
        temperature: Option<f32>,
        #[serde(default)]
        seed: Option<u64>,
    },
    /// Microphone audio at its own rate (a `Float32Array`, mono).
    Audio { sample_rate: u32 },
    /// A whole file (a `Uint8Array`), decoded by its content; `name` gives
    /// the format hint and the export's `source`.
    File { name: String },
    /// End of the microphone stream: the last words come out.
    Stop,
    /// Forget the stream and its transcript.
    Reset,
    /// The transcript so far, rendered as the CLI renders it.
    Export { format: Format },
    /// A finished transcript to export again: what the page had shown when
    /// its worker was restarted (after an engine crash).
    Restore {
        source: String,
        words: Vec<TimedWord>,
        end_of_turn_s: Vec<f64>,
    },
}

/// Which LM engine to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// WebGPU when the adapter has what the model needs, else the CPU.
    Auto,
    Webgpu,
    Cpu,
}

/// Worker → page.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Output {
    Status {
        state: State,
        #[serde(skip_serializing_if = "Option::is_none")]
        backend: Option<Backend>,
        #[serde(skip_serializing_if = "Option::is_none")]
        adapter: Option<String>,
        /// Something the user should know (a CPU fallback, say).
        #[serde(skip_serializing_if = "Option::is_none")]
        notice: Option<String>,
        /// A synthetic test model: its words are random.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        synthetic: bool,
    },
    /// A file being transcribed: seconds of audio done and in all (0 when
    /// the container does not say).
    Progress {
        phase: ProgressPhase,
        loaded: f64,
        total: f64,
    },
    /// The word being spoken (not final).
    Partial {
        text: String,
        start_s: f64,
    },
    /// A final word; the same `index` comes again when its end time moves.
    Word {
        index: usize,
        text: String,
        start_s: f64,
        end_s: f64,
    },
    /// The model's end-of-turn head crossed its threshold.
    EndOfTurn {
        time_s: f64,
    },
    Stats {
        audio_s: f64,
        elapsed_s: f64,
        realtime_factor: f64,
        steps: usize,
    },
    Error {
        code: String,
        message: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    WarmingUp,
    Ready,
    Transcribing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProgressPhase {
    File,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_as_worker_js_sends_them() {
        let r: Request = serde_json::from_str(r#"{"type":"export","format":"srt"}"#).unwrap();
        assert_eq!(
            r,
            Request::Export {
                format: Format::Srt
            }
        );
        let r: Request =
            serde_json::from_str(r#"{"type":"file","name":"a.mp3","bytes":{}}"#).unwrap();
        assert_eq!(
            r,
            Request::File {
                name: "a.mp3".into()
            }
        );
        let r: Request = serde_json::from_str(
            r#"{"type":"restore","source":"a.mp3","words":[{"text":"hi","start_s":0.5,"end_s":0.75}],"end_of_turn_s":[1.0]}"#,
        )
        .unwrap();
        assert_eq!(
            r,
            Request::Restore {
                source: "a.mp3".into(),
                words: vec![stt_model::TimedWord {
                    text: "hi".into(),
                    start_s: 0.5,
                    end_s: 0.75
                }],
                end_of_turn_s: vec![1.0],
            }
        );
        let r: Request = serde_json::from_str(
            r#"{"type":"load","base_url":null,"lm_file":"model-q4k.gguf","backend":"auto"}"#,
        )
        .unwrap();
        assert!(matches!(
            r,
            Request::Load {
                backend: Backend::Auto,
                temperature: None,
                ..
            }
        ));
        let r: Request = serde_json::from_str(
            r#"{"type":"load","base_url":null,"lm_file":"m","backend":"cpu","temperature":0.25,"seed":7}"#,
        )
        .unwrap();
        assert!(matches!(
            r,
            Request::Load {
                temperature: Some(t),
                seed: Some(7),
                ..
            } if t == 0.25
        ));
        assert!(serde_json::from_str::<Request>(r#"{"type":"dance"}"#).is_err());
    }

    #[test]
    fn outputs_serialise_as_the_page_reads_them() {
        let w = Output::Word {
            index: 2,
            text: "bonjour".into(),
            start_s: 1.5,
            end_s: 1.9,
        };
        assert_eq!(
            serde_json::to_value(&w).unwrap(),
            serde_json::json!({"type":"word","index":2,"text":"bonjour","start_s":1.5,"end_s":1.9})
        );
        let s = Output::Status {
            state: State::Ready,
            backend: Some(Backend::Webgpu),
            adapter: None,
            notice: None,
            synthetic: false,
        };
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            serde_json::json!({"type":"status","state":"ready","backend":"webgpu"})
        );
    }
}
