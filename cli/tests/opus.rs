//! Opus in Ogg, WebM, Matroska and MP4 (with a video track) decodes through
//! the same pipeline as every other format, close to libopus.
//!
//! Reference: each clip decoded by libopus itself (tests/opus/make.sh:
//! ffmpeg `-c:a libopus`, 48 kHz, 16-bit FLAC). Both go through stt-model's
//! downmix and 24 kHz resampler, so the comparison isolates the decoder.
//! Opus decoders are not bit-exact to each other (RFC 6716 §6 lets float
//! implementations differ; conformance is judged by `opus_compare`), and
//! opus-pure measured 69–82 dB SNR against libopus here. The test asks for
//! 60 dB: far above what a real decoding fault gives (a missed or doubled
//! pre-skip, a wrong gain or channel, a dropped frame all land below 20 dB;
//! a 312-sample misalignment measured −3 dB), with room for float rounding.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use stt_model::audio::read_all_24k;

const MIN_SNR_DB: f64 = 60.0;
/// Opus pads the last packet up to a whole frame; the end trim is not
/// applied, so ours may run past libopus's by up to one 120 ms frame.
const MAX_EXTRA_SAMPLES: usize = 24_000 * 120 / 1000;

fn clip(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/opus")
        .join(name)
}

fn snr_db(reference: &[f32], ours: &[f32]) -> f64 {
    let (mut signal, mut noise) = (0f64, 0f64);
    for (&r, &o) in reference.iter().zip(ours) {
        signal += (r as f64).powi(2);
        noise += (r as f64 - o as f64).powi(2);
    }
    10.0 * (signal / noise.max(1e-30)).log10()
}

#[test]
fn opus_in_every_container_matches_libopus() {
    for name in [
        "voice.opus",
        "stereo.opus",
        "low.webm",
        "frames60.mkv",
        "video.mp4",
        "video.webm",
    ] {
        let ours = read_all_24k(&clip(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let reference = read_all_24k(&clip(&format!("{name}.libopus.flac"))).unwrap();
        assert!(reference.len() > 24_000 * 2, "{name}: reference too short");
        assert!(
            ours.len() >= reference.len() && ours.len() - reference.len() <= MAX_EXTRA_SAMPLES,
            "{name}: {} samples, libopus {}",
            ours.len(),
            reference.len()
        );
        let snr = snr_db(&reference, &ours);
        eprintln!(
            "{name}: {} samples at 24 kHz, {snr:.1} dB SNR against libopus",
            ours.len()
        );
        assert!(snr >= MIN_SNR_DB, "{name}: {snr:.1} dB");
    }
}

/// `stt-cli transcribe` takes a voice note and a video as it takes an MP3.
#[test]
fn transcribe_reads_opus_and_video_files() {
    for name in ["voice.opus", "video.webm", "video.mp4"] {
        let out = Command::new(env!("CARGO_BIN_EXE_stt-cli"))
            .args([
                "transcribe",
                "--backend",
                "cpu",
                "--format",
                "json",
                "--model",
            ])
            .arg(common::tiny_model())
            .arg(clip(name))
            .output()
            .expect("stt-cli runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{name}: {stderr}");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        assert!(
            !v["words"].as_array().expect("words").is_empty(),
            "{name}: no words"
        );
    }
}

/// A corrupt Opus packet stream is an error naming the problem, not a panic
/// (the header survives, the packets are garbage).
#[test]
fn corrupt_opus_is_an_error() {
    let mut bytes = std::fs::read(clip("voice.opus")).unwrap();
    let n = bytes.len();
    for (i, b) in bytes[n / 3..].iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(151).wrapping_add(7);
    }
    let dir = common::scratch("corrupt_opus");
    let p = dir.join("corrupt.opus");
    std::fs::write(&p, &bytes).unwrap();
    match read_all_24k(&p) {
        Ok(pcm) => assert!(pcm.len() < 24_000 * 3, "garbage decoded as a whole clip"),
        Err(e) => eprintln!("corrupt Opus: {e}"),
    }
}
