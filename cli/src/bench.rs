//! `stt-cli bench`: LM step speed of the GPU engine (and, with `--cpu`,
//! moshi's CPU LM) on a model directory, printed as one JSON object.
//! Numbers compare only within one run: these machines are noisy.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use stt_model::bench::{lm_step_times, mimi_frame_times, percentile};
use stt_model::stepper::LmStepper;
use stt_model::{block_on, Model};

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// A model directory (e.g. from `stt-cli synth --preset full`).
    #[arg(long)]
    pub model: PathBuf,
    /// LM weights file inside the model directory.
    #[arg(long)]
    pub lm: Option<String>,
    /// Steps to time (after `--warmup` untimed ones).
    #[arg(long, default_value_t = 300)]
    pub steps: usize,
    /// Untimed steps first; default: the model's context (750), so the
    /// timed steps attend over a full KV cache, as in a long session.
    #[arg(long)]
    pub warmup: Option<usize>,
    /// Also time moshi's CPU LM (slow for the full model: use few steps).
    #[arg(long)]
    pub cpu_steps: Option<usize>,
    /// Skip the GPU engine (CPU-only machines).
    #[arg(long)]
    pub no_gpu: bool,
    /// Also time Mimi's streaming encoder over this many frames of a clip.
    #[arg(long)]
    pub mimi_frames: Option<usize>,
    /// Frames per Mimi call for the chunked figure (files run this way).
    #[arg(long, default_value_t = 25)]
    pub mimi_chunk: usize,
    /// With `--mimi-frames`: also Mimi's encoder on the GPU (stt-wgpu
    /// `GpuMimiEncoder`), frame by frame and chunked.
    #[arg(long)]
    pub gpu_mimi: bool,
    /// The clip for `--mimi-frames` (any audio file).
    #[arg(long)]
    pub audio: Option<PathBuf>,
    /// Also time decoding this file to 24 kHz mono, as `transcribe
    /// --parallel` reads a whole file (resampled in blocks over the cores)
    /// and as a stream does (packet by packet, on one core).
    #[arg(long)]
    pub decode: Option<PathBuf>,
    /// Also time each GPU dispatch of this many steps with timestamp
    /// queries (where the adapter has them), summed per kind; with
    /// `--gpu-mimi`, each dispatch of GPU Mimi calls too.
    #[arg(long)]
    pub profile_steps: Option<usize>,
    /// Also time the GPU engine stepping this many streams at once (a
    /// comma-separated list, e.g. 1,8,64): ms per batched step, streams in
    /// real time and GPU memory per batch size.
    #[arg(long, value_delimiter = ',')]
    pub streams: Vec<usize>,
    #[command(flatten)]
    pub gpu: crate::gpu_args::GpuArgs,
}

/// Milliseconds since the first call (the clock `stt_model::bench` takes).
fn now_ms() -> f64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_secs_f64() * 1e3
}

fn time_steps<S: LmStepper>(
    st: &mut S,
    n_q: usize,
    pad: u32,
    warmup: usize,
    steps: usize,
) -> Result<Vec<f64>> {
    Ok(block_on(lm_step_times(
        st, n_q, pad, warmup, steps, now_ms,
    ))?)
}

/// Wall ms per batched step (ascending) of `steps` steps of every stream
/// after `warmup` untimed ones, one batch left in flight while the next is
/// submitted (as the lanes drive it).
fn time_batch_steps(
    gpu: &mut stt_wgpu::GpuStepper,
    codes: &[u32],
    warmup: usize,
    steps: usize,
) -> Result<Vec<f64>> {
    let mut times = Vec::with_capacity(steps);
    let mut last = now_ms();
    for i in 0..warmup + steps {
        let text = if i == 0 {
            stt_model::stepper::TextInput::Start
        } else {
            stt_model::stepper::TextInput::Previous
        };
        let batch: Vec<stt_wgpu::engine::StreamStep> = (0..gpu.streams())
            .map(|stream| stt_wgpu::engine::StreamStep {
                stream,
                text,
                audio_codes: codes,
            })
            .collect();
        gpu.submit_batch(&batch)?;
        while gpu.batches_in_flight() > 1 {
            block_on(gpu.receive_batch())?;
            let now = now_ms();
            if i >= warmup {
                times.push(now - last);
            }
            last = now;
        }
    }
    while gpu.batches_in_flight() > 0 {
        block_on(gpu.receive_batch())?;
    }
    times.sort_by(|a, b| a.total_cmp(b));
    Ok(times)
}

