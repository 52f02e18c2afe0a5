//! A long silent session, alone in its test binary: the memory it checks
//! is the process's resident set, which any test running beside it (cargo
//! runs a binary's tests on parallel threads) would grow.

mod common;

use stt_model::{block_on, Event};

fn rss_bytes() -> u64 {
    stt_cli::soak::memory().0
}

/// Five minutes of digital silence, 25 frames per Mimi call as for files:
/// 3750 steps (the 750-step KV ring wraps five times, Mimi's 250-frame
/// window fifteen). No crash, memory flat, and this model says nothing
/// (moshi's loop on the same model and silence agrees: session.rs,
/// `silence_agrees_with_moshi`).
///
/// Flat is peak against peak: the most resident memory seen in the last
/// minute within 32 MiB of the most seen in the second (sampled every
/// second). The footprint between 25-frame Mimi calls moves by ~40 MB as
/// the allocator keeps or returns their buffers, so one sample against
/// another would measure that; a leak raises the peak minute by minute.
#[test]
fn five_minutes_of_silence() {
    const MAX_GROWTH_BYTES: u64 = 32 << 20;
    let m = common::tiny_float_model();
    let mut s = m.cpu_session().unwrap();
    s.set_mimi_chunk_frames(stt_model::session::FILE_MIMI_CHUNK_FRAMES);
    let second = vec![0f32; 24_000];
    let mut words = 0;
    let (mut peak_minute_2, mut peak_minute_5) = (0, 0);
    for i in 0..300 {
        for e in block_on(s.push_pcm(&second)).unwrap() {
            words += matches!(e, Event::Word { .. }) as usize;
        }
        let rss = rss_bytes();
        match i {
            60..120 => peak_minute_2 = peak_minute_2.max(rss),
            240.. => peak_minute_5 = peak_minute_5.max(rss),
            _ => {}
        }
    }
    for e in block_on(s.flush()).unwrap() {
        words += matches!(e, Event::Word { .. }) as usize;
    }
    let growth = peak_minute_5.saturating_sub(peak_minute_2);
    eprintln!(
        "5 min of silence: {} steps, {words} words, peak RSS minute 2: {} MiB, minute 5: {} MiB",
        s.steps_done(),
        peak_minute_2 >> 20,
        peak_minute_5 >> 20
    );
    assert!(peak_minute_2 > 0, "no memory reading");
    assert_eq!(s.steps_done(), 3750 + s.flush_frames());
    assert_eq!(words, 0);
    assert!(
        growth < MAX_GROWTH_BYTES,
        "peak memory grew by {growth} bytes"
    );
}
