//! `stt-cli transcribe`: audio files (or stdin) to text, the LM on the GPU
//! engine when an adapter exists, else on the CPU.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use stt_model::audio::AudioStream;
use stt_model::mimi::MimiBackend;
use stt_model::segment::SegmentPlan;
use stt_model::session::FILE_MIMI_CHUNK_FRAMES;
use stt_model::{block_on, LmStepper, Model, Session, Transcript};
use stt_wgpu::mimi::{AnyMimi, GpuMimiEncoder};

use stt_model::export::{self, Format};

use crate::args::FormatArg;

#[derive(Debug, clap::Args)]
pub struct TranscribeArgs {
    /// Audio files, directories of audio files, or `-` for standard input.
    #[arg(required = true)]
    pub inputs: Vec<String>,
    #[command(flatten)]
    pub engine: EngineArgs,
    #[arg(long, value_enum, default_value = "txt")]
    pub format: FormatArg,
    /// Output file (one input) or directory (several inputs); default stdout.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Print timings and the real-time factor on stderr.
    #[arg(long, short)]
    pub verbose: bool,
    /// Streams the GPU steps side by side: files, and long recordings cut
    /// at quiet points into segments of at most 50 s, run as parallel
    /// streams and are written in order. Default: 16 on a hardware GPU,
    /// else 1 (each file one stream, one after another: exactly the
    /// single-stream result); never more than the inputs' segments.
    #[arg(long)]
    pub parallel: Option<usize>,
}

/// Which model and where it runs (`transcribe` and `eval`).
#[derive(Debug, clap::Args)]
pub struct EngineArgs {
    /// A model directory, or a Hugging Face repo id.
    #[arg(long, default_value = crate::hub::DEFAULT_REPO)]
    pub model: String,
    /// LM weights file inside the model (default: the first of model-q4k.gguf,
    /// model-q80.gguf, model-q40.gguf, model.safetensors that exists).
    #[arg(long)]
    pub lm: Option<String>,
    /// Never download: use the local Hugging Face cache only.
    #[arg(long)]
    pub offline: bool,
    /// Where the LM runs: the GPU when an adapter exists (auto), or force one.
    #[arg(long, value_enum, default_value = "auto")]
    pub backend: Backend,
    /// Where Mimi (audio → codes) runs: auto puts it beside a GPU LM on a
    /// hardware adapter (on a software one, lavapipe, the CPU is faster),
    /// else on the CPU; or force one.
    #[arg(long, value_enum, default_value = "auto")]
    pub mimi: Backend,
    /// Sample the text at this temperature instead of taking the most
    /// likely token (0, the default: greedy, exactly moshi's choice).
    /// Kyutai suggests ~0.25 when greedy decoding stops transcribing.
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f32,
    /// Seed of the sampled draws (the same audio, seed and backend give the
    /// same words).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Frames Mimi encodes per call on files (benchmarks: bigger calls
    /// mean fewer waits and more GPU memory per encoder; codes equal up to
    /// f32 rounding).
    #[arg(long, hide = true, default_value_t = FILE_MIMI_CHUNK_FRAMES as u16,
          value_parser = clap::value_parser!(u16).range(1..=750))]
    pub mimi_chunk_frames: u16,
    #[command(flatten)]
    pub gpu: crate::gpu_args::GpuArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    Auto,
    Gpu,
    Cpu,
}

/// Extensions picked up when a directory is given.
/// (No Opus: symphonia 0.5 has no Opus decoder.)
const AUDIO_EXTENSIONS: [&str; 14] = [
    "wav", "mp3", "flac", "ogg", "oga", "opus", "m4a", "aac", "mp4", "mov", "webm", "mkv", "mka",
    "weba",
];

fn expand_inputs(inputs: &[String]) -> Result<Vec<String>> {
    let mut out = vec![];
    for i in inputs {
        let p = Path::new(i);
        if i != "-" && p.is_dir() {
            let mut files: Vec<String> = std::fs::read_dir(p)
                .with_context(|| format!("reading directory {i}"))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                        AUDIO_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str())
                    })
                })
                .map(|p| p.display().to_string())
                .collect();
            files.sort();
            if files.is_empty() {
                bail!("{i}: no audio files in this directory");
            }
            out.extend(files);
        } else {
            out.push(i.clone());
        }
    }
    Ok(out)
}

pub(crate) fn open_input(input: &str) -> Result<AudioStream> {
    if input == "-" {
        let mut bytes = vec![];
        std::io::stdin()
            .read_to_end(&mut bytes)
            .context("reading standard input")?;
        return Ok(AudioStream::from_bytes(bytes, None)?);
    }
    Ok(AudioStream::from_path(Path::new(input))?)
}

