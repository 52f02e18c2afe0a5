//! Session + CPU stepper against `moshi::asr::State` (moshi 0.6.4), the
//! semantic reference for the delayed-streams loop: same synthetic model
//! (loaded by moshi's own loaders), same audio. Both run the same Candle
//! arithmetic, so text tokens, words, word times and end-of-turn
//! probabilities must be identical — the tolerance is zero.
//!
//! Both checkpoint shapes: stt-1b-en_fr's (tiny) and stt-2.6b-en's (1 s of
//! silence prepended, 31 steps of delay, a 375-step context, no end-of-turn
//! heads). moshi's `asr::State` does not prepend the silence: the reference
//! gets it as samples, as upstream's scripts feed it, and its times less
//! the prefix, as upstream's timestamp script reports them.

mod common;

use candle_core::{Device, Tensor};
use moshi::asr::AsrMsg;
use stt_model::config::{FRAME_SAMPLES, SAMPLE_RATE_HZ};
use stt_model::{block_on, Event, Model};

#[derive(Debug, Default, PartialEq)]
struct Run {
    /// Text token chosen at each step (all but the last: moshi exposes a
    /// step's choice only as the next step's input).
    tokens: Vec<u32>,
    words: Vec<(Vec<u32>, f64)>,
    word_ends: Vec<f64>,
    end_of_turn: Vec<Vec<f32>>,
}

fn ours(model: &Model, pcm: &[f32]) -> (Run, usize) {
    let mut s = model.cpu_session().unwrap();
    let mut events = vec![];
    // Uneven chunks: the session must not care how audio arrives.
    for chunk in pcm.chunks(7777) {
        events.extend(block_on(s.push_pcm(chunk)).unwrap());
    }
    events.extend(block_on(s.flush()).unwrap());
    let mut run = Run::default();
    for e in events {
        match e {
            Event::Step {
                text_token,
                end_of_turn,
                ..
            } => {
                run.tokens.push(text_token);
                run.end_of_turn.push(end_of_turn);
            }
            Event::Word {
                tokens, start_s, ..
            } => run.words.push((tokens, start_s)),
            Event::WordEnd { stop_s } => run.word_ends.push(stop_s),
            Event::Partial { .. } => {}
        }
    }
    run.tokens.pop();
    (run, s.flush_frames())
}

/// moshi's own loop, fed the same samples padded as our flush pads them.
fn reference(dir: &std::path::Path, pcm: &[f32], flush_frames: usize) -> Run {
    let model = Model::from_dir(dir, Some("model.safetensors")).unwrap();
    let cfg = &model.config;
    let dev = Device::Cpu;
    let mut state = common::moshi_asr_state(dir, cfg);

    let prefix_s = cfg.stt_config.audio_silence_prefix_seconds;
    let mut padded = vec![0f32; (prefix_s * SAMPLE_RATE_HZ as f64) as usize];
    padded.extend_from_slice(pcm);
    padded.resize(
        padded.len().div_ceil(FRAME_SAMPLES) * FRAME_SAMPLES + flush_frames * FRAME_SAMPLES,
        0.0,
    );
    let time = |t: f64| (t - prefix_s).max(0.0);
    let fed = std::cell::RefCell::new(vec![]);
    let mut run = Run::default();
    for frame in padded.chunks_exact(FRAME_SAMPLES) {
        let t = Tensor::from_slice(frame, (1, 1, FRAME_SAMPLES), &dev).unwrap();
        let msgs = state
            .step_pcm(t, None, &moshi::StreamMask::empty(), |_, text, _| {
                fed.borrow_mut()
                    .push(text.flatten_all().unwrap().to_vec1::<u32>().unwrap()[0]);
            })
            .unwrap();
        for m in msgs {
            match m {
                AsrMsg::Step { prs, .. } => {
                    run.end_of_turn.push(prs.iter().map(|p| p[0]).collect())
                }
                AsrMsg::Word {
                    tokens, start_time, ..
                } => run.words.push((tokens, time(start_time))),
                AsrMsg::EndWord { stop_time, .. } => run.word_ends.push(time(stop_time)),
            }
        }
    }
    // Input of step k+1 = choice of step k; step 0's input is the start token.
    run.tokens = fed.into_inner().into_iter().skip(1).collect();
    run
}

fn check(name: &str, pcm: &[f32]) {
    check_model(common::tiny_model(), name, pcm);
}

fn check_model(dir: &std::path::Path, name: &str, pcm: &[f32]) {
    let model = Model::from_dir(dir, Some("model.safetensors")).unwrap();
    let (ours, flush_frames) = ours(&model, pcm);
    let theirs = reference(dir, pcm, flush_frames);
    assert!(!ours.tokens.is_empty(), "{name}: no steps");
    assert_eq!(ours.tokens.len(), theirs.tokens.len(), "{name}: step count");
    if let Some(i) = ours
        .tokens
        .iter()
        .zip(&theirs.tokens)
        .position(|(a, b)| a != b)
    {
        panic!(
            "{name}: first token difference at step {i}: ours {} moshi {}",
            ours.tokens[i], theirs.tokens[i]
        );
    }
    assert_eq!(ours.words, theirs.words, "{name}: words and start times");
    assert_eq!(ours.word_ends, theirs.word_ends, "{name}: word end times");
    if model.lm.has_end_of_turn_heads() {
        assert_eq!(
            ours.end_of_turn, theirs.end_of_turn,
            "{name}: end-of-turn probabilities"
        );
    } else {
        // moshi sends no `AsrMsg::Step` without the heads; ours are empty.
        assert!(theirs.end_of_turn.is_empty(), "{name}");
        assert!(ours.end_of_turn.iter().all(|p| p.is_empty()), "{name}");
    }
    let distinct: std::collections::HashSet<_> = ours.tokens.iter().collect();
    eprintln!(
        "{name}: {} steps, {} distinct tokens, {} words, {} word ends: identical to moshi",
        ours.tokens.len(),
        distinct.len(),
        ours.words.len(),
        ours.word_ends.len()
    );
    // A model that always says the same thing would test nothing.
    if pcm.len() > 24_000 * 5 {
        assert!(
            distinct.len() > 20,
            "{name}: only {} distinct tokens",
            distinct.len()
        );
        assert!(!ours.words.is_empty(), "{name}: no words");
    }
}

/// stt-2.6b-en's shape: bria and loona back to back (~30 s + flush) run
/// past its 375-step context.
#[test]
fn stt_2b6_en_shape_matches_moshi() {
    let dir = common::en_tiny_model();
    let pcm: Vec<f32> = ["bria.mp3", "loona.mp3"]
        .iter()
        .flat_map(|c| common::clip_24k(c))
        .collect();
    assert!(pcm.len() / FRAME_SAMPLES > 375);
    check_model(dir, "stt-2.6b-en shape", &pcm);
}

#[test]
fn bria_matches_moshi() {
    check("bria", &common::clip_24k("bria.mp3"));
}

#[test]
fn loona_matches_moshi() {
    check("loona", &common::clip_24k("loona.mp3"));
}

#[test]
fn french_matches_moshi() {
    check(
        "sample_fr_hibiki_crepes",
        &common::clip_24k("sample_fr_hibiki_crepes.mp3"),
    );
}

/// ~102 s in one stream: 1275+ steps, so the 750-step KV context wraps.
#[test]
fn all_three_back_to_back_match_moshi() {
    let pcm: Vec<f32> = common::CLIPS
        .iter()
        .flat_map(|c| common::clip_24k(c))
        .collect();
    assert!(pcm.len() / FRAME_SAMPLES > 750 + 100);
    check("all three", &pcm);
}
