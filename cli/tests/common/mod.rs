//! Shared test helpers: seeded synthetic models (made once per test binary)
//! and the fixture clips from `../shared/fixtures/audio`.

#![allow(dead_code)]

pub mod rvq;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use stt_cli::synth::{synth, Preset, SynthOptions};
use stt_cli::tensor_writer::StDtype;
use stt_model::weights::quant::QuantType;

pub const CLIPS: [&str; 3] = ["bria.mp3", "loona.mp3", "sample_fr_hibiki_crepes.mp3"];

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/fixtures/audio")
        .join(name)
}

pub fn clip_24k(name: &str) -> Vec<f32> {
    stt_model::audio::read_all_24k(&fixture(name)).expect("fixture clip decodes")
}

/// A tiny model with every LM file format: f32 `model.safetensors` and the
/// four GGUFs (Q8_0, Q4_K, Q4_0, F16) made from the same values. Seed 1.
pub fn tiny_model() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("stt-tiny-seed1");
        let mut o = SynthOptions::new(Preset::Tiny, 1);
        o.lm_dtype = StDtype::F32;
        o.gguf = vec![
            QuantType::Q8_0,
            QuantType::Q4K,
            QuantType::Q4_0,
            QuantType::F16,
        ];
        make_once(&dir, &o);
        dir
    })
}

/// The tiny model loaded with its f32 LM (`model.safetensors`): the
/// reference the quantised and GPU paths are compared against.
pub fn tiny_float_model() -> stt_model::Model {
    stt_model::Model::from_dir(tiny_model(), Some("model.safetensors"))
        .expect("the tiny model loads")
}

/// stt-2.6b-en's shape at tiny size (`Preset::EnTiny`): f32
/// `model.safetensors` and a Q4_K GGUF, no end-of-turn heads. Seed 4.
pub fn en_tiny_model() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("stt-en-tiny-seed4");
        let mut o = SynthOptions::new(Preset::EnTiny, 4);
        o.lm_dtype = StDtype::F32;
        o.gguf = vec![QuantType::Q4K];
        make_once(&dir, &o);
        dir
    })
}

/// Writes a model unless a previous run of this same binary already did.
pub fn make_once(dir: &Path, opts: &SynthOptions) {
    static LOCK: Mutex<()> = Mutex::new(());
    let _g = LOCK.lock();
    let stamp = dir.join(".complete");
    let want = format!("{opts:?}");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(want.as_str()) {
        return;
    }
    synth(dir, opts).expect("synth writes the model");
    std::fs::write(stamp, want).expect("stamp");
}

/// `steps` frames of `n_q` audio codes below `card` from a 64-bit LCG
/// seeded with `seed`: deterministic input for LM tests without Mimi.
pub fn lcg_codes(n_q: usize, card: u32, steps: usize, seed: u64) -> Vec<Vec<u32>> {
    let mut s = seed;
    (0..steps)
        .map(|_| {
            (0..n_q)
                .map(|_| {
                    s = s
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((s >> 33) % card as u64) as u32
                })
                .collect()
        })
        .collect()
}

/// The GPU engine on `model`, or None (with a note) when no adapter exists
/// and STT_REQUIRE_GPU is not 1 (CI sets it: lavapipe is installed there).
pub fn gpu_stepper(
    model: &stt_model::Model,
    opts: stt_wgpu::GpuOptions,
) -> Option<stt_wgpu::GpuStepper> {
    let built = stt_model::block_on(stt_wgpu::GpuStepper::new(
        model.lm.clone(),
        &model.config,
        opts,
    ));
    match built {
        Ok(s) => Some(s),
        Err(stt_wgpu::GpuError::NoAdapter(e)) if !gpu_required() => {
            eprintln!("no GPU adapter ({e}): skipping");
            None
        }
        Err(e) => panic!("GPU stepper: {e}"),
    }
}

/// STT_REQUIRE_GPU=1: a missing adapter fails the GPU tests.
pub fn gpu_required() -> bool {
    std::env::var("STT_REQUIRE_GPU").as_deref() == Ok("1")
}

/// A scratch directory for one test.
pub fn scratch(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("scratch")
        .join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("scratch dir");
    d
}

/// moshi's own `asr::State` (the semantic reference), loaded by moshi's own
/// loaders from the f32 `model.safetensors` and Mimi of `dir`.
pub fn moshi_asr_state(dir: &Path, cfg: &stt_model::Config) -> moshi::asr::State {
    let dev = candle_core::Device::Cpu;
    let has_heads = stt_model::Model::from_dir(dir, Some("model.safetensors"))
        .expect("the model loads")
        .lm
        .has_end_of_turn_heads();
    let lm = moshi::lm::load_lm_model(
        cfg.lm_config(has_heads),
        dir.join("model.safetensors"),
        candle_core::DType::F32,
        &dev,
    )
    .expect("moshi loads the LM");
    let mimi_path = dir.join(&cfg.mimi_name);
    let mimi = moshi::mimi::load(mimi_path.to_str().expect("utf-8 path"), Some(cfg.n_q), &dev)
        .expect("moshi loads Mimi");
    moshi::asr::State::new(1, cfg.asr_delay_in_tokens(), 0.0, mimi, lm).expect("asr state")
}
