//! The upstream `.model` file: a serialized `sentencepiece.ModelProto`, of
//! which decoding needs only the pieces (field 1: text, score, type).
//!
//! The protobuf reader is hand-written rather than `prost`: prost with a
//! hand-declared message would replace the ~200 lines of wire code below
//! with ~30, but adds prost, prost-derive and bytes to the wasm build, and
//! its errors carry no byte offset, which ours report (and test). The file is
//! untrusted input: every read is bounds-checked and nesting is walked with
//! an explicit stack, so a hostile file gives an error, never a panic.

use std::collections::HashSet;

use super::{parse_byte_piece, Piece, PieceKind, Result, TokenizerError};

pub(super) fn read_pieces(bytes: &[u8]) -> Result<Vec<Piece>> {
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
    Ok(pieces)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wire {
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

    #[cfg(any(test, feature = "writers"))]
    pub(crate) fn bits(self) -> u64 {
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
