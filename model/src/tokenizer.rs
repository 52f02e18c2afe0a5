//! Text tokenizer: a SentencePiece unigram vocabulary, loaded either from the
//! upstream `.model` file (a serialized `sentencepiece.ModelProto`) or from a
//! Hugging Face `tokenizer.json`, and used to turn model output ids into text.
//!
//! Only decoding is needed at run time, so only the piece table is kept. The
//! protobuf reader is hand-written to avoid pulling a protobuf stack into the
//! wasm build; it treats the file as untrusted input and never panics.
//!
//! The writers exist so tests can build synthetic models without shipping the
//! real (licensed, multi-megabyte) files.

use std::collections::HashSet;
use std::path::Path;

use serde::Deserialize;
use serde_json::{json, Value};

/// SentencePiece's word-boundary marker (U+2581), printed as a space.
const WORD_MARK: char = '\u{2581}';

/// Why a tokenizer could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenizerError {
    #[error("cannot read tokenizer file: {0}")]
    Io(#[from] std::io::Error),
    #[error("malformed sentencepiece model at byte {offset}: {reason}")]
    Protobuf { offset: usize, reason: String },
    #[error("malformed tokenizer.json: {0}")]
    Json(String),
    #[error("tokenizer has no pieces")]
    Empty,
    #[error("unknown tokenizer format: {0}")]
    UnknownFormat(String),
}

type Result<T> = std::result::Result<T, TokenizerError>;

/// The role of a piece, as in `sentencepiece.ModelProto.SentencePiece.Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PieceKind {
    Normal,
    Unknown,
    Control,
    UserDefined,
    Unused,
    Byte,
}

impl PieceKind {
    fn from_proto(value: u64) -> Option<Self> {
        Some(match value {
            1 => Self::Normal,
            2 => Self::Unknown,
            3 => Self::Control,
            4 => Self::UserDefined,
            5 => Self::Unused,
            6 => Self::Byte,
            _ => return None,
        })
    }

    fn to_proto(self) -> u64 {
        match self {
            Self::Normal => 1,
            Self::Unknown => 2,
            Self::Control => 3,
            Self::UserDefined => 4,
            Self::Unused => 5,
            Self::Byte => 6,
        }
    }
}

#[derive(Debug, Clone)]
struct Piece {
    text: String,
    score: f32,
    kind: PieceKind,
    /// The byte value of a `<0xNN>` piece, parsed once at load time.
    byte: Option<u8>,
}

/// A loaded vocabulary; ids are indices into the piece table.
#[derive(Debug, Clone)]
pub struct Tokenizer {
    pieces: Vec<Piece>,
}

impl Tokenizer {
    /// Loads a serialized `sentencepiece.ModelProto` (the `.model` file).
    pub fn from_sentencepiece_model(bytes: &[u8]) -> Result<Self> {
        if bytes.is_empty() {
            return Err(TokenizerError::Empty);
        }
        let mut reader = Reader::new(bytes);
        let mut pieces = Vec::new();
        let mut offsets = Vec::new();
        while !reader.at_end() {
            let at = reader.pos;
            let (field, wire) = reader.key()?;
            if field == 1 {
                expect_wire(at, field, wire, Wire::Len)?;
                let mut message = reader.sub_message()?;
                pieces.push(parse_piece(&mut message, at)?);
                offsets.push(at);
            } else {
                // trainer_spec, normalizer_spec, self_test_data, denormalizer_spec
                // and anything newer carry nothing that decoding needs.
                reader.skip(field, wire)?;
            }
        }
        // sentencepiece itself refuses a model with a repeated piece; doing the
        // same also rejects most garbage that happens to parse as protobuf.
        let mut seen = HashSet::with_capacity(pieces.len());
        for (piece, at) in pieces.iter().zip(offsets) {
            if !seen.insert(piece.text.as_str()) {
                return Err(proto_err(at, format!("duplicate piece {:?}", piece.text)));
            }
        }
        Self::from_pieces(pieces)
    }

