//! Session behaviour beyond parity: reset, flush, chunking, silence against
//! moshi (the long silent session is silence.rs, alone in its process).

mod common;

use stt_model::config::FRAME_SAMPLES;
use stt_model::{block_on, Event};

#[test]
fn reset_restores_a_fresh_session() {
    let m = common::tiny_float_model();
    let pcm = &common::clip_24k("bria.mp3")[..24_000 * 8];
    let mut s = m.cpu_session().unwrap();
    let run = |s: &mut stt_model::Session<_>| {
        let mut ev = block_on(s.push_pcm(pcm)).unwrap();
        ev.extend(block_on(s.flush()).unwrap());
        ev
    };
    let first = run(&mut s);
    block_on(s.reset()).unwrap();
    let second = run(&mut s);
    assert!(
        first.iter().any(|e| matches!(e, Event::Word { .. })),
        "no words to compare"
    );
    assert_eq!(first, second);
    let mut fresh = m.cpu_session().unwrap();
    assert_eq!(first, run(&mut fresh));
}

/// `flush` is exactly: complete the frame with zeros, then feed
/// `flush_frames` frames of silence.
#[test]
fn flush_equals_feeding_silence() {
    let m = common::tiny_float_model();
    let pcm = &common::clip_24k("sample_fr_hibiki_crepes.mp3")[..24_000 * 6 + 1234];
    let mut a = m.cpu_session().unwrap();
    let mut ev_a = block_on(a.push_pcm(pcm)).unwrap();
    ev_a.extend(block_on(a.flush()).unwrap());

    let mut b = m.cpu_session().unwrap();
    let mut padded = pcm.to_vec();
    padded.resize(
        pcm.len().div_ceil(FRAME_SAMPLES) * FRAME_SAMPLES + b.flush_frames() * FRAME_SAMPLES,
        0.0,
    );
    let ev_b = block_on(b.push_pcm(&padded)).unwrap();
    assert_eq!(ev_a, ev_b);
    assert_eq!(a.steps_done(), padded.len() / FRAME_SAMPLES);
}

/// On 30 s of silence, every step's token agrees with moshi's `asr::State`
/// (the seed-1 tiny model says no words here, so word counts alone would
/// compare zero with zero).
#[test]
fn silence_agrees_with_moshi() {
    let m = common::tiny_float_model();
    let mut s = m.cpu_session().unwrap();
    let pcm = vec![0f32; 24_000 * 30];
    let ours: Vec<u32> = block_on(s.push_pcm(&pcm))
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            Event::Step { text_token, .. } => Some(*text_token),
            _ => None,
        })
        .collect();
    let dir = common::tiny_model();
    let dev = candle_core::Device::Cpu;
    let cfg = &m.config;
    let mut state = common::moshi_asr_state(dir, cfg);
    // moshi's callback sees each step's input text token: the previous
    // step's choice (step 0's input is the start token).
    let fed = std::cell::RefCell::new(vec![]);
    for frame in pcm.chunks_exact(FRAME_SAMPLES) {
        let t = candle_core::Tensor::from_slice(frame, (1, 1, FRAME_SAMPLES), &dev).unwrap();
        state
            .step_pcm(t, None, &moshi::StreamMask::empty(), |_, text, _| {
                fed.borrow_mut()
                    .push(text.flatten_all().unwrap().to_vec1::<u32>().unwrap()[0]);
            })
            .unwrap();
    }
    let theirs: Vec<u32> = fed.into_inner().into_iter().skip(1).collect();
    assert!(theirs.len() > 300, "{} steps", theirs.len());
    assert_eq!(ours[..theirs.len()], theirs[..]);
}

