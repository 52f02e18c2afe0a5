//! Parity with upstream PyTorch moshi (PyPI 0.2.13), the judge: our CPU path
//! (the moshi crate through our Mimi wrapper and our `Session`) against the
//! goldens `tests/parity/reference.py` wrote, on the same synthetic model
//! (regenerated here from its preset and seed) and the same 24 kHz PCM
//! (stored in the golden). Regenerate with `just parity-upstream`;
//! `tests/parity/README.md` describes the cases and the file layout.
//!
//! What is compared, per case:
//! - Mimi: the pre-quantizer latent of the stored frames, and the 32 codes
//!   of every frame. Codes must be identical except where the golden's
//!   latent lies within the tie distance of the boundary between its code
//!   and a rival (a near-tie that the latent error can cross: the latent
//!   tolerance times the quantizer's input projection gain); those ties,
//!   and the codes of the same residual group after them, are counted.
//! - LM (fed the golden's codes, so a Mimi tie cannot derail it): the greedy
//!   text token of every step (identical), the text logits (top-k of every
//!   step, whole rows of some steps, and each row's logsumexp) and the
//!   end-of-turn probabilities.

mod common;

use std::path::{Path, PathBuf};

use candle_core::{Device, IndexOp, Tensor};
use moshi::{StreamMask, StreamTensor, StreamingModule};
use stt_cli::synth::{Preset, SynthOptions};
use stt_cli::tensor_writer::StDtype;
use stt_model::config::FRAME_SAMPLES;
use stt_model::weights::safetensors::SafetensorsFile;
use stt_model::weights::{LmWeights, Shards};
use stt_model::{block_on, Event, LmStepper, Model, Session};

/// One golden case: `tests/parity/goldens/<name>.{json,safetensors}`.
struct Golden {
    name: String,
    meta: serde_json::Value,
    st: SafetensorsFile,
}

impl Golden {
    fn load(name: &str) -> Self {
        let dir = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/parity/goldens"
        ));
        let meta_path = dir.join(format!("{name}.json"));
        let meta =
            std::fs::read(&meta_path).unwrap_or_else(|e| panic!("{}: {e}", meta_path.display()));
        let meta: serde_json::Value = serde_json::from_slice(&meta).expect("golden meta is JSON");
        let st_path = dir.join(format!("{name}.safetensors"));
        let st = SafetensorsFile::from_shards(
            &st_path.display().to_string(),
            Shards::from_path(&st_path).expect("golden tensors"),
        )
        .expect("golden safetensors");
        Self {
            name: name.to_string(),
            meta,
            st,
        }
    }

    fn tensor(&self, name: &str) -> Tensor {
        self.st
            .tensor(name, &Device::Cpu)
            .unwrap_or_else(|e| panic!("{}: {name}: {e}", self.name))
    }

    fn f32s(&self, name: &str) -> Vec<f32> {
        self.tensor(name).flatten_all().unwrap().to_vec1().unwrap()
    }

    fn u32s(&self, name: &str) -> Vec<u32> {
        self.tensor(name).flatten_all().unwrap().to_vec1().unwrap()
    }

    /// Rows of a 2-D (or more) tensor, flattened after the first dimension.
    fn rows_f32(&self, name: &str) -> Vec<Vec<f32>> {
        let t = self.tensor(name);
        let n = t.dim(0).unwrap();
        let flat: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
        flat.chunks(flat.len() / n.max(1))
            .map(|c| c.to_vec())
            .collect()
    }

    fn rows_u32(&self, name: &str) -> Vec<Vec<u32>> {
        let t = self.tensor(name);
        let n = t.dim(0).unwrap();
        let flat: Vec<u32> = t.flatten_all().unwrap().to_vec1().unwrap();
        flat.chunks(flat.len() / n.max(1))
            .map(|c| c.to_vec())
            .collect()
    }

    fn meta_u64(&self, path: &[&str]) -> u64 {
        let mut v = &self.meta;
        for p in path {
            v = &v[*p];
        }
        v.as_u64()
            .unwrap_or_else(|| panic!("{}: meta {path:?} is not an integer", self.name))
    }
}