    /// Loads a Hugging Face `tokenizer.json` whose model is `Unigram`.
    pub fn from_tokenizer_json(bytes: &[u8]) -> Result<Self> {
        if bytes.is_empty() {
            return Err(TokenizerError::Empty);
        }
        let file: HfFile =
            serde_json::from_slice(bytes).map_err(|e| TokenizerError::Json(e.to_string()))?;
        // Check the type before the shape: a BPE model's vocab is a map, and
        // "wrong model type" is the more useful error for that file.
        match file.model.get("type").and_then(Value::as_str) {
            Some("Unigram") => {}
            Some(other) => {
                return Err(TokenizerError::UnknownFormat(format!(
                    "tokenizer.json model type {other:?}, expected \"Unigram\""
                )))
            }
            None => {
                return Err(TokenizerError::UnknownFormat(
                    "tokenizer.json model has no type".to_owned(),
                ))
            }
        }
        let model: HfUnigram =
            serde_json::from_value(file.model).map_err(|e| TokenizerError::Json(e.to_string()))?;
        let special: HashSet<u32> = file
            .added_tokens
            .iter()
            .filter(|t| t.special)
            .map(|t| t.id)
            .collect();
        let pieces = model
            .vocab
            .into_iter()
            .enumerate()
            .map(|(index, (text, score))| {
                let id = u32::try_from(index).ok();
                let byte = parse_byte_piece(&text);
                // unk_id wins over added_tokens: converted files list <unk> as a
                // special added token, but it is still the model's unknown piece.
                let kind = if id.is_some() && id == model.unk_id {
                    PieceKind::Unknown
                } else if id.is_some_and(|id| special.contains(&id)) {
                    PieceKind::Control
                } else if byte.is_some() {
                    PieceKind::Byte
                } else {
                    PieceKind::Normal
                };
                Piece {
                    text,
                    // Scores are stored as f32 in the .model; JSON widens them.
                    score: score as f32,
                    kind,
                    byte: byte.filter(|_| kind == PieceKind::Byte),
                }
            })
            .collect();
        Self::from_pieces(pieces)
    }

    /// Loads `.model` or `.json` (chosen by the file extension).
    pub fn from_path(path: &Path) -> Result<Self> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or_default()
            .to_ascii_lowercase();
        match ext.as_str() {
            "model" => Self::from_sentencepiece_model(&std::fs::read(path)?),
            "json" => Self::from_tokenizer_json(&std::fs::read(path)?),
            _ => Err(TokenizerError::UnknownFormat(format!(
                "{}: expected a .model or .json file",
                path.display()
            ))),
        }
    }

    fn from_pieces(pieces: Vec<Piece>) -> Result<Self> {
        if pieces.is_empty() {
            return Err(TokenizerError::Empty);
        }
        Ok(Self { pieces })
    }

    fn get(&self, id: u32) -> Option<&Piece> {
        self.pieces.get(usize::try_from(id).ok()?)
    }

    pub fn vocab_size(&self) -> usize {
        self.pieces.len()
    }

    pub fn piece(&self, id: u32) -> Option<&str> {
        self.get(id).map(|p| p.text.as_str())
    }

    pub fn kind(&self, id: u32) -> Option<PieceKind> {
        self.get(id).map(|p| p.kind)
    }

    /// The unigram log-probability of the piece (kept for round-trip checks).
    pub fn score(&self, id: u32) -> Option<f32> {
        self.get(id).map(|p| p.score)
    }

    /// Joins pieces: '▁' (U+2581) becomes a space; Byte pieces <0xNN> are gathered into bytes and decoded as UTF-8 (lossy);
    /// Control/Unknown/Unused pieces and ids out of range are skipped; a leading space is trimmed.
    pub fn decode(&self, ids: &[u32]) -> String {
        let mut out = String::new();
        let mut bytes = Vec::new();
        for piece in ids.iter().filter_map(|&id| self.get(id)) {
            match piece.kind {
                PieceKind::Byte => bytes.extend(piece.byte),
                PieceKind::Normal | PieceKind::UserDefined => {
                    flush_bytes(&mut out, &mut bytes);
                    push_text(&mut out, &piece.text);
                }
                // Skipped pieces don't flush: a multi-byte character split by
                // a control token still comes out whole.
                PieceKind::Control | PieceKind::Unknown | PieceKind::Unused => {}
            }
        }
        flush_bytes(&mut out, &mut bytes);
        // The leading space is the dummy prefix sentencepiece adds when encoding.
        match out.strip_prefix(' ') {
            Some(rest) => rest.to_owned(),
            None => out,
        }
    }

    /// True when the piece begins a new word (starts with '▁').
    pub fn starts_word(&self, id: u32) -> bool {
        self.get(id).is_some_and(|p| p.text.starts_with(WORD_MARK))
    }
}