/// The engine at each batch size in `sizes`: ms per batched step, streams
/// in real time, GPU bytes (weights, and caches + activations), and (with
/// `profile`) GPU µs per dispatch kind of one batched step.
fn batched(
    model: &Model,
    args: &BenchArgs,
    sizes: &[usize],
    warmup: usize,
) -> Result<serde_json::Value> {
    let cfg = &model.config;
    let pad = cfg.audio_pad_token();
    let codes: Vec<u32> = (0..cfg.n_q as u32).map(|c| (c * 37) % pad).collect();
    let mut rows = vec![];
    for &b in sizes {
        let mut opts = args.gpu.options();
        opts.streams = b;
        opts.features.timestamps = args.profile_steps.is_some();
        let mut gpu = block_on(stt_wgpu::GpuStepper::new(model.lm.clone(), cfg, opts))?;
        let times = time_batch_steps(&mut gpu, &codes, warmup, args.steps)?;
        let median = percentile(&times, 0.5);
        let frame_ms = 1e3 / stt_model::config::FRAME_RATE_HZ;
        let mut row = serde_json::json!({
            "streams": b,
            "steps": args.steps,
            "ms_per_step_median": median,
            "ms_per_step_p90": percentile(&times, 0.9),
            "ms_per_stream_step": median / b as f64,
            "batched_matvec": gpu.batched_matvec(),
            "kv_cache": if args.gpu.kv_f16 { "f16" } else { "f32" },
            "streams_in_real_time": b as f64 * frame_ms / median,
            "gpu_weight_bytes": gpu.weight_bytes(),
            "gpu_cache_and_activation_bytes": gpu.activation_bytes(),
        });
        if let Some(n) = args.profile_steps {
            row["profile"] = profile(&mut gpu, cfg.n_q, pad, n)?;
        }
        rows.push(row);
    }
    Ok(rows.into())
}

/// GPU time per step by dispatch kind (µs, mean over `n` steps), from
/// timestamp queries; the steps continue the timed run's positions.
fn profile(
    gpu: &mut stt_wgpu::GpuStepper,
    n_q: usize,
    pad: u32,
    n: usize,
) -> Result<serde_json::Value> {
    if !gpu.capabilities().timestamps {
        return Ok("unavailable: no timestamp queries inside passes".into());
    }
    let codes: Vec<u32> = (0..n_q as u32).map(|c| (c * 41) % pad).collect();
    let mut by_kind: Vec<(String, f64)> = vec![];
    for _ in 0..n {
        for (kind, ns) in gpu.profile_step(&codes)? {
            match by_kind.iter_mut().find(|(k, _)| *k == kind) {
                Some((_, t)) => *t += ns,
                None => by_kind.push((kind, ns)),
            }
        }
    }
    let total: f64 = by_kind.iter().map(|(_, t)| t).sum::<f64>() / n as f64 / 1e3;
    let mut kinds = serde_json::Map::new();
    for (k, t) in by_kind {
        kinds.insert(k, (t / n as f64 / 1e3).into());
    }
    Ok(serde_json::json!({"steps": n, "us_per_step_by_kind": kinds, "us_per_step_total": total}))
}

