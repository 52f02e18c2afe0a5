//! Text tokenizer: a SentencePiece unigram vocabulary, loaded either from the
//! upstream `.model` file ([`sentencepiece`]) or from a Hugging Face
//! `tokenizer.json` ([`hf_json`]), and used to turn model output ids into
//! text. Only decoding is needed at run time, so only the piece table is kept.
//!
//! [`writers`] (feature `writers`, and tests) writes both formats, so
//! `stt-cli synth` and the tests can build synthetic models without the real
//! (licensed, multi-megabyte) files; the browser build leaves it out.

mod hf_json;
pub(crate) mod sentencepiece;
#[cfg(test)]
mod tests;
#[cfg(any(test, feature = "writers"))]
pub mod writers;

/// SentencePiece's word-boundary marker (U+2581), printed as a space.
pub(crate) const WORD_MARK: char = '\u{2581}';

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
    pub(crate) fn from_proto(value: u64) -> Option<Self> {
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

    #[cfg(any(test, feature = "writers"))]
    pub(crate) fn to_proto(self) -> u64 {
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
        Self::from_pieces(sentencepiece::read_pieces(bytes)?)
    }

    /// Loads a Hugging Face `tokenizer.json` whose model is `Unigram`.
    pub fn from_tokenizer_json(bytes: &[u8]) -> Result<Self> {
        Self::from_pieces(hf_json::read_pieces(bytes)?)
    }

    /// Loads `.model` or `.json` (chosen by the file extension).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_path(path: &std::path::Path) -> Result<Self> {
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