fn push_text(out: &mut String, text: &str) {
    out.extend(text.chars().map(|c| if c == WORD_MARK { ' ' } else { c }));
}

fn flush_bytes(out: &mut String, bytes: &mut Vec<u8>) {
    if !bytes.is_empty() {
        push_text(out, &String::from_utf8_lossy(bytes));
        bytes.clear();
    }
}

/// Parses sentencepiece's byte-fallback spelling `<0xNN>`.
fn parse_byte_piece(text: &str) -> Option<u8> {
    let hex = text.strip_prefix("<0x")?.strip_suffix('>')?;
    // from_str_radix would also accept a sign, so check the digits first.
    if hex.len() != 2 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u8::from_str_radix(hex, 16).ok()
}

// ---------------------------------------------------------------------------
// Hugging Face tokenizer.json

#[derive(Deserialize)]
struct HfFile {
    #[serde(default)]
    added_tokens: Vec<HfAddedToken>,
    model: Value,
}

#[derive(Deserialize)]
struct HfAddedToken {
    id: u32,
    #[serde(default)]
    special: bool,
}

#[derive(Deserialize)]
struct HfUnigram {
    #[serde(default)]
    unk_id: Option<u32>,
    vocab: Vec<(String, f64)>,
}

// ---------------------------------------------------------------------------
// Protobuf wire format

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wire {
    Varint,
    Fixed64,
    Len,
    StartGroup,
    EndGroup,
    Fixed32,
}

impl Wire {
    fn from_bits(bits: u64) -> Option<Self> {
        Some(match bits {
            0 => Self::Varint,
            1 => Self::Fixed64,
            2 => Self::Len,
            3 => Self::StartGroup,
            4 => Self::EndGroup,
            5 => Self::Fixed32,
            _ => return None,
        })
    }

    fn bits(self) -> u64 {
        match self {
            Self::Varint => 0,
            Self::Fixed64 => 1,
            Self::Len => 2,
            Self::StartGroup => 3,
            Self::EndGroup => 4,
            Self::Fixed32 => 5,
        }
    }
}

fn proto_err(offset: usize, reason: impl Into<String>) -> TokenizerError {
    TokenizerError::Protobuf {
        offset,
        reason: reason.into(),
    }
}

fn expect_wire(at: usize, field: u32, got: Wire, want: Wire) -> Result<()> {
    if got == want {
        Ok(())
    } else {
        Err(proto_err(
            at,
            format!("field {field} has wire type {got:?}, expected {want:?}"),
        ))
    }
}