/// The synthetic model a golden was made from, written by `synth` as the
/// generation script ran it (`--lm-dtype f32`, no GGUF), once per test run.
fn model_for(g: &Golden) -> Model {
    let preset = match g.meta["model"]["preset"].as_str() {
        Some("tiny") => Preset::Tiny,
        Some("mid") => Preset::Mid,
        Some("full") => Preset::Full,
        other => panic!("{}: unknown preset {other:?}", g.name),
    };
    let seed = g.meta_u64(&["model", "seed"]);
    let dir: PathBuf = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "parity-upstream-{}-seed{seed}",
        g.meta["model"]["preset"].as_str().unwrap_or("")
    ));
    let mut opts = SynthOptions::new(preset, seed);
    opts.lm_dtype = StDtype::F32;
    common::make_once(&dir, &opts);
    let model = Model::from_dir(&dir, Some("model.safetensors")).expect("synthetic model loads");

    // The golden's config must be the one synth writes today, and the first
    // values of a few tensors must match: otherwise synth changed and the
    // goldens must be regenerated (`just parity-upstream`).
    // Both sides without synth's "synthetic model" flag: it marks the files
    // for the browser's banner and is no part of the model the goldens
    // describe (goldens written before it existed lack it).
    let architecture = |v: &serde_json::Value| {
        let mut v = v.clone();
        if let Some(map) = v.as_object_mut() {
            map.remove(stt_model::config::SYNTHETIC_MARKER);
        }
        v
    };
    let cfg: serde_json::Value =
        serde_json::from_str(&model.config.to_json()).expect("config is JSON");
    assert_eq!(
        architecture(&cfg),
        architecture(&g.meta["model"]["config"]),
        "{}: synth's config differs from the golden's: regenerate the goldens",
        g.name
    );
    let LmWeights::Safetensors(lm) = &model.lm else {
        panic!("model.safetensors is safetensors")
    };
    for (file, key) in [(lm, "fingerprint_lm"), (&model.mimi, "fingerprint_mimi")] {
        let fp = g.meta["model"][key]
            .as_object()
            .unwrap_or_else(|| panic!("{}: meta model.{key}", g.name));
        for (tensor, want) in fp {
            let want: Vec<f32> = serde_json::from_value(want.clone()).expect("fingerprint");
            let got: Vec<f32> = file
                .tensor(tensor, &Device::Cpu)
                .unwrap()
                .flatten_all()
                .unwrap()
                .narrow(0, 0, want.len())
                .unwrap()
                .to_vec1()
                .unwrap();
            assert_eq!(
                got, want,
                "{}: synth no longer writes the golden's `{tensor}` for this seed: regenerate the goldens",
                g.name
            );
        }
    }
    model
}

/// moshi's `Mimi::encode_step`, rebuilt from the same public moshi modules
/// over the same weights, so that the latent before the quantizer can be
/// read (moshi keeps those modules private inside `Mimi`). Checked against
/// our wrapper's codes frame by frame.
struct MimiProbe {
    encoder: moshi::seanet::SeaNetEncoder,
    transformer: moshi::transformer::Transformer,
    downsample: moshi::conv::ConvDownsample1d,
    quantizer: moshi::quantization::SplitResidualVectorQuantizer,
}

