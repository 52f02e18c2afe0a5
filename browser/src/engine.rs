//! The wasm-bindgen surface `web/worker.js` drives: `Engine.create(files,
//! emit)` then `engine.handle(request)` (see `protocol.rs`). Errors reach
//! JavaScript as `Error("[code] message")`; the engine stays usable after
//! any of them. When the GPU is lost mid-stream the request fails with
//! `device_lost` and the worker hands the model files to
//! `engine.continueOnCpu(files)`, which finishes that request on the CPU
//! with the words so far kept (`replay.rs`).

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use js_sys::{Float32Array, Function, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;

use stt_model::audio::{AudioStream, Resampler};
use stt_model::config::{Config, SAMPLE_RATE_HZ, SYNTHETIC_MARKER};
use stt_model::error::{Error, GpuErrorKind};
use stt_model::export;
use stt_model::mimi::MimiEncoder;
use stt_model::session::{Event, Session, FILE_MIMI_CHUNK_FRAMES};
use stt_model::stepper::CpuStepper;
use stt_model::tokenizer::Tokenizer;
use stt_model::transcript::Transcript;
use stt_model::weights::safetensors::SafetensorsFile;
use stt_model::weights::LmWeights;
use stt_model::LmStepper;
use stt_wgpu::mimi::{AnyMimi, GpuMimiEncoder};
use stt_wgpu::{GpuOptions, GpuStepper};

use crate::js::{bytes_field, core_error, js_error, now_s, shards_field, string_field};
use crate::protocol::{Backend, Output, ProgressPhase, Request, State};
use crate::replay::Replay;
use crate::stepper::AnyStepper;

#[wasm_bindgen]
pub struct Engine {
    /// `None` while a request runs: worker.js runs one at a time, and a
    /// second one meanwhile gets a "busy" error rather than a panic.
    inner: Rc<RefCell<Option<Inner>>>,
}

struct Inner {
    session: Session<AnyStepper, AnyMimi>,
    emit: Function,
    transcript: Transcript,
    // What a new session needs when the GPU's is lost.
    config: Config,
    tokenizer: Arc<Tokenizer>,
    sampling: stt_model::Sampling,
    synthetic: bool,
    /// Frames per Mimi call of the current stream (1 live, more for files).
    mimi_chunk_frames: usize,
    /// Where the current session starts in the stream (samples) and the
    /// steps of the stream's earlier sessions: not 0 once a stream went on
    /// on the CPU after its GPU was lost.
    offset_samples: u64,
    offset_steps: usize,
    replay: Replay,
    /// What the lost GPU interrupted, for `continue_on_cpu` to finish.
    interrupted: Option<Interrupted>,
    /// The name exports give as their source.
    source: String,
    /// The microphone stream's resampler (and its input rate), while open.
    microphone: Option<(u32, Resampler)>,
    /// Wall-clock start of the stream, for the real-time factor.
    started_s: f64,
}

/// The work a lost GPU left unfinished.
enum Interrupted {
    /// A new stream was being set up: nothing of the request ran; run it again.
    Begin,
    /// Microphone audio: it is in the replay, nothing more to do.
    Audio,
    /// A stream's end: replay, then flush and report.
    Flush,
    /// A file: replay, then the rest of it.
    File {
        stream: Box<AudioStream>,
        total: f64,
        name: String,
    },
}

fn is_device_lost(e: &Error) -> bool {
    matches!(
        e,
        Error::Gpu {
            kind: GpuErrorKind::DeviceLost,
            ..
        }
    )
}

/// Where Mimi runs (`files.mimi`, optional): "auto" (the default) puts it
/// on the LM's GPU unless that is a software adapter (SwiftShader: wasm's
/// CPU Mimi is faster), "cpu" or "webgpu" force one (benchmarks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MimiChoice {
    Auto,
    Cpu,
    Webgpu,
}

fn mimi_choice(files: &JsValue) -> Result<MimiChoice, JsValue> {
    let v = Reflect::get(files, &"mimi".into())?;
    match v.as_string().as_deref() {
        None | Some("auto") => Ok(MimiChoice::Auto),
        Some("cpu") => Ok(MimiChoice::Cpu),
        Some("webgpu") => Ok(MimiChoice::Webgpu),
        Some(other) => Err(js_error(
            "bad_input",
            format!("mimi: expected auto, cpu or webgpu, got {other:?}"),
        )),
    }
}

