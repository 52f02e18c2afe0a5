//! Batched streams on the GPU engine: every stream of a batch gives
//! exactly what it gives alone.
//!
//! A stream's arithmetic in a batch is a lone stream's — the same kernels
//! and summation order over its own slice of every buffer (the grid's z is
//! the stream) — so the comparison is bit-for-bit: tokens, text logits and
//! end-of-turn probabilities, no tolerance. (The lone GPU stream is
//! compared with moshi's CPU LM in gpu.rs.) Runs on lavapipe in CI
//! (STT_REQUIRE_GPU=1); without an adapter the tests say so and pass.

mod common;

use stt_model::stepper::{LmStepper, Sampling, StepOutput, TextInput};
use stt_model::{block_on, Model};
use stt_wgpu::engine::lanes::{lanes, Lane};
use stt_wgpu::engine::StreamStep;
use stt_wgpu::{FeatureRequest, GpuOptions, GpuStepper};

/// How an engine is built: the adapter's optional features, and (None:
/// the engine's choice) the matvec lanes and the batched matvec's rows
/// per invocation.
#[derive(Debug, Clone, Copy)]
struct Setup {
    features: FeatureRequest,
    lanes: Option<u32>,
    rows: Option<u32>,
}

/// The adapter's optional features (subgroup reductions, f16 reads) on,
/// the rest as the engine chooses.
const FEATURES: Setup = Setup {
    features: FeatureRequest {
        shader_f16: true,
        subgroups: true,
        timestamps: false,
    },
    lanes: None,
    rows: None,
};

/// Workgroup-memory reductions (adapters without subgroups).
const NO_FEATURES: Setup = Setup {
    features: FeatureRequest::NONE,
    ..FEATURES
};

fn engine(model: &Model, streams: usize, setup: Setup) -> Option<GpuStepper> {
    let opts = GpuOptions {
        streams,
        features: setup.features,
        matvec_lanes: setup.lanes,
        batch_rows_per_invocation: setup.rows,
        ..Default::default()
    };
    common::gpu_stepper(model, opts)
}

/// What one stream is fed: its steps' codes, where it restarts (a reset
/// after that many steps, then a new stream from the start token), and
/// how it samples.
#[derive(Clone)]
struct Script {
    codes: Vec<Vec<u32>>,
    reset_after: Option<usize>,
    sampling: Sampling,
}

/// Stream `s` of a batch: its own length and codes; stream 1 restarts
/// midway; stream 2 samples at T = 0.5 (per-stream sampling).
fn script(model: &Model, s: usize) -> Script {
    let cfg = &model.config;
    let steps = 30 + 17 * s;
    Script {
        codes: common::lcg_codes(cfg.n_q, cfg.card as u32, steps, 0x5eed + s as u64),
        reset_after: (s == 1).then_some(12),
        sampling: if s == 2 {
            Sampling::new(0.5, 7).unwrap()
        } else {
            Sampling::GREEDY
        },
    }
}

/// The text input and codes of step `i` of a stream started at `start`.
fn input<'a>(
    codes: &'a [Vec<u32>],
    pad: &'a [u32],
    i: usize,
    start: usize,
) -> (TextInput, &'a [u32]) {
    if i == start {
        (TextInput::Start, pad)
    } else {
        (TextInput::Previous, &codes[i - 1])
    }
}

/// A stream run alone on a one-stream engine, as a session would drive it.
fn alone(model: &Model, sc: &Script, setup: Setup) -> Vec<StepOutput> {
    let pad = vec![model.config.audio_pad_token(); model.config.n_q];
    let mut gpu = engine(model, 1, setup).expect("checked by the caller");
    gpu.keep_logits(true);
    gpu.set_sampling(sc.sampling);
    let mut outs = vec![];
    let mut start = 0;
    for i in 0..sc.codes.len() {
        if sc.reset_after == Some(i) {
            block_on(gpu.reset()).unwrap();
            start = i;
        }
        let (text, codes) = input(&sc.codes, &pad, i, start);
        gpu.submit(text, codes).unwrap();
        outs.push(block_on(gpu.receive()).unwrap());
    }
    outs
}