impl MimiProbe {
    fn new(model: &Model) -> Self {
        // As `moshi::mimi::Mimi::new_` (moshi 0.6.4) builds them.
        let cfg = model.config.mimi_config();
        let vb = model.mimi.var_builder(&Device::Cpu);
        let dim = cfg.seanet.dimension;
        let encoder_frame_rate =
            cfg.sample_rate / cfg.seanet.ratios.iter().product::<usize>() as f64;
        let stride = (encoder_frame_rate / cfg.frame_rate) as usize;
        Self {
            encoder: moshi::seanet::SeaNetEncoder::new(&cfg.seanet, vb.pp("encoder")).unwrap(),
            transformer: moshi::transformer::Transformer::new(
                None,
                dim,
                &cfg.transformer,
                vb.pp("encoder_transformer"),
            )
            .unwrap(),
            downsample: moshi::conv::ConvDownsample1d::new(
                stride,
                dim,
                true,
                true,
                vb.pp("downsample"),
            )
            .unwrap(),
            quantizer: moshi::quantization::SplitResidualVectorQuantizer::new(
                cfg.quantizer_dim,
                Some(dim),
                Some(dim),
                cfg.quantizer_n_q,
                cfg.quantizer_bins,
                vb.pp("quantizer"),
            )
            .unwrap(),
        }
    }

    /// One frame: (latent [512], codes [n_q]).
    fn step(&mut self, pcm: &[f32]) -> Option<(Vec<f32>, Vec<u32>)> {
        let m = StreamMask::empty();
        let xs = Tensor::from_slice(pcm, (1, 1, pcm.len()), &Device::Cpu).unwrap();
        let xs = self
            .encoder
            .step(&StreamTensor::from_tensor(xs), &m)
            .unwrap();
        let xs = self.transformer.step(&xs, &m).unwrap();
        let xs = self.downsample.step(&xs, &m).unwrap();
        let latent = xs.as_option()?.clone();
        let codes = self.quantizer.encode(&latent).unwrap();
        Some((
            latent.i((0, .., 0)).unwrap().to_vec1().unwrap(),
            codes.i((0, .., 0)).unwrap().to_vec1().unwrap(),
        ))
    }
}

/// f32 unit roundoff, 2⁻²⁴: the relative error of one rounded operation.
const U_F32: f64 = 5.960_464_477_539_063e-8;

/// Mimi latent: the largest Euclidean norm (512 dims) of one frame's error.
///
/// Two causes, both f32 arithmetic:
/// - Summation order: PyTorch (oneDNN) and candle (the gemm crate) add the
///   products of every convolution and matmul in different orders. Its size
///   is that of PyTorch f32 against PyTorch f64: 2.3–2.8e-7 per speech frame
///   (latent norm ≈ 0.1), measured on bria's first frames.
/// - ELU: candle computes `exp(x) − 1` where PyTorch's kernel is accurate
///   for small |x| (as `expm1`). For a small negative x, `exp(x)` rounds
///   near 1, so the output carries an absolute error of up to ulp(1)/2 = u
///   however small it is. On a near-silent frame this is all of SEANet's
///   error: 1.9e-7 (L2, 1024 outputs) on bria's first frame, where PyTorch
///   f32 is within 1e-10 of f64 and PyTorch with `exp(x) − 1` ELUs is off by
///   the same 1.9e-7. The encoder transformer's LayerNorm divides by
///   √(var + 1e-5), a gain of up to 1/√1e-5 ≈ 316 on such a quiet frame,
///   and each of its 16 residual branches (8 layers × attention, MLP) adds
///   its output × layer scale 0.01: 2e-7 × 316 × 0.01 × 16 ≈ 1e-5. Measured:
///   3.5e-6 on that frame, decaying over the next frames as attention
///   dilutes it. Doubled for the branches' weight norms (≈ 1–2).
const LATENT_L2_TOLERANCE: f64 = 2.0 * 2e-7 * 316.0 * 0.01 * 16.0;

