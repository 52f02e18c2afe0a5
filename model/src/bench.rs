//! Timing loops shared by `stt-cli bench` and the browser benchmark page
//! (`bench/browser/`), so both measure the same thing. The clock is passed
//! in: `std::time::Instant` does not exist on wasm32.

use crate::config::FRAME_SAMPLES;
use crate::error::Result;
use crate::mimi::MimiBackend;
use crate::stepper::{LmStepper, TextInput};

/// The `p` quantile (0..=1) of ascending `sorted`; NaN when empty.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Per-step wall times (ms, ascending) of `steps` steps after `warmup`
/// untimed ones, driven as a session drives them (results received once
/// more than `max_in_flight` are queued). Audio codes are a fixed pattern
/// below `pad`.
pub async fn lm_step_times<S: LmStepper>(
    st: &mut S,
    n_q: usize,
    pad: u32,
    warmup: usize,
    steps: usize,
    now_ms: impl Fn() -> f64,
) -> Result<Vec<f64>> {
    let codes: Vec<u32> = (0..n_q as u32).map(|c| (c * 37) % pad).collect();
    let mut times = Vec::with_capacity(steps);
    let mut last = now_ms();
    for i in 0..warmup + steps {
        let text = if i == 0 {
            TextInput::Start
        } else {
            TextInput::Previous
        };
        st.submit(text, &codes)?;
        while st.in_flight() > st.max_in_flight() {
            st.receive().await?;
            let now = now_ms();
            if i >= warmup {
                times.push(now - last);
            }
            last = now;
        }
    }
    while st.in_flight() > 0 {
        st.receive().await?;
    }
    times.sort_by(|a, b| a.total_cmp(b));
    Ok(times)
}

/// Wall time per frame (ms, ascending) of Mimi's streaming encoder (CPU or
/// GPU) over the first `frames` whole frames of 24 kHz `pcm`, `chunk_frames`
/// frames per call (1: frame by frame, as a microphone; more: as files run).
pub async fn mimi_frame_times<M: MimiBackend>(
    mimi: &mut M,
    pcm: &[f32],
    frames: usize,
    chunk_frames: usize,
    now_ms: impl Fn() -> f64,
) -> Result<Vec<f64>> {
    let whole = &pcm[..(pcm.len() / FRAME_SAMPLES).min(frames) * FRAME_SAMPLES];
    let mut times = Vec::with_capacity(frames);
    for chunk in whole.chunks(chunk_frames.max(1) * FRAME_SAMPLES) {
        let start = now_ms();
        mimi.encode(chunk).await?;
        let n = chunk.len() / FRAME_SAMPLES;
        times.extend(std::iter::repeat_n((now_ms() - start) / n as f64, n));
    }
    times.sort_by(|a, b| a.total_cmp(b));
    Ok(times)
}
