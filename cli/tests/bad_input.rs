//! Bad input, one test each: a clear one-line error and exit code 1, never a
//! panic; odd but valid audio just works. Runs the real `stt-cli` binary on
//! a tiny synthetic model.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use stt_cli::tensor_writer::{SafetensorsWriter, StDtype, TensorSpec};
use stt_model::weights::safetensors::SafetensorsFile;
use stt_model::weights::Shards;

struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
}

fn stt(args: &[&str]) -> Outcome {
    let out = Command::new(env!("CARGO_BIN_EXE_stt-cli"))
        .args(args)
        .output()
        .expect("stt-cli runs");
    let o = Outcome {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(
        !o.stderr.contains("panicked"),
        "stt-cli panicked: {}",
        o.stderr
    );
    o
}

fn transcribe(model: &Path, lm: &str, input: &Path) -> Outcome {
    stt(&[
        "transcribe",
        input.to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
        "--lm",
        lm,
        "--offline",
        "--backend",
        "cpu",
    ])
}

fn tiny() -> &'static Path {
    common::tiny_model()
}

fn expect_error(o: &Outcome, needle: &str) {
    assert_eq!(o.code, 1, "exit code; stderr: {}", o.stderr);
    assert!(
        o.stderr.to_lowercase().contains(&needle.to_lowercase()),
        "expected `{needle}` in: {}",
        o.stderr
    );
    assert!(
        o.stderr.trim().lines().count() <= 3,
        "not a short message: {}",
        o.stderr
    );
}

fn write_wav(path: &Path, rate: u32, channels: u16, samples: impl Iterator<Item = f32>) {
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for s in samples {
        w.write_sample(s).unwrap();
    }
    w.finalize().unwrap();
}

/// A chirp with a little noise: varied Mimi codes, unlike a pure tone.
fn chirp(rate: u32, seconds: f32) -> impl Iterator<Item = f32> {
    let n = (rate as f32 * seconds) as usize;
    let mut s = 12345u32;
    (0..n).map(move |i| {
        let t = i as f32 / rate as f32;
        s = s.wrapping_mul(1664525).wrapping_add(1013904223);
        let noise = (s >> 8) as f32 / (1u32 << 24) as f32 - 0.5;
        0.3 * (2.0 * std::f32::consts::PI * (200.0 + 400.0 * t) * t).sin() + 0.02 * noise
    })
}

#[test]
fn empty_file() {
    let d = common::scratch("empty_file");
    let p = d.join("empty.wav");
    std::fs::write(&p, b"").unwrap();
    expect_error(&transcribe(tiny(), "model.safetensors", &p), "no samples");
}

#[test]
fn text_file_renamed_wav() {
    let d = common::scratch("text_file");
    let p = d.join("notes.wav");
    std::fs::write(&p, "These are my meeting notes, not audio.\n".repeat(50)).unwrap();
    expect_error(
        &transcribe(tiny(), "model.safetensors", &p),
        "unsupported audio format",
    );
}

#[test]
fn truncated_mp3() {
    let d = common::scratch("truncated_mp3");
    let bytes = std::fs::read(common::fixture("sample_fr_hibiki_crepes.mp3")).unwrap();
    let p = d.join("cut.mp3");
    // Cut mid-frame, at an odd byte.
    std::fs::write(&p, &bytes[..bytes.len() * 3 / 5 + 1]).unwrap();
    let o = transcribe(tiny(), "model.safetensors", &p);
    // What was decoded is transcribed; the damage is reported, not hidden.
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stderr.contains("truncated"), "{}", o.stderr);
    assert!(
        !o.stdout.trim().is_empty(),
        "no transcript of the decoded part"
    );
}