/// The GPU Mimi (stt-wgpu `GpuMimiEncoder`) over `frames` frames, one per
/// call (a microphone) and `chunk` per call (files): ms per frame, host
/// wait and the codes' read-back included.
fn gpu_mimi(
    model: &Model,
    gpu: Option<&stt_wgpu::device::Gpu>,
    pcm: &[f32],
    frames: usize,
    chunk: usize,
    profile: bool,
) -> Result<serde_json::Value> {
    let fs = stt_model::config::FRAME_SAMPLES;
    let pcm = &pcm[..(pcm.len() / fs).min(frames) * fs];
    let gpu = match gpu {
        Some(g) => g.clone(),
        None => block_on(stt_wgpu::device::Gpu::new(
            false,
            stt_wgpu::FeatureRequest {
                timestamps: profile,
                ..Default::default()
            },
        ))?,
    };
    let adapter = gpu.caps.adapter.clone();
    let mut mimi = stt_wgpu::mimi::GpuMimiEncoder::new(gpu, &model.mimi, &model.config, chunk)?;
    let mut out = serde_json::json!({"adapter": adapter});
    for (name, per_call) in [("frame_by_frame", 1), ("chunked", chunk)] {
        // Cumulative wall ms of one call through each stage prefix.
        let stages = block_on(mimi.time_stages(&pcm[..per_call.min(frames) * fs], 5, now_ms))?;
        let stages: serde_json::Map<String, serde_json::Value> = stages
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.into()))
            .collect();
        mimi.reset();
        block_on(mimi.encode(&pcm[..per_call.min(frames) * fs]))?; // pipelines compiled, buffers touched
        mimi.reset();
        let mut times = vec![];
        for part in pcm.chunks(per_call * fs) {
            let start = now_ms();
            block_on(mimi.encode(part))?;
            let n = part.len() / fs;
            times.extend(std::iter::repeat_n((now_ms() - start) / n as f64, n));
        }
        let total: f64 = times.iter().sum();
        times.sort_by(|a, b| a.total_cmp(b));
        let profile = if mimi.gpu().caps.timestamps {
            // Continues the stream, so attention sees the context reached.
            mimi_profile(&mut mimi, &pcm[..per_call.min(frames) * fs], 5)?
        } else {
            "unavailable: no timestamp queries inside passes".into()
        };
        out[name] = serde_json::json!({
            "chunk_frames": per_call,
            "frames": times.len(),
            "ms_per_frame_median": percentile(&times, 0.5),
            "ms_per_frame_mean": total / times.len().max(1) as f64,
            "real_time_factor": 80.0 * times.len() as f64 / total,
            "ms_per_call_through_stage": stages,
            "gpu_profile": profile,
        });
    }
    Ok(out)
}

/// GPU time of one Mimi call on `pcm` (µs, mean of `calls` calls), from
/// timestamps before each dispatch: the total, per kernel, and per
/// labelled dispatch (a conv's kernel and weight name), largest first.
fn mimi_profile(
    mimi: &mut stt_wgpu::mimi::GpuMimiEncoder,
    pcm: &[f32],
    calls: usize,
) -> Result<serde_json::Value> {
    let mut by_label: Vec<(String, f64, usize)> = vec![];
    for _ in 0..calls {
        for (label, ns) in block_on(mimi.profile_call(pcm))? {
            match by_label.iter_mut().find(|(l, _, _)| *l == label) {
                Some((_, t, n)) => {
                    *t += ns;
                    *n += 1;
                }
                None => by_label.push((label, ns, 1)),
            }
        }
    }
    let us = |ns: f64| ns / calls as f64 / 1e3;
    let mut by_kernel: Vec<(String, f64, usize)> = vec![];
    for (label, t, n) in &by_label {
        let kernel = label.split(' ').next().unwrap_or_default();
        match by_kernel.iter_mut().find(|(k, _, _)| k == kernel) {
            Some((_, kt, kn)) => {
                *kt += t;
                *kn += n;
            }
            None => by_kernel.push((kernel.to_string(), *t, *n)),
        }
    }
    let table = |mut rows: Vec<(String, f64, usize)>| -> serde_json::Value {
        rows.sort_by(|a, b| b.1.total_cmp(&a.1));
        rows.into_iter()
            .map(|(l, t, n)| serde_json::json!({"label": l, "us_per_call": us(t), "dispatches_per_call": n / calls}))
            .collect()
    };
    let total: f64 = by_label.iter().map(|(_, t, _)| us(*t)).sum();
    let dispatches: usize = by_label.iter().map(|(_, _, n)| n).sum::<usize>() / calls;
    Ok(serde_json::json!({
        "calls": calls,
        "frames_per_call": pcm.len() / stt_model::config::FRAME_SAMPLES,
        "dispatches_per_call": dispatches,
        "gpu_us_per_call": total,
        "by_kernel": table(by_kernel),
        "by_dispatch": table(by_label),
    }))
}