/// Every stream through its lane, interleaved round by round; each lane
/// receives only when its depth is reached (as a session does), so
/// batches mix streams at different positions. Results of steps before a
/// reset are dropped by the lane, as a lone stepper's reset drops them.
fn batched(
    model: &Model,
    scripts: &[Script],
    depth: usize,
    setup: Setup,
) -> Option<Vec<Vec<StepOutput>>> {
    let pad = vec![model.config.audio_pad_token(); model.config.n_q];
    let engine = engine(model, scripts.len(), setup)?;
    let caps = engine.capabilities();
    eprintln!(
        "{} streams on {}: batched matvec {} (workgroup memory {} bytes)",
        scripts.len(),
        caps.adapter,
        engine.batched_matvec(),
        caps.max_workgroup_storage_bytes
    );
    let mut lanes: Vec<Lane> = lanes(engine, depth);
    let mut outs = vec![vec![]; scripts.len()];
    let mut starts = vec![0; scripts.len()];
    for (lane, sc) in lanes.iter_mut().zip(scripts) {
        lane.keep_logits(true);
        lane.set_sampling(sc.sampling);
    }
    let rounds = scripts.iter().map(|s| s.codes.len()).max().unwrap_or(0);
    for i in 0..rounds {
        for (s, (lane, sc)) in lanes.iter_mut().zip(scripts).enumerate() {
            if i >= sc.codes.len() {
                continue;
            }
            if sc.reset_after == Some(i) {
                // Steps still queued or in flight belong to the old stream.
                block_on(lane.reset()).unwrap();
                assert_eq!(lane.in_flight(), 0);
                outs[s].truncate(0);
                starts[s] = i;
            }
            let (text, codes) = input(&sc.codes, &pad, i, starts[s]);
            lane.submit(text, codes).unwrap();
            while lane.in_flight() > lane.max_in_flight() {
                outs[s].push(block_on(lane.receive()).unwrap());
            }
        }
    }
    for (s, lane) in lanes.iter_mut().enumerate() {
        while lane.in_flight() > 0 {
            outs[s].push(block_on(lane.receive()).unwrap());
        }
    }
    Some(outs)
}

fn check_streams(
    label: &str,
    model: &Model,
    scripts: &[Script],
    got: &[Vec<StepOutput>],
    setup: Setup,
) {
    for (s, (sc, got)) in scripts.iter().zip(got).enumerate() {
        let mut want = alone(model, sc, setup);
        if let Some(r) = sc.reset_after {
            want.drain(..r);
        }
        assert_eq!(want.len(), got.len(), "{label}: stream {s} steps");
        for (i, (w, g)) in want.iter().zip(got).enumerate() {
            assert!(w == g, "{label}: stream {s} differs from alone at step {i}");
        }
    }
    let tokens: std::collections::HashSet<u32> =
        got.iter().flatten().map(|o| o.text_token).collect();
    assert!(
        tokens.len() > 10,
        "{label}: too few distinct tokens ({})",
        tokens.len()
    );
    eprintln!(
        "{label}: {} streams ({} steps) bit-identical to each alone",
        scripts.len(),
        got.iter().map(Vec::len).sum::<usize>(),
    );
}

/// Streams, lane depth, engine setup.
type Run = (usize, usize, Setup);

#[test]
fn batched_streams_equal_each_stream_alone() {
    // Every weight format's batched decode (block_load / block_chunk); the
    // f16 file on both of its read paths (shader-f16 and packed words).
    let all = [
        (1, 1, FEATURES),
        (3, 4, FEATURES),
        (8, 5, FEATURES),
        (3, 2, NO_FEATURES),
    ];
    // The tiny model's grids are small, so the engine picks two rows per
    // batched invocation; four rows (what large models take) and 32 lanes
    // (discrete GPUs' 2048-row projections; workgroup reductions, as
    // lavapipe's subgroups are narrower) are asked for. The rows code is
    // the same for every weight format.
    let four_rows = Setup {
        rows: Some(4),
        ..FEATURES
    };
    let lanes_32 = Setup {
        lanes: Some(32),
        rows: Some(4),
        ..NO_FEATURES
    };
    let quantized = [
        all[0],
        all[1],
        all[2],
        all[3],
        (5, 3, four_rows),
        (3, 2, lanes_32),
    ];
    let files: [(&str, &[Run]); 4] = [
        ("model.safetensors", &all),
        ("model-q4k.gguf", &quantized),
        ("model-q80.gguf", &all[1..2]),
        ("model-f16.gguf", &[all[1], all[3]]),
    ];
    for (file, runs) in files {
        let model = Model::from_dir(common::tiny_model(), Some(file)).unwrap();
        if engine(&model, 1, FEATURES).is_none() {
            return;
        }
        for &(b, depth, setup) in runs {
            let scripts: Vec<Script> = (0..b).map(|s| script(&model, s)).collect();
            let got = batched(&model, &scripts, depth, setup).unwrap();
            let label = format!("{file} B = {b} ({setup:?})");
            check_streams(&label, &model, &scripts, &got, setup);
        }
    }
}

