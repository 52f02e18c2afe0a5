//! Cutting a long recording into segments at quiet points, so that its
//! parts can run as independent streams side by side (a batched GPU engine
//! steps them together) and their words be put back in order.
//!
//! A cut is placed in the quietest 80 ms frame (least energy, Σ x²; the
//! earliest among equals) within `window` of `target` after the previous
//! cut, at that frame's middle: speech rarely pauses on a fixed grid but
//! nearly always within a few seconds, so no word is cut in two unless
//! the window holds no pause at all. Segments stay below the model's
//! 60 s context with the flush silence added (`FILE_SEGMENT_*`), so a
//! segment's stream never wraps its KV cache.

use std::ops::Range;

use crate::config::{FRAME_SAMPLES, SAMPLE_RATE_HZ};

/// Where a file's cuts aim: 45 s apart, moved to the quietest frame within
/// ±5 s. The longest segment (50 s) plus the session's prefix and flush
/// stays within the 60 s context.
pub const FILE_SEGMENT_TARGET_S: f64 = 45.0;
pub const FILE_SEGMENT_WINDOW_S: f64 = 5.0;

/// Segment sample ranges of `pcm` (24 kHz), covering it in order without
/// gaps or overlaps: one range when `pcm` is at most `target + window`
/// long; otherwise cuts as the module says. `target` > `window` ≥ 0 (s).
pub fn segments(pcm: &[f32], target_s: f64, window_s: f64) -> Vec<Range<usize>> {
    let frames = |s: f64| (s * SAMPLE_RATE_HZ as f64 / FRAME_SAMPLES as f64).round() as usize;
    let (target, window) = (
        frames(target_s).max(1),
        frames(window_s).min(frames(target_s) - 1),
    );
    let n_frames = pcm.len() / FRAME_SAMPLES;
    let energy = |f: usize| -> f64 {
        let frame = &pcm[f * FRAME_SAMPLES..(f + 1) * FRAME_SAMPLES];
        frame.iter().map(|&x| (x as f64) * (x as f64)).sum()
    };
    let mut out = vec![];
    let (mut start, mut start_frame) = (0usize, 0usize);
    while n_frames.saturating_sub(start_frame) > target + window {
        let nominal = start_frame + target;
        let quietest = (nominal - window..=nominal + window)
            .min_by(|&a, &b| energy(a).total_cmp(&energy(b)))
            .unwrap_or(nominal);
        let cut = quietest * FRAME_SAMPLES + FRAME_SAMPLES / 2;
        out.push(start..cut);
        start = cut;
        start_frame = quietest + 1;
    }
    out.push(start..pcm.len());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loud noise with quiet 80 ms frames at known places.
    fn signal(seconds: f64, quiet_frames: &[usize]) -> Vec<f32> {
        let n = (seconds * SAMPLE_RATE_HZ as f64) as usize;
        let mut s = 0x9e37_79b9_u32;
        let mut pcm: Vec<f32> = (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s as f32 / u32::MAX as f32) - 0.5
            })
            .collect();
        for &f in quiet_frames {
            for x in &mut pcm[f * FRAME_SAMPLES..(f + 1) * FRAME_SAMPLES] {
                *x *= 1e-3;
            }
        }
        pcm
    }

    #[test]
    fn short_audio_is_one_segment() {
        let pcm = signal(49.9, &[]);
        assert_eq!(segments(&pcm, 45.0, 5.0), vec![0..pcm.len()]);
        assert_eq!(segments(&[], 45.0, 5.0), vec![0..0]);
    }

    #[test]
    fn cuts_land_in_the_quietest_frame_of_each_window() {
        // Frames are 80 ms: 45 s = frame 562.5 → 563 (rounded), window 62.
        // Quiet frames at 530 (in the first window) and 530 + 1 + 563 + 40.
        let second = 531 + 563 + 40;
        let pcm = signal(130.0, &[530, second, 10, 700]);
        let segs = segments(&pcm, 45.0, 5.0);
        let cut = |f: usize| f * FRAME_SAMPLES + FRAME_SAMPLES / 2;
        assert_eq!(
            segs,
            vec![0..cut(530), cut(530)..cut(second), cut(second)..pcm.len()]
        );
        // Covering, in order, nothing twice.
        assert!(segs.windows(2).all(|w| w[0].end == w[1].start));
        for s in &segs {
            assert!(s.len() <= (50.0 * SAMPLE_RATE_HZ as f64) as usize + FRAME_SAMPLES);
        }
    }

    #[test]
    fn without_a_pause_the_cut_is_still_bounded() {
        // Silence everywhere: every frame ties, the earliest wins.
        let pcm = vec![0f32; 200 * SAMPLE_RATE_HZ as usize];
        let segs = segments(&pcm, 45.0, 5.0);
        assert!(segs.len() >= 4);
        assert_eq!(segs.last().map(|s| s.end), Some(pcm.len()));
        for s in &segs {
            let secs = s.len() as f64 / SAMPLE_RATE_HZ as f64;
            assert!(
                (39.9..=50.1).contains(&secs) || s.end == pcm.len(),
                "{secs}"
            );
        }
    }
}
