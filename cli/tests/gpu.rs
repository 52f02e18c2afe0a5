//! The GPU step engine against moshi's CPU LM, on the same synthetic weights.
//!
//! Runs on whatever adapter wgpu finds: lavapipe (Mesa's CPU Vulkan) in CI,
//! a real GPU elsewhere. Without an adapter the tests say so and pass,
//! unless STT_REQUIRE_GPU=1 (set by .ci/run, which installs lavapipe).
//!
//! Both paths compute in f32; they differ only in summation order (the GPU
//! reduces 32 lanes × blocks in a tree, candle's gemm runs sequential FMAs)
//! and in exp/sqrt/division rounding. Relative differences of ~1e-6 per
//! dot product, compounded through the layers, stay far below 1e-3 of the
//! logits' RMS: LOGIT_TOLERANCE. A token could only differ where the top
//! two logits tie to within that, which over 800 steps of these models we
//! have not met; the test requires identity.
//!
//! Every comparison runs twice: with the optional shader features the
//! adapter offers (subgroup reductions, `shader-f16` reads) and with both
//! switched off (the path any WebGPU adapter runs). The subgroup lane sums
//! add in the same order as the workgroup tree and f16 → f32 is exact, so
//! only the RmsNorm sum of squares changes order between the two (~1e-7).
//!
//! Quantized weights: the CPU reference is moshi's LM on the GGUF's values
//! dequantized to f32 (`CpuStepper::load_dequantized`), the same arithmetic
//! as the GPU, which keeps activations in f32. (Candle's own quantized
//! matmul also rounds activations to 8 bits: compared in formats.rs.)

mod common;

use candle_core::Device;
use common::gpu_stepper;
use stt_cli::synth::{Preset, SynthOptions};
use stt_cli::tensor_writer::StDtype;
use stt_model::error::GpuErrorKind;
use stt_model::stepper::{CpuStepper, LmStepper, StepOutput, TextInput};
use stt_model::weights::quant::QuantType;
use stt_model::{block_on, Model};
use stt_wgpu::device::Gpu;
use stt_wgpu::{wgpu, FeatureRequest, GpuError, GpuOptions, GpuStepper, KvPrecision};

/// Past the 750-step KV ring, so the wrap is compared too.
const STEPS: usize = 800;
/// Quantized formats change the matvec only: fewer steps keep CI on CPU
/// Vulkan short (the ring wrap is covered by the f32 runs).
const QUANTIZED_STEPS: usize = 200;
/// max |Δ logit| / RMS(logits) between CPU f32 and GPU f32.
const LOGIT_TOLERANCE: f32 = 1e-3;
/// max |Δ p| of the end-of-turn probabilities (softmax of 6 values, f32).
const VAD_TOLERANCE: f32 = 1e-4;
/// The same with an f16 KV cache (`KvPrecision::F16`): each K and V value
/// is rounded once, a relative error of at most 2⁻¹¹ ≈ 4.9e-4. A score
/// q·k/√d moves by at most that fraction of Σ|qᵢkᵢ|/√d and each attention
/// output by at most that fraction of max|v|, so a layer's attention branch
/// is perturbed by ~5e-4 of its scale; L layers add up like a random walk
/// (√L · 5e-4: 1.4e-3 for the tiny model's 8, 2e-3 for the 1B's 16), and the
/// text head maps that onto the logits at the same relative size. 1e-2 ×
/// RMS leaves a 5× margin over that estimate; what the tests measure is
/// printed. Tokens must still be identical on the test models.
const KV_F16_LOGIT_TOLERANCE: f32 = 1e-2;
const KV_F16_VAD_TOLERANCE: f32 = 1e-3;

/// Deterministic audio codes: the LM does not care where codes come
/// from, and this keeps Mimi out of an LM test.
fn codes(n_q: usize, card: u32, steps: usize) -> Vec<Vec<u32>> {
    common::lcg_codes(n_q, card, steps, 0x1234_5678)
}

