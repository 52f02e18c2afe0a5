//! Writers of both tokenizer formats and a synthetic vocabulary, for
//! `stt-cli synth` and the tests (feature `writers`; not in the browser build).

use serde_json::{json, Value};

use super::sentencepiece::Wire;
use super::{PieceKind, WORD_MARK};

pub(crate) fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value & 0x7f) as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

pub(crate) fn put_key(out: &mut Vec<u8>, field: u32, wire: Wire) {
    put_varint(out, (u64::from(field) << 3) | wire.bits());
}

pub(crate) fn put_varint_field(out: &mut Vec<u8>, field: u32, value: u64) {
    put_key(out, field, Wire::Varint);
    put_varint(out, value);
}

pub(crate) fn put_bytes_field(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_key(out, field, Wire::Len);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

pub(crate) fn put_fixed32_field(out: &mut Vec<u8>, field: u32, bytes: [u8; 4]) {
    put_key(out, field, Wire::Fixed32);
    out.extend_from_slice(&bytes);
}

/// A valid `ModelProto` holding `pieces` and the minimal trainer_spec that
/// real sentencepiece needs to pick the unigram model.
pub fn write_sentencepiece_model(pieces: &[(String, f32, PieceKind)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (text, score, kind) in pieces {
        let mut message = Vec::new();
        put_bytes_field(&mut message, 1, text.as_bytes());
        put_fixed32_field(&mut message, 2, score.to_le_bytes());
        // NORMAL is the proto default; sentencepiece leaves it out too.
        if *kind != PieceKind::Normal {
            put_varint_field(&mut message, 3, kind.to_proto());
        }
        put_bytes_field(&mut out, 1, &message);
    }
    let mut trainer = Vec::new();
    put_varint_field(&mut trainer, 3, 1); // model_type = UNIGRAM
    put_varint_field(&mut trainer, 4, pieces.len() as u64); // vocab_size
    if pieces.iter().any(|p| p.2 == PieceKind::Byte) {
        // sentencepiece refuses BYTE pieces unless byte_fallback is set (and
        // then insists on all 256 of them; our reader accepts any subset).
        put_varint_field(&mut trainer, 35, 1);
    }
    put_bytes_field(&mut out, 2, &trainer);
    out
}

/// JSON number for a score: going through f32's shortest decimal form keeps
/// the file readable ("-0.01", not "-0.009999999776482582") while still
/// reading back to the identical f32. Non-finite scores become null.
fn json_score(score: f32) -> Value {
    let wide = score.to_string().parse::<f64>().unwrap_or(f64::from(score));
    Value::from(wide)
}

/// A Hugging Face `tokenizer.json` (Unigram model, Metaspace pre-tokenizer and
/// decoder) holding `pieces`; Control pieces are listed as special added tokens.
pub fn write_tokenizer_json(pieces: &[(String, f32, PieceKind)]) -> String {
    let added: Vec<Value> = pieces
        .iter()
        .enumerate()
        .filter(|(_, p)| p.2 == PieceKind::Control)
        .map(|(id, (text, _, _))| {
            json!({
                "id": id,
                "content": text,
                "single_word": false,
                "lstrip": false,
                "rstrip": false,
                "normalized": false,
                "special": true,
            })
        })
        .collect();
    let vocab: Vec<Value> = pieces
        .iter()
        .map(|(text, score, _)| json!([text, json_score(*score)]))
        .collect();
    let unk_id = pieces.iter().position(|p| p.2 == PieceKind::Unknown);
    let metaspace = json!({
        "type": "Metaspace",
        "replacement": WORD_MARK.to_string(),
        "prepend_scheme": "always",
        "split": true,
    });
    json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": metaspace.clone(),
        "post_processor": null,
        "decoder": metaspace,
        "model": {
            "type": "Unigram",
            "unk_id": unk_id,
            "vocab": vocab,
            "byte_fallback": false,
        },
    })
    .to_string()
}

const CONSONANTS: &[u8] = b"bdfgklmnprstvz";
const VOWELS: &[u8] = b"aeiou";

/// The `n`-th syllable string. Bijective base-70 numbering gives every `n` a
/// different digit sequence, and fixed two-letter syllables keep different
/// sequences from concatenating to the same text.
fn syllables(n: usize) -> String {
    let base = CONSONANTS.len() * VOWELS.len();
    let mut out = String::new();
    let mut rest = n + 1;
    while rest > 0 {
        rest -= 1;
        let digit = rest % base;
        out.push(char::from(CONSONANTS[digit / VOWELS.len()]));
        out.push(char::from(VOWELS[digit % VOWELS.len()]));
        rest /= base;
    }
    out
}

/// Deterministic synthetic vocabulary of `size` pieces for tests: id 0
/// "<unk>" Unknown, 1 "<s>" / 2 "</s>" / 3 "<pad>" Control, then word-initial
/// ("▁" + syllables) and continuation (syllables) pieces from index arithmetic
/// (no RNG), all distinct, with strictly decreasing scores -(i as f32)/100.
pub fn synthetic_vocab(size: usize) -> Vec<(String, f32, PieceKind)> {
    let specials = [
        ("<unk>", PieceKind::Unknown),
        ("<s>", PieceKind::Control),
        ("</s>", PieceKind::Control),
        ("<pad>", PieceKind::Control),
    ];
    let (mut words, mut continuations) = (0usize, 0usize);
    (0..size)
        .map(|i| {
            let score = -(i as f32) / 100.0;
            if let Some((text, kind)) = specials.get(i) {
                return ((*text).to_owned(), score, *kind);
            }
            // Two word-initial pieces for every continuation, roughly like a
            // real English/French vocabulary.
            let text = if i % 3 == 0 {
                continuations += 1;
                syllables(continuations - 1)
            } else {
                words += 1;
                format!("{WORD_MARK}{}", syllables(words - 1))
            };
            (text, score, PieceKind::Normal)
        })
        .collect()
}
