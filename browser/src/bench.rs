//! Entry points for the benchmark page (`bench/browser/`): the same timing
//! loops as `stt-cli bench` (`stt_model::bench`), run inside a worker so
//! the figures are the tab's own. Each resolves to a plain object; run each
//! in a fresh worker, since wasm memory only grows.

use js_sys::Uint8Array;
use serde::Serialize;
use wasm_bindgen::prelude::*;

use stt_model::audio::AudioStream;
use stt_model::bench::{lm_step_times, mimi_frame_times, percentile};
use stt_model::config::Config;
use stt_model::config::FRAME_SAMPLES;
use stt_model::mimi::{MimiBackend, MimiEncoder};
use stt_model::stepper::CpuStepper;
use stt_model::weights::safetensors::SafetensorsFile;
use stt_model::weights::LmWeights;
use stt_wgpu::device::Gpu;
use stt_wgpu::mimi::{AnyMimi, GpuMimiEncoder};
use stt_wgpu::{FeatureRequest, GpuOptions, GpuStepper};

use crate::js::{bytes_field, core_error, js_error, memory_bytes, shards_field, string_field};
use crate::stepper::AnyStepper;

fn now_ms() -> f64 {
    js_sys::Date::now()
}

fn to_js(value: &impl Serialize) -> Result<JsValue, JsValue> {
    serde_wasm_bindgen::to_value(value).map_err(|e| js_error("internal", e))
}

/// Wasm linear memory in bytes (it never shrinks: after a load, its peak).
#[wasm_bindgen(js_name = memoryBytes)]
pub fn wasm_memory_bytes() -> f64 {
    memory_bytes()
}

#[derive(Serialize)]
struct MimiFigures {
    backend: String,
    adapter: Option<String>,
    frames: usize,
    chunk_frames: usize,
    ms_per_frame_median: f64,
    ms_per_frame_p90: f64,
    memory_bytes: f64,
}

/// Mimi's streaming encoder on the first `frames` frames of `clip` (any
/// audio file's bytes), `chunk_frames` per call: on the CPU (this thread)
/// for `backend` "cpu", on WebGPU (`GpuMimiEncoder`, whatever adapter the
/// browser gives) for "webgpu". `files` holds `config`, `mimi_name` and
/// `mimi`, as for `Engine.create`.
#[wasm_bindgen(js_name = benchMimi)]
pub async fn bench_mimi(
    files: JsValue,
    clip: Uint8Array,
    frames: usize,
    chunk_frames: usize,
    backend: String,
) -> Result<JsValue, JsValue> {
    let config = Config::from_json(&bytes_field(&files, "config")?).map_err(core_error)?;
    let mimi_name = string_field(&files, "mimi_name")?;
    let file = SafetensorsFile::from_shards(&mimi_name, shards_field(&files, "mimi")?)
        .map_err(core_error)?;
    let (mut mimi, adapter) = match backend.as_str() {
        "cpu" => (
            AnyMimi::Cpu(Box::new(
                MimiEncoder::load(&file, &config, &candle_core::Device::Cpu).map_err(core_error)?,
            )),
            None,
        ),
        "webgpu" => {
            let gpu = Gpu::new(false, FeatureRequest::default())
                .await
                .map_err(|e| core_error(e.into()))?;
            let adapter = gpu.caps.adapter.clone();
            let m = GpuMimiEncoder::new(gpu, &file, &config, chunk_frames.max(1))
                .map_err(|e| core_error(e.into()))?;
            (AnyMimi::Gpu(Box::new(m)), Some(adapter))
        }
        other => {
            return Err(js_error(
                "bad_input",
                format!("backend: expected cpu or webgpu, got {other:?}"),
            ))
        }
    };
    drop(file);
    let mut stream =
        AudioStream::from_bytes(clip.to_vec(), None).map_err(|e| js_error("bad_audio", e))?;
    let mut pcm = vec![];
    while let Some(chunk) = stream.next_chunk().map_err(|e| js_error("bad_audio", e))? {
        pcm.extend_from_slice(&chunk);
    }
    // One call first: pipelines compiled, buffers touched.
    let warm =
        &pcm[..pcm.len().min(chunk_frames.max(1) * FRAME_SAMPLES) / FRAME_SAMPLES * FRAME_SAMPLES];
    if !warm.is_empty() {
        mimi.encode(warm).await.map_err(core_error)?;
        mimi.reset();
    }
    let t = mimi_frame_times(&mut mimi, &pcm, frames, chunk_frames, now_ms)
        .await
        .map_err(core_error)?;
    to_js(&MimiFigures {
        backend,
        adapter,
        frames: t.len(),
        chunk_frames,
        ms_per_frame_median: percentile(&t, 0.5),
        ms_per_frame_p90: percentile(&t, 0.9),
        memory_bytes: memory_bytes(),
    })
}

#[derive(Serialize)]
struct LmFigures {
    backend: &'static str,
    adapter: Option<String>,
    steps: usize,
    warmup: usize,
    ms_per_step_median: f64,
    ms_per_step_p90: f64,
    load_ms: f64,
    memory_bytes_loaded: f64,
    memory_bytes_after: f64,
}

/// LM steps on `backend` (`"cpu"` or `"webgpu"`): `warmup` untimed steps,
/// then `steps` timed. `files` holds `config`, `lm_name` and `lm`.
#[wasm_bindgen(js_name = benchLm)]
pub async fn bench_lm(
    files: JsValue,
    backend: String,
    warmup: usize,
    steps: usize,
) -> Result<JsValue, JsValue> {
    let config = Config::from_json(&bytes_field(&files, "config")?).map_err(core_error)?;
    let lm_name = string_field(&files, "lm_name")?;
    let started = now_ms();
    let lm = LmWeights::from_shards(&lm_name, shards_field(&files, "lm")?).map_err(core_error)?;
    let memory_bytes_loaded = memory_bytes();
    let pad = config.audio_pad_token();
    let (mut stepper, adapter, backend) = match backend.as_str() {
        "cpu" => {
            let cpu =
                CpuStepper::load(&lm, &config, &candle_core::Device::Cpu).map_err(core_error)?;
            (AnyStepper::Cpu(Box::new(cpu)), None, "cpu")
        }
        "webgpu" => {
            let gpu = GpuStepper::new(lm.clone(), &config, GpuOptions::default())
                .await
                .map_err(|e| core_error(e.into()))?;
            let adapter = gpu.capabilities().adapter.clone();
            (AnyStepper::Gpu(Box::new(gpu)), Some(adapter), "webgpu")
        }
        other => return Err(js_error("bad_input", format!("backend {other:?}"))),
    };
    drop(lm);
    let load_ms = now_ms() - started;
    let t = lm_step_times(&mut stepper, config.n_q, pad, warmup, steps, now_ms).await;
    let t = t.map_err(core_error)?;
    to_js(&LmFigures {
        backend,
        adapter,
        steps: t.len(),
        warmup,
        ms_per_step_median: percentile(&t, 0.5),
        ms_per_step_p90: percentile(&t, 0.9),
        load_ms,
        memory_bytes_loaded,
        memory_bytes_after: memory_bytes(),
    })
}
