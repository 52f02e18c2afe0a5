//! `stt-cli transcribe` on a batched GPU engine: every input is decoded,
//! cut into segments at quiet points (`stt_model::segment`; a file under
//! 50 s is one segment), and the segments of all inputs run as parallel
//! streams, one per lane of the engine (`stt_wgpu::engine::lanes`), each
//! with its own Mimi encoder. A free lane takes the next segment; each
//! segment is a fresh stream, so its words are exactly those of the
//! segment transcribed alone. Words are moved by their segment's start
//! and written per input, in input order.
//!
//! Memory: an input's samples are held (24 kHz f32, 5.8 MB a minute)
//! while its segments run; inputs are opened only as lanes free up.

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use stt_model::audio::AudioError;
use stt_model::config::{FRAME_SAMPLES, SAMPLE_RATE_HZ};
use stt_model::segment::SegmentPlan;
use stt_model::{block_on, LmStepper, Session, Transcript};
use stt_wgpu::engine::lanes::{lanes, Lane};
use stt_wgpu::mimi::AnyMimi;
use stt_wgpu::GpuStepper;

use crate::transcribe::{mimi_for_gpu_lm, open_input, Loaded, Output, Stats, TranscribeArgs};

/// Where an input stands.
enum InputState {
    /// Not opened yet.
    Waiting,
    /// Could not be decoded (reported).
    Failed,
    /// Decoded; its segments run or wait.
    Open(Box<OpenInput>),
    /// Written.
    Done,
}

/// A decoded input: its samples, segments, their transcripts as they
/// finish, when it was opened, and a decoding error after some audio (a
/// truncated file), reported with the transcript of what was decoded.
struct OpenInput {
    pcm: Arc<Vec<f32>>,
    segments: Vec<Range<usize>>,
    parts: Vec<Option<Transcript>>,
    opened: Instant,
    /// Seconds from opening to the last segment's end.
    wall_s: f64,
    warning: Option<AudioError>,
}

/// A segment on a lane and how far its samples have been pushed.
struct Running {
    input: usize,
    part: usize,
    pcm: Arc<Vec<f32>>,
    range: Range<usize>,
    pushed: usize,
    transcript: Transcript,
}

/// Decodes a whole input to 24 kHz mono.
fn decode(input: &str) -> Result<(Vec<f32>, Option<AudioError>)> {
    let mut stream = open_input(input)?;
    stream.set_resample_block(stt_model::audio::WHOLE_FILE_RESAMPLE_BLOCK);
    let mut pcm = vec![];
    loop {
        match stream.next_chunk() {
            Ok(Some(chunk)) => pcm.extend_from_slice(&chunk),
            Ok(None) => return Ok((pcm, None)),
            Err(e @ AudioError::Truncated { .. }) => return Ok((pcm, Some(e))),
            Err(e) => return Err(e.into()),
        }
    }
}

/// The inputs' states, the segments waiting for a lane, and the writer
/// (inputs are written in order as their last segment finishes).
struct Schedule<'a> {
    inputs: &'a [String],
    states: Vec<InputState>,
    queue: VecDeque<(usize, usize)>,
    next_input: usize,
    next_output: usize,
    out: Output<'a>,
    /// stdout was closed: stop.
    closed: bool,
    /// Seconds of audio decoded so far.
    audio_s: f64,
    /// Where the model's inputs are cut.
    plan: SegmentPlan,
}

impl<'a> Schedule<'a> {
    /// The next segment to run, opening inputs as needed; None when all
    /// are taken.
    fn next_segment(&mut self) -> Option<Running> {
        while self.queue.is_empty() && self.next_input < self.inputs.len() {
            let i = self.next_input;
            self.next_input += 1;
            self.states[i] = match decode(&self.inputs[i]) {
                Ok((pcm, _)) if pcm.is_empty() => {
                    self.out
                        .failed(&self.inputs[i], &anyhow::anyhow!("no audio samples"));
                    InputState::Failed
                }
                Ok((pcm, warning)) => {
                    self.audio_s += pcm.len() as f64 / SAMPLE_RATE_HZ as f64;
                    let segs = self.plan.cut(&pcm);
                    self.queue.extend((0..segs.len()).map(|p| (i, p)));
                    InputState::Open(Box::new(OpenInput {
                        pcm: Arc::new(pcm),
                        parts: vec![None; segs.len()],
                        segments: segs,
                        opened: Instant::now(),
                        wall_s: 0.0,
                        warning,
                    }))
                }
                Err(e) => {
                    self.out.failed(&self.inputs[i], &e);
                    InputState::Failed
                }
            };
        }
        let (input, part) = self.queue.pop_front()?;
        let InputState::Open(open) = &self.states[input] else {
            return None;
        };
        Some(Running {
            input,
            part,
            pcm: open.pcm.clone(),
            range: open.segments[part].clone(),
            pushed: 0,
            transcript: Transcript::new(),
        })
    }