/// Text sampling (`files.temperature`, `files.seed`, optional numbers):
/// temperature 0 (the default) is greedy, exactly moshi's choice.
fn sampling_choice(files: &JsValue) -> Result<stt_model::Sampling, JsValue> {
    let number = |key: &str| -> Result<Option<f64>, JsValue> {
        let v = Reflect::get(files, &key.into())?;
        if v.is_undefined() || v.is_null() {
            return Ok(None);
        }
        v.as_f64()
            .map(Some)
            .ok_or_else(|| js_error("bad_input", format!("{key}: expected a number")))
    };
    let temperature = number("temperature")?.unwrap_or(0.0) as f32;
    let seed = number("seed")?.unwrap_or(0.0);
    if !(seed >= 0.0 && seed.fract() == 0.0 && seed <= 9_007_199_254_740_991.0) {
        return Err(js_error(
            "bad_input",
            format!("seed {seed}: expected a whole number ≥ 0"),
        ));
    }
    stt_model::Sampling::new(temperature, seed as u64).map_err(core_error)
}

/// Mimi's encoder per `choice`: on the GPU stepper's device, or moshi's on
/// the CPU (auto falls back to it when the GPU one cannot be built).
fn mimi_encoder(
    file: &SafetensorsFile,
    config: &Config,
    stepper: &AnyStepper,
    choice: MimiChoice,
) -> Result<AnyMimi, JsValue> {
    let cpu = || -> Result<AnyMimi, JsValue> {
        MimiEncoder::load(file, config, &candle_core::Device::Cpu)
            .map(|m| AnyMimi::Cpu(Box::new(m)))
            .map_err(core_error)
    };
    let gpu = match stepper {
        AnyStepper::Gpu(g) => g.gpu(),
        AnyStepper::Cpu(_) if choice == MimiChoice::Webgpu => {
            return Err(js_error(
                "bad_input",
                "mimi: webgpu needs the LM on WebGPU too",
            ))
        }
        AnyStepper::Cpu(_) => return cpu(),
    };
    if choice == MimiChoice::Cpu || (choice == MimiChoice::Auto && gpu.caps.software) {
        return cpu();
    }
    match GpuMimiEncoder::new(gpu.clone(), file, config, FILE_MIMI_CHUNK_FRAMES) {
        Ok(m) => Ok(AnyMimi::Gpu(Box::new(m))),
        Err(_) if choice == MimiChoice::Auto => cpu(),
        Err(e) => Err(core_error(e.into())),
    }
}

