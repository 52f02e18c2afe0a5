//! Tokenizer tests: both readers against the writers, decoding, hostile
//! input, and the real SentencePiece against our writer.

use std::collections::HashSet;

use serde_json::{json, Value};

use super::sentencepiece::Wire;
use super::writers::*;
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
/// compares pieces and decoding. Skipped when it is not installed, unless
/// `STT_REQUIRE_SENTENCEPIECE=1` (CI installs it and sets that).
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn real_sentencepiece_loads_written_model() {
    use std::process::Command;
    let available = Command::new("python3")
        .args(["-c", "import sentencepiece"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !available {
        let required = std::env::var("STT_REQUIRE_SENTENCEPIECE").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "STT_REQUIRE_SENTENCEPIECE=1 but python3 cannot import sentencepiece"
        );
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
    let path = std::env::temp_dir().join(format!("stt-tokenizer-sp-{}.model", std::process::id()));
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
