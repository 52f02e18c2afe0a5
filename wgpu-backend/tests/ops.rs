//! The engine's kernels as Candle custom ops, against candle's own ops on
//! seeded random inputs, for every weight type and both feature modes
//! (optional features on where offered; f16 and subgroups off).
//!
//! Tolerances, per output, from the arithmetic (ε = 2⁻²⁴, f32):
//! - matvec vs candle's f32 matmul on the same (dequantized) weights: both
//!   sum K products in different orders; recursive summation errs by at most
//!   K·ε·Σ|wₖ·inₖ| each, so 2K·ε·Σ|wₖ·inₖ| between them. RmsNorm input: the
//!   Σx² over K terms (K·ε), its sqrt (halves it) and the scaling (2ε) add
//!   (K/2 + 3)·ε relative to each input. SiLU: Vulkan's exp may err by
//!   3 + 2|x| ulp, the division by 2.5. Bound: (3K + 64)·ε·Σ|wₖ·inₖ|.
//! - matvec vs candle's quantized matmul (`QMatMul`): candle also rounds the
//!   activations to 8 bits per block (Q8_0 for Q8_0/Q4_0, Q8_K for Q4_K),
//!   scale amax/127 (stored as f16 for Q8_0, ≤ 2⁻¹¹ relative), so each
//!   activation moves by ≤ 0.6·amax_b/127; plus the f32 bound above.
//! - attention vs softmax(q·kᵀ/√d)·V in candle over the same keys: each
//!   score errs by ≤ (d + 8)·ε·Σ|qᵢkᵢ|/√d (dot, RoPE rotation, scaling), a
//!   probability by twice the largest score error plus exp's 64·ε, and the
//!   weighted sum of n values by n·ε: bound Σⱼ pⱼ|vⱼ|·(2δs + (n + 64)·ε).
//!   The split-wise merge (a rescale by exp(mₛ − M), a division, a sum over
//!   ≤ 16 splits) stays inside the 64·ε.

use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Device, Module, Tensor, D};
use stt_wgpu::ops::{GpuAttention, GpuLinear, GpuOps};
use stt_wgpu::{FeatureRequest, GpuError};

const EPS: f32 = f32::EPSILON / 2.0;
const NORM_EPS: f32 = 1e-8;

fn ops(features: FeatureRequest, lanes: Option<u32>) -> Option<Arc<GpuOps>> {
    match GpuOps::with_lanes(false, features, lanes) {
        Ok(o) => Some(o),
        Err(GpuError::NoAdapter(e)) if std::env::var("STT_REQUIRE_GPU").as_deref() != Ok("1") => {
            eprintln!("no GPU adapter ({e}): skipping");
            None
        }
        Err(e) => panic!("GPU ops: {e}"),
    }
}

/// Feature modes × matvec lanes per row: the adapter's choice with its
/// features, then the plain path with 8 and with 32 lanes.
const MODES: [(&str, FeatureRequest, Option<u32>); 3] = [
    (
        "features on, default lanes",
        FeatureRequest {
            shader_f16: true,
            subgroups: true,
            timestamps: false,
        },
        None,
    ),
    (
        "f16 and subgroups off, 8 lanes",
        FeatureRequest::NONE,
        Some(8),
    ),
    (
        "f16 and subgroups off, 32 lanes",
        FeatureRequest::NONE,
        Some(32),
    ),
];

/// Seeded normal-ish values (sum of uniforms), scaled.
fn randn(seed: u64, n: usize, scale: f32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut uniform = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 40) as f32 / (1u64 << 24) as f32
    };
    (0..n)
        .map(|_| ((0..4).map(|_| uniform()).sum::<f32>() - 2.0) * 1.7 * scale)
        .collect()
}

fn tensor(xs: Vec<f32>, dims: &[usize]) -> Tensor {
    Tensor::from_vec(xs, dims, &Device::Cpu).unwrap()
}

fn rows(t: &Tensor) -> Vec<Vec<f32>> {
    t.to_vec2::<f32>().unwrap()
}

/// max over outputs of |got − want| / bound (must be ≤ 1).
fn worst(got: &Tensor, want: &Tensor, bound: &Tensor) -> f32 {
    let (g, w, b) = (rows(got), rows(want), rows(bound));
    let mut worst = 0f32;
    for ((g, w), b) in g.iter().zip(&w).zip(&b) {
        for ((g, w), b) in g.iter().zip(w).zip(b) {
            assert!(g.is_finite(), "non-finite GPU output");
            worst = worst.max((g - w).abs() / b.max(f32::MIN_POSITIVE));
        }
    }
    worst
}