/// Timings of one transcription, for `--verbose`.
pub(crate) struct Stats {
    pub audio_s: f64,
    pub wall_s: f64,
}

/// One file (or `-`) through a session from a fresh stream.
pub(crate) fn transcribe_one<S: LmStepper, M: MimiBackend>(
    session: &mut Session<S, M>,
    input: &str,
) -> Result<(Transcript, Stats)> {
    let started = Instant::now();
    let mut stream = open_input(input)?;
    block_on(session.reset())?;
    let mut transcript = Transcript::new();
    let bar = indicatif::ProgressBar::new(
        stream
            .duration_seconds()
            .map(|d| d.ceil() as u64)
            .unwrap_or(0),
    );
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {msg:40!} [{bar:30}] {pos}/{len} s")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_message(input.to_string());
    let mut truncated = None;
    loop {
        match stream.next_chunk() {
            Ok(Some(chunk)) => {
                for e in block_on(session.push_pcm(&chunk))? {
                    transcript.push(&e);
                }
                bar.set_position(session.audio_seconds() as u64);
            }
            Ok(None) => break,
            // Keep what was decoded; report the damage after the transcript.
            Err(e @ stt_model::audio::AudioError::Truncated { .. }) => {
                truncated = Some(e);
            }
            Err(e) => return Err(e.into()),
        }
    }
    let audio_s = session.audio_seconds();
    if audio_s == 0.0 {
        bail!("no audio samples");
    }
    for e in block_on(session.flush())? {
        transcript.push(&e);
    }
    bar.finish_and_clear();
    if let Some(e) = truncated {
        eprintln!("warning: {input}: {e}; transcribed what could be decoded");
    }
    Ok((
        transcript,
        Stats {
            audio_s,
            wall_s: started.elapsed().as_secs_f64(),
        },
    ))
}

/// What runs once the model is loaded, for whichever session type the
/// engine choice gave (GPU or CPU LM, GPU or CPU Mimi).
pub(crate) trait WithSession {
    type Output;
    /// `engine`: where the LM and Mimi run, in words.
    fn run<S: LmStepper, M: MimiBackend>(
        self,
        session: &mut Session<S, M>,
        model: &Model,
        engine: &str,
    ) -> Result<Self::Output>;
}

/// A model loaded as `EngineArgs` say, before an engine is chosen.
pub(crate) struct Loaded {
    pub model: Model,
    pub dir: PathBuf,
    pub sampling: stt_model::Sampling,
    started: Instant,
}

impl Loaded {
    pub(crate) fn context(&self) -> String {
        format!("loading the model from {}", self.dir.display())
    }

    pub(crate) fn report(&self, verbose: bool, engine: &str) {
        if verbose {
            eprintln!(
                "model loaded from {} in {:.2} s; {engine}",
                self.dir.display(),
                self.started.elapsed().as_secs_f64()
            );
            if !self.model.lm.has_end_of_turn_heads() {
                eprintln!("note: this checkpoint has no end-of-turn heads: no end-of-turn marks");
            }
        }
    }
}

/// Resolves and loads the model `args` name (no engine yet).
pub(crate) fn load(args: &EngineArgs) -> Result<Loaded> {
    let sampling = stt_model::Sampling::new(args.temperature, args.seed)?;
    let started = Instant::now();
    let dir = crate::hub::resolve(&args.model, args.lm.as_deref(), args.offline)?;
    let model = Model::from_dir(&dir, args.lm.as_deref())
        .with_context(|| format!("loading the model from {}", dir.display()))?;
    if model.tokenizer.is_none() {
        eprintln!(
            "warning: no tokenizer in {}; words are shown as token ids",
            dir.display()
        );
    }
    if args.backend == Backend::Cpu && args.gpu.quantize.is_some() {
        bail!(
            "--quantize applies to the GPU engine; for the CPU, write a GGUF with \
             `stt-cli quantize` and pass it with --lm"
        );
    }
    Ok(Loaded {
        model,
        dir,
        sampling,
        started,
    })
}