/// 8 s of speech at another rate: every third sample (8 kHz) or each
/// sample four times (96 kHz). Aliasing does not matter: the point is that
/// odd rates decode, resample and give words, not just exit 0.
fn speech_at(rate: u32) -> Vec<f32> {
    let speech = &common::clip_24k("bria.mp3")[..24_000 * 8];
    match rate {
        8000 => speech.iter().step_by(3).copied().collect(),
        96000 => speech.iter().flat_map(|&s| [s; 4]).collect(),
        _ => unreachable!("test rates only"),
    }
}

fn assert_words(o: &Outcome) {
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(
        o.stdout.split_whitespace().count() >= 3,
        "too few words: {:?}",
        o.stdout
    );
}

#[test]
fn stereo_8khz_wav_works() {
    let d = common::scratch("stereo_8k");
    let p = d.join("stereo8k.wav");
    let mono = speech_at(8000);
    write_wav(&p, 8000, 2, mono.iter().flat_map(|&s| [s, -0.5 * s]));
    assert_words(&transcribe(tiny(), "model.safetensors", &p));
}

#[test]
fn wav_96khz_works() {
    let d = common::scratch("wav96k");
    let p = d.join("hi.wav");
    write_wav(&p, 96000, 1, speech_at(96000).into_iter());
    assert_words(&transcribe(tiny(), "model.safetensors", &p));
}

#[test]
fn nan_samples() {
    let d = common::scratch("nan");
    let p = d.join("nan.wav");
    write_wav(
        &p,
        24000,
        1,
        chirp(24000, 2.0)
            .enumerate()
            .map(|(i, s)| if i == 30_000 { f32::NAN } else { s }),
    );
    expect_error(&transcribe(tiny(), "model.safetensors", &p), "NaN");
}

#[test]
fn missing_input_file() {
    let d = common::scratch("missing_input");
    expect_error(
        &transcribe(tiny(), "model.safetensors", &d.join("nope.wav")),
        "nope.wav",
    );
}

/// A copy of the tiny model directory with its LM file replaced.
fn model_copy(name: &str) -> PathBuf {
    let d = common::scratch(name);
    for e in std::fs::read_dir(tiny()).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() && !p.to_string_lossy().ends_with(".gguf") {
            std::fs::copy(&p, d.join(p.file_name().unwrap())).unwrap();
        }
    }
    d
}

fn rewrite_lm(dir: &Path, edit: impl Fn(&str, Vec<usize>) -> Option<Vec<usize>>) {
    let path = dir.join("model.safetensors");
    let f = SafetensorsFile::from_shards("lm", Shards::from_path(&path).unwrap()).unwrap();
    let mut names: Vec<String> = f.entries().keys().cloned().collect();
    names.sort();
    let specs: Vec<TensorSpec> = names
        .iter()
        .filter_map(|n| {
            edit(n, f.entries()[n].shape.clone()).map(|shape| TensorSpec {
                name: n.clone(),
                shape,
            })
        })
        .collect();
    let tmp = dir.join("model.safetensors.new");
    let mut w =
        SafetensorsWriter::new(std::fs::File::create(&tmp).unwrap(), StDtype::F32, &specs).unwrap();
    for s in &specs {
        let mut xs = f
            .tensor(&s.name, &candle_core::Device::Cpu)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        xs.resize(s.numel(), 0.0);
        w.push(&s.name, &xs).unwrap();
    }
    w.finish().unwrap();
    std::fs::rename(tmp, path).unwrap();
}

#[test]
fn safetensors_missing_a_tensor() {
    let d = model_copy("missing_tensor");
    let victim = "transformer.layers.1.gating.linear_out.weight";
    rewrite_lm(&d, |n, s| (n != victim).then_some(s));
    let o = transcribe(&d, "model.safetensors", &common::fixture("loona.mp3"));
    expect_error(&o, victim);
}

#[test]
fn tensor_of_the_wrong_shape() {
    let d = model_copy("wrong_shape");
    let victim = "transformer.layers.0.self_attn.out_proj.weight";
    rewrite_lm(&d, |n, s| {
        Some(if n == victim {
            vec![s[0], s[1] + 32]
        } else {
            s
        })
    });
    let o = transcribe(&d, "model.safetensors", &common::fixture("loona.mp3"));
    expect_error(&o, victim);
    assert!(o.stderr.contains("expected"), "{}", o.stderr);
}

