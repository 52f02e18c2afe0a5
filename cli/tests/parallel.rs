//! `stt-cli transcribe --parallel N` on the GPU engine (lavapipe in CI):
//! several files and a long recording cut into segments run as parallel
//! streams, and the words are those of each segment transcribed alone.
//!
//! The claim is exact: every segment is a fresh stream on its own lane,
//! and a lane's arithmetic is a lone stream's (gpu_batch.rs), so the
//! words and their times (moved by the segment's start) must be equal,
//! not close. Without an adapter the tests say so and pass, unless
//! STT_REQUIRE_GPU=1.

mod common;

use std::path::Path;
use std::process::Command;

use stt_model::config::{FRAME_SAMPLES, SAMPLE_RATE_HZ};
use stt_model::segment::SegmentPlan;
use stt_model::Model;

/// `stt-cli transcribe --format json` words as (text, start, end).
fn transcribe(
    model: &Path,
    files: &[&Path],
    parallel: usize,
) -> Option<Vec<Vec<(String, f64, f64)>>> {
    let out = Command::new(env!("CARGO_BIN_EXE_stt-cli"))
        .args(["transcribe", "--model"])
        .arg(model)
        .args(["--backend", "gpu", "--format", "jsonl", "--parallel"])
        .arg(parallel.to_string())
        .args(files)
        .output()
        .expect("stt-cli runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        if !common::gpu_required() && stderr.contains("adapter") {
            eprintln!("no GPU adapter: skipping ({stderr})");
            return None;
        }
        panic!("transcribe failed: {stderr}");
    }
    let mut per_file: Vec<Vec<(String, f64, f64)>> = vec![vec![]; files.len()];
    for line in String::from_utf8(out.stdout).expect("utf-8").lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        let source = v["source"].as_str().expect("source");
        let i = files
            .iter()
            .position(|f| f.to_str() == Some(source))
            .expect("a known source");
        per_file[i].push((
            v["text"].as_str().expect("text").to_string(),
            v["start_s"].as_f64().expect("start"),
            v["end_s"].as_f64().expect("end"),
        ));
    }
    Some(per_file)
}

fn write_wav(path: &Path, pcm: &[f32]) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: SAMPLE_RATE_HZ,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut w = hound::WavWriter::create(path, spec).expect("wav");
    for &x in pcm {
        w.write_sample(x).expect("sample");
    }
    w.finalize().expect("wav");
}

/// Several files as parallel streams: each file's words are its words
/// transcribed one file after another (`--parallel 1`). (Files under 50 s:
/// one segment each; the French clip, 58 s, is cut — see below.)
#[test]
fn parallel_files_equal_one_after_another() {
    let model = common::tiny_model();
    let clips: Vec<_> = ["bria.mp3", "loona.mp3"]
        .iter()
        .map(|c| common::fixture(c))
        .collect();
    let files: Vec<&Path> = clips.iter().map(|p| p.as_path()).collect();
    let Some(alone) = transcribe(model, &files, 1) else {
        return;
    };
    let together = transcribe(model, &files, 4).expect("the adapter was found once");
    assert_eq!(alone, together);
    assert!(alone.iter().all(|w| !w.is_empty()), "every clip has words");
}

/// A recording longer than a segment: cut at its quietest frame near
/// 45 s (the pause between two clips), both segments run side by side,
/// and the words are each segment's alone, moved by the segment's start —
/// none lost or repeated at the cut.
#[test]
fn long_recording_is_cut_at_a_pause_and_loses_no_word() {
    let model = common::tiny_model();
    let dir = common::scratch("parallel_long");
    let mut pcm = common::clip_24k("bria.mp3");
    pcm.extend(std::iter::repeat_n(0f32, SAMPLE_RATE_HZ as usize));
    // 12 s of the French clip: 58 s in all, past one segment (50 s) and
    // short enough for CPU Vulkan.
    let french = common::clip_24k("sample_fr_hibiki_crepes.mp3");
    pcm.extend_from_slice(&french[..12 * SAMPLE_RATE_HZ as usize]);
    let segs = cut_words_equal_segments_alone(model, &dir, &pcm);
    // The cut falls in the silence between the clips.
    let bria = common::clip_24k("bria.mp3").len();
    assert!(segs[0].end > bria && segs[0].end < bria + SAMPLE_RATE_HZ as usize);
}