fn run<S: LmStepper>(st: &mut S, codes: &[Vec<u32>], pad: &[u32]) -> Vec<StepOutput> {
    st.keep_logits(true);
    let mut outs = vec![];
    for i in 0..codes.len() {
        let text = if i == 0 {
            TextInput::Start
        } else {
            TextInput::Previous
        };
        st.submit(text, if i == 0 { pad } else { &codes[i - 1] })
            .unwrap();
        // Pipelined as the session drives it.
        while st.in_flight() > st.max_in_flight() {
            outs.push(block_on(st.receive()).unwrap());
        }
    }
    while st.in_flight() > 0 {
        outs.push(block_on(st.receive()).unwrap());
    }
    outs
}

/// The settings every comparison runs under: the adapter's features, then
/// neither. (Matvec lane counts other than the default 8 are compared with
/// candle in stt-wgpu's ops tests; on lavapipe 32 lanes make the mid model
/// several times slower.)
const FEATURE_MODES: [(&str, FeatureRequest, Option<u32>); 2] = [
    (
        "features on",
        FeatureRequest {
            shader_f16: true,
            subgroups: true,
            timestamps: false,
        },
        None,
    ),
    ("f16 and subgroups off", FeatureRequest::NONE, None),
];

fn with_features(features: FeatureRequest, matvec_lanes: Option<u32>) -> GpuOptions {
    GpuOptions {
        features,
        matvec_lanes,
        ..Default::default()
    }
}

/// The CPU reference against the GPU under each feature mode.
fn compare(label: &str, model: &Model, cpu: &mut CpuStepper, steps: usize) {
    let cfg = &model.config;
    let codes = codes(cfg.n_q, cfg.card as u32, steps);
    let pad = vec![cfg.audio_pad_token(); cfg.n_q];
    block_on(cpu.reset()).unwrap();
    let want = run(cpu, &codes, &pad);
    for (mode, features, lanes) in FEATURE_MODES {
        let Some(mut gpu) = gpu_stepper(model, with_features(features, lanes)) else {
            return;
        };
        let caps = gpu.capabilities();
        if features == FeatureRequest::NONE {
            assert!(!caps.shader_f16 && !caps.subgroups, "{caps:?}");
        }
        let label = format!(
            "{label} ({mode}: shader-f16 {}, subgroups {})",
            caps.shader_f16,
            if caps.subgroups {
                format!("of {}", caps.subgroup_size)
            } else {
                "off".into()
            }
        );
        let got = run(&mut gpu, &codes, &pad);
        check(&label, model, &want, &got, &gpu);
    }
}

fn check(label: &str, model: &Model, want: &[StepOutput], got: &[StepOutput], gpu: &GpuStepper) {
    check_within(
        label,
        model,
        want,
        got,
        gpu,
        (LOGIT_TOLERANCE, VAD_TOLERANCE),
    );
}

fn check_within(
    label: &str,
    model: &Model,
    want: &[StepOutput],
    got: &[StepOutput],
    gpu: &GpuStepper,
    (logit_tolerance, vad_tolerance): (f32, f32),
) {
    let cfg = &model.config;
    let steps = want.len();
    assert_eq!(want.len(), got.len());
    let rms = {
        let l = want.iter().flat_map(|o| o.text_logits.as_ref().unwrap());
        (l.map(|x| x * x).sum::<f32>() / (steps * cfg.text_card) as f32).sqrt()
    };
    let (mut max_logit, mut max_vad) = (0f32, 0f32);
    for (i, (w, g)) in want.iter().zip(got).enumerate() {
        let (wl, gl) = (
            w.text_logits.as_ref().unwrap(),
            g.text_logits.as_ref().unwrap(),
        );
        let d = wl
            .iter()
            .zip(gl)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        max_logit = max_logit.max(d);
        assert_eq!(w.end_of_turn.len(), g.end_of_turn.len());
        for (a, b) in w.end_of_turn.iter().zip(&g.end_of_turn) {
            max_vad = max_vad.max((a - b).abs());
        }
        assert_eq!(
            w.text_token, g.text_token,
            "{label}: token differs at step {i} (max |Δlogit| there {d})"
        );
    }
    let distinct: std::collections::HashSet<_> = want.iter().map(|o| o.text_token).collect();
    eprintln!(
        "{label} on {}: {steps} steps identical ({} distinct tokens); max |Δlogit| {:.2e} × RMS; max |Δp(end of turn)| {max_vad:.2e}; {} dispatches/step",
        gpu.capabilities().adapter,
        distinct.len(),
        max_logit / rms,
        gpu.dispatches_per_step()
    );
    assert!(
        distinct.len() > 20,
        "{label}: too few distinct tokens to test anything"
    );
    assert!(
        max_logit / rms <= logit_tolerance,
        "{label}: logits differ by {} × RMS",
        max_logit / rms
    );
    assert!(
        max_vad <= vad_tolerance,
        "{label}: end-of-turn probabilities differ by {max_vad}"
    );
}