/// A cursor over `buf[pos..end]`; offsets stay absolute so errors point into
/// the whole file even inside nested messages.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    end: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self {
            buf,
            pos: 0,
            end: buf.len(),
        }
    }

    fn at_end(&self) -> bool {
        self.pos >= self.end
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let start = self.pos;
        let left = self.end.saturating_sub(start);
        let bytes = start
            .checked_add(n)
            .filter(|&stop| stop <= self.end)
            .and_then(|stop| self.buf.get(start..stop))
            .ok_or_else(|| proto_err(start, format!("truncated: {n} bytes needed, {left} left")))?;
        self.pos = start + bytes.len();
        Ok(bytes)
    }

    fn varint(&mut self) -> Result<u64> {
        let start = self.pos;
        let mut value = 0u64;
        for i in 0..10 {
            let byte = *self
                .take(1)?
                .first()
                .ok_or_else(|| proto_err(start, "truncated varint"))?;
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(proto_err(start, "varint longer than 10 bytes"))
    }

    fn key(&mut self) -> Result<(u32, Wire)> {
        let at = self.pos;
        let key = self.varint()?;
        let wire = Wire::from_bits(key & 7)
            .ok_or_else(|| proto_err(at, format!("bad wire type {}", key & 7)))?;
        // Field numbers are 1..=2^29-1.
        let field = u32::try_from(key >> 3)
            .ok()
            .filter(|&f| f != 0 && f < 1 << 29)
            .ok_or_else(|| proto_err(at, format!("bad field number {}", key >> 3)))?;
        Ok((field, wire))
    }

    fn len_delimited(&mut self) -> Result<&'a [u8]> {
        let at = self.pos;
        let len = self.varint()?;
        let len =
            usize::try_from(len).map_err(|_| proto_err(at, format!("length {len} too large")))?;
        self.take(len)
    }

    /// A reader limited to the next length-delimited field.
    fn sub_message(&mut self) -> Result<Reader<'a>> {
        let bytes = self.len_delimited()?;
        let end = self.pos;
        Ok(Reader {
            buf: self.buf,
            pos: end - bytes.len(),
            end,
        })
    }

    fn fixed32(&mut self) -> Result<[u8; 4]> {
        let at = self.pos;
        <[u8; 4]>::try_from(self.take(4)?).map_err(|_| proto_err(at, "bad fixed32"))
    }

    /// Skips the value of an unknown field whose key was just read.
    fn skip(&mut self, field: u32, wire: Wire) -> Result<()> {
        match wire {
            Wire::Varint => self.varint().map(drop),
            Wire::Fixed64 => self.take(8).map(drop),
            Wire::Len => self.len_delimited().map(drop),
            Wire::Fixed32 => self.take(4).map(drop),
            Wire::StartGroup => self.skip_group(field),
            Wire::EndGroup => Err(proto_err(
                self.pos,
                format!("end of group {field} without a start"),
            )),
        }
    }

    /// Skips (deprecated) groups; an explicit stack instead of recursion so
    /// hostile nesting cannot overflow the call stack.
    fn skip_group(&mut self, field: u32) -> Result<()> {
        let mut open = vec![field];
        while let Some(&top) = open.last() {
            let at = self.pos;
            let (inner, wire) = self.key()?;
            match wire {
                Wire::StartGroup => open.push(inner),
                Wire::EndGroup if inner == top => {
                    open.pop();
                }
                Wire::EndGroup => {
                    return Err(proto_err(
                        at,
                        format!("end of group {inner} inside group {top}"),
                    ))
                }
                other => self.skip(inner, other)?,
            }
        }
        Ok(())
    }
}

/// Parses one `SentencePiece` message; `at` is where its key began.
fn parse_piece(reader: &mut Reader<'_>, at: usize) -> Result<Piece> {
    let mut text = None;
    let mut score = 0.0f32;
    let mut kind = PieceKind::Normal;
    while !reader.at_end() {
        let key_at = reader.pos;
        let (field, wire) = reader.key()?;
        match field {
            1 => {
                expect_wire(key_at, field, wire, Wire::Len)?;
                let raw = reader.len_delimited()?;
                let s = std::str::from_utf8(raw)
                    .map_err(|_| proto_err(key_at, "piece is not valid UTF-8"))?;
                text = Some(s.to_owned());
            }
            2 => {
                expect_wire(key_at, field, wire, Wire::Fixed32)?;
                score = f32::from_le_bytes(reader.fixed32()?);
            }
            3 => {
                expect_wire(key_at, field, wire, Wire::Varint)?;
                let value = reader.varint()?;
                kind = PieceKind::from_proto(value)
                    .ok_or_else(|| proto_err(key_at, format!("unknown piece type {value}")))?;
            }
            _ => reader.skip(field, wire)?,
        }
    }
    let text = text
        .filter(|t| !t.is_empty())
        .ok_or_else(|| proto_err(at, "piece without text"))?;
    let byte = match kind {
        PieceKind::Byte => Some(
            parse_byte_piece(&text)
                .ok_or_else(|| proto_err(at, format!("byte piece {text:?} is not <0xNN>")))?,
        ),
        _ => None,
    };
    Ok(Piece {
        text,
        score,
        kind,
        byte,
    })
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value & 0x7f) as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn put_key(out: &mut Vec<u8>, field: u32, wire: Wire) {
    put_varint(out, (u64::from(field) << 3) | wire.bits());
}

fn put_varint_field(out: &mut Vec<u8>, field: u32, value: u64) {
    put_key(out, field, Wire::Varint);
    put_varint(out, value);
}

