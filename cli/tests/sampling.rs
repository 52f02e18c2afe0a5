//! Text sampling (`Sampling`, `--temperature`): on the CPU, exactly the
//! draws of candle-transformers' `LogitsProcessor` (the sampler moshi's
//! generation uses) for the same seed; on the GPU (Gumbel-max in
//! argmax_heads.wgsl, its own RNG), draws that are reproducible per seed
//! and distributed as softmax(logits / T). Tiny synthetic model, 200 steps
//! of deterministic audio codes, each step fed its own previous token.

mod common;

use candle_core::{Device, Tensor};
use candle_transformers::generation::{LogitsProcessor, Sampling as CandleSampling};
use stt_model::stepper::{CpuStepper, LmStepper, Sampling, StepOutput, TextInput};
use stt_model::{block_on, Model};
use stt_wgpu::GpuOptions;

const STEPS: usize = 200;
const T: f32 = 0.25;

/// From a fresh stream: every step's output, logits kept.
fn run<S: LmStepper>(st: &mut S, codes: &[Vec<u32>]) -> Vec<StepOutput> {
    block_on(st.reset()).unwrap();
    st.keep_logits(true);
    let mut outs = vec![];
    for (i, c) in codes.iter().enumerate() {
        let text = if i == 0 {
            TextInput::Start
        } else {
            TextInput::Previous
        };
        st.submit(text, c).unwrap();
        outs.push(block_on(st.receive()).unwrap());
    }
    outs
}

fn tokens(outs: &[StepOutput]) -> Vec<u32> {
    outs.iter().map(|o| o.text_token).collect()
}

fn argmax(l: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in l.iter().enumerate() {
        if v > l[best] {
            best = i;
        }
    }
    best as u32
}

fn model() -> (Model, Vec<Vec<u32>>) {
    let m = common::tiny_float_model();
    let c = common::lcg_codes(m.config.n_q, m.config.card as u32, STEPS, 0x9e37_79b9);
    (m, c)
}

#[test]
fn cpu_sampling_is_the_logits_processors_draws() {
    let (m, codes) = model();
    let mut cpu = CpuStepper::load(&m.lm, &m.config, &Device::Cpu).unwrap();
    let greedy = tokens(&run(&mut cpu, &codes));
    cpu.set_sampling(Sampling::new(T, 7).unwrap());
    let sampled = run(&mut cpu, &codes);
    // The same draws, one per step, from a LogitsProcessor of the same seed
    // over the same logits.
    let mut lp = LogitsProcessor::from_sampling(
        7,
        CandleSampling::All {
            temperature: T as f64,
        },
    );
    for (i, o) in sampled.iter().enumerate() {
        let logits = o.text_logits.as_ref().unwrap();
        let want = lp
            .sample(&Tensor::from_slice(logits, logits.len(), &Device::Cpu).unwrap())
            .unwrap();
        assert_eq!(o.text_token, want, "step {i}");
    }
    assert_ne!(tokens(&sampled), greedy, "sampling never left the argmax");
    // A reset replays the stream; another seed draws otherwise.
    assert_eq!(tokens(&run(&mut cpu, &codes)), tokens(&sampled));
    cpu.set_sampling(Sampling::new(T, 8).unwrap());
    assert_ne!(tokens(&run(&mut cpu, &codes)), tokens(&sampled));
    // Back to greedy: moshi's choice again.
    cpu.set_sampling(Sampling::GREEDY);
    assert_eq!(tokens(&run(&mut cpu, &codes)), greedy);
}

#[test]
fn bad_temperatures_are_refused() {
    for t in [-0.1, f32::NAN, f32::INFINITY] {
        let e = Sampling::new(t, 0).unwrap_err().to_string();
        assert!(e.contains("temperature"), "{e}");
    }
}

/// The GPU's draws: reproducible per seed; never a token Gumbel noise of
/// 24-bit uniforms cannot reach (G ∈ [−log(−log 2⁻²⁵), −log(−log(1 − 2⁻²⁵))]
/// = [−2.85, 17.33], so a chosen token's logit / T is within 20.2 of the
/// best); and as often the argmax as softmax(logits / T) says: over the
/// steps, #(token = argmax) against Σ p_max, within 5 standard deviations
/// of that binomial sum.
#[test]
fn gpu_sampling_is_reproducible_and_follows_the_softmax() {
    let (m, codes) = model();
    let Some(mut gpu) = common::gpu_stepper(&m, GpuOptions::default()) else {
        return;
    };
    let greedy = tokens(&run(&mut gpu, &codes));
    gpu.set_sampling(Sampling::new(T, 7).unwrap());
    let sampled = run(&mut gpu, &codes);
    assert_eq!(
        tokens(&run(&mut gpu, &codes)),
        tokens(&sampled),
        "not reproducible"
    );
    assert_ne!(tokens(&sampled), greedy, "sampling never left the argmax");
    let (mut hits, mut expected, mut variance) = (0.0, 0.0, 0.0);
    for (i, o) in sampled.iter().enumerate() {
        let l = o.text_logits.as_ref().unwrap();
        let top = l.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let chosen = l[o.text_token as usize];
        assert!(
            (top - chosen) / T <= 20.2,
            "step {i}: token {} is {} below the best logit",
            o.text_token,
            top - chosen
        );
        let z: f64 = l.iter().map(|&v| (((v - top) / T) as f64).exp()).sum();
        let p_max = 1.0 / z;
        expected += p_max;
        variance += p_max * (1.0 - p_max);
        if o.text_token == argmax(l) {
            hits += 1.0;
        }
    }
    let sigma = variance.sqrt();
    eprintln!(
        "GPU sampling at T = {T}: argmax drawn {hits} times, expected {expected:.1} ± {sigma:.1}"
    );
    assert!(
        (hits - expected).abs() <= 5.0 * sigma.max(1.0),
        "argmax drawn {hits} times, expected {expected:.1} ± {sigma:.1}"
    );
    gpu.set_sampling(Sampling::new(T, 8).unwrap());
    assert_ne!(tokens(&run(&mut gpu, &codes)), tokens(&sampled));
    gpu.set_sampling(Sampling::GREEDY);
    assert_eq!(tokens(&run(&mut gpu, &codes)), greedy);
}