#[derive(Clone, Copy, Debug)]
enum Weights {
    F32,
    Quant(GgmlDType),
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Input {
    Plain,
    RmsNorm,
    SiluGate,
    /// RmsNorm input, then silu(first half of the rows) ⊙ second half.
    RmsNormGatedOutput,
}

#[test]
fn matvec_ops_match_candle_for_every_weight_type() {
    // (K, rows): a partial workgroup of rows, K past the 2048-float input cache.
    let shapes = [(256usize, 40usize), (512, 96), (2560, 72)];
    let weights = [
        Weights::F32,
        Weights::Quant(GgmlDType::F16),
        Weights::Quant(GgmlDType::Q8_0),
        Weights::Quant(GgmlDType::Q4_0),
        Weights::Quant(GgmlDType::Q4K),
    ];
    let m = 3;
    for (mode, features, lanes) in MODES {
        let Some(ops) = ops(features, lanes) else {
            return;
        };
        let caps = ops.capabilities();
        let mut report = vec![];
        for (si, &(k, n)) in shapes.iter().enumerate() {
            let w = tensor(randn(10 + si as u64, n * k, 0.05), &[n, k]);
            for (wi, &wt) in weights.iter().enumerate() {
                let (linear, w_deq, qt) = match wt {
                    Weights::F32 => (
                        GpuLinear::from_tensor(&ops, "w", &w).unwrap(),
                        w.clone(),
                        None,
                    ),
                    Weights::Quant(dt) => {
                        let q = QTensor::quantize(&w, dt).unwrap();
                        let deq = q.dequantize(&Device::Cpu).unwrap();
                        (
                            GpuLinear::from_qtensor(&ops, "w", &q).unwrap(),
                            deq,
                            Some(q),
                        )
                    }
                };
                let inputs = [
                    Input::Plain,
                    Input::RmsNorm,
                    Input::SiluGate,
                    Input::RmsNormGatedOutput,
                ];
                for input in inputs {
                    let seed = 100 + 10 * si as u64 + wi as u64;
                    let width = if input == Input::SiluGate { 2 * k } else { k };
                    let x = tensor(randn(seed, m * width, 1.0), &[m, width]);
                    let alpha = tensor(randn(seed + 7, k, 1.0), &[k]);
                    let (got, inp) = match input {
                        Input::Plain => (linear.forward(&x).unwrap(), x.clone()),
                        Input::RmsNorm => (
                            linear.forward_rms_norm(&x, &alpha, NORM_EPS).unwrap(),
                            candle_nn::ops::rms_norm(&x, &alpha, NORM_EPS).unwrap(),
                        ),
                        Input::RmsNormGatedOutput => (
                            linear.forward_rms_norm_gated(&x, &alpha, NORM_EPS).unwrap(),
                            candle_nn::ops::rms_norm(&x, &alpha, NORM_EPS).unwrap(),
                        ),
                        Input::SiluGate => {
                            let a = x.narrow(D::Minus1, 0, k).unwrap();
                            let b = x.narrow(D::Minus1, k, k).unwrap();
                            (
                                linear.forward_silu_gated(&x).unwrap(),
                                (candle_nn::ops::silu(&a).unwrap() * b).unwrap(),
                            )
                        }
                    };
                    let want = inp.matmul(&w_deq.t().unwrap()).unwrap();
                    let abs = inp
                        .abs()
                        .unwrap()
                        .matmul(&w_deq.abs().unwrap().t().unwrap())
                        .unwrap();
                    let bound = (abs * ((3 * k + 64) as f64 * EPS as f64)).unwrap();
                    let (want, bound) = if input == Input::RmsNormGatedOutput {
                        gated(&want, &bound)
                    } else {
                        (want, bound)
                    };
                    let r = worst(&got, &want, &bound);
                    assert!(
                        r <= 1.0,
                        "{mode}: {wt:?} {input:?} K={k}: error {r} × bound vs candle matmul"
                    );
                    report.push(r);
                    // Candle's quantized matmul, which rounds activations too.
                    if let (Input::Plain, Some(_), Weights::Quant(dt)) = (input, &qt, wt) {
                        if dt == GgmlDType::F16 {
                            continue;
                        }
                        let qmm =
                            QMatMul::from_qtensor(QTensor::quantize(&w, dt).unwrap()).unwrap();
                        let candle_q = qmm.forward(&x).unwrap();
                        let block = if dt == GgmlDType::Q4K { 256 } else { 32 };
                        let amax = x
                            .abs()
                            .unwrap()
                            .reshape((m, k / block, block))
                            .unwrap()
                            .max(D::Minus1)
                            .unwrap();
                        let wabs = w_deq
                            .abs()
                            .unwrap()
                            .reshape((n, k / block, block))
                            .unwrap()
                            .sum(D::Minus1)
                            .unwrap();
                        let act = (amax * (0.6 / 127.0))
                            .unwrap()
                            .matmul(&wabs.t().unwrap())
                            .unwrap();
                        let qbound = (act + bound_for(&x, &w_deq, k)).unwrap();
                        let r = worst(&got, &candle_q, &qbound);
                        assert!(
                            r <= 1.0,
                            "{mode}: {wt:?} K={k}: error {r} × bound vs candle QMatMul"
                        );
                    }
                }
            }
        }
        let max = report.iter().fold(0f32, |a, &b| a.max(b));
        eprintln!(
            "matvec ops ({mode}: shader-f16 {}, subgroups {}) on {}: {} cases, worst error {max:.3} × bound",
            caps.shader_f16,
            caps.subgroups,
            caps.adapter,
            report.len()
        );
    }
}

/// silu(a) ⊙ b over the two halves of `y`, and its bound from the bound
/// `e` on y: |silu'| ≤ 1.1, so Δ ≤ 1.1·e_a·|b| + |silu(a)|·e_b, plus 16·ε
/// relative for exp and the division.
fn gated(y: &Tensor, e: &Tensor) -> (Tensor, Tensor) {
    let h = y.dim(D::Minus1).unwrap() / 2;
    let half = |t: &Tensor, i: usize| t.narrow(D::Minus1, i * h, h).unwrap();
    let (a, b) = (half(y, 0), half(y, 1));
    let silu = candle_nn::ops::silu(&a).unwrap();
    let out = (&silu * &b).unwrap();
    let bound = ((half(e, 0) * b.abs().unwrap()).unwrap() * 1.1).unwrap();
    let bound = (bound + (silu.abs().unwrap() * half(e, 1)).unwrap()).unwrap();
    let bound = (bound + (out.abs().unwrap() * (16.0 * EPS as f64)).unwrap()).unwrap();
    (out, bound)
}

fn bound_for(x: &Tensor, w: &Tensor, k: usize) -> Tensor {
    let abs = x
        .abs()
        .unwrap()
        .matmul(&w.abs().unwrap().t().unwrap())
        .unwrap();
    (abs * ((3 * k + 64) as f64 * EPS as f64)).unwrap()
}

#[test]
fn matvec_op_rejects_a_wrong_width() {
    let Some(ops) = ops(FeatureRequest::default(), None) else {
        return;
    };
    let w = tensor(randn(1, 32 * 64, 0.1), &[32, 64]);
    let linear = GpuLinear::from_tensor(&ops, "w", &w).unwrap();
    let x = tensor(randn(2, 32, 1.0), &[1, 32]);
    let e = linear.forward(&x).expect_err("width 32 for K = 64");
    assert!(e.to_string().contains("must end in 64"), "{e}");
    let bad = tensor(randn(3, 33 * 10, 0.1), &[10, 33]);
    assert!(GpuLinear::from_tensor(&ops, "bad", &bad).is_err());
}

/// candle's reference for one step: RoPE (rope_i on the same cos/sin), the
/// keys of the last `context` steps, softmax(q·kᵀ/√d)·V.
struct CandleAttention {
    heads: usize,
    head_dim: usize,
    context: usize,
    inv_freq: Vec<f32>,
    keys: Vec<Tensor>,
    values: Vec<Tensor>,
}

impl CandleAttention {
    /// (output, bound) for the next step.
    fn step(&mut self, qkv: &[f32], pos: usize) -> (Vec<f32>, Vec<f32>) {
        let (h, hd) = (self.heads, self.head_dim);
        let d = h * hd;
        let part = |i: usize| tensor(qkv[i * d..(i + 1) * d].to_vec(), &[1, h, 1, hd]);
        let freqs: Vec<f32> = self.inv_freq.iter().map(|f| pos as f32 * f).collect();
        let cos = tensor(freqs.iter().map(|f| f.cos()).collect(), &[1, hd / 2]);
        let sin = tensor(freqs.iter().map(|f| f.sin()).collect(), &[1, hd / 2]);
        let q = candle_nn::rotary_emb::rope_i(&part(0), &cos, &sin).unwrap();
        let k = candle_nn::rotary_emb::rope_i(&part(1), &cos, &sin).unwrap();
        self.keys.push(k.reshape((h, 1, hd)).unwrap());
        self.values.push(part(2).reshape((h, 1, hd)).unwrap());
        if self.keys.len() > self.context {
            self.keys.remove(0);
            self.values.remove(0);
        }
        let keys = Tensor::cat(&self.keys, 1).unwrap(); // (h, n, hd)
        let values = Tensor::cat(&self.values, 1).unwrap();
        let q = q.reshape((h, 1, hd)).unwrap();
        let scale = 1.0 / (hd as f64).sqrt();
        let scores = (q.matmul(&keys.t().unwrap()).unwrap() * scale).unwrap();
        let p = candle_nn::ops::softmax_last_dim(&scores).unwrap();
        let out = p.matmul(&values).unwrap().flatten_all().unwrap();
        // Bound (see the header).
        let n = self.keys.len();
        let qk_abs = (q
            .abs()
            .unwrap()
            .matmul(&keys.abs().unwrap().t().unwrap())
            .unwrap()
            * scale)
            .unwrap();
        let ds = (qk_abs.max(D::Minus1).unwrap() * ((hd + 8) as f64 * EPS as f64)).unwrap(); // (h, 1)
        let pv = p.matmul(&values.abs().unwrap()).unwrap(); // (h, 1, hd)
        let rel = ((ds * 2.0).unwrap() + (n + 64) as f64 * EPS as f64).unwrap();
        let bound = pv.broadcast_mul(&rel.unsqueeze(2).unwrap()).unwrap();
        (
            out.to_vec1().unwrap(),
            bound.flatten_all().unwrap().to_vec1().unwrap(),
        )
    }
}

#[test]
fn attention_op_matches_candle_across_the_ring_wrap() {
    // 150 keys: three 64-key splits, the last partial; past the ring wrap.
    let (dim, heads, context, max_period) = (128usize, 4usize, 150usize, 10_000f32);
    let head_dim = dim / heads;
    let steps = 2 * context + 10;
    for (mode, features, lanes) in MODES {
        let Some(ops) = ops(features, lanes) else {
            return;
        };
        let attn = GpuAttention::new(&ops, dim, heads, context, max_period).unwrap();
        let mut reference = CandleAttention {
            heads,
            head_dim,
            context,
            inv_freq: (0..head_dim)
                .step_by(2)
                .map(|i| 1f32 / max_period.powf(i as f32 / head_dim as f32))
                .collect(),
            keys: vec![],
            values: vec![],
        };
        let mut worst = 0f32;
        for pos in 0..steps {
            let qkv = randn(1000 + pos as u64, 3 * dim, 1.0);
            let got: Vec<f32> = attn
                .step(&tensor(qkv.clone(), &[3 * dim]))
                .unwrap()
                .to_vec1()
                .unwrap();
            let (want, bound) = reference.step(&qkv, pos);
            for ((g, w), b) in got.iter().zip(&want).zip(&bound) {
                worst = worst.max((g - w).abs() / b);
            }
            assert!(worst <= 1.0, "{mode}: step {pos}: error {worst} × bound");
        }
        eprintln!(
            "attention op ({mode}) on {}: {steps} steps over a {context}-step ring, worst error {worst:.3} × bound",
            ops.capabilities().adapter
        );
        attn.reset();
        let x = tensor(randn(5, 3 * dim, 1.0), &[3 * dim]);
        let first = attn.step(&x).unwrap().to_vec1::<f32>().unwrap();
        // Position 0, one key: the output is v itself (after softmax of one).
        for (a, b) in first.iter().zip(&randn(5, 3 * dim, 1.0)[2 * dim..]) {
            assert!((a - b).abs() <= 4.0 * EPS * b.abs(), "{a} vs {b}");
        }
    }
}