    /// Keeps a finished segment's words and writes every input, in order,
    /// whose segments are all done.
    fn finish(&mut self, run: Running) -> Result<()> {
        if let InputState::Open(open) = &mut self.states[run.input] {
            open.parts[run.part] = Some(run.transcript);
            open.wall_s = open.opened.elapsed().as_secs_f64();
        }
        while self.next_output < self.next_input && !self.closed {
            let i = self.next_output;
            match &self.states[i] {
                InputState::Failed | InputState::Done => {}
                InputState::Open(open) if open.parts.iter().all(Option::is_some) => {
                    let mut whole = Transcript::default();
                    for (part, range) in open.parts.iter().flatten().zip(&open.segments) {
                        whole.append_shifted(part, range.start as f64 / SAMPLE_RATE_HZ as f64);
                    }
                    let stats = Stats {
                        audio_s: open.pcm.len() as f64 / SAMPLE_RATE_HZ as f64,
                        wall_s: open.wall_s,
                    };
                    if let Some(e) = &open.warning {
                        eprintln!(
                            "warning: {}: {e}; transcribed what could be decoded",
                            self.inputs[i]
                        );
                    }
                    self.closed = !self.out.write(&self.inputs[i], &whole, &stats)?;
                    self.states[i] = InputState::Done;
                }
                InputState::Open(_) | InputState::Waiting => return Ok(()),
            }
            self.next_output += 1;
        }
        Ok(())
    }
}

pub(crate) fn run(
    loaded: Loaded,
    gpu: GpuStepper,
    inputs: &[String],
    args: &TranscribeArgs,
) -> Result<bool> {
    let model = &loaded.model;
    let streams = gpu.streams();
    let adapter = gpu.capabilities().adapter.clone();
    let device = gpu.gpu().clone();
    // One Mimi encoder per lane, built on all cores at once (each converts
    // and uploads its own weights: 0.5 s apiece on the H200 machine).
    let mimis: Vec<Result<AnyMimi>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..streams)
            .map(|_| scope.spawn(|| mimi_for_gpu_lm(model, &device, &args.engine)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("building Mimi panicked")))
            })
            .collect()
    });
    let chunk_frames = usize::from(args.engine.mimi_chunk_frames);
    // Steps a lane may queue before its session waits: two Mimi chunks, so
    // every lane can queue one while the batches run.
    let lane_depth = 2 * chunk_frames;
    let mut sessions: Vec<Session<Lane, AnyMimi>> = vec![];
    for (mut lane, mimi) in lanes(gpu, lane_depth).into_iter().zip(mimis) {
        lane.set_sampling(loaded.sampling);
        let mimi = mimi.with_context(|| format!("loading Mimi from {}", loaded.dir.display()))?;
        let mut session = Session::new(&model.config, mimi, lane, model.tokenizer.clone());
        session.set_mimi_chunk_frames(chunk_frames);
        sessions.push(session);
    }
    // Each lane's encoder was built and checked on its own thread (the
    // device reports errors per thread), so lanes may differ when auto
    // fell back for some of them, e.g. short of GPU memory.
    let on_gpu = sessions
        .iter()
        .filter(|s| s.mimi().device_name() == "gpu")
        .count();
    let mimi_on = match on_gpu {
        0 => "on the cpu".to_string(),
        n if n == sessions.len() => "on the gpu".to_string(),
        n => format!(
            "on the gpu for {n} lanes, on the cpu for {}",
            sessions.len() - n
        ),
    };
    loaded.report(
        args.verbose,
        &format!("LM on the GPU ({adapter}), {streams} parallel streams, Mimi {mimi_on}"),
    );
    let mut schedule = Schedule {
        inputs,
        states: (0..inputs.len()).map(|_| InputState::Waiting).collect(),
        queue: VecDeque::new(),
        next_input: 0,
        next_output: 0,
        out: Output::new(args, inputs.len())?,
        closed: false,
        audio_s: 0.0,
        plan: SegmentPlan::for_model(&loaded.model.config),
    };
    let started = Instant::now();
    let chunk = chunk_frames * FRAME_SAMPLES;
    let mut running: Vec<Option<Running>> = (0..streams).map(|_| None).collect();
    while !schedule.closed {
        let mut busy = false;
        for (session, slot) in sessions.iter_mut().zip(running.iter_mut()) {
            if slot.is_none() {
                *slot = schedule.next_segment();
                if slot.is_some() {
                    block_on(session.reset())?;
                }
            }
            let Some(run) = slot.as_mut() else {
                continue;
            };
            busy = true;
            let samples = &run.pcm[run.range.clone()];
            let end = (run.pushed + chunk).min(samples.len());
            for e in block_on(session.push_pcm(&samples[run.pushed..end]))? {
                run.transcript.push(&e);
            }
            run.pushed = end;
            if run.pushed == samples.len() {
                let mut run = slot.take().expect("a segment runs on this lane");
                for e in block_on(session.flush())? {
                    run.transcript.push(&e);
                }
                schedule.finish(run)?;
            }
        }
        if !busy {
            break;
        }
    }
    if args.verbose {
        let audio_s: f64 = schedule.audio_s;
        let wall_s = started.elapsed().as_secs_f64();
        eprintln!(
            "all inputs: {audio_s:.2} s of audio in {wall_s:.2} s: real-time factor {:.4} ({:.0}x)",
            wall_s / audio_s,
            audio_s / wall_s
        );
    }
    Ok(schedule.out.finish())
}