/// stt-2.6b-en's shape: a 30 s context, so the 45 s clip is cut into
/// segments of at most 25.4 s (`SegmentPlan`), each within the context
/// with the 1 s prefix and 3.5 s flush; words equal each segment alone.
#[test]
fn stt_2b6_en_shape_cuts_within_its_context() {
    let model = common::en_tiny_model();
    let dir = common::scratch("parallel_en");
    let pcm = common::clip_24k("bria.mp3");
    let segs = cut_words_equal_segments_alone(model, &dir, &pcm);
    let config = Model::from_dir(model, Some("model.safetensors"))
        .unwrap()
        .config;
    for r in &segs {
        let frames = r.len().div_ceil(FRAME_SAMPLES) + 13 + 44;
        assert!(frames <= config.context, "{frames} steps");
    }
}

/// Transcribes `pcm` whole with `--parallel 4` and each of its segments
/// (the model's `SegmentPlan`) alone: the words, moved by the segment
/// starts, must be equal — none lost or repeated at a cut. Returns the
/// segments.
fn cut_words_equal_segments_alone(
    model: &Path,
    dir: &Path,
    pcm: &[f32],
) -> Vec<std::ops::Range<usize>> {
    let config = Model::from_dir(model, Some("model.safetensors"))
        .unwrap()
        .config;
    let long = dir.join("long.wav");
    write_wav(&long, pcm);
    let segs = SegmentPlan::for_model(&config).cut(pcm);
    assert!(segs.len() >= 2, "{} s make one segment", pcm.len() / 24000);
    let mut parts = vec![];
    for (i, r) in segs.iter().enumerate() {
        let p = dir.join(format!("part{i}.wav"));
        write_wav(&p, &pcm[r.clone()]);
        parts.push(p);
    }
    let Some(whole) = transcribe(model, &[&long], 4) else {
        return segs;
    };
    let part_paths: Vec<&Path> = parts.iter().map(|p| p.as_path()).collect();
    let alone = transcribe(model, &part_paths, 1).expect("the adapter was found once");
    let mut want = vec![];
    for (r, words) in segs.iter().zip(alone) {
        let offset = r.start as f64 / SAMPLE_RATE_HZ as f64;
        want.extend(
            words
                .into_iter()
                .map(|(t, s, e)| (t, s + offset, e + offset)),
        );
    }
    assert!(want.len() > 20, "too few words to test anything");
    assert_eq!(whole[0].len(), want.len(), "words lost or repeated");
    for (i, (g, w)) in whole[0].iter().zip(&want).enumerate() {
        assert_eq!(g.0, w.0, "word {i}");
        assert!(
            (g.1 - w.1).abs() < 1e-9 && (g.2 - w.2).abs() < 1e-9,
            "word {i} times {g:?} {w:?}"
        );
    }
    eprintln!(
        "{} segments, {} words as each segment alone",
        segs.len(),
        want.len()
    );
    segs
}

/// A checkpoint without end-of-turn heads (stt-2.6b-en's) transcribes and
/// says it has none: `end_of_turn_s` is null in JSON (not an empty list,
/// which would read "no turn ended"), and `-v` notes it.
#[test]
fn checkpoint_without_end_of_turn_heads_says_so() {
    let out = Command::new(env!("CARGO_BIN_EXE_stt-cli"))
        .args(["transcribe", "-v", "--model"])
        .arg(common::en_tiny_model())
        .args(["--backend", "cpu", "--format", "json"])
        .arg(common::fixture("loona.mp3"))
        .output()
        .expect("stt-cli runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("no end-of-turn heads"), "{stderr}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert!(v["end_of_turn_s"].is_null(), "{v}");
    assert!(!v["words"].as_array().expect("words").is_empty(), "{v}");
}