/// Text-logit tolerance (also for each row's logsumexp, which moves by at
/// most the largest logit change). Every matmul on the way to a logit sums
/// its K products in another order in PyTorch and candle; each ordering
/// error is a random walk of K roundings, ≈ u·√K relative. There are 4L + 1
/// such matmuls (per layer in_proj, out_proj, linear_in, linear_out, with K
/// up to the MLP width 11d/4; then text_linear) whose errors add in
/// quadrature through the residual stream, and the last RMSNorm makes a
/// logit's error relative to its own size:
/// u · √(11d/4) · √(4L + 1) · max|logit|.
/// Full size: 3.0e-4 (measured 1.1e-5); tiny: 3.5e-5 (measured 2.9e-6).
fn logit_tolerance(cfg: &stt_model::Config, max_abs_logit: f64) -> f64 {
    U_F32
        * (cfg.ffn_hidden() as f64).sqrt()
        * ((4 * cfg.num_layers + 1) as f64).sqrt()
        * max_abs_logit
}

/// End-of-turn probabilities: each is softmax(h)[0] of 6 head logits
/// h = W·y computed like the text logits (rows N(0, 1/d) on y of norm √d, so
/// |h| ≲ 4), and a softmax output moves by at most the largest change of
/// its logits.
fn vad_tolerance(cfg: &stt_model::Config) -> f64 {
    logit_tolerance(cfg, 4.0)
}

/// Largest singular value of a [rows, cols] matrix (power iteration, f64).
fn spectral_norm(w: &[f32], rows: usize, cols: usize) -> f64 {
    let mut v = vec![1.0f64; cols];
    let mut sigma = 0.0;
    for _ in 0..100 {
        let u: Vec<f64> = (0..rows)
            .map(|r| (0..cols).map(|c| w[r * cols + c] as f64 * v[c]).sum())
            .collect();
        let mut next = vec![0.0f64; cols];
        for (r, ur) in u.iter().enumerate() {
            for (c, n) in next.iter_mut().enumerate() {
                *n += w[r * cols + c] as f64 * ur;
            }
        }
        let norm = next.iter().map(|x| x * x).sum::<f64>().sqrt();
        sigma = norm.sqrt(); // ‖Wᵀ W v‖ = σ² for the top singular vector v
        v = next.iter().map(|x| x / norm).collect();
    }
    sigma
}

/// How far a latent error can move the quantizer's input: the input
/// projections' largest singular value. The residual chain after it
/// subtracts identical codebook entries on both sides while codes agree, so
/// it adds nothing.
fn quantizer_gain(model: &Model) -> f64 {
    ["rvq_first", "rvq_rest"]
        .iter()
        .map(|g| {
            let t = model
                .mimi
                .tensor(&format!("quantizer.{g}.input_proj.weight"), &Device::Cpu)
                .unwrap();
            let (rows, cols) = (t.dim(0).unwrap(), t.dim(1).unwrap());
            let w: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
            spectral_norm(&w, rows, cols)
        })
        .fold(0.0, f64::max)
}

#[derive(Debug, Default)]
struct MimiReport {
    frames: usize,
    latent_max_l2: f64,
    latent_max_abs: f32,
    /// Codes whose golden latent lies within the tie distance of a boundary.
    near_ties: usize,
    tie_distance: f64,
    /// (frame, codebook, golden margin) of each first differing code of a
    /// residual group: the ties that went the other way.
    ties_taken: Vec<(usize, usize, f32)>,
    /// Codes that differ in all: ties taken and the codes after them in
    /// their residual group.
    codes_differing: usize,
    codes: usize,
}