#[test]
fn tiny_f32_matches_cpu() {
    let model = common::tiny_float_model();
    let mut cpu = model.cpu_stepper(&Device::Cpu).unwrap();
    compare("tiny f32", &model, &mut cpu, STEPS);
}

/// An f16 KV cache (half the bytes attention reads) against moshi's f32
/// cache: within KV_F16_LOGIT_TOLERANCE, same tokens, past the ring wrap.
#[test]
fn f16_kv_cache_stays_within_its_tolerance() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("stt-mid-seed2");
    let mut o = SynthOptions::new(Preset::Mid, 2);
    o.lm_dtype = StDtype::F32;
    common::make_once(&dir, &o);
    for (label, model) in [
        ("tiny", common::tiny_float_model()),
        (
            "mid",
            Model::from_dir(&dir, Some("model.safetensors")).unwrap(),
        ),
    ] {
        let cfg = &model.config;
        let codes = codes(cfg.n_q, cfg.card as u32, STEPS);
        let pad = vec![cfg.audio_pad_token(); cfg.n_q];
        let mut cpu = model.cpu_stepper(&Device::Cpu).unwrap();
        let want = run(&mut cpu, &codes, &pad);
        let opts = GpuOptions {
            kv_cache: KvPrecision::F16,
            ..Default::default()
        };
        let Some(mut gpu) = gpu_stepper(&model, opts) else {
            return;
        };
        let got = run(&mut gpu, &codes, &pad);
        let label = format!("{label} f32 weights, f16 KV cache");
        let tolerances = (KV_F16_LOGIT_TOLERANCE, KV_F16_VAD_TOLERANCE);
        check_within(&label, &model, &want, &got, &gpu, tolerances);
    }
}

#[test]
fn tiny_quantized_match_dequantized_cpu() {
    let files = [
        "model-q80.gguf",
        "model-q4k.gguf",
        "model-q40.gguf",
        "model-f16.gguf",
    ];
    for file in files {
        let model = Model::from_dir(common::tiny_model(), Some(file)).unwrap();
        let mut cpu = CpuStepper::load_dequantized(&model.lm, &model.config, &Device::Cpu).unwrap();
        compare(file, &model, &mut cpu, QUANTIZED_STEPS);
    }
}

#[test]
fn mid_f32_matches_cpu() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("stt-mid-seed2");
    let mut o = SynthOptions::new(Preset::Mid, 2);
    o.lm_dtype = StDtype::F32;
    common::make_once(&dir, &o);
    let model = Model::from_dir(&dir, Some("model.safetensors")).unwrap();
    let mut cpu = model.cpu_stepper(&Device::Cpu).unwrap();
    compare("mid f32", &model, &mut cpu, STEPS);
}

/// stt-2.6b-en's shape (4 heads of 64, 4000-token vocabulary, a 375-step
/// context, no end-of-turn heads): f32 past the ring wrap, and Q4_K.
#[test]
fn stt_2b6_en_shape_matches_cpu() {
    let dir = common::en_tiny_model();
    let model = Model::from_dir(dir, Some("model.safetensors")).unwrap();
    assert_eq!(model.config.context, 375);
    let mut cpu = model.cpu_stepper(&Device::Cpu).unwrap();
    assert!(!cpu.has_end_of_turn());
    compare("stt-2.6b-en shape f32", &model, &mut cpu, 450);
    let model = Model::from_dir(dir, Some("model-q4k.gguf")).unwrap();
    let mut cpu = CpuStepper::load_dequantized(&model.lm, &model.config, &Device::Cpu).unwrap();
    compare("stt-2.6b-en shape Q4_K", &model, &mut cpu, QUANTIZED_STEPS);
}