/// The Mimi file cut down to its encoder side (what the browser downloads:
/// `mimi::is_encoder_tensor`) gives the same codes as the whole file, and
/// is under 60 % of it.
#[test]
fn encoder_only_mimi_gives_the_same_codes() {
    use stt_model::mimi::{is_encoder_tensor, MimiEncoder};
    use stt_model::weights::safetensors::SafetensorsFile;
    use stt_model::weights::Shards;

    let m = common::tiny_float_model();
    let path = common::tiny_model().join(&m.config.mimi_name);
    let bytes = std::fs::read(&path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let (mut kept, mut data) = (serde_json::Map::new(), Vec::new());
    for (name, info) in &header {
        if name == "__metadata__" || !is_encoder_tensor(name) {
            continue;
        }
        let at: Vec<usize> = serde_json::from_value(info["data_offsets"].clone()).unwrap();
        let start = data.len();
        data.extend_from_slice(&bytes[8 + n + at[0]..8 + n + at[1]]);
        let mut info = info.clone();
        info["data_offsets"] = serde_json::json!([start, data.len()]);
        kept.insert(name.clone(), info);
    }
    let mut head = serde_json::to_vec(&kept).unwrap();
    head.resize(head.len().next_multiple_of(8), b' ');
    let mut stripped = (head.len() as u64).to_le_bytes().to_vec();
    stripped.extend_from_slice(&head);
    stripped.extend_from_slice(&data);
    assert!(
        stripped.len() * 10 < bytes.len() * 6,
        "{} of {} bytes",
        stripped.len(),
        bytes.len()
    );

    let dev = candle_core::Device::Cpu;
    let file = SafetensorsFile::from_shards("encoder side", Shards::new(vec![stripped])).unwrap();
    let mut encoder_only = MimiEncoder::load(&file, &m.config, &dev).unwrap();
    let mut whole = m.mimi_encoder(&dev).unwrap();
    let pcm = &common::clip_24k("sample_fr_hibiki_crepes.mp3")[..24_000 * 6];
    let mut frames = 0;
    for frame in pcm.chunks_exact(FRAME_SAMPLES) {
        let a = encoder_only.encode_frame(frame).unwrap();
        let b = whole.encode_frame(frame).unwrap();
        assert_eq!(a, b);
        frames += b.is_some() as usize;
    }
    assert!(frames > 50, "{frames} frames of codes");
}

/// A session encoding Mimi 25 frames per call (as files run) gives the
/// events of one encoding frame by frame (no near-tie in this clip: see
/// tests/mimi.rs), whatever sizes the audio is pushed in.
#[test]
fn chunked_mimi_session_gives_the_same_events() {
    let m = common::tiny_float_model();
    let pcm = &common::clip_24k("bria.mp3")[..24_000 * 12 + 777];
    let run = |chunk_frames: usize, push: usize| {
        let mut s = m.cpu_session().unwrap();
        s.set_mimi_chunk_frames(chunk_frames);
        let mut ev = vec![];
        for part in pcm.chunks(push) {
            ev.extend(block_on(s.push_pcm(part)).unwrap());
        }
        ev.extend(block_on(s.flush()).unwrap());
        ev
    };
    let reference = run(1, 24_000);
    assert!(
        reference.iter().any(|e| matches!(e, Event::Word { .. })),
        "no words to compare"
    );
    for (chunk_frames, push) in [(25, 24_000), (25, 7_777), (25, pcm.len()), (7, 1_920)] {
        assert_eq!(
            run(chunk_frames, push),
            reference,
            "{chunk_frames} frames per call, pushes of {push}"
        );
    }
}

/// Audio arriving in odd pieces — single samples, 7 777 samples, 10 s at
/// once — gives exactly the events of the whole clip pushed at once.
#[test]
fn odd_chunk_sizes_give_the_same_events() {
    let m = common::tiny_float_model();
    let pcm = &common::clip_24k("bria.mp3")[..24_000 * 12 + 999];
    let run = |pieces: &mut dyn Iterator<Item = &[f32]>| {
        let mut s = m.cpu_session().unwrap();
        let mut ev = vec![];
        for piece in pieces {
            ev.extend(block_on(s.push_pcm(piece)).unwrap());
        }
        ev.extend(block_on(s.flush()).unwrap());
        ev
    };
    let whole = run(&mut std::iter::once(pcm));
    assert!(whole.iter().any(|e| matches!(e, Event::Word { .. })));
    // 1 s one sample at a time, then 7 777 at a time.
    let (head, tail) = pcm.split_at(24_000);
    let mut odd = head.chunks(1).chain(tail.chunks(7_777));
    assert_eq!(run(&mut odd), whole, "1-sample and 7 777-sample pieces");
    let mut ten_s = pcm.chunks(240_000);
    assert_eq!(run(&mut ten_s), whole, "10 s pieces");
}

/// A reset in the middle of a word (a partial shown, not yet final) drops
/// it: the next stream is exactly a fresh session's. A second flush (the
/// user pressing Stop twice) adds no word and no error.
#[test]
fn reset_mid_word_and_flush_twice() {
    let m = common::tiny_float_model();
    let pcm = &common::clip_24k("bria.mp3")[..24_000 * 8];
    let mut s = m.cpu_session().unwrap();
    let mut mid_word = false;
    for piece in pcm.chunks(FRAME_SAMPLES) {
        let ev = block_on(s.push_pcm(piece)).unwrap();
        if ev.iter().any(|e| matches!(e, Event::Partial { .. })) {
            mid_word = true;
            break;
        }
    }
    assert!(mid_word, "no partial word to reset in");
    block_on(s.reset()).unwrap();
    let mut after = block_on(s.push_pcm(pcm)).unwrap();
    after.extend(block_on(s.flush()).unwrap());
    let mut fresh = m.cpu_session().unwrap();
    let mut want = block_on(fresh.push_pcm(pcm)).unwrap();
    want.extend(block_on(fresh.flush()).unwrap());
    assert_eq!(after, want);
    let again = block_on(s.flush()).unwrap();
    assert!(
        !again.iter().any(|e| matches!(e, Event::Word { .. })),
        "a second flush repeated words: {again:?}"
    );
}