fn put_bytes_field(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_key(out, field, Wire::Len);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn put_fixed32_field(out: &mut Vec<u8>, field: u32, bytes: [u8; 4]) {
    put_key(out, field, Wire::Fixed32);
    out.extend_from_slice(&bytes);
}

// ---------------------------------------------------------------------------
// Writers for synthetic models

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

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(pieces: &[(&str, PieceKind)]) -> Vec<(String, f32, PieceKind)> {
        pieces
            .iter()
            .enumerate()
            .map(|(i, (t, k))| ((*t).to_owned(), -(i as f32), *k))
            .collect()
    }

    fn assert_same(tok: &Tokenizer, vocab: &[(String, f32, PieceKind)]) {
        assert_eq!(tok.vocab_size(), vocab.len());
        for (id, (text, score, kind)) in (0u32..).zip(vocab) {
            assert_eq!(tok.piece(id), Some(text.as_str()), "id {id}");
            assert_eq!(tok.kind(id), Some(*kind), "id {id}");
            assert_eq!(tok.score(id), Some(*score), "id {id}");
        }
    }

    #[test]
    fn synthetic_vocab_is_distinct_and_shaped() {
        let vocab = synthetic_vocab(8000);
        assert_eq!(vocab.len(), 8000);
        let distinct: HashSet<&str> = vocab.iter().map(|p| p.0.as_str()).collect();
        assert_eq!(distinct.len(), 8000);
        assert!(vocab.windows(2).all(|w| w[0].1 > w[1].1));
        assert_eq!(vocab[0].2, PieceKind::Unknown);
        assert!(vocab[1..4].iter().all(|p| p.2 == PieceKind::Control));
        let words = vocab.iter().filter(|p| p.0.starts_with(WORD_MARK)).count();
        assert!(words > 4000 && words < 7996, "{words} word-initial pieces");
        assert_eq!(synthetic_vocab(2).len(), 2);
        assert!(synthetic_vocab(0).is_empty());
    }

    #[test]
    fn sentencepiece_round_trip() {
        let vocab = synthetic_vocab(8000);
        let tok = Tokenizer::from_sentencepiece_model(&write_sentencepiece_model(&vocab));
        assert_same(&tok.expect("load"), &vocab);
    }

    #[test]
    fn tokenizer_json_round_trip() {
        let vocab = synthetic_vocab(8000);
        let json = write_tokenizer_json(&vocab);
        let tok = Tokenizer::from_tokenizer_json(json.as_bytes()).expect("load");
        assert_same(&tok, &vocab);
        let value: Value = serde_json::from_str(&json).expect("json");
        assert_eq!(value["model"]["unk_id"], json!(0));
        assert_eq!(value["added_tokens"].as_array().map(Vec::len), Some(3));
        assert_eq!(value["decoder"]["type"], json!("Metaspace"));
    }

    #[test]
    fn json_unk_listed_as_special_stays_unknown() {
        let json = r#"{"added_tokens":[{"id":0,"content":"<unk>","special":true},
            {"id":1,"content":"<s>","special":true},{"id":2,"content":"x","special":false}],
            "model":{"type":"Unigram","unk_id":0,
            "vocab":[["<unk>",0.0],["<s>",0.0],["x",-1.5],["<0x41>",-2.0]]}}"#;
        let tok = Tokenizer::from_tokenizer_json(json.as_bytes()).expect("load");
        assert_eq!(tok.kind(0), Some(PieceKind::Unknown));
        assert_eq!(tok.kind(1), Some(PieceKind::Control));
        assert_eq!(tok.kind(2), Some(PieceKind::Normal));
        assert_eq!(tok.kind(3), Some(PieceKind::Byte));
        assert_eq!(tok.decode(&[2, 3, 0, 1]), "xA");
    }

    #[test]
    fn json_rejects_other_models() {
        let bpe = br#"{"model":{"type":"BPE","vocab":{"a":0},"merges":[]}}"#;
        assert!(matches!(
            Tokenizer::from_tokenizer_json(bpe),
            Err(TokenizerError::UnknownFormat(_))
        ));
        let no_vocab = br#"{"model":{"type":"Unigram","vocab":[]}}"#;
        assert!(matches!(
            Tokenizer::from_tokenizer_json(no_vocab),
            Err(TokenizerError::Empty)
        ));
        assert!(matches!(
            Tokenizer::from_tokenizer_json(b"{not json"),
            Err(TokenizerError::Json(_))
        ));
    }

    fn decode_vocab() -> Vec<(String, f32, PieceKind)> {
        owned(&[
            ("<unk>", PieceKind::Unknown),
            ("<s>", PieceKind::Control),
            ("</s>", PieceKind::Control),
            ("\u{2581}Hello", PieceKind::Normal),
            ("\u{2581}wor", PieceKind::Normal),
            ("ld", PieceKind::Normal),
            ("<0xC3>", PieceKind::Byte),
            ("<0xA9>", PieceKind::Byte),
            ("\u{2581}caf", PieceKind::Normal),
            ("<0xFF>", PieceKind::Byte),
            ("<mask>", PieceKind::Unused),
            ("\u{2581}", PieceKind::Normal),
        ])
    }

    #[test]
    fn decode_joins_pieces() {
        let vocab = decode_vocab();
        let from_model =
            Tokenizer::from_sentencepiece_model(&write_sentencepiece_model(&vocab)).expect("model");
        let from_json =
            Tokenizer::from_tokenizer_json(write_tokenizer_json(&vocab).as_bytes()).expect("json");
        // tokenizer.json has no way to mark a piece Unused, so only the .model keeps it.
        assert_eq!(from_model.decode(&[0, 10, 3]), "Hello");
        assert_eq!(from_json.kind(10), Some(PieceKind::Normal));
        for tok in [from_model, from_json] {
            assert_eq!(tok.decode(&[3, 4, 5]), "Hello world");
            assert_eq!(tok.decode(&[1, 3, 4, 2, 5, 2]), "Hello world");
            assert_eq!(tok.decode(&[8, 6, 7]), "café");
            assert_eq!(tok.decode(&[6, 7]), "é");
            // A control piece between the bytes of one character is invisible.
            assert_eq!(tok.decode(&[8, 6, 2, 7]), "café");
            assert_eq!(tok.decode(&[3, 999, 4, u32::MAX, 5]), "Hello world");
            assert_eq!(tok.decode(&[0, 3]), "Hello");
            assert_eq!(tok.decode(&[9]), "\u{FFFD}");
            assert_eq!(tok.decode(&[11, 11, 3]), "  Hello");
            assert_eq!(tok.decode(&[]), "");
            assert!(tok.starts_word(3));
            assert!(!tok.starts_word(5));
            assert!(!tok.starts_word(1));
            assert!(!tok.starts_word(999));
            assert_eq!(tok.piece(999), None);
            assert_eq!(tok.kind(999), None);
        }
    }

    #[test]
    fn empty_input_is_empty() {
        assert!(matches!(
            Tokenizer::from_sentencepiece_model(&[]),
            Err(TokenizerError::Empty)
        ));
        assert!(matches!(
            Tokenizer::from_tokenizer_json(b""),
            Err(TokenizerError::Empty)
        ));
        // Only a trainer_spec: valid protobuf, but no pieces.
        assert!(matches!(
            Tokenizer::from_sentencepiece_model(&write_sentencepiece_model(&[])),
            Err(TokenizerError::Empty)
        ));
    }

    #[test]
    fn truncated_piece_is_protobuf_error() {
        let model = write_sentencepiece_model(&decode_vocab());
        // First record: key byte, one-byte length, body; cut inside the second.
        let first = 2 + usize::from(model.get(1).copied().unwrap_or(0));
        let cut = model.get(..first + 4).unwrap_or(&model);
        assert!(matches!(
            Tokenizer::from_sentencepiece_model(cut),
            Err(TokenizerError::Protobuf { .. })
        ));
    }

    /// Tiny LCG (Numerical Recipes constants) so the garbage is reproducible.
    struct Lcg(u32);
    impl Lcg {
        fn next(&mut self) -> u32 {
            self.0 = self.0.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            self.0 >> 8
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut rng = Lcg(0x5eed);
        for round in 0..2000 {
            let len = 1 + rng.next() as usize % 96;
            let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            assert!(
                Tokenizer::from_sentencepiece_model(&bytes).is_err(),
                "round {round}: {bytes:?}"
            );
            assert!(Tokenizer::from_tokenizer_json(&bytes).is_err());
        }
    }

    #[test]
    fn truncations_never_panic() {
        // Work grows with the square of the size; 2000 pieces keep the debug
        // build fast while still cutting through every kind of record.
        let vocab = synthetic_vocab(2000);
        let model = write_sentencepiece_model(&vocab);
        for cut in (1..model.len()).step_by(97) {
            let Some(prefix) = model.get(..cut) else {
                continue;
            };
            // A cut on a record boundary is itself a valid (smaller) model.
            if let Ok(tok) = Tokenizer::from_sentencepiece_model(prefix) {
                assert!(tok.vocab_size() < vocab.len());
                assert_same(&tok, vocab.get(..tok.vocab_size()).unwrap_or(&[]));
            }
        }
    }

    #[test]
    fn unknown_fields_are_skipped() {
        let mut model = Vec::new();
        put_varint_field(&mut model, 99, 123_456_789);
        let mut trainer = Vec::new();
        put_varint_field(&mut trainer, 3, 1);
        put_bytes_field(&mut trainer, 7, b"ignored");
        put_bytes_field(&mut model, 2, &trainer);
        put_key(&mut model, 50, Wire::Fixed64);
        model.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        put_fixed32_field(&mut model, 51, [9, 9, 9, 9]);
        // A group holding a nested group and a varint.
        put_key(&mut model, 60, Wire::StartGroup);
        put_key(&mut model, 61, Wire::StartGroup);
        put_varint_field(&mut model, 1, 5);
        put_key(&mut model, 61, Wire::EndGroup);
        put_bytes_field(&mut model, 1, b"not a piece, inside a group");
        put_key(&mut model, 60, Wire::EndGroup);
        for (text, kind) in [("<unk>", 2u64), ("\u{2581}hi", 1)] {
            let mut piece = Vec::new();
            put_varint_field(&mut piece, 42, 7); // unknown field inside a piece
            put_bytes_field(&mut piece, 1, text.as_bytes());
            put_fixed32_field(&mut piece, 2, (-1.0f32).to_le_bytes());
            put_varint_field(&mut piece, 3, kind);
            put_bytes_field(&mut model, 1, &piece);
        }
        put_bytes_field(&mut model, 3, b"normalizer");
        let tok = Tokenizer::from_sentencepiece_model(&model).expect("load");
        assert_eq!(tok.vocab_size(), 2);
        assert_eq!(tok.piece(1), Some("\u{2581}hi"));
        assert_eq!(tok.kind(0), Some(PieceKind::Unknown));
        assert_eq!(tok.decode(&[0, 1]), "hi");
    }

    #[test]
    fn invalid_pieces_are_rejected() {
        let dup = owned(&[("a", PieceKind::Normal), ("a", PieceKind::Normal)]);
        let bad_byte = owned(&[("<0xZZ>", PieceKind::Byte)]);
        let empty = owned(&[("", PieceKind::Normal)]);
        for vocab in [dup, bad_byte, empty] {
            assert!(matches!(
                Tokenizer::from_sentencepiece_model(&write_sentencepiece_model(&vocab)),
                Err(TokenizerError::Protobuf { .. })
            ));
        }
        // Unknown type value, and a mismatched wire type for the score.
        let mut piece = Vec::new();
        put_bytes_field(&mut piece, 1, b"a");
        put_varint_field(&mut piece, 3, 9);
        let mut model = Vec::new();
        put_bytes_field(&mut model, 1, &piece);
        assert!(Tokenizer::from_sentencepiece_model(&model).is_err());
        let mut piece = Vec::new();
        put_bytes_field(&mut piece, 1, b"a");
        put_varint_field(&mut piece, 2, 1);
        let mut model = Vec::new();
        put_bytes_field(&mut model, 1, &piece);
        assert!(Tokenizer::from_sentencepiece_model(&model).is_err());
        // Overlong varint.
        assert!(Tokenizer::from_sentencepiece_model(&[
            0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01
        ])
        .is_err());
    }

    #[test]
    fn from_path_picks_format_by_extension() {
        let dir = std::env::temp_dir().join(format!("stt-tokenizer-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let vocab = decode_vocab();
        let model = dir.join("t.model");
        let json = dir.join("t.json");
        std::fs::write(&model, write_sentencepiece_model(&vocab)).expect("write");
        std::fs::write(&json, write_tokenizer_json(&vocab)).expect("write");
        for path in [&model, &json] {
            let tok = Tokenizer::from_path(path).expect("load");
            assert_eq!(tok.decode(&[3, 4, 5]), "Hello world");
        }
        assert!(matches!(
            Tokenizer::from_path(&dir.join("t.txt")),
            Err(TokenizerError::UnknownFormat(_))
        ));
        assert!(matches!(
            Tokenizer::from_path(&dir.join("missing.model")),
            Err(TokenizerError::Io(_))
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Loads our written .model in the real sentencepiece (Python package) and
    /// compares pieces and decoding; skipped when it is not installed.
    #[cfg(not(target_arch = "wasm32"))]
    #[test]
    fn real_sentencepiece_loads_written_model() {
        use std::process::Command;
        let available = Command::new("python3")
            .args(["-c", "import sentencepiece"])
            .output()
            .is_ok_and(|o| o.status.success());
        if !available {
            eprintln!("skipped: python3 with sentencepiece not available");
            return;
        }
        let mut vocab = synthetic_vocab(8000);
        // Put all 256 byte pieces at the end (sentencepiece wants the full set)
        // so byte_fallback and <0xNN> decoding are checked too.
        const BYTES: u32 = 8000 - 256;
        for (slot, byte) in vocab.iter_mut().skip(BYTES as usize).zip(0u8..=255) {
            *slot = (format!("<0x{byte:02X}>"), slot.1, PieceKind::Byte);
        }
        let tok =
            Tokenizer::from_sentencepiece_model(&write_sentencepiece_model(&vocab)).expect("load");
        let path =
            std::env::temp_dir().join(format!("stt-tokenizer-sp-{}.model", std::process::id()));
        std::fs::write(&path, write_sentencepiece_model(&vocab)).expect("write");
        let ids: Vec<u32> = vec![0, 1, 2, 3, 4, 5, 6, 100, 4242, BYTES - 1, BYTES, 7999];
        let sequences: Vec<Vec<u32>> = vec![
            vec![1, 4, 5, 6, 7, 2],
            vec![8, 9, 10, 11, 12, 13, 14, 15],
            vec![4, 5, BYTES + 0xC3, BYTES + 0xA9, 3, 700],
            vec![
                BYTES + 0x41,
                9,
                BYTES + 0xE2,
                BYTES + 0x82,
                BYTES + 0xAC,
                10,
            ],
            (4..60).collect(),
        ];
        let script = r#"
import json, sys
import sentencepiece as spm
sp = spm.SentencePieceProcessor(model_file=sys.argv[1])
q = json.loads(sys.argv[2])
print(json.dumps({
    "size": sp.get_piece_size(),
    "pieces": [sp.id_to_piece(i) for i in q["ids"]],
    "control": [sp.is_control(i) for i in q["ids"]],
    "decoded": [sp.decode_ids(s) for s in q["seqs"]],
}))
"#;
        let query = json!({"ids": ids, "seqs": sequences}).to_string();
        let output = Command::new("python3")
            .arg("-c")
            .arg(script)
            .arg(&path)
            .arg(&query)
            .env("PYTHONIOENCODING", "utf-8")
            .output()
            .expect("run python3");
        let _ = std::fs::remove_file(&path);
        assert!(
            output.status.success(),
            "sentencepiece failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let answer: Value = serde_json::from_slice(&output.stdout).expect("python output");
        assert_eq!(answer["size"], json!(vocab.len()));
        let pieces: Vec<Option<&str>> = ids.iter().map(|&id| tok.piece(id)).collect();
        assert_eq!(answer["pieces"], json!(pieces));
        let control: Vec<bool> = ids
            .iter()
            .map(|&id| tok.kind(id) == Some(PieceKind::Control))
            .collect();
        assert_eq!(answer["control"], json!(control));
        let decoded: Vec<String> = sequences.iter().map(|s| tok.decode(s)).collect();
        assert_eq!(answer["decoded"], json!(decoded));
    }
}