/// A checkpoint with six end-of-turn heads (config.json says so) runs on
/// both engines, all six probabilities per step.
#[test]
fn six_end_of_turn_heads_match_cpu() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("stt-tiny-6heads");
    let mut o = SynthOptions::new(Preset::Tiny, 5);
    o.lm_dtype = StDtype::F32;
    o.extra_heads = 6;
    common::make_once(&dir, &o);
    let model = Model::from_dir(&dir, Some("model.safetensors")).unwrap();
    assert_eq!(model.config.end_of_turn_heads().0, 6);
    let mut cpu = model.cpu_stepper(&Device::Cpu).unwrap();
    let codes = codes(model.config.n_q, model.config.card as u32, 3);
    let pad = vec![model.config.audio_pad_token(); model.config.n_q];
    assert_eq!(run(&mut cpu, &codes, &pad)[0].end_of_turn.len(), 6);
    compare("six end-of-turn heads", &model, &mut cpu, QUANTIZED_STEPS);
}

/// Quantizing the f32 safetensors at load gives the very same GPU weights
/// as loading the GGUF `stt-cli synth`/`quantize` wrote from them (same
/// quantizer, same repacking): outputs must be bit-identical.
#[test]
fn quantize_at_load_equals_the_quantized_file() {
    let dir = common::tiny_model();
    let st = Model::from_dir(dir, Some("model.safetensors")).unwrap();
    let cfg = &st.config;
    let codes = codes(cfg.n_q, cfg.card as u32, 60);
    let pad = vec![cfg.audio_pad_token(); cfg.n_q];
    let types = [
        (QuantType::Q8_0, "model-q80.gguf"),
        (QuantType::Q4K, "model-q4k.gguf"),
        (QuantType::Q4_0, "model-q40.gguf"),
        (QuantType::F16, "model-f16.gguf"),
    ];
    for (ty, file) in types {
        let opts = GpuOptions {
            quantize: Some(ty),
            ..Default::default()
        };
        let Some(mut at_load) = gpu_stepper(&st, opts) else {
            return;
        };
        let gguf = Model::from_dir(dir, Some(file)).unwrap();
        let mut from_file = gpu_stepper(&gguf, GpuOptions::default()).unwrap();
        assert_eq!(at_load.weight_bytes(), from_file.weight_bytes(), "{ty:?}");
        let a = run(&mut at_load, &codes, &pad);
        let b = run(&mut from_file, &codes, &pad);
        for (i, (a, b)) in a.iter().zip(&b).enumerate() {
            assert_eq!(a.text_token, b.text_token, "{ty:?} step {i}");
            assert_eq!(a.text_logits, b.text_logits, "{ty:?} step {i}");
            assert_eq!(a.end_of_turn, b.end_of_turn, "{ty:?} step {i}");
        }
        eprintln!(
            "{ty:?} at load = {file}: 60 steps bit-identical, {} weight bytes",
            at_load.weight_bytes()
        );
    }
}

#[test]
fn buffer_over_the_binding_limit_is_refused_by_name() {
    let model = common::tiny_float_model();
    let opts = GpuOptions {
        max_binding_bytes: Some(1 << 20),
        ..Default::default()
    };
    match block_on(GpuStepper::new(model.lm.clone(), &model.config, opts)) {
        Err(GpuError::BufferTooLarge {
            name,
            limit_name,
            limit,
            ..
        }) => {
            assert_eq!(limit_name, "maxStorageBufferBindingSize");
            assert_eq!(limit, 1 << 20);
            eprintln!("refused: {name}");
        }
        Err(GpuError::NoAdapter(_)) if std::env::var("STT_REQUIRE_GPU").as_deref() != Ok("1") => {}
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("a 1 MiB binding limit should refuse the 8 MB text embedding"),
    }
}