#[test]
fn truncated_safetensors() {
    let d = model_copy("truncated_st");
    let p = d.join("model.safetensors");
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() - 1000]).unwrap();
    expect_error(
        &transcribe(&d, "model.safetensors", &common::fixture("loona.mp3")),
        "truncated",
    );
}

#[test]
fn gguf_with_corrupt_header() {
    let d = model_copy("corrupt_gguf");
    let mut bytes = std::fs::read(tiny().join("model-q4k.gguf")).unwrap();
    // Keep the magic, break the version and the counts.
    bytes[4..24].fill(0xFF);
    std::fs::write(d.join("model-q4k.gguf"), &bytes).unwrap();
    expect_error(
        &transcribe(&d, "model-q4k.gguf", &common::fixture("loona.mp3")),
        "GGUF",
    );
}

#[test]
fn truncated_gguf() {
    let d = model_copy("truncated_gguf");
    let bytes = std::fs::read(tiny().join("model-q4k.gguf")).unwrap();
    std::fs::write(d.join("model-q4k.gguf"), &bytes[..bytes.len() / 2]).unwrap();
    expect_error(
        &transcribe(&d, "model-q4k.gguf", &common::fixture("loona.mp3")),
        "past the end",
    );
}

#[test]
fn not_a_model_directory() {
    let d = common::scratch("not_a_model");
    let o = stt(&[
        "transcribe",
        common::fixture("loona.mp3").to_str().unwrap(),
        "--model",
        d.to_str().unwrap(),
    ]);
    expect_error(&o, "config.json");
}

#[test]
fn offline_without_cache() {
    let d = common::scratch("hf_home");
    let o = Command::new(env!("CARGO_BIN_EXE_stt-cli"))
        .args([
            "transcribe",
            common::fixture("loona.mp3").to_str().unwrap(),
            "--offline",
        ])
        .env("HF_HOME", &d)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("--offline"), "{stderr}");
}

#[test]
fn quantize_at_load_on_the_cpu_backend_is_refused() {
    let clip = common::fixture("bria.mp3");
    let o = stt(&[
        "transcribe",
        clip.to_str().unwrap(),
        "--model",
        tiny().to_str().unwrap(),
        "--lm",
        "model.safetensors",
        "--offline",
        "--backend",
        "cpu",
        "--quantize",
        "q4_k",
    ]);
    expect_error(&o, "--quantize applies to the GPU engine");
}

/// Overwrites the first value of `tensor` in the f32 safetensors `file`.
fn poison_safetensors(file: &Path, tensor: &str, value: f32) {
    let f = SafetensorsFile::from_shards("x", Shards::from_path(file).unwrap()).unwrap();
    let at = f.entries()[tensor].start as usize + 4 * 5;
    let mut bytes = std::fs::read(file).unwrap();
    bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
    std::fs::write(file, bytes).unwrap();
}

/// A NaN or an infinity in a weight is refused at load with the tensor's
/// name, on both engines, for the LM and for Mimi (one such value would
/// silently turn every later step into NaN).
#[test]
fn non_finite_weights_are_refused_by_name() {
    let d = model_copy("nan_lm");
    let victim = "transformer.layers.1.self_attn.in_proj_weight";
    poison_safetensors(&d.join("model.safetensors"), victim, f32::NAN);
    let loona = common::fixture("loona.mp3");
    expect_error(&transcribe(&d, "model.safetensors", &loona), victim);
    let gpu = stt(&[
        "transcribe",
        loona.to_str().unwrap(),
        "--model",
        d.to_str().unwrap(),
        "--backend",
        "gpu",
    ]);
    if !gpu.stderr.contains("adapter") || common::gpu_required() {
        expect_error(&gpu, victim);
    }

    let d = model_copy("inf_mimi");
    let cfg = stt_model::Config::from_json(&std::fs::read(d.join("config.json")).unwrap()).unwrap();
    let victim = "encoder.model.0.conv.conv.weight";
    poison_safetensors(&d.join(&cfg.mimi_name), victim, f32::INFINITY);
    expect_error(&transcribe(&d, "model.safetensors", &loona), victim);
}