/// Seconds to decode `path` whole, packet by packet and in whole-file
/// blocks (the same samples), with the audio's length.
fn decode_times(path: &std::path::Path) -> Result<serde_json::Value> {
    use stt_model::audio::{AudioStream, WHOLE_FILE_RESAMPLE_BLOCK};
    use stt_model::config::SAMPLE_RATE_HZ;
    let mut figures = serde_json::json!({
        "file": path.display().to_string(),
        "threads": std::thread::available_parallelism().map_or(1, |n| n.get()),
    });
    for (name, block) in [("streaming", 0), ("whole_file", WHOLE_FILE_RESAMPLE_BLOCK)] {
        let start = Instant::now();
        let mut stream = AudioStream::from_path(path)?;
        stream.set_resample_block(block);
        figures["source_rate_hz"] = stream.source_sample_rate_hz().into();
        let mut samples = 0;
        while let Some(chunk) = stream.next_chunk()? {
            samples += chunk.len();
        }
        let seconds = start.elapsed().as_secs_f64();
        let audio_seconds = samples as f64 / f64::from(SAMPLE_RATE_HZ);
        figures["audio_seconds"] = audio_seconds.into();
        figures[name] = serde_json::json!({
            "seconds": seconds,
            "times_real_time": audio_seconds / seconds,
        });
    }
    Ok(figures)
}