/// More end-of-turn heads than argmax_heads.wgsl has invocations: refused
/// with an error that says so (the CPU runs any count).
#[test]
fn too_many_end_of_turn_heads_are_refused_by_the_engine() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("stt-tiny-300heads");
    let mut o = SynthOptions::new(Preset::Tiny, 6);
    o.extra_heads = 300;
    common::make_once(&dir, &o);
    let model = Model::from_dir(&dir, Some("model.safetensors")).unwrap();
    let mut cpu = model.cpu_stepper(&Device::Cpu).unwrap();
    let pad = vec![model.config.audio_pad_token(); model.config.n_q];
    assert_eq!(
        run(&mut cpu, std::slice::from_ref(&pad), &pad)[0]
            .end_of_turn
            .len(),
        300
    );
    match block_on(GpuStepper::new(
        model.lm.clone(),
        &model.config,
        GpuOptions::default(),
    )) {
        Err(GpuError::Unsupported(m)) => {
            assert!(m.contains("300 end-of-turn heads"), "{m}");
            eprintln!("refused: {m}");
        }
        Err(GpuError::NoAdapter(_)) if !common::gpu_required() => {}
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("300 end-of-turn heads exceed the argmax workgroup"),
    }
}

#[test]
fn lost_device_is_an_error_not_a_hang() {
    let model = common::tiny_float_model();
    let Some(mut gpu) = gpu_stepper(&model, GpuOptions::default()) else {
        return;
    };
    let pad = vec![model.config.audio_pad_token(); model.config.n_q];
    gpu.submit(TextInput::Start, &pad).unwrap();
    block_on(gpu.receive()).unwrap();
    gpu.destroy_device();
    let r = gpu
        .submit(TextInput::Previous, &pad)
        .and_then(|_| block_on(gpu.receive()).map(|_| ()));
    let e = r.expect_err("a destroyed device must fail");
    eprintln!("after destroy: {e}");
    assert!(
        matches!(
            e,
            stt_model::Error::Gpu {
                kind: GpuErrorKind::DeviceLost,
                ..
            }
        ),
        "not a device-lost error: {e:?}"
    );
}

/// A reset with steps still in flight waits them out, and the next stream
/// is exactly a fresh stepper's (tokens, probabilities and logits).
#[test]
fn reset_with_steps_in_flight_gives_a_fresh_stream() {
    let model = common::tiny_float_model();
    let opts = GpuOptions {
        max_in_flight: 2,
        ..Default::default()
    };
    let Some(mut gpu) = gpu_stepper(&model, opts) else {
        return;
    };
    let cfg = &model.config;
    let codes = codes(cfg.n_q, cfg.card as u32, 20);
    let pad = vec![cfg.audio_pad_token(); cfg.n_q];
    let fresh = run(&mut gpu, &codes, &pad);
    // Another stream, two steps submitted and none received.
    gpu.submit(TextInput::Start, &pad).unwrap();
    gpu.submit(TextInput::Previous, &codes[3]).unwrap();
    assert_eq!(gpu.in_flight(), 2);
    block_on(gpu.reset()).unwrap();
    assert_eq!(gpu.in_flight(), 0);
    assert_eq!(run(&mut gpu, &codes, &pad), fresh);
}

/// A device error belongs to the thread whose call raised it: parallel
/// lanes build their Mimi encoders on their own threads, and one lane's
/// failure must fail that lane's build, not whichever checks first.
#[test]
fn a_device_error_is_reported_to_the_thread_that_raised_it() {
    let gpu = match block_on(Gpu::new(false, FeatureRequest::NONE)) {
        Ok(gpu) => gpu,
        Err(e) if !common::gpu_required() => return eprintln!("no GPU: {e}"),
        Err(e) => panic!("{e}"),
    };
    let raised = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                // MAP_READ may only be combined with COPY_DST: a validation error.
                let _ = gpu.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("invalid usage"),
                    size: 16,
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::STORAGE,
                    mapped_at_creation: false,
                });
                std::thread::scope(|inner| {
                    let other = inner.spawn(|| gpu.check().is_ok()).join().unwrap();
                    assert!(other, "another thread took this thread's error");
                });
                let first = gpu.check();
                (first, gpu.check().is_ok())
            })
            .join()
            .unwrap()
    });
    let (first, then) = raised;
    let e = first.expect_err("the raising thread must see its error");
    eprintln!("raised: {e}");
    assert!(matches!(e, GpuError::Wgpu(_)), "{e:?}");
    assert!(then, "a checked error is reported once");
    assert!(gpu.check().is_ok(), "the main thread raised nothing");
}
