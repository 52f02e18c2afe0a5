//! Every fuzz target over its seed corpus (`fuzz/corpus/<target>/`) and
//! seeded mutations of it, on stable Rust: a panic fails CI with the input
//! saved and its seed named. `STT_FUZZ_ITERATIONS` sets the mutations per
//! target (default 20 000: seconds); `just fuzz` runs
//! libFuzzer on the same targets for longer.

use std::path::{Path, PathBuf};

use stt_fuzz::{mutate, TARGETS};

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = corpus_dir(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| std::fs::read(p).expect("corpus file"))
        .collect()
}

#[test]
fn every_target_survives_its_corpus_and_mutations() {
    let iterations = std::env::var("STT_FUZZ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let seed = 0x5EED_2026_1201;
    // Panics are caught per input; keep their messages out of the log.
    std::panic::set_hook(Box::new(|_| {}));
    let mut failures = vec![];
    for (name, target) in TARGETS {
        let corpus = corpus(name);
        assert!(!corpus.is_empty(), "{name}: empty corpus");
        let started = std::time::Instant::now();
        match mutate::run(target, &corpus, iterations, seed) {
            Ok(n) => eprintln!(
                "{name}: {n} inputs ({} seeds), no panic, {:.1} s",
                corpus.len(),
                started.elapsed().as_secs_f64()
            ),
            Err(crash) => {
                let out = std::env::temp_dir().join(format!("stt-fuzz-crash-{name}"));
                let _ = std::fs::write(&out, &crash.input);
                failures.push(format!(
                    "{name}: panic on {} {} (seed {seed:#x}), input saved to {}",
                    if crash.mutation.is_some() {
                        "mutation"
                    } else {
                        "corpus file"
                    },
                    crash.index,
                    out.display()
                ));
            }
        }
    }
    let _ = std::panic::take_hook();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Writes the seed corpus (small files of every format, made by our own
/// writers and the fixture clips). Run once: `cargo test -p stt-fuzz --
/// --ignored write_seed_corpus`; the files are committed.
#[test]
#[ignore]
fn write_seed_corpus() {
    use stt_cli::tensor_writer::{GgufWriter, SafetensorsWriter, StDtype, TensorSpec};
    use stt_model::tokenizer::writers;
    use stt_model::weights::quant::QuantType;

    let write = |target: &str, name: &str, bytes: &[u8]| {
        let dir = corpus_dir(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    };
    let specs = vec![
        TensorSpec {
            name: "a.weight".into(),
            shape: vec![2, 256],
        },
        TensorSpec {
            name: "b.bias".into(),
            shape: vec![8],
        },
        TensorSpec {
            name: "c.weight".into(),
            shape: vec![1, 32],
        },
    ];
    let values = |s: &TensorSpec| -> Vec<f32> {
        (0..s.numel())
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 64.0)
            .collect()
    };
    for (ty, file) in [
        (QuantType::Q4K, "q4k.gguf"),
        (QuantType::Q8_0, "q80.gguf"),
        (QuantType::F16, "f16.gguf"),
    ] {
        let mut out = vec![];
        let mut w = GgufWriter::new(&mut out, ty, "fuzz seed", &specs).unwrap();
        for s in &specs {
            w.push(&s.name, &values(s)).unwrap();
        }
        w.finish().unwrap();
        write("gguf", file, &out);
        write("lm_weights", file, &out);
    }
    for (dtype, file) in [
        (StDtype::F32, "f32.safetensors"),
        (StDtype::BF16, "bf16.safetensors"),
    ] {
        let mut out = vec![];
        let mut w = SafetensorsWriter::new(&mut out, dtype, &specs).unwrap();
        for s in &specs {
            w.push(&s.name, &values(s)).unwrap();
        }
        w.finish().unwrap();
        write("safetensors", file, &out);
        write("lm_weights", file, &out);
    }
    let vocab = writers::synthetic_vocab(24);
    write(
        "sentencepiece",
        "vocab24.model",
        &writers::write_sentencepiece_model(&vocab),
    );
    write(
        "tokenizer_json",
        "vocab24.json",
        writers::write_tokenizer_json(&vocab).as_bytes(),
    );
    let one_b = stt_model::Config::stt_1b_en_fr();
    write("config", "stt-1b-en_fr.json", one_b.to_json().as_bytes());
    write(
        "config",
        "stt-2.6b-en.json",
        stt_model::Config::stt_2b6_en().to_json().as_bytes(),
    );
    for (i, m) in [
        r#"{"type":"load","base_url":null,"lm_file":"model-q4k.gguf","backend":"auto","temperature":0.25,"seed":7}"#,
        r#"{"type":"audio","sample_rate":48000}"#,
        r#"{"type":"file","name":"a.opus"}"#,
        r#"{"type":"stop"}"#,
        r#"{"type":"export","format":"srt"}"#,
    ]
    .iter()
    .enumerate()
    {
        write("worker_message", &format!("m{i}.json"), m.as_bytes());
    }
}

/// Replays one input with the panic's message and backtrace:
/// `STT_FUZZ_REPRO=TARGET:PATH cargo test -p stt-fuzz --release repro -- --ignored`.
#[test]
#[ignore]
fn repro() {
    let spec = std::env::var("STT_FUZZ_REPRO").expect("STT_FUZZ_REPRO=TARGET:PATH");
    let (name, path) = spec.split_once(':').expect("TARGET:PATH");
    let (_, target) = TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .expect("a known target");
    target(&std::fs::read(path).expect("the input"));
}
