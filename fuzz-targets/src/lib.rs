//! One function per parser of bytes a user (or a server) supplies. Each must
//! return — an error is fine — and never panic, hang or allocate without
//! bound, whatever the bytes.
//!
//! Two drivers: `fuzz/` runs them under libFuzzer (`just fuzz`, nightly,
//! coverage-guided, for minutes), and [`mutate`] runs each over its seed
//! corpus (`fuzz/corpus/<target>/`) plus seeded random mutations of it on
//! stable Rust, in CI (tests/corpus.rs).

pub mod mutate;

use candle_core::Device;
use stt_model::audio::AudioStream;
use stt_model::tokenizer::Tokenizer;
use stt_model::weights::{gguf::GgufFile, safetensors::SafetensorsFile, LmWeights, Shards};

/// The most tensor bytes a target reads: real files are large, fuzzed ones
/// claim anything; reading is checked against the file's length anyway.
const MAX_TENSOR_BYTES: u64 = 1 << 24;

/// A GGUF LM file: header, then every tensor (as candle's QTensor, checked
/// for non-finite scales) and candle's quantized var builder.
pub fn gguf(data: &[u8]) {
    let shards = Shards::new(vec![data.to_vec()]);
    let Ok(f) = GgufFile::from_shards("fuzz.gguf", shards) else {
        return;
    };
    let names: Vec<String> = f.content().tensor_infos.keys().cloned().collect();
    for name in names.iter().take(64) {
        let _ = f.qtensor(name, &Device::Cpu);
    }
    let _ = f.var_builder(&Device::Cpu);
}

/// A safetensors shard (LM or Mimi): header, then every tensor small
/// enough to read, as its dtype and as f32.
pub fn safetensors(data: &[u8]) {
    let shards = Shards::new(vec![data.to_vec()]);
    let Ok(f) = SafetensorsFile::from_shards("fuzz.safetensors", shards) else {
        return;
    };
    let mut names: Vec<(String, u64)> = f
        .entries()
        .iter()
        .map(|(n, e)| (n.clone(), e.end - e.start))
        .collect();
    names.sort();
    for (name, bytes) in names.iter().take(64) {
        if *bytes <= MAX_TENSOR_BYTES {
            if let Ok(t) = f.tensor(name, &Device::Cpu) {
                let _ = t.to_dtype(candle_core::DType::F32);
            }
        }
    }
}

/// Either LM format, picked by magic as `Model` does.
pub fn lm_weights(data: &[u8]) {
    let _ = LmWeights::from_shards("fuzz", Shards::new(vec![data.to_vec()]));
}

fn tokenizer_use(t: &Tokenizer) {
    let n = t.vocab_size() as u32;
    let ids: Vec<u32> = (0..n.min(64)).chain([n, n + 1, u32::MAX]).collect();
    let _ = t.decode(&ids);
    for &id in &ids {
        let _ = (t.piece(id), t.kind(id), t.starts_word(id));
    }
}

/// A SentencePiece `.model` (protobuf).
pub fn sentencepiece(data: &[u8]) {
    if let Ok(t) = Tokenizer::from_sentencepiece_model(data) {
        tokenizer_use(&t);
    }
}

/// A Hugging Face `tokenizer.json`.
pub fn tokenizer_json(data: &[u8]) {
    if let Ok(t) = Tokenizer::from_tokenizer_json(data) {
        tokenizer_use(&t);
    }
}

/// The audio entry point: content sniffing with a format hint chosen by the
/// first byte (every container we read), then decoding and resampling to
/// the end, bounded to a minute of output.
pub fn audio(data: &[u8]) {
    const HINTS: [Option<&str>; 10] = [
        None,
        Some("wav"),
        Some("mp3"),
        Some("flac"),
        Some("ogg"),
        Some("opus"),
        Some("m4a"),
        Some("webm"),
        Some("mkv"),
        Some("aac"),
    ];
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    let hint = HINTS[pick as usize % HINTS.len()];
    let contained = stt_model::audio::guard::contained_panics();
    if let Ok(mut stream) = AudioStream::from_bytes(bytes.to_vec(), hint) {
        let mut samples = 0usize;
        while let Ok(Some(chunk)) = stream.next_chunk() {
            samples += chunk.len();
            if samples > 60 * 24_000 {
                break;
            }
        }
    }
    // Natively the guard turns a symphonia panic into an error; in wasm32 it
    // would be a trap. Count it as the crash it is there.
    assert_eq!(
        stt_model::audio::guard::contained_panics(),
        contained,
        "symphonia panicked (contained by the guard natively; a trap in wasm32): {}",
        stt_model::audio::guard::last_contained()
    );
}

/// `config.json`.
pub fn config(data: &[u8]) {
    if let Ok(c) = stt_model::Config::from_json(data) {
        let _ = (
            c.asr_delay_in_tokens(),
            c.lm_config(true),
            c.end_of_turn_heads(),
        );
        let _ = stt_model::segment::SegmentPlan::for_model(&c);
    }
}

/// A page → worker message, as JSON (the worker's objects go through the
/// same serde derive via serde-wasm-bindgen).
pub fn worker_message(data: &[u8]) {
    let _ = serde_json::from_slice::<stt_browser::protocol::Request>(data);
}

/// A fuzz target: any bytes in, no panic out.
pub type Target = fn(&[u8]);

/// Every target by name (the corpus folder's name).
pub const TARGETS: [(&str, Target); 8] = [
    ("gguf", gguf),
    ("safetensors", safetensors),
    ("lm_weights", lm_weights),
    ("sentencepiece", sentencepiece),
    ("tokenizer_json", tokenizer_json),
    ("audio", audio),
    ("config", config),
    ("worker_message", worker_message),
];