pub fn run(args: BenchArgs) -> Result<bool> {
    let model = Model::from_dir(&args.model, args.lm.as_deref()).context("loading the model")?;
    let cfg = &model.config;
    let pad = cfg.audio_pad_token();
    let mut out = serde_json::json!({
        "bench": "lm_step",
        "model": args.model.display().to_string(),
        "lm_file": model.lm.file_name(),
        "config": {"dim": cfg.dim, "layers": cfg.num_layers, "heads": cfg.num_heads, "context": cfg.context},
        "commit": option_env!("STT_COMMIT").unwrap_or("unknown"),
    });
    let warmup = args.warmup.unwrap_or(cfg.context);
    out["warmup_steps"] = warmup.into();
    let mut lm_gpu = None;
    if !args.no_gpu {
        let mut opts = args.gpu.options();
        opts.features.timestamps = args.profile_steps.is_some();
        let mut gpu = block_on(stt_wgpu::GpuStepper::new(model.lm.clone(), cfg, opts))?;
        let copy_gbps = stt_wgpu::probe::copy_bandwidth_gbps(gpu.gpu())?;
        let read_gbps = stt_wgpu::probe::read_bandwidth_gbps(gpu.gpu())?;
        // One workgroup, and as many as the widest projection dispatches.
        let dispatch_us = [1u32, 1024].map(|groups| {
            stt_wgpu::probe::dependent_dispatch_us(gpu.gpu(), groups).map(|us| (groups, us))
        });
        let gpu_times = time_steps(&mut gpu, cfg.n_q, pad, warmup, args.steps)?;
        // KV read per step at the context reached (K and V of every layer).
        let kv_value_bytes = if args.gpu.kv_f16 { 2 } else { 4 };
        let kv_bytes = (2 * cfg.num_layers * cfg.context.min(warmup + args.steps) * cfg.dim) as u64
            * kv_value_bytes;
        let bytes = gpu.weight_bytes() + kv_bytes;
        let median = percentile(&gpu_times, 0.5);
        let gbps = bytes as f64 / (median * 1e-3) / 1e9;
        let caps = gpu.capabilities();
        out["gpu"] = serde_json::json!({
            "adapter": caps.adapter,
            "backend": caps.backend,
            "shader_f16": caps.shader_f16,
            "subgroup_size": caps.subgroups.then_some(caps.subgroup_size),
            "quantized_at_load": args.gpu.quantize.map(|q| q.to_string()),
            "kv_cache": if args.gpu.kv_f16 { "f16" } else { "f32" },
            "steps": args.steps,
            "ms_per_step_median": median,
            "ms_per_step_p90": percentile(&gpu_times, 0.9),
            "dispatches_per_step": gpu.dispatches_per_step(),
            "weight_bytes_per_step": gpu.weight_bytes(),
            "kv_bytes_per_step": kv_bytes,
            "copy_bandwidth_gbps": copy_gbps,
            "achieved_gbps": gbps,
            "fraction_of_copy_bandwidth": gbps / copy_gbps,
            "read_bandwidth_gbps": read_gbps,
            "fraction_of_read_bandwidth": gbps / read_gbps,
            "dependent_dispatch_us": dispatch_us
                .into_iter()
                .map(|r| r.map(|(groups, us)| serde_json::json!({"workgroups": groups, "us": us})))
                .collect::<Result<Vec<_>, _>>()?,
        });
        if let Some(n) = args.profile_steps {
            out["gpu"]["profile"] = profile(&mut gpu, cfg.n_q, pad, n)?;
        }
        lm_gpu = Some(gpu.gpu().clone());
    }
    if !args.streams.is_empty() {
        out["gpu_batched"] = batched(&model, &args, &args.streams, warmup)?;
    }
    if let Some(n) = args.mimi_frames {
        let clip = args.audio.as_ref().context("--mimi-frames needs --audio")?;
        let pcm = stt_model::audio::read_all_24k(clip)?;
        let mut figures = serde_json::Map::new();
        for (name, chunk) in [("frame_by_frame", 1), ("chunked", args.mimi_chunk)] {
            let mut mimi = model.mimi_encoder(&candle_core::Device::Cpu)?;
            let t = block_on(mimi_frame_times(&mut mimi, &pcm, n, chunk, now_ms))?;
            figures.insert(
                name.into(),
                serde_json::json!({
                    "chunk_frames": chunk,
                    "frames": t.len(),
                    "ms_per_frame_median": percentile(&t, 0.5),
                    "ms_per_frame_mean": t.iter().sum::<f64>() / t.len().max(1) as f64,
                }),
            );
        }
        figures.insert(
            "threads".into(),
            candle_core::utils::get_num_threads().into(),
        );
        if args.gpu_mimi {
            figures.insert(
                "gpu".into(),
                gpu_mimi(
                    &model,
                    lm_gpu.as_ref(),
                    &pcm,
                    n,
                    args.mimi_chunk,
                    args.profile_steps.is_some(),
                )?,
            );
        }
        out["mimi"] = figures.into();
    }
    if let Some(path) = &args.decode {
        out["decode"] = decode_times(path)?;
    }
    if let Some(n) = args.cpu_steps {
        let mut cpu = model.cpu_stepper(&candle_core::Device::Cpu)?;
        let t = time_steps(&mut cpu, cfg.n_q, pad, 2.min(n), n)?;
        out["cpu"] = serde_json::json!({
            "steps": n,
            "ms_per_step_median": percentile(&t, 0.5),
            "ms_per_step_p90": percentile(&t, 0.9),
            "threads": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        });
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(true)
}
