//! Cutting a long recording into segments at quiet points, so that its
//! parts can run as independent streams side by side (a batched GPU engine
//! steps them together) and their words be put back in order.
//!
//! A cut is placed in the quietest 80 ms frame (least energy, Σ x²; the
//! earliest among equals) within `window` of `target` after the previous
//! cut, at that frame's middle: speech rarely pauses on a fixed grid but
//! nearly always within a few seconds, so no word is cut in two unless
//! the window holds no pause at all. Segments stay within the model's
//! context with the silence prefix and the flush added ([`SegmentPlan`]),
//! so a segment's stream never wraps its KV cache.

use std::ops::Range;

use crate::config::{Config, FRAME_RATE_HZ, FRAME_SAMPLES, SAMPLE_RATE_HZ};

/// Where a file's cuts aim: 45 s apart, moved to the quietest frame within
/// ±5 s, where the model's context allows (stt-1b-en_fr's 60 s does).
pub const FILE_SEGMENT_TARGET_S: f64 = 45.0;
pub const FILE_SEGMENT_WINDOW_S: f64 = 5.0;

/// A model's cut plan: segments of at most `target_s + window_s`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SegmentPlan {
    pub target_s: f64,
    pub window_s: f64,
}

impl SegmentPlan {
    /// 45 ± 5 s where that fits; otherwise the longest segment is what the
    /// context holds after the silence prefix, the flush (`delay + 1` s)
    /// and three frames (the partial last frame, a cut at a frame's middle,
    /// the window rounded to frames): stt-2.6b-en: 30 − 1 − 3.5 − 0.24 =
    /// 25.26 s, with the same ±5 s window (a quarter of it for tiny
    /// contexts).
    pub fn for_model(cfg: &Config) -> Self {
        let stt = &cfg.stt_config;
        let longest = cfg.context as f64 / FRAME_RATE_HZ
            - stt.audio_silence_prefix_seconds.max(0.0)
            - (stt.audio_delay_seconds + 1.0)
            - 3.0 / FRAME_RATE_HZ;
        if longest >= FILE_SEGMENT_TARGET_S + FILE_SEGMENT_WINDOW_S {
            return Self {
                target_s: FILE_SEGMENT_TARGET_S,
                window_s: FILE_SEGMENT_WINDOW_S,
            };
        }
        // At least 2 frames either way, so that `segments` always progresses.
        let longest = longest.max(4.0 / FRAME_RATE_HZ);
        let window_s = FILE_SEGMENT_WINDOW_S.min(longest / 4.0);
        Self {
            target_s: longest - window_s,
            window_s,
        }
    }

    /// Segments of `pcm` under this plan ([`segments`]).
    pub fn cut(&self, pcm: &[f32]) -> Vec<Range<usize>> {
        segments(pcm, self.target_s, self.window_s)
    }

    /// About how many segments `seconds` of audio make (before decoding:
    /// container durations).
    pub fn estimate(&self, seconds: f64) -> usize {
        if seconds <= self.target_s + self.window_s {
            1
        } else {
            (seconds / (self.target_s - self.window_s)).ceil() as usize
        }
    }
}

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
    fn plans_fit_the_context() {
        let one_b = SegmentPlan::for_model(&Config::stt_1b_en_fr());
        assert_eq!((one_b.target_s, one_b.window_s), (45.0, 5.0));
        let en = Config::stt_2b6_en();
        let plan = SegmentPlan::for_model(&en);
        assert_eq!(plan.window_s, 5.0);
        assert!(plan.target_s > 20.0, "{plan:?}");
        // Every segment of a long recording, as a session runs it: 1 s of
        // prefix, the samples, the last frame completed, 44 flush frames
        // (3.5 s): within the 375-step context. Silence puts every cut at
        // its window's start, quiet frames at its end (the longest).
        let frames = |s: f64| (s * FRAME_RATE_HZ).round() as usize;
        let reach = frames(plan.target_s) + frames(plan.window_s);
        let late_quiet: Vec<usize> = (0..7).map(|i| reach + i * (reach + 1)).collect();
        for pcm in [signal(200.0, &[]), signal(200.0, &late_quiet)] {
            let segs = plan.cut(&pcm);
            assert!(segs.len() > 6);
            for s in &segs[..segs.len() - 1] {
                let steps = (SAMPLE_RATE_HZ as usize + s.len()).div_ceil(FRAME_SAMPLES) + 44;
                assert!(steps <= en.context, "{steps} steps: {plan:?}");
            }
        }
        let mut tiny = Config::stt_1b_en_fr();
        tiny.context = 40;
        let p = SegmentPlan::for_model(&tiny);
        assert!(p.target_s > p.window_s && p.window_s > 0.0, "{p:?}");
        assert!(p.cut(&signal(20.0, &[])).len() > 4);
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