#[wasm_bindgen]
impl Engine {
    /// Loads a model from its files' bytes (`config`, `lm_name`, `lm`,
    /// `mimi_name`, `mimi`, `tokenizer_name`, `tokenizer`, `backend`;
    /// optionally `mimi`, `temperature`, `seed`) and warms it up; `emit`
    /// receives every protocol output.
    pub async fn create(files: JsValue, emit: Function) -> Result<Engine, JsValue> {
        console_error_panic_hook::set_once();
        let backend: Backend =
            serde_wasm_bindgen::from_value(Reflect::get(&files, &"backend".into())?)
                .map_err(|e| js_error("bad_input", format!("backend: {e}")))?;
        let sampling = sampling_choice(&files)?;
        let config = Config::from_json(&bytes_field(&files, "config")?).map_err(core_error)?;
        let synthetic = config.other.contains_key(SYNTHETIC_MARKER);
        let tokenizer_name = string_field(&files, "tokenizer_name")?;
        let tokenizer_bytes = bytes_field(&files, "tokenizer")?;
        let tokenizer = if tokenizer_name.ends_with(".json") {
            Tokenizer::from_tokenizer_json(&tokenizer_bytes)
        } else {
            Tokenizer::from_sentencepiece_model(&tokenizer_bytes)
        }
        .map_err(|e| js_error("bad_model", format!("{tokenizer_name}: {e}")))?;
        drop(tokenizer_bytes);

        // The LM first: its file's bytes are freed once its stepper holds the
        // weights, and Mimi (smaller) then fits in the freed space. The other
        // order needs ~0.5 GB more wasm memory for the full model (memory
        // only grows).
        let lm = lm_file(&files)?;
        let (stepper, adapter, notice) = match backend {
            Backend::Cpu => (cpu_stepper(&lm, &config)?, None, None),
            Backend::Webgpu => {
                let (gpu, adapter) = gpu_stepper(lm.clone(), &config).await.map_err(core_error)?;
                (gpu, Some(adapter), None)
            }
            // A clone shares the bytes (cheap); kept only for the fallback.
            Backend::Auto => match gpu_stepper(lm.clone(), &config).await {
                Ok((gpu, adapter)) => (gpu, Some(adapter), None),
                Err(e) => {
                    let notice = format!(
                        "WebGPU is not available here ({e}); running on the CPU, which may be \
                         slower than real time."
                    );
                    (cpu_stepper(&lm, &config)?, None, Some(notice))
                }
            },
        };
        // The GPU holds its own copy now (the CPU stepper made its tensors):
        // the last reference to the file bytes goes, and the allocator can
        // reuse them (wasm linear memory never shrinks; see `memoryBytes`).
        drop(lm);
        let mimi_file = mimi_file(&files)?;
        let mimi = mimi_encoder(&mimi_file, &config, &stepper, mimi_choice(&files)?)?;
        drop(mimi_file);
        let backend = match stepper {
            AnyStepper::Gpu(_) => Backend::Webgpu,
            AnyStepper::Cpu(_) => Backend::Cpu,
        };
        let tokenizer = Arc::new(tokenizer);
        let mut session = Session::new(&config, mimi, stepper, Some(tokenizer.clone()));
        session.stepper_mut().set_sampling(sampling);
        let mut inner = Inner {
            transcript: Transcript::new(),
            session,
            emit,
            config,
            tokenizer,
            sampling,
            synthetic,
            mimi_chunk_frames: 1,
            offset_samples: 0,
            offset_steps: 0,
            replay: Replay::default(),
            interrupted: None,
            source: String::new(),
            microphone: None,
            started_s: now_s(),
        };
        inner.send(&Output::Status {
            state: State::WarmingUp,
            backend: Some(backend),
            adapter: adapter.clone(),
            notice: notice.clone(),
            synthetic,
        });
        // One second of silence compiles every pipeline and touches every
        // buffer before the user speaks; then a fresh stream.
        let silence = vec![0f32; SAMPLE_RATE_HZ as usize];
        inner.session.push_pcm(&silence).await.map_err(core_error)?;
        inner.session.flush().await.map_err(core_error)?;
        inner.session.reset().await.map_err(core_error)?;
        inner.send(&Output::Status {
            state: State::Ready,
            backend: Some(backend),
            adapter,
            notice,
            synthetic,
        });
        Ok(Engine {
            inner: Rc::new(RefCell::new(Some(inner))),
        })
    }

    /// Runs one request (`audio`, `file`, `stop`, `reset`, `export`); the
    /// promise resolves when its outputs are out (for `export`: to the text).
    pub fn handle(&self, request: JsValue) -> js_sys::Promise {
        let cell = self.inner.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let taken = cell.borrow_mut().take();
            let mut inner = taken.ok_or_else(|| js_error("busy", "a request is still running"))?;
            let result = inner.handle(request).await;
            *cell.borrow_mut() = Some(inner);
            result
        })
    }

    /// After a request failed with `device_lost`: moves the stream to the
    /// CPU (`files`: `lm_name`, `lm`, `mimi_name`, `mimi`, as for `create`)
    /// and finishes what the GPU left. Resolves to `true` when the request
    /// is done, `false` when it had not started and must be sent again.
    #[wasm_bindgen(js_name = continueOnCpu)]
    pub fn continue_on_cpu(&self, files: JsValue) -> js_sys::Promise {
        let cell = self.inner.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let taken = cell.borrow_mut().take();
            let mut inner = taken.ok_or_else(|| js_error("busy", "a request is still running"))?;
            let result = inner.continue_on_cpu(files).await;
            *cell.borrow_mut() = Some(inner);
            result.map(JsValue::from_bool)
        })
    }
}

/// `files.lm` (shards) named `files.lm_name`.
fn lm_file(files: &JsValue) -> Result<LmWeights, JsValue> {
    let name = string_field(files, "lm_name")?;
    LmWeights::from_shards(&name, shards_field(files, "lm")?).map_err(core_error)
}

