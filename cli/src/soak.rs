//! `stt-cli soak`: one long live stream (the given clips looped with 2 s of
//! silence between them), fed frame by frame as a microphone would, through
//! the GPU engine and moshi's CPU LM side by side, printing JSON. It checks
//! what an hour-long session needs: memory stays flat (RSS at every minute,
//! the peak, the GPU's fixed allocation), words keep coming after every
//! 60 s context wrap, and the two engines give the same words for the
//! `--compare-minutes` they run together. `just soak` runs an hour; CI runs
//! three minutes on the tiny model (cli/tests/soak.rs).
//!
//! Mimi runs once (moshi's streaming encoder, one frame per call) and both
//! sessions step on its codes: they differ only in the LM engine.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::Device;
use stt_model::audio::read_all_24k;
use stt_model::config::{FRAME_RATE_HZ, FRAME_SAMPLES, SAMPLE_RATE_HZ};
use stt_model::mimi::MimiBackend;
use stt_model::{block_on, Event, LmStepper, Model, Session};

#[derive(Debug, clap::Args)]
pub struct SoakArgs {
    /// A model directory.
    #[arg(long)]
    pub model: PathBuf,
    /// LM weights file inside the model directory.
    #[arg(long)]
    pub lm: Option<String>,
    /// Clips to loop (any audio files), 2 s of silence after each.
    #[arg(long = "audio", required = true)]
    pub audio: Vec<PathBuf>,
    /// Minutes of audio to stream.
    #[arg(long, default_value_t = 60.0)]
    pub minutes: f64,
    /// Minutes during which the CPU LM runs beside the GPU engine and their
    /// words must be identical (then the GPU goes on alone).
    #[arg(long, default_value_t = 10.0)]
    pub compare_minutes: f64,
}

/// Mimi for a session that is fed codes: `push_codes` never calls it.
struct CodesFed(usize);

impl MimiBackend for CodesFed {
    fn num_codebooks(&self) -> usize {
        self.0
    }

    async fn encode(&mut self, _: &[f32]) -> stt_model::error::Result<Vec<Vec<u32>>> {
        Err(stt_model::Error::InvalidInput(
            "a soak session is fed codes".into(),
        ))
    }

    fn reset(&mut self) {}
}

/// This process's resident and peak resident memory, bytes (Linux; 0
/// elsewhere).
pub fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Words as (text, start) from session events.
fn words(events: &[Event], out: &mut Vec<(String, f64)>) {
    for e in events {
        if let Event::Word { text, start_s, .. } = e {
            out.push((text.clone(), *start_s));
        }
    }
}