fn compare_mimi(g: &Golden, model: &Model) -> MimiReport {
    let pcm = g.f32s("pcm");
    let codes = g.rows_u32("codes");
    let margins = g.rows_f32("code_margin");
    let latent_frames = g.u32s("latent_frames");
    let latents = g.rows_f32("latents");
    let n_frames = codes.len();
    assert_eq!(
        pcm.len(),
        n_frames * FRAME_SAMPLES,
        "{}: pcm length",
        g.name
    );
    let probe_frames = latent_frames.last().map_or(0, |&f| f as usize + 1);

    let mut rep = MimiReport {
        frames: n_frames,
        tie_distance: LATENT_L2_TOLERANCE * quantizer_gain(model),
        ..Default::default()
    };
    let mut wrapper = model.mimi_encoder(&Device::Cpu).unwrap();
    let mut probe = MimiProbe::new(model);
    for (t, frame) in pcm.chunks_exact(FRAME_SAMPLES).enumerate() {
        let ours = wrapper
            .encode_frame(frame)
            .unwrap()
            .unwrap_or_else(|| panic!("{}: our Mimi gave no codes for frame {t}", g.name));
        assert_eq!(ours.len(), codes[t].len(), "{}: codebooks", g.name);
        if t < probe_frames {
            let (latent, probe_codes) = probe.step(frame).expect("probe frame");
            assert_eq!(
                probe_codes, ours,
                "{}: frame {t}: the probe does not follow the wrapper's path",
                g.name
            );
            if let Some(i) = latent_frames.iter().position(|&f| f as usize == t) {
                let mut sq = 0f64;
                for (a, b) in latent.iter().zip(&latents[i]) {
                    rep.latent_max_abs = rep.latent_max_abs.max((a - b).abs());
                    sq += ((a - b) as f64).powi(2);
                }
                rep.latent_max_l2 = rep.latent_max_l2.max(sq.sqrt());
            }
        }
        rep.codes += ours.len();
        rep.near_ties += margins[t]
            .iter()
            .filter(|&&m| (m as f64) < rep.tie_distance)
            .count();
        // Residual groups: codebook 0 (rvq_first), codebooks 1.. (rvq_rest).
        // Within a group, a different code changes the residual the next
        // codebooks quantize, so only the first difference must be a tie.
        for group in [0..1, 1..ours.len()] {
            if let Some(q) = group.clone().find(|&q| ours[q] != codes[t][q]) {
                assert!(
                    (margins[t][q] as f64) < rep.tie_distance,
                    "{}: frame {t} codebook {q}: our code {} ≠ PyTorch's {}, but the golden latent is {:.3e} from a tie (tie distance {:.3e})",
                    g.name,
                    ours[q],
                    codes[t][q],
                    margins[t][q],
                    rep.tie_distance
                );
                rep.ties_taken.push((t, q, margins[t][q]));
                rep.codes_differing += group.filter(|&q| ours[q] != codes[t][q]).count();
            }
        }
    }
    assert!(
        rep.latent_max_l2 <= LATENT_L2_TOLERANCE,
        "{}: Mimi latent error {:.3e} (L2 over a frame) > {LATENT_L2_TOLERANCE:.1e}",
        g.name,
        rep.latent_max_l2
    );
    rep
}

#[derive(Debug, Default)]
struct LmReport {
    steps: usize,
    logit_max_abs: f64,
    logit_tolerance: f64,
    lse_max_abs: f64,
    vad_max_abs: f64,
    vad_tolerance: f64,
    /// Smallest gap between the golden's two best logits.
    min_top2_gap: f32,
}