/// `files.mimi` (shards) named `files.mimi_name`.
fn mimi_file(files: &JsValue) -> Result<SafetensorsFile, JsValue> {
    let name = string_field(files, "mimi_name")?;
    SafetensorsFile::from_shards(&name, shards_field(files, "mimi")?).map_err(core_error)
}

/// The WebGPU stepper and the adapter's name.
async fn gpu_stepper(lm: LmWeights, config: &Config) -> Result<(AnyStepper, String), Error> {
    let gpu = GpuStepper::new(lm, config, GpuOptions::default()).await?;
    let adapter = gpu.capabilities().adapter.clone();
    Ok((AnyStepper::Gpu(Box::new(gpu)), adapter))
}

fn cpu_stepper(lm: &LmWeights, config: &Config) -> Result<AnyStepper, JsValue> {
    let cpu = CpuStepper::load(lm, config, &candle_core::Device::Cpu).map_err(core_error)?;
    Ok(AnyStepper::Cpu(Box::new(cpu)))
}

impl Inner {
    async fn handle(&mut self, request: JsValue) -> Result<JsValue, JsValue> {
        // The typed arrays (`samples`, `bytes`) are read directly below;
        // serde sees the rest (an internally tagged enum buffers every field
        // first, and a Float32Array is no serde value).
        let fields = js_sys::Object::assign(&js_sys::Object::new(), request.unchecked_ref());
        for key in ["samples", "bytes"] {
            Reflect::delete_property(&fields, &key.into())?;
        }
        let parsed: Request = serde_wasm_bindgen::from_value(fields.into())
            .map_err(|e| js_error("bad_input", format!("request: {e}")))?;
        match parsed {
            Request::Load { .. } => Err(js_error(
                "bad_input",
                "load is handled by the worker, not the engine",
            )),
            Request::Audio { sample_rate } => {
                let samples: Float32Array = Reflect::get(&request, &"samples".into())?
                    .dyn_into()
                    .map_err(|_| {
                    js_error("bad_input", "audio.samples is not a Float32Array")
                })?;
                self.audio(&samples.to_vec(), sample_rate).await?;
                Ok(JsValue::UNDEFINED)
            }
            Request::File { name } => {
                let bytes: Uint8Array = Reflect::get(&request, &"bytes".into())?
                    .dyn_into()
                    .map_err(|_| js_error("bad_input", "file.bytes is not a Uint8Array"))?;
                self.file(bytes.to_vec(), name).await?;
                Ok(JsValue::UNDEFINED)
            }
            Request::Stop => {
                self.stop().await?;
                Ok(JsValue::UNDEFINED)
            }
            Request::Reset => {
                self.reset().await?;
                Ok(JsValue::UNDEFINED)
            }
            Request::Restore {
                source,
                words,
                end_of_turn_s,
            } => {
                self.microphone = None;
                self.begin(source).await?;
                let heads = self.session.stepper().has_end_of_turn();
                self.transcript = Transcript::restored(words, end_of_turn_s, heads);
                Ok(JsValue::UNDEFINED)
            }
            Request::Export { format } => Ok(JsValue::from_str(&export::render(
                &self.transcript,
                format,
                &self.source,
            ))),
        }
    }

    fn send(&self, output: &Output) {
        // Plain objects (not Maps), as the page reads them.
        let serializer = serde_wasm_bindgen::Serializer::json_compatible();
        if let Ok(v) = serde::Serialize::serialize(output, &serializer) {
            let _ = self.emit.call1(&JsValue::NULL, &v);
        }
    }

    /// A new stream: fresh session and transcript.
    async fn begin(&mut self, source: String) -> Result<(), JsValue> {
        self.transcript = Transcript::new();
        self.source = source;
        self.started_s = now_s();
        self.offset_samples = 0;
        self.offset_steps = 0;
        self.replay.clear();
        self.interrupted = None;
        match self.session.reset().await {
            Ok(()) => Ok(()),
            Err(e) => Err(self.fail(e, Interrupted::Begin)),
        }
    }