pub fn run(args: SoakArgs) -> Result<bool> {
    let model = Model::from_dir(&args.model, args.lm.as_deref())
        .with_context(|| format!("loading the model from {}", args.model.display()))?;
    let cfg = model.config.clone();
    let clips = args
        .audio
        .iter()
        .map(|p| read_all_24k(p).with_context(|| format!("decoding {}", p.display())))
        .collect::<Result<Vec<_>>>()?;
    if clips.iter().all(|c| c.is_empty()) {
        bail!("the clips hold no audio");
    }
    let silence = vec![0f32; 2 * SAMPLE_RATE_HZ as usize];
    let mut source = clips
        .iter()
        .flat_map(|c| [c.as_slice(), silence.as_slice()])
        .cycle()
        .flatten()
        .copied();

    let mut mimi = model.mimi_encoder(&Device::Cpu)?;
    let gpu = block_on(stt_wgpu::GpuStepper::new(
        model.lm.clone(),
        &cfg,
        stt_wgpu::GpuOptions::default(),
    ))
    .context("the GPU engine")?;
    let gpu_bytes = gpu.weight_bytes() + gpu.activation_bytes();
    let adapter = gpu.capabilities().adapter.clone();
    let n_q = cfg.n_q;
    let mut on_gpu = Session::new(&cfg, CodesFed(n_q), gpu, model.tokenizer.clone());
    let mut on_cpu = Some(Session::new(
        &cfg,
        CodesFed(n_q),
        model.cpu_stepper(&Device::Cpu)?,
        model.tokenizer.clone(),
    ));

    let frames = (args.minutes * 60.0 * FRAME_RATE_HZ).round() as usize;
    let compare_frames = (args.compare_minutes * 60.0 * FRAME_RATE_HZ).round() as usize;
    let frames_per_minute = (60.0 * FRAME_RATE_HZ) as usize;
    let (mut gpu_words, mut cpu_words) = (vec![], vec![]);
    let mut minutes = vec![];
    let started = Instant::now();
    let mut frame = vec![0f32; FRAME_SAMPLES];
    for f in 0..frames {
        for x in frame.iter_mut() {
            *x = source.next().unwrap_or(0.0);
        }
        for codes in mimi.encode_frames(&frame)? {
            words(&block_on(on_gpu.push_codes(&codes))?, &mut gpu_words);
            if let Some(cpu) = on_cpu.as_mut() {
                words(&block_on(cpu.push_codes(&codes))?, &mut cpu_words);
            }
        }
        if f + 1 == compare_frames {
            if let Some(mut cpu) = on_cpu.take() {
                while cpu.stepper().in_flight() > 0 {
                    words(&block_on(cpu.drain())?, &mut cpu_words);
                }
            }
        }
        if (f + 1) % frames_per_minute == 0 || f + 1 == frames {
            let (now, peak) = memory();
            let minute_s = (f + 1) as f64 / FRAME_RATE_HZ;
            let words_this_minute = gpu_words
                .iter()
                .filter(|(_, t)| *t >= minute_s - 60.0 - 1.0 && *t < minute_s)
                .count();
            minutes.push(serde_json::json!({
                "audio_s": minute_s,
                "wall_s": started.elapsed().as_secs_f64(),
                "rss_bytes": now,
                "peak_rss_bytes": peak,
                "words_total": gpu_words.len(),
                "words_in_last_minute": words_this_minute,
            }));
        }
    }
    while on_gpu.stepper().in_flight() > 0 {
        words(&block_on(on_gpu.drain())?, &mut gpu_words);
    }

    // Identical words (text and time) while both ran; the GPU's, cut at the
    // last CPU word's time, against the CPU's.
    let compared_until = cpu_words.last().map_or(0.0, |w| w.1);
    let gpu_head: Vec<_> = gpu_words
        .iter()
        .filter(|w| w.1 <= compared_until)
        .cloned()
        .collect();
    let identical = gpu_head == cpu_words;
    let first_difference = gpu_head.iter().zip(&cpu_words).position(|(a, b)| a != b);
    let rss_at_1 = minutes
        .first()
        .and_then(|m| m["rss_bytes"].as_u64())
        .unwrap_or(0);
    let (rss_end, peak) = memory();
    // Words in every minute after the first context wrap (the clips loop
    // with 2 s pauses, so every minute holds speech).
    let wraps_with_words = minutes
        .iter()
        .skip(1)
        .all(|m| m["words_in_last_minute"].as_u64().unwrap_or(0) > 0);
    let growth = rss_end.saturating_sub(rss_at_1);
    let flat = growth < 64 << 20;
    let report = serde_json::json!({
        "soak": "live stream",
        "model": args.model,
        "adapter": adapter,
        "minutes": args.minutes,
        "compare_minutes": args.compare_minutes,
        "wall_s": started.elapsed().as_secs_f64(),
        "gpu_bytes": gpu_bytes,
        "rss_growth_after_minute_1_bytes": growth,
        "peak_rss_bytes": peak,
        "memory_flat": flat,
        "words": gpu_words.len(),
        "words_after_every_wrap": wraps_with_words,
        "cpu_words_compared": cpu_words.len(),
        "gpu_cpu_identical": identical,
        "first_difference": first_difference,
        "per_minute": minutes,
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    if !(identical && flat && wraps_with_words) {
        eprintln!(
            "soak failed: identical {identical}, memory flat {flat} (+{} MB), words after every wrap {wraps_with_words}",
            growth >> 20
        );
        return Ok(false);
    }
    Ok(true)
}
