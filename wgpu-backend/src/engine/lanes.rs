//! One `LmStepper` per stream over one batched [`GpuStepper`]: each
//! [`Lane`] queues its stream's steps; when one needs a result, the next
//! batch takes the oldest queued step of every lane that has one, so
//! sessions driven one after another (each pushing a chunk of audio) step
//! together. A lane's tokens are its stream's alone (the engine's streams
//! do not mix), so a `Session` over a lane gives a lone session's words.
//!
//! The lanes share the engine through `Rc<RefCell<_>>`: they are driven
//! from one task (the borrow is never held across an await).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use stt_model::stepper::{LmStepper, Sampling, StepOutput, TextInput};

use super::{GpuStepper, StreamStep};
use crate::error::{GpuError, Result};

/// Batches kept in flight while the host prepares the next (the GPU never
/// waits for the host between two batches).
const BATCHES_IN_FLIGHT: usize = 2;

struct Shared {
    engine: GpuStepper,
    /// Per stream: steps queued and not yet submitted.
    queued: Vec<VecDeque<(TextInput, Vec<u32>)>>,
    /// Per stream: steps submitted whose results have not come back.
    submitted: Vec<usize>,
    /// Per stream: of those, how many belong to a stream since reset (their
    /// results are dropped).
    discard: Vec<usize>,
    /// Per stream: results not yet received.
    ready: Vec<VecDeque<StepOutput>>,
}

impl Shared {
    /// Submits batches of every lane's oldest queued step while there are
    /// some, up to [`BATCHES_IN_FLIGHT`].
    fn fill(&mut self) -> Result<()> {
        while self.engine.batches_in_flight() < BATCHES_IN_FLIGHT {
            let fronts: Vec<(usize, TextInput, Vec<u32>)> = (self.queued.iter_mut())
                .enumerate()
                .filter_map(|(s, q)| q.pop_front().map(|(t, c)| (s, t, c)))
                .collect();
            if fronts.is_empty() {
                return Ok(());
            }
            let steps: Vec<StreamStep> = (fronts.iter())
                .map(|(stream, text, codes)| StreamStep {
                    stream: *stream,
                    text: *text,
                    audio_codes: codes,
                })
                .collect();
            self.engine.submit_batch(&steps)?;
            for (stream, _, _) in &fronts {
                self.submitted[*stream] += 1;
            }
        }
        Ok(())
    }
}

/// Waits for the oldest batch (submitting what is queued first) and hands
/// its results to their lanes.
async fn advance(shared: &RefCell<Shared>) -> Result<()> {
    let (pending, gpu) = {
        let mut s = shared.borrow_mut();
        s.fill()?;
        (s.engine.take_pending(), s.engine.gpu().clone())
    };
    let pending =
        pending.ok_or_else(|| GpuError::InvalidInput("receive with no step in flight".into()))?;
    let (outputs, staging) = pending.wait(&gpu).await?;
    let mut s = shared.borrow_mut();
    s.engine.return_staging(staging);
    for (stream, out) in outputs {
        s.submitted[stream] -= 1;
        if s.discard[stream] > 0 {
            s.discard[stream] -= 1;
        } else {
            s.ready[stream].push_back(out);
        }
    }
    Ok(())
}

/// One stream of a batched engine, as an `LmStepper`.
pub struct Lane {
    shared: Rc<RefCell<Shared>>,
    stream: usize,
    max_in_flight: usize,
    /// A step was queued since the start or the last reset.
    started: bool,
}

/// The engine's streams as lanes, in stream order. Each lane lets its
/// session queue up to `max_in_flight` steps before it waits for one (a
/// file's Mimi chunk is 25 frames: a depth of twice that lets every lane
/// queue a chunk before any batch has to wait).
pub fn lanes(engine: GpuStepper, max_in_flight: usize) -> Vec<Lane> {
    let n = engine.streams();
    let shared = Rc::new(RefCell::new(Shared {
        engine,
        queued: vec![VecDeque::new(); n],
        submitted: vec![0; n],
        discard: vec![0; n],
        ready: vec![VecDeque::new(); n],
    }));
    (0..n)
        .map(|stream| Lane {
            shared: shared.clone(),
            stream,
            max_in_flight,
            started: false,
        })
        .collect()
}

impl LmStepper for Lane {
    fn submit(&mut self, text: TextInput, audio_codes: &[u32]) -> stt_model::Result<()> {
        let mut s = self.shared.borrow_mut();
        s.engine.check_step(text, audio_codes)?;
        if text == TextInput::Previous && !self.started {
            return Err(GpuError::InvalidInput(format!(
                "TextInput::Previous on stream {}'s first step",
                self.stream
            ))
            .into());
        }
        self.started = true;
        s.queued[self.stream].push_back((text, audio_codes.to_vec()));
        Ok(())
    }

    async fn receive(&mut self) -> stt_model::Result<StepOutput> {
        loop {
            if let Some(out) = self.shared.borrow_mut().ready[self.stream].pop_front() {
                return Ok(out);
            }
            if self.in_flight() == 0 {
                return Err(GpuError::InvalidInput("receive with no step in flight".into()).into());
            }
            advance(&self.shared).await?;
        }
    }

    fn in_flight(&self) -> usize {
        let s = self.shared.borrow();
        let i = self.stream;
        s.queued[i].len() + s.submitted[i] - s.discard[i] + s.ready[i].len()
    }

    fn max_in_flight(&self) -> usize {
        self.max_in_flight
    }

    /// Drops the stream's queued steps and results (those still on the
    /// GPU are dropped as they come back) and starts it afresh; the other
    /// lanes are not disturbed.
    async fn reset(&mut self) -> stt_model::Result<()> {
        let mut s = self.shared.borrow_mut();
        let i = self.stream;
        s.queued[i].clear();
        s.ready[i].clear();
        s.discard[i] = s.submitted[i];
        s.engine.reset_stream(i)?;
        self.started = false;
        Ok(())
    }

    fn has_end_of_turn(&self) -> bool {
        self.shared.borrow().engine.has_end_of_turn()
    }

    fn keep_logits(&mut self, keep: bool) {
        // `stream` is one of the engine's: this cannot fail.
        let _ = (self.shared.borrow_mut().engine).keep_stream_logits(self.stream, keep);
    }

    /// Applies to this lane's steps submitted from now on (queued ones
    /// included).
    fn set_sampling(&mut self, sampling: Sampling) {
        let _ = (self.shared.borrow_mut().engine).set_stream_sampling(self.stream, sampling);
    }
}