/// `submit_batch` directly: streams in any order and any subset; bad
/// batches are refused whole and change nothing.
#[test]
fn submit_batch_takes_any_subset_and_refuses_bad_batches() {
    let model = common::tiny_float_model();
    let Some(mut gpu) = engine(&model, 4, FEATURES) else {
        return;
    };
    let cfg = &model.config;
    let pad = vec![cfg.audio_pad_token(); cfg.n_q];
    let scripts: Vec<Script> = (0..4)
        .map(|s| Script {
            reset_after: None,
            sampling: Sampling::GREEDY,
            ..script(&model, s)
        })
        .collect();
    for s in 0..4 {
        gpu.keep_stream_logits(s, true).unwrap();
    }
    let bad_codes = vec![cfg.card as u32 + 1; cfg.n_q];
    let short = vec![0u32; cfg.n_q - 1];
    let mut outs = vec![vec![]; 4];
    for i in 0..30 {
        // Stream 3 skips every other step; the order is reversed.
        let mut steps: Vec<StreamStep> = (0..4usize)
            .rev()
            .filter(|&s| s != 3 || i % 2 == 0)
            .map(|s| {
                let j = if s == 3 { i / 2 } else { i };
                let (text, audio_codes) = input(&scripts[s].codes, &pad, j, 0);
                StreamStep {
                    stream: s,
                    text,
                    audio_codes,
                }
            })
            .collect();
        if i == 5 {
            let mut dup = steps.clone();
            dup.push(steps[0]);
            let e = gpu.submit_batch(&dup).unwrap_err();
            assert!(e.to_string().contains("twice"), "{e}");
            let mut bad = steps.clone();
            bad[1].audio_codes = &bad_codes;
            let e = gpu.submit_batch(&bad).unwrap_err();
            assert!(e.to_string().contains("audio code"), "{e}");
            bad[1].audio_codes = &short;
            assert!(gpu.submit_batch(&bad).is_err());
            let mut out_of_range = steps.clone();
            out_of_range[0].stream = 4;
            let e = gpu.submit_batch(&out_of_range).unwrap_err();
            assert!(e.to_string().contains("stream 4 of 4"), "{e}");
            assert!(gpu.submit_batch(&[]).is_err());
            assert_eq!(gpu.batches_in_flight(), 0);
        }
        gpu.submit_batch(&steps).unwrap();
        steps.clear();
        for (s, out) in block_on(gpu.receive_batch()).unwrap() {
            outs[s].push(out);
        }
    }
    for (s, got) in outs.iter().enumerate() {
        let n = got.len();
        let sc = Script {
            codes: scripts[s].codes[..n].to_vec(),
            ..scripts[s].clone()
        };
        let want = alone(&model, &sc, FEATURES);
        assert_eq!(want.len(), got.len(), "stream {s}");
        for (i, (w, g)) in want.iter().zip(got).enumerate() {
            assert!(w == g, "stream {s} differs from alone at step {i}");
        }
    }
}

/// Every stream's KV cache and position are its own: one engine of 2
/// streams, one running past its KV ring's wrap while the other
/// stops early (the long one then steps alone).
#[test]
fn streams_wrap_their_kv_rings_independently() {
    let model = common::tiny_float_model();
    if engine(&model, 1, FEATURES).is_none() {
        return;
    }
    let ctx = model.config.context;
    let cfg = &model.config;
    let scripts = [
        Script {
            codes: common::lcg_codes(cfg.n_q, cfg.card as u32, ctx + 40, 11),
            reset_after: None,
            sampling: Sampling::GREEDY,
        },
        Script {
            codes: common::lcg_codes(cfg.n_q, cfg.card as u32, 60, 12),
            reset_after: None,
            sampling: Sampling::GREEDY,
        },
    ];
    let got = batched(&model, &scripts, 3, FEATURES).unwrap();
    check_streams("ring wrap", &model, &scripts, &got, FEATURES);
}

/// Rows per batched invocation other than 2 or 4 are refused when the
/// engine is built.
#[test]
fn batch_rows_other_than_two_or_four_are_refused() {
    let model = common::tiny_float_model();
    if engine(&model, 1, FEATURES).is_none() {
        return;
    }
    for rows in [0, 1, 3, 8] {
        let opts = GpuOptions {
            streams: 4,
            batch_rows_per_invocation: Some(rows),
            ..Default::default()
        };
        let built = block_on(GpuStepper::new(model.lm.clone(), &model.config, opts));
        let err = built.err().expect("refused");
        assert!(err.to_string().contains("rows per batched matvec"), "{err}");
    }
}
