//! `stt-cli soak` for three minutes on the tiny model (f32: both engines do
//! the same arithmetic): RSS flat after the first minute, words in every
//! minute after the first context wrap, GPU and CPU words identical. The
//! hour-long run is `just soak`.

mod common;

use std::process::Command;

#[test]
fn three_minute_live_stream_soak() {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stt-cli"));
    cmd.args([
        "soak",
        "--lm",
        "model.safetensors",
        "--minutes",
        "3",
        "--compare-minutes",
        "3",
        "--model",
    ])
    .arg(common::tiny_model());
    for clip in common::CLIPS {
        cmd.arg("--audio").arg(common::fixture(clip));
    }
    let out = cmd.output().expect("stt-cli runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !common::gpu_required() && stderr.contains("adapter") {
        eprintln!("no GPU adapter: skipping ({stderr})");
        return;
    }
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    eprintln!(
        "soak: {} words, +{} KB RSS after minute 1, peak {} MB, {:.0} s",
        report["words"],
        report["rss_growth_after_minute_1_bytes"]
            .as_u64()
            .unwrap_or(0)
            >> 10,
        report["peak_rss_bytes"].as_u64().unwrap_or(0) >> 20,
        report["wall_s"].as_f64().unwrap_or(0.0)
    );
    assert!(out.status.success(), "{stderr}\n{report}");
    assert_eq!(report["gpu_cpu_identical"], true);
    assert_eq!(report["memory_flat"], true);
    assert_eq!(report["words_after_every_wrap"], true);
    assert!(report["words"].as_u64().unwrap_or(0) > 100, "{report}");
    assert_eq!(report["per_minute"].as_array().map(Vec::len), Some(3));
}
