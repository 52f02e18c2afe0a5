//! The same synthetic model as f32 safetensors and as GGUF (Q8_0, Q4_K,
//! Q4_0), each run by moshi's own CPU LM. Teacher-forced: every path is fed
//! the f32 path's chosen text tokens, so one flip cannot derail later steps.
//!
//! Candle's quantized matmul also quantizes the activations (Q8_0 for Q8_0
//! and Q4_0 weights, Q8_K for Q4_K), so the logits differ by weight rounding
//! plus activation rounding. The bounds below are on the logit error relative
//! to the logits' RMS (≈ 1 by construction of the synthetic head):
//! - Q8_0: 8-bit weights and activations, relative error per product
//!   ≈ √2 × (block max / 127)/√12 with block max ≈ 2.5 RMS: ≈ 1.2 % RMS; the
//!   worst of 2 M logits sits ~5σ out: ≈ 6–10 %.
//! - Q4_0 / Q4_K: 4-bit weights, a step of ≈ 0.3 RMS per 32-block, so
//!   ≈ 9 % per weight, ≈ 10–13 % on the logits; worst ≈ 10× that.
//!
//! Tokens: random models are full of near-ties, so a token can only differ
//! where the f32 logits of the two candidates are closer than the two paths'
//! logit errors. We assert that every difference is such a near-tie and
//! bound how many there are.

mod common;

use candle_core::Device;
use stt_model::config::FRAME_SAMPLES;
use stt_model::stepper::{LmStepper, TextInput};
use stt_model::{block_on, Model};

const STEPS: usize = 250;

struct Bounds {
    file: &'static str,
    /// RMS(Δ logit) / RMS(logits)
    rms_rel_error: f32,
    /// max |Δ logit| / RMS(logits), the worst of STEPS × 8000 logits
    max_rel_error: f32,
    /// token differences allowed, out of STEPS, all at near-ties
    max_flips: usize,
}

const BOUNDS: [Bounds; 3] = [
    // Measured (seed 1, 250 steps): RMS 0.0097, max 0.098, 2 flips at f32
    // margins 0.003 and 0.024.
    Bounds {
        file: "model-q80.gguf",
        rms_rel_error: 0.015,
        max_rel_error: 0.15,
        max_flips: STEPS / 50,
    },
    // Measured: RMS 0.115 / 0.125, max 1.19 / 1.49, 48 / 66 flips. The top two
    // of 8000 Gaussian logits are typically ~0.25 RMS apart, so a 12 % error
    // flips a fifth to a quarter of the steps of a random model.
    Bounds {
        file: "model-q4k.gguf",
        rms_rel_error: 0.15,
        max_rel_error: 2.0,
        max_flips: STEPS * 35 / 100,
    },
    Bounds {
        file: "model-q40.gguf",
        rms_rel_error: 0.15,
        max_rel_error: 2.0,
        max_flips: STEPS * 35 / 100,
    },
];

fn codes(model: &Model) -> Vec<Vec<u32>> {
    let pcm = common::clip_24k("bria.mp3");
    let mut mimi = model.mimi_encoder(&Device::Cpu).unwrap();
    pcm.chunks_exact(FRAME_SAMPLES)
        .filter_map(|f| mimi.encode_frame(f).unwrap())
        .take(STEPS)
        .collect()
}

/// Runs `STEPS` steps; `forced` = tokens to feed back instead of its own.
fn run(model: &Model, codes: &[Vec<u32>], forced: Option<&[u32]>) -> (Vec<u32>, Vec<Vec<f32>>) {
    let mut st = model.cpu_stepper(&Device::Cpu).unwrap();
    st.keep_logits(true);
    let pad = vec![model.config.audio_pad_token(); model.config.n_q];
    let (mut tokens, mut logits) = (vec![], vec![]);
    for i in 0..codes.len() {
        let text = match (i, forced) {
            (0, _) => TextInput::Start,
            (_, Some(f)) => TextInput::Forced(f[i - 1]),
            (_, None) => TextInput::Previous,
        };
        let audio = if i == 0 { &pad } else { &codes[i - 1] };
        st.submit(text, audio).unwrap();
        let out = block_on(st.receive()).unwrap();
        tokens.push(out.text_token);
        logits.push(out.text_logits.unwrap());
    }
    (tokens, logits)
}

#[test]
fn gguf_agrees_with_safetensors() {
    let dir = common::tiny_model();
    let reference = Model::from_dir(dir, Some("model.safetensors")).unwrap();
    let codes = codes(&reference);
    let (ref_tokens, ref_logits) = run(&reference, &codes, None);
    let rms = (ref_logits.iter().flatten().map(|x| x * x).sum::<f32>()
        / (ref_logits.len() * ref_logits[0].len()) as f32)
        .sqrt();
    for b in BOUNDS {
        let model = Model::from_dir(dir, Some(b.file)).unwrap();
        assert!(model.lm.is_quantized());
        let (tokens, logits) = run(&model, &codes, Some(&ref_tokens));
        let mut max_err = 0f32;
        let mut sq_err = 0f64;
        let mut flips = vec![];
        for (i, (l, r)) in logits.iter().zip(&ref_logits).enumerate() {
            let err = l.iter().zip(r).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
            sq_err += l
                .iter()
                .zip(r)
                .map(|(a, b)| ((a - b) as f64).powi(2))
                .sum::<f64>();
            max_err = max_err.max(err);
            if tokens[i] != ref_tokens[i] {
                // How far apart f32 put the two choices, against the errors.
                let margin = r[ref_tokens[i] as usize] - r[tokens[i] as usize];
                assert!(
                    margin <= 2.0 * err,
                    "{}: step {i} flipped with margin {margin} > 2 × error {err}",
                    b.file
                );
                flips.push((i, margin));
            }
        }
        let rms_err = (sq_err / (STEPS * ref_logits[0].len()) as f64).sqrt() as f32;
        eprintln!(
            "{}: RMS |Δlogit| {:.4} × RMS, max {:.4} × RMS (logit RMS {rms:.3}); {} of {STEPS} tokens differ (f32 margins {:?})",
            b.file,
            rms_err / rms,
            max_err / rms,
            flips.len(),
            flips.iter().map(|f| f.1).collect::<Vec<_>>()
        );
        assert!(
            rms_err / rms <= b.rms_rel_error,
            "{}: logit RMS error {} × RMS",
            b.file,
            rms_err / rms
        );
        assert!(
            max_err / rms <= b.max_rel_error,
            "{}: logit error {} × RMS",
            b.file,
            max_err / rms
        );
        assert!(
            flips.len() <= b.max_flips,
            "{}: {} token differences",
            b.file,
            flips.len()
        );
    }
}
