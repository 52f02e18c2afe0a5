//! `stt-cli eval` end to end on a tiny synthetic model: a LibriSpeech-layout
//! folder and a JSONL manifest of the same two utterances, whose references
//! are built from the model's own transcripts so the counts are known —
//! one utterance read back exactly (WER 0, every word a hit), the other with
//! its first word dropped and its second replaced (exactly one insertion and
//! one substitution: the hypothesis is one word longer, so I − D = 1, and
//! S + D + I = 2 is the minimum); then `--compare` of that report with one
//! from a Q8_0 file sampled at temperature 0.25.

mod common;

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn stt(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_stt-cli"))
        .args(args)
        .output()
        .expect("stt-cli runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "stt-cli panicked: {stderr}");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
    )
}

fn transcript(model: &str, lm: &str, audio: &Path) -> Vec<String> {
    let (code, out, err) = stt(&[
        "transcribe",
        "--model",
        model,
        "--lm",
        lm,
        "--backend",
        "cpu",
        audio.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    // As eval scores them (a random model's words may hold punctuation).
    stt_cli::eval::normalized_words(&out)
}

fn report(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn n(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("{key} in {v}"))
}

#[test]
fn eval_counts_errors_against_known_references_and_compares_reports() {
    let model = common::tiny_model().to_str().unwrap().to_string();
    let lm = "model.safetensors";
    let dir = common::scratch("eval");
    let chapter = dir.join("corpus/19/198");
    std::fs::create_dir_all(&chapter).unwrap();
    // Two utterances: 6 s of bria as WAV, and the same again from 6 s on.
    let pcm = common::clip_24k("bria.mp3");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 24_000,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    for (i, part) in [&pcm[..144_000], &pcm[144_000..288_000]].iter().enumerate() {
        let mut w =
            hound::WavWriter::create(chapter.join(format!("19-198-000{i}.wav")), spec).unwrap();
        for &s in part.iter() {
            w.write_sample(s).unwrap();
        }
        w.finalize().unwrap();
    }
    let h0 = transcript(&model, lm, &chapter.join("19-198-0000.wav"));
    let h1 = transcript(&model, lm, &chapter.join("19-198-0001.wav"));
    assert!(
        !h0.is_empty() && h1.len() >= 3,
        "too few words to test: {h0:?} {h1:?}"
    );
    let exact = h0.join(" ");
    let mut edited: Vec<String> = h1[1..].to_vec();
    edited[0] = "zzzqx".into();
    let edited = edited.join(" ");
    std::fs::write(
        chapter.join("19-198.trans.txt"),
        format!("19-198-0000 {exact}\n19-198-0001 {edited}\n"),
    )
    .unwrap();

    let a = dir.join("a.json");
    let corpus = dir.join("corpus");
    let (code, _, err) = stt(&[
        "eval",
        corpus.to_str().unwrap(),
        "--model",
        &model,
        "--lm",
        lm,
        "--backend",
        "cpu",
        "-o",
        a.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("WER"), "{err}");
    let r = report(&a);
    let u = r["utterances"].as_array().unwrap();
    assert_eq!(u.len(), 2);
    assert_eq!(u[0]["id"], "19-198-0000");
    assert_eq!(n(&u[0], "hits"), h0.len() as u64);
    assert_eq!(u[0]["wer"].as_f64(), Some(0.0));
    assert_eq!(
        (
            n(&u[1], "substitutions"),
            n(&u[1], "deletions"),
            n(&u[1], "insertions")
        ),
        (1, 0, 1),
        "{}",
        u[1]
    );
    assert_eq!(n(&u[1], "reference_words"), h1.len() as u64 - 1);
    let words = h0.len() + h1.len() - 1;
    assert_eq!(n(&r, "reference_words"), words as u64);
    assert_eq!(r["wer"].as_f64(), Some(2.0 / words as f64));
    assert!(r["real_time_factor"].as_f64().unwrap() > 0.0);

    // The same utterances through a manifest: the same counts.
    let manifest = dir.join("set.jsonl");
    let line = |id: &str, text: &str| {
        serde_json::json!({"id": id, "audio": format!("corpus/19/198/{id}.wav"), "text": text})
            .to_string()
    };
    std::fs::write(
        &manifest,
        format!(
            "{}\n{}\n",
            line("19-198-0000", &exact),
            line("19-198-0001", &edited)
        ),
    )
    .unwrap();
    let b = dir.join("b.json");
    let (code, _, err) = stt(&[
        "eval",
        manifest.to_str().unwrap(),
        "--model",
        &model,
        "--lm",
        "model-q80.gguf",
        "--backend",
        "cpu",
        "--temperature",
        "0.25",
        "--seed",
        "3",
        "-o",
        b.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let rb = report(&b);
    assert_eq!(
        (r["temperature"].as_f64(), r["seed"].as_u64()),
        (Some(0.0), Some(0))
    );
    assert_eq!(
        (rb["temperature"].as_f64(), rb["seed"].as_u64()),
        (Some(0.25), Some(3))
    );

    let (code, out, err) = stt(&[
        "eval",
        "--compare",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let c: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(n(&c, "utterances_compared"), 2);
    let diff = rb["wer"].as_f64().unwrap() - r["wer"].as_f64().unwrap();
    assert!((c["wer_b_minus_a"].as_f64().unwrap() - diff).abs() < 1e-12);
    let differing = (0..2)
        .filter(|&i| r["utterances"][i]["hypothesis"] != rb["utterances"][i]["hypothesis"])
        .count();
    assert_eq!(c["hypotheses_differ"].as_array().unwrap().len(), differing);
    assert_eq!(c["a"]["lm_file"], "model.safetensors");
    assert_eq!(c["b"]["lm_file"], "model-q80.gguf");
    assert_eq!(c["b"]["temperature"].as_f64(), Some(0.25));

    // Bad input: a transcript line without its audio is a clear error.
    std::fs::write(chapter.join("19-198.trans.txt"), "19-198-0009 NOTHING\n").unwrap();
    let (code, _, err) = stt(&["eval", corpus.to_str().unwrap(), "--model", &model]);
    assert_eq!(code, 1);
    assert!(err.contains("19-198-0009.flac"), "{err}");
}