    /// A failed request's error. When the GPU is gone, what was running is
    /// kept for `continue_on_cpu` (the worker calls it on `device_lost`).
    fn fail(&mut self, e: Error, what: Interrupted) -> JsValue {
        if is_device_lost(&e) && matches!(self.session.stepper(), AnyStepper::Gpu(_)) {
            self.interrupted = Some(what);
        }
        core_error(e)
    }

    /// Stream audio (24 kHz): kept for a replay, run, published.
    async fn feed(&mut self, pcm: &[f32]) -> stt_model::Result<()> {
        self.replay.push(pcm);
        let events = self.session.push_pcm(pcm).await?;
        self.publish(events);
        Ok(())
    }

    /// The end of the stream: its last words and figures.
    async fn finish(&mut self) -> stt_model::Result<()> {
        let events = self.session.flush().await?;
        self.publish(events);
        self.stats();
        Ok(())
    }

    /// Where the current session starts in the stream, in seconds.
    fn offset_s(&self) -> f64 {
        self.offset_samples as f64 / SAMPLE_RATE_HZ as f64
    }

    /// Seconds of the stream run so far.
    fn stream_seconds(&self) -> f64 {
        self.offset_s() + self.session.audio_seconds()
    }

    async fn continue_on_cpu(&mut self, files: JsValue) -> Result<bool, JsValue> {
        let lm = lm_file(&files)?;
        let stepper = cpu_stepper(&lm, &self.config)?;
        drop(lm);
        let mimi_file = mimi_file(&files)?;
        let mimi = mimi_encoder(&mimi_file, &self.config, &stepper, MimiChoice::Cpu)?;
        drop(mimi_file);
        let mut session = Session::new(&self.config, mimi, stepper, Some(self.tokenizer.clone()));
        session.stepper_mut().set_sampling(self.sampling);
        session.set_mimi_chunk_frames(self.mimi_chunk_frames);
        self.offset_steps += self.session.steps_done();
        // The GPU session goes (its buffers with it).
        self.session = session;
        let what = self.interrupted.take();
        self.send(&Output::Status {
            state: if what.is_some() {
                State::Transcribing
            } else {
                State::Ready
            },
            backend: Some(Backend::Cpu),
            adapter: None,
            notice: None,
            synthetic: self.synthetic,
        });
        let what = match what {
            None | Some(Interrupted::Begin) => return Ok(false),
            Some(what) => what,
        };
        // The word being spoken (or the silence after the last word) again,
        // on the new session; its times are shifted into the stream's.
        let (start, pcm) = self.replay.resume();
        self.offset_samples = start;
        let events = self.session.push_pcm(&pcm).await.map_err(core_error)?;
        self.publish(events);
        match what {
            // The microphone's next chunks carry on.
            Interrupted::Begin | Interrupted::Audio => {}
            Interrupted::Flush => self.finish().await.map_err(core_error)?,
            Interrupted::File {
                stream,
                total,
                name,
            } => self.file_rest(*stream, total, name).await?,
        }
        Ok(true)
    }

    /// Gathers events into the transcript and sends what the page shows.
    fn publish(&mut self, events: Vec<Event>) {
        let offset_s = self.offset_s();
        for event in events {
            let event = event.shifted(offset_s);
            self.replay.observe(&event);
            let (words, turns) = (
                self.transcript.words.len(),
                self.transcript.end_of_turn_s.len(),
            );
            let last_end = self.transcript.words.last().map(|w| w.end_s);
            self.transcript.push(&event);
            match &event {
                Event::Partial { text, start_s } => self.send(&Output::Partial {
                    text: text.clone(),
                    start_s: *start_s,
                }),
                Event::Word { .. } | Event::WordEnd { .. } => {
                    let index = self.transcript.words.len().saturating_sub(1);
                    let changed = self.transcript.words.len() > words
                        || self.transcript.words.last().map(|w| w.end_s) != last_end;
                    if let (true, Some(w)) = (changed, self.transcript.words.last()) {
                        self.send(&Output::Word {
                            index,
                            text: w.text.clone(),
                            start_s: w.start_s,
                            end_s: w.end_s,
                        });
                    }
                }
                Event::Step { .. } => {}
            }
            if let Some(&time_s) = self.transcript.end_of_turn_s.get(turns) {
                self.send(&Output::EndOfTurn { time_s });
            }
        }
    }