/// A Q4_K block whose f16 scale is NaN: refused by name by the CPU's
/// quantized loader and by the GPU's repacker.
#[test]
fn non_finite_gguf_scale_is_refused_by_name() {
    use stt_model::weights::gguf::GgufFile;
    let d = model_copy("nan_gguf");
    let path = d.join("model-q4k.gguf");
    std::fs::copy(tiny().join("model-q4k.gguf"), &path).unwrap();
    let victim = "transformer.layers.0.gating.linear_in.weight";
    let f = GgufFile::from_shards("x", Shards::from_path(&path).unwrap()).unwrap();
    let info = &f.content().tensor_infos[victim];
    assert_eq!(
        info.ggml_dtype,
        candle_core::quantized::GgmlDType::Q4K,
        "the tiny model's Q4_K file stores this matrix as Q4_K"
    );
    // The third block's d.
    let at = (f.content().tensor_data_offset + info.offset) as usize + 2 * 144;
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[at..at + 2].copy_from_slice(&0x7E00u16.to_le_bytes());
    std::fs::write(&path, bytes).unwrap();
    let loona = common::fixture("loona.mp3");
    expect_error(&transcribe(&d, "model-q4k.gguf", &loona), victim);
    let gpu = stt(&[
        "transcribe",
        loona.to_str().unwrap(),
        "--model",
        d.to_str().unwrap(),
        "--lm",
        "model-q4k.gguf",
        "--backend",
        "gpu",
    ]);
    if !gpu.stderr.contains("adapter") || common::gpu_required() {
        expect_error(&gpu, victim);
    }
}

/// Every weight file cut at 24 seeded random points (and at 0 and 1 byte
/// short): loading the model and its CPU session gives an error, never a
/// panic. In process, so that hundreds of cuts take seconds.
#[test]
fn weights_truncated_anywhere_give_an_error() {
    let cfg =
        stt_model::Config::from_json(&std::fs::read(tiny().join("config.json")).unwrap()).unwrap();
    let d = common::scratch("truncations");
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    let mut cuts_tried = 0;
    for file in [
        "model.safetensors",
        "model-q4k.gguf",
        "model-q80.gguf",
        cfg.mimi_name.as_str(),
    ] {
        for e in std::fs::read_dir(tiny()).unwrap() {
            let p = e.unwrap().path();
            if p.is_file() {
                std::fs::copy(&p, d.join(p.file_name().unwrap())).unwrap();
            }
        }
        let lm = if file == cfg.mimi_name {
            "model-q4k.gguf"
        } else {
            file
        };
        let whole = std::fs::read(tiny().join(file)).unwrap();
        let mut cuts = vec![0, whole.len() - 1];
        cuts.extend((0..24).map(|_| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            (rng % whole.len() as u64) as usize
        }));
        for cut in cuts {
            std::fs::write(d.join(file), &whole[..cut]).unwrap();
            let loaded = std::panic::catch_unwind(|| {
                stt_model::Model::from_dir(&d, Some(lm)).and_then(|m| m.cpu_session().map(|_| ()))
            });
            match loaded {
                Ok(Err(e)) => assert!(!e.to_string().is_empty()),
                Ok(Ok(())) => panic!("{file} cut at {cut} of {} bytes loaded", whole.len()),
                Err(_) => panic!("{file} cut at {cut} of {} bytes: panic", whole.len()),
            }
            cuts_tried += 1;
        }
    }
    eprintln!("{cuts_tried} truncated files, each a clean error");
}
