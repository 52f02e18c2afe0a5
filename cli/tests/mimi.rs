//! Mimi's encoder on many frames per call (`encode_frames`, what files use)
//! against frame-by-frame streaming (what moshi's `asr::State` does).

mod common;

use common::rvq::Rvq;
use stt_model::config::FRAME_SAMPLES;

/// Chunks of 1, 7 and 25 frames over 20 s of speech. The arithmetic is the
/// same but on bigger tensors (other GEMM shapes, attention over the chunk
/// at once), so latents agree to f32 rounding and codes agree except where
/// the nearest codeword is a near-tie: every differing frame must be one
/// the latent difference can explain (`Rvq::first_flip`), and the latents
/// must agree to 1e-4 relative: the encoder's ~40 sequential layers with
/// sums of up to 2048 f32 terms each give ~40·√2048·2⁻²⁴ ≈ 1e-4 (7e-7
/// measured). Chunks longer than one frame through moshi's transformer
/// would fail this after 10 s (its KV window); `encode_frames` steps the
/// transformer frame by frame for that reason.
#[test]
fn chunked_mimi_agrees_with_frame_by_frame_up_to_near_ties() {
    let m = common::tiny_float_model();
    let dev = candle_core::Device::Cpu;
    let rvq = Rvq::load(
        &common::tiny_model().join(&m.config.mimi_name),
        m.config.n_q,
    );
    let pcm = &common::clip_24k("bria.mp3")[..24_000 * 20];
    let (mut one, mut one_latents) = (m.mimi_encoder(&dev).unwrap(), m.mimi_encoder(&dev).unwrap());
    let (mut codes_ref, mut latents_ref) = (vec![], vec![]);
    for frame in pcm.chunks_exact(FRAME_SAMPLES) {
        codes_ref.extend(one.encode_frame(frame).unwrap());
        latents_ref.extend(one_latents.encode_latents(frame).unwrap());
    }
    assert!(codes_ref.len() > 240, "{} frames of codes", codes_ref.len());
    assert_eq!(codes_ref.len(), latents_ref.len());
    for chunk_frames in [1, 7, 25] {
        let (mut mimi, mut mimi_latents) =
            (m.mimi_encoder(&dev).unwrap(), m.mimi_encoder(&dev).unwrap());
        let (mut codes, mut latents) = (vec![], vec![]);
        for chunk in pcm.chunks(chunk_frames * FRAME_SAMPLES) {
            codes.extend(mimi.encode_frames(chunk).unwrap());
            latents.extend(mimi_latents.encode_latents(chunk).unwrap());
        }
        assert_eq!(codes.len(), codes_ref.len(), "chunks of {chunk_frames}");
        let mut worst = 0f64;
        for (a, b) in latents.iter().zip(&latents_ref) {
            let d: f64 = a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum();
            let n: f64 = b.iter().map(|y| (*y as f64).powi(2)).sum();
            worst = worst.max((d / n).sqrt());
        }
        let mut flips = vec![];
        for (i, ((a, b), (xa, xb))) in codes_ref
            .iter()
            .zip(&codes)
            .zip(latents_ref.iter().zip(&latents))
            .enumerate()
        {
            if let Some(flip) = rvq.first_flip(xa, a, xb, b) {
                assert!(
                    flip.gap.abs() <= flip.explained_up_to,
                    "frame {i}, chunks of {chunk_frames}: {flip:?} is not a near-tie"
                );
                flips.push((i, flip.codebook));
            }
        }
        eprintln!(
            "chunks of {chunk_frames}: latents within {worst:.2e} relative; \
             {} of {} frames differ at a near-tie {flips:?}",
            flips.len(),
            codes.len()
        );
        assert!(
            worst < 1e-3,
            "chunks of {chunk_frames}: latents differ by {worst:.2e}"
        );
        if chunk_frames == 1 {
            assert!(
                flips.is_empty(),
                "one frame per call is the same computation"
            );
        }
    }
    let mut mimi = m.mimi_encoder(&dev).unwrap();
    assert!(mimi.encode_frames(&pcm[..FRAME_SAMPLES + 1]).is_err());
    assert!(mimi.encode_frames(&[]).is_err());
}
