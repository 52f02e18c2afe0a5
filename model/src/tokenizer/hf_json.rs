//! Hugging Face `tokenizer.json` with a Unigram model (the community
//! repository ships the upstream vocabulary converted to it).

use std::collections::HashSet;

use serde::Deserialize;
use serde_json::Value;

use super::{parse_byte_piece, Piece, PieceKind, Result, TokenizerError};

pub(super) fn read_pieces(bytes: &[u8]) -> Result<Vec<Piece>> {
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
    Ok(pieces)
}

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