fn compare_lm<S: LmStepper>(g: &Golden, model: &Model, mut session: Session<S>) -> LmReport {
    let codes = g.rows_u32("codes");
    let tokens = g.u32s("tokens");
    let topk_idx = g.rows_u32("logits_topk_idx");
    let topk = g.rows_f32("logits_topk");
    let lse = g.f32s("logits_lse");
    let full_steps = g.u32s("logits_full_steps");
    let full = g.rows_f32("logits_full");
    let vad = g.rows_f32("vad");
    assert_eq!(
        tokens.len(),
        codes.len() + 1,
        "{}: T frames give T + 1 steps",
        g.name
    );

    let max_abs_logit = topk
        .iter()
        .flatten()
        .fold(0f64, |m, &x| m.max(x.abs() as f64));
    let mut rep = LmReport {
        logit_tolerance: logit_tolerance(&model.config, max_abs_logit),
        vad_tolerance: vad_tolerance(&model.config),
        min_top2_gap: f32::INFINITY,
        ..Default::default()
    };

    // Our Session, fed the golden's codes: step 0 feeds the pads and step k
    // the codes of frame k − 1, as LMGen with frame 0 stepped twice.
    session.stepper_mut().keep_logits(true);
    let mut events = vec![];
    for c in &codes {
        events.extend(block_on(session.push_codes(c)).unwrap());
    }
    // Step T feeds the last frame's codes, which the session holds back one
    // step: one more frame (never fed) runs it.
    let pad = vec![model.config.audio_pad_token(); model.config.n_q];
    events.extend(block_on(session.push_codes(&pad)).unwrap());
    // A pipelined stepper may still hold steps: collect them.
    while session.stepper().in_flight() > 0 {
        events.extend(block_on(session.drain()).unwrap());
    }

    for e in events {
        let Event::Step {
            step_idx,
            text_token,
            end_of_turn,
            text_logits,
            ..
        } = e
        else {
            continue;
        };
        let s = step_idx - 1;
        let logits = text_logits.expect("keep_logits");
        let gap = topk[s][0] - topk[s][1];
        rep.min_top2_gap = rep.min_top2_gap.min(gap);
        assert_eq!(
            text_token, tokens[s],
            "{}: step {s}: our token {text_token} ≠ PyTorch's {} (golden top-2 gap {gap:.3e}, logit tolerance {:.3e})",
            g.name, tokens[s], rep.logit_tolerance
        );
        let mut step_max = 0f64;
        for (&i, &v) in topk_idx[s].iter().zip(&topk[s]) {
            step_max = step_max.max((logits[i as usize] - v).abs() as f64);
        }
        if let Some(i) = full_steps.iter().position(|&f| f as usize == s) {
            for (a, b) in logits.iter().zip(&full[i]) {
                step_max = step_max.max((a - b).abs() as f64);
            }
        }
        rep.logit_max_abs = rep.logit_max_abs.max(step_max);
        let max = logits
            .iter()
            .fold(f64::NEG_INFINITY, |m, &x| m.max(x as f64));
        let ours_lse = max
            + logits
                .iter()
                .map(|&x| (x as f64 - max).exp())
                .sum::<f64>()
                .ln();
        rep.lse_max_abs = rep.lse_max_abs.max((ours_lse - lse[s] as f64).abs());
        // vad[s] is [heads, 6]; our end-of-turn probability is class 0.
        assert_eq!(
            end_of_turn.len() * model.config.end_of_turn_heads().1,
            vad[s].len(),
            "{}: end-of-turn heads",
            g.name
        );
        let dim = vad[s].len() / end_of_turn.len().max(1);
        for (h, p) in end_of_turn.iter().enumerate() {
            rep.vad_max_abs = rep.vad_max_abs.max((p - vad[s][h * dim]).abs() as f64);
        }
        rep.steps += 1;
    }
    assert_eq!(rep.steps, tokens.len(), "{}: steps run", g.name);
    assert!(
        rep.logit_max_abs <= rep.logit_tolerance,
        "{}: text logit error {:.3e} > {:.3e}",
        g.name,
        rep.logit_max_abs,
        rep.logit_tolerance
    );
    assert!(
        rep.lse_max_abs <= rep.logit_tolerance,
        "{}: logsumexp error {:.3e} > {:.3e}",
        g.name,
        rep.lse_max_abs,
        rep.logit_tolerance
    );
    assert!(
        rep.vad_max_abs <= rep.vad_tolerance,
        "{}: end-of-turn probability error {:.3e} > {:.3e}",
        g.name,
        rep.vad_max_abs,
        rep.vad_tolerance
    );
    rep
}