/// The GPU engine where `args` allow one, with as many streams as
/// `streams` gives for the adapter found; None for the CPU (asked for, or
/// auto without a usable GPU: a note says why).
pub(crate) fn gpu_engine(
    loaded: &Loaded,
    args: &EngineArgs,
    streams: impl FnOnce(&stt_wgpu::device::Capabilities) -> usize,
) -> Result<Option<stt_wgpu::GpuStepper>> {
    if args.backend == Backend::Cpu {
        return Ok(None);
    }
    let mut opts = args.gpu.options();
    let built = block_on(stt_wgpu::device::Gpu::new(
        opts.force_fallback_adapter,
        opts.features,
    ))
    .and_then(|gpu| {
        opts.streams = streams(&gpu.caps).max(1);
        stt_wgpu::GpuStepper::with_gpu(gpu, loaded.model.lm.clone(), &loaded.model.config, opts)
    });
    match built {
        Ok(gpu) => Ok(Some(gpu)),
        Err(e) if args.backend == Backend::Auto => {
            eprintln!("note: the LM runs on the CPU: no usable GPU ({e})");
            if let Some(q) = &args.gpu.quantize {
                eprintln!("note: --quantize {q} is ignored on the CPU");
            }
            Ok(None)
        }
        Err(e) => Err(anyhow::Error::new(e)).with_context(|| loaded.context()),
    }
}

/// Loads the model `args` name and opens a session where they say (the
/// GPU if auto finds one), then hands it to `task`.
pub(crate) fn with_session<T: WithSession>(
    args: &EngineArgs,
    verbose: bool,
    task: T,
) -> Result<T::Output> {
    let loaded = load(args)?;
    let gpu = gpu_engine(&loaded, args, |_| 1)?;
    session_on(loaded, gpu, args, verbose, task)
}

/// A one-stream session on `gpu` (or the CPU when None) for `task`.
fn session_on<T: WithSession>(
    loaded: Loaded,
    gpu: Option<stt_wgpu::GpuStepper>,
    args: &EngineArgs,
    verbose: bool,
    task: T,
) -> Result<T::Output> {
    let model = &loaded.model;
    if let Some(gpu) = gpu {
        let name = gpu.capabilities().adapter.clone();
        let mimi = mimi_for_gpu_lm(model, gpu.gpu(), args).with_context(|| loaded.context())?;
        let engine = format!("LM on the GPU ({name}), Mimi on the {}", mimi.device_name());
        let mut session = Session::new(&model.config, mimi, gpu, model.tokenizer.clone());
        session.stepper_mut().set_sampling(loaded.sampling);
        session.set_mimi_chunk_frames(args.mimi_chunk_frames.into());
        loaded.report(verbose, &engine);
        return task.run(&mut session, model, &engine);
    }
    if args.mimi == Backend::Gpu {
        bail!("--mimi gpu runs Mimi on the LM's GPU: it needs the LM on the GPU too");
    }
    let mut session = model.cpu_session().with_context(|| loaded.context())?;
    session.stepper_mut().set_sampling(loaded.sampling);
    session.set_mimi_chunk_frames(args.mimi_chunk_frames.into());
    let engine = "LM on the CPU, Mimi on the CPU";
    loaded.report(verbose, engine);
    task.run(&mut session, model, engine)
}

/// Streams a GPU steps at once for files when `--parallel` is not given:
/// on a hardware adapter, where batching pays (bench/README.md); on a
/// software one (lavapipe), the CPU is the limit and one stream is as fast.
pub const DEFAULT_PARALLEL_STREAMS: usize = 16;

/// How many segments `--parallel` would cut the inputs into, from the
/// durations their containers announce (stdin and files that announce
/// none count as many as there could be streams).
fn estimated_segments(inputs: &[String], plan: &SegmentPlan) -> usize {
    inputs
        .iter()
        .map(|input| {
            let duration = (input != "-")
                .then(|| AudioStream::from_path(Path::new(input)).ok())
                .flatten()
                .and_then(|s| s.duration_seconds());
            duration.map_or(stt_wgpu::engine::MAX_STREAMS, |d| plan.estimate(d))
        })
        .fold(0usize, usize::saturating_add)
        .max(1)
}

pub fn run(args: TranscribeArgs) -> Result<bool> {
    let inputs = expand_inputs(&args.inputs)?;
    if args.parallel == Some(0) {
        bail!("--parallel 0: at least one stream");
    }
    let loaded = load(&args.engine)?;
    // No more streams than segments: one short file stays one stream (the
    // single-stream result, no extra memory).
    let segments = estimated_segments(&inputs, &SegmentPlan::for_model(&loaded.model.config));
    let gpu = gpu_engine(&loaded, &args.engine, |caps| {
        let wanted = args.parallel.unwrap_or(if caps.software {
            1
        } else {
            DEFAULT_PARALLEL_STREAMS
        });
        wanted.min(segments)
    })?;
    let gpu = match gpu {
        Some(g) if g.streams() > 1 => return crate::parallel::run(loaded, g, &inputs, &args),
        other => other,
    };
    struct Files<'a> {
        inputs: &'a [String],
        args: &'a TranscribeArgs,
    }
    impl WithSession for Files<'_> {
        type Output = bool;
        fn run<S: LmStepper, M: MimiBackend>(
            self,
            session: &mut Session<S, M>,
            _: &Model,
            _: &str,
        ) -> Result<bool> {
            run_inputs(session, self.inputs, self.args)
        }
    }
    let task = Files {
        inputs: &inputs,
        args: &args,
    };
    session_on(loaded, gpu, &args.engine, args.verbose, task)
}