    /// A state change only (the badge and banner stay as they are).
    fn state(&self, state: State) {
        self.send(&Output::Status {
            state,
            backend: None,
            adapter: None,
            notice: None,
            synthetic: false,
        });
    }

    /// The stream's figures, and the engine ready for the next one.
    fn stats(&self) {
        let audio_s = self.stream_seconds();
        let elapsed_s = now_s() - self.started_s;
        self.send(&Output::Stats {
            audio_s,
            elapsed_s,
            realtime_factor: if audio_s > 0.0 {
                elapsed_s / audio_s
            } else {
                0.0
            },
            steps: self.offset_steps + self.session.steps_done(),
        });
        self.state(State::Ready);
    }

    async fn audio(&mut self, samples: &[f32], rate: u32) -> Result<(), JsValue> {
        let open = matches!(self.microphone, Some((r, _)) if r == rate);
        if !open {
            // A new stream, or the device changed rate mid-way: start again.
            self.microphone = None;
            self.begin("microphone".into()).await?;
            // Live: every frame as it arrives.
            self.mimi_chunk_frames = 1;
            self.session.set_mimi_chunk_frames(1);
            let resampler =
                Resampler::new(rate, SAMPLE_RATE_HZ).map_err(|e| js_error("bad_audio", e))?;
            self.microphone = Some((rate, resampler));
        }
        let mut pcm = Vec::with_capacity(samples.len() * 24 / 16 + 16);
        if let Some((_, r)) = &mut self.microphone {
            r.process(samples, &mut pcm);
        }
        self.feed(&pcm)
            .await
            .map_err(|e| self.fail(e, Interrupted::Audio))
    }

    async fn stop(&mut self) -> Result<(), JsValue> {
        let Some((_, mut resampler)) = self.microphone.take() else {
            return Ok(());
        };
        let mut tail = vec![];
        resampler.finish(&mut tail);
        let done = match self.feed(&tail).await {
            Ok(()) => self.finish().await,
            Err(e) => Err(e),
        };
        done.map_err(|e| self.fail(e, Interrupted::Flush))
    }

    async fn reset(&mut self) -> Result<(), JsValue> {
        self.microphone = None;
        self.begin(String::new()).await
    }

    async fn file(&mut self, bytes: Vec<u8>, name: String) -> Result<(), JsValue> {
        self.microphone = None;
        self.begin(name.clone()).await?;
        // As `stt-cli transcribe` does, so the words are the same.
        self.mimi_chunk_frames = FILE_MIMI_CHUNK_FRAMES;
        self.session.set_mimi_chunk_frames(FILE_MIMI_CHUNK_FRAMES);
        let hint = std::path::Path::new(&name)
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        let stream = AudioStream::from_bytes(bytes, hint.as_deref())
            .map_err(|e| js_error("bad_audio", format!("{name}: {e}")))?;
        let total = stream.duration_seconds().unwrap_or(0.0);
        self.state(State::Transcribing);
        self.file_rest(stream, total, name).await
    }

    /// Decodes and runs the rest of a file's `stream`, then flushes.
    async fn file_rest(
        &mut self,
        mut stream: AudioStream,
        total: f64,
        name: String,
    ) -> Result<(), JsValue> {
        loop {
            match stream.next_chunk() {
                Ok(Some(chunk)) => {
                    if let Err(e) = self.feed(&chunk).await {
                        let what = Interrupted::File {
                            stream: Box::new(stream),
                            total,
                            name,
                        };
                        return Err(self.fail(e, what));
                    }
                    self.send(&Output::Progress {
                        phase: ProgressPhase::File,
                        loaded: self.stream_seconds(),
                        total,
                    });
                }
                Ok(None) => break,
                // Keep what decoded, as the CLI does; say so after the words.
                Err(e @ stt_model::audio::AudioError::Truncated { .. }) => {
                    self.finish()
                        .await
                        .map_err(|e| self.fail(e, Interrupted::Flush))?;
                    self.send(&Output::Error {
                        code: "bad_audio".into(),
                        message: format!("{name}: {e}"),
                    });
                    return Ok(());
                }
                Err(e) => return Err(js_error("bad_audio", format!("{name}: {e}"))),
            }
        }
        self.finish()
            .await
            .map_err(|e| self.fail(e, Interrupted::Flush))
    }
}