fn check(name: &str) {
    let g = Golden::load(name);
    let model = model_for(&g);
    let m = compare_mimi(&g, &model);
    let l = compare_lm(&g, &model, model.cpu_session().unwrap());
    eprintln!(
        "{name}: Mimi {} frames: latent error ≤ {:.2e} L2 / {:.2e} max (tolerance {LATENT_L2_TOLERANCE:.1e} L2); \
         {} of {} codes differ, {} ties taken {:?}, {} codes within the tie distance {:.2e}. \
         LM {} steps: tokens identical (closest golden top-2 gap {:.2e}); logits ≤ {:.2e} (tolerance {:.2e}), \
         logsumexp ≤ {:.2e}, end-of-turn ≤ {:.2e} (tolerance {:.2e})",
        m.frames,
        m.latent_max_l2,
        m.latent_max_abs,
        m.codes_differing,
        m.codes,
        m.ties_taken.len(),
        m.ties_taken,
        m.near_ties,
        m.tie_distance,
        l.steps,
        l.min_top2_gap,
        l.logit_max_abs,
        l.logit_tolerance,
        l.lse_max_abs,
        l.vad_max_abs,
        l.vad_tolerance
    );
}

/// Tiny model (d 256, 2 layers), a chirp with noise, 10 s.
#[test]
fn tiny_chirp() {
    check("tiny_chirp");
}

/// Tiny model, the first 10 s of bria.mp3 (English).
#[test]
fn tiny_bria() {
    check("tiny_bria");
}

/// Tiny model, the first 10 s of sample_fr_hibiki_crepes.mp3 (French).
#[test]
fn tiny_crepes() {
    check("tiny_crepes");
}

/// Mid-size model (d 512, 4 layers), the first 30 s of bria.mp3: past Mimi's
/// 10 s attention context (250 encoder steps at 25 Hz).
#[test]
fn mid_bria() {
    check("mid_bria");
}

/// The full stt-1b-en_fr architecture (d 2048, 16 layers), 50 frames of
/// sample_fr_hibiki_crepes.mp3. Ignored by default: it synthesizes a 4 GB f32
/// model on disk and holds ~8 GB of memory.
#[test]
#[ignore = "synthesizes a 4 GB f32 model; run with --include-ignored (just parity-upstream does)"]
fn full_crepes() {
    check("full_crepes");
}

/// The GPU engine against the same goldens (LM only, on the golden's codes).
/// Without an adapter it says so and passes, unless STT_REQUIRE_GPU=1.
fn check_gpu(name: &str) {
    let g = Golden::load(name);
    let model = model_for(&g);
    let opts = stt_wgpu::GpuOptions::default();
    let gpu = match block_on(stt_wgpu::GpuStepper::new(
        model.lm.clone(),
        &model.config,
        opts,
    )) {
        Ok(s) => s,
        Err(stt_wgpu::GpuError::NoAdapter(e))
            if std::env::var("STT_REQUIRE_GPU").as_deref() != Ok("1") =>
        {
            eprintln!("no GPU adapter ({e}): skipping");
            return;
        }
        Err(e) => panic!("GPU stepper: {e}"),
    };
    let adapter = gpu.capabilities().adapter.clone();
    let mimi = model.mimi_encoder(&Device::Cpu).unwrap();
    let session = Session::new(&model.config, mimi, gpu, model.tokenizer.clone());
    let l = compare_lm(&g, &model, session);
    eprintln!(
        "{name} on the GPU ({adapter}): {} steps, tokens identical to PyTorch; logits ≤ {:.2e} (tolerance {:.2e}), \
         logsumexp ≤ {:.2e}, end-of-turn ≤ {:.2e} (tolerance {:.2e})",
        l.steps, l.logit_max_abs, l.logit_tolerance, l.lse_max_abs, l.vad_max_abs, l.vad_tolerance
    );
}

/// Tiny model, French: the GPU engine against PyTorch.
#[test]
fn gpu_tiny_crepes() {
    check_gpu("tiny_crepes");
}

/// Full size on the GPU against PyTorch (a real GPU: lavapipe would take
/// minutes per step of the 4 GB model).
#[test]
#[ignore = "synthesizes a 4 GB f32 model and wants a real GPU"]
fn gpu_full_crepes() {
    check_gpu("full_crepes");
}