/// Mimi beside a GPU LM: on the same device unless asked otherwise, the
/// adapter is a software renderer (auto: the CPU is faster there) or the
/// encoder cannot be built there (auto falls back to the CPU with a note).
pub(crate) fn mimi_for_gpu_lm(
    model: &Model,
    gpu: &stt_wgpu::device::Gpu,
    args: &EngineArgs,
) -> Result<AnyMimi> {
    let want = args.mimi;
    if want == Backend::Cpu || (want == Backend::Auto && gpu.caps.software) {
        return cpu_mimi(model);
    }
    let frames = args.mimi_chunk_frames.into();
    match GpuMimiEncoder::new(gpu.clone(), &model.mimi, &model.config, frames) {
        Ok(m) => Ok(AnyMimi::Gpu(Box::new(m))),
        Err(e) if want == Backend::Auto => {
            eprintln!("note: Mimi runs on the CPU: {e}");
            cpu_mimi(model)
        }
        Err(e) => Err(e.into()),
    }
}

/// Moshi's Mimi encoder on the CPU.
pub(crate) fn cpu_mimi(model: &Model) -> Result<AnyMimi> {
    Ok(AnyMimi::Cpu(Box::new(
        model.mimi_encoder(&candle_core::Device::Cpu)?,
    )))
}

fn run_inputs<S: LmStepper, M: MimiBackend>(
    session: &mut Session<S, M>,
    inputs: &[String],
    args: &TranscribeArgs,
) -> Result<bool> {
    let mut out = Output::new(args, inputs.len())?;
    for input in inputs {
        let input = input.as_str();
        match transcribe_one(session, input) {
            Ok((transcript, stats)) => {
                if !out.write(input, &transcript, &stats)? {
                    break;
                }
            }
            Err(e) => out.failed(input, &e),
        }
    }
    Ok(out.finish())
}

/// Where transcripts go: a file, one file per input in a directory, or
/// stdout (with a `# input` line before each when there are several).
pub(crate) struct Output<'a> {
    args: &'a TranscribeArgs,
    inputs: usize,
    all_ok: bool,
}

impl<'a> Output<'a> {
    pub(crate) fn new(args: &'a TranscribeArgs, inputs: usize) -> Result<Self> {
        if let (Some(out), true) = (&args.output, inputs > 1) {
            std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
        }
        Ok(Self {
            args,
            inputs,
            all_ok: true,
        })
    }

    pub(crate) fn failed(&mut self, input: &str, e: &anyhow::Error) {
        eprintln!("error: {input}: {e:#}");
        self.all_ok = false;
    }

    /// Writes one input's transcript; false when stdout was closed (`| head`,
    /// not an error: stop quietly).
    pub(crate) fn write(
        &mut self,
        input: &str,
        transcript: &Transcript,
        stats: &Stats,
    ) -> Result<bool> {
        let several = self.inputs > 1;
        let format = Format::from(self.args.format);
        let text = export::render(transcript, format, input);
        match (&self.args.output, several) {
            (Some(out), false) => {
                std::fs::write(out, &text).with_context(|| format!("writing {}", out.display()))?
            }
            (Some(out), true) => {
                let stem = Path::new(input)
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or("stdin");
                let p = out.join(format!("{stem}.{}", format.extension()));
                std::fs::write(&p, &text).with_context(|| format!("writing {}", p.display()))?;
            }
            (None, _) => {
                let stdout = std::io::stdout();
                let mut lock = stdout.lock();
                if several && format == Format::Txt {
                    writeln!(lock, "# {input}")?;
                }
                if let Err(e) = lock.write_all(text.as_bytes()).and_then(|_| lock.flush()) {
                    if e.kind() == std::io::ErrorKind::BrokenPipe {
                        return Ok(false);
                    }
                    return Err(e.into());
                }
            }
        }
        if self.args.verbose {
            eprintln!(
                "{input}: {:.2} s of audio in {:.2} s: real-time factor {:.3} ({} words)",
                stats.audio_s,
                stats.wall_s,
                stats.wall_s / stats.audio_s,
                transcript.words.len()
            );
        }
        Ok(true)
    }

    /// Whether every input was transcribed.
    pub(crate) fn finish(self) -> bool {
        if std::io::stderr().is_terminal() && self.inputs > 1 {
            eprintln!("{} file(s) transcribed", self.inputs);
        }
        self.all_ok
    }
}
