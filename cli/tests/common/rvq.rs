//! Mimi's split residual quantizer in f64, read from the Mimi file itself:
//! the reference that tells a code flip caused by f32 rounding (a near-tie)
//! from a bug. moshi picks each code as the nearest codeword of the
//! projected residual (`EuclideanCodebook::encode_slow`: argmin of
//! ‖e‖²/2 − r·e, in f32).

use std::path::Path;

pub struct Level {
    /// Input projection of this group (256 × 512), row-major.
    proj: Vec<f64>,
    /// Codewords (embedding_sum / max(cluster_usage, 1e-5)), 2048 × 256.
    codebooks: Vec<Vec<f64>>,
}

pub struct Rvq {
    /// Semantic (1 codebook) then acoustic (n_q − 1): each group projects
    /// the latent afresh and walks its own residual.
    groups: [Level; 2],
    dim: usize,
    latent: usize,
}

/// Where two code rows first differ and how close that choice was.
#[derive(Debug)]
pub struct Flip {
    pub codebook: usize,
    /// ‖r−e_a‖² − ‖r−e_b‖² for the first path's residual (a its choice).
    pub gap: f64,
    /// How far f32 rounding between the two paths can move the gap:
    /// 2‖r₁−r₂‖·‖e_a−e_b‖ plus moshi's own f32 rounding of both distances.
    pub explained_up_to: f64,
}

fn f64s(t: &candle_core::Tensor) -> Vec<f64> {
    t.flatten_all()
        .unwrap()
        .to_dtype(candle_core::DType::F64)
        .unwrap()
        .to_vec1()
        .unwrap()
}

impl Rvq {
    pub fn load(mimi_file: &Path, n_q: usize) -> Self {
        let t = candle_core::safetensors::load(mimi_file, &candle_core::Device::Cpu).unwrap();
        let group = |name: &str, levels: usize| {
            let proj = f64s(&t[&format!("quantizer.{name}.input_proj.weight")]);
            let codebooks = (0..levels)
                .map(|l| {
                    let p = format!("quantizer.{name}.vq.layers.{l}._codebook.");
                    let sum = f64s(&t[&format!("{p}embedding_sum")]);
                    let usage = f64s(&t[&format!("{p}cluster_usage")]);
                    let dim = sum.len() / usage.len();
                    sum.iter()
                        .enumerate()
                        .map(|(i, s)| s / (usage[i / dim] as f32).max(1e-5) as f64)
                        .collect()
                })
                .collect();
            Level { proj, codebooks }
        };
        let groups = [group("rvq_first", 1), group("rvq_rest", n_q - 1)];
        let dim = groups[0].codebooks[0].len() / 2048;
        let latent = groups[0].proj.len() / dim;
        Self {
            groups,
            dim,
            latent,
        }
    }

    fn codeword<'a>(&self, level: &'a Level, l: usize, code: u32) -> &'a [f64] {
        let d = self.dim;
        &level.codebooks[l][code as usize * d..(code as usize + 1) * d]
    }

    fn project(&self, level: &Level, x: &[f32]) -> Vec<f64> {
        (0..self.dim)
            .map(|o| {
                let row = &level.proj[o * self.latent..(o + 1) * self.latent];
                row.iter().zip(x).map(|(w, x)| w * *x as f64).sum()
            })
            .collect()
    }

    /// The first codebook where `a` (codes of latent `xa`) and `b` (of `xb`)
    /// differ, or `None` when they agree everywhere.
    pub fn first_flip(&self, xa: &[f32], a: &[u32], xb: &[f32], b: &[u32]) -> Option<Flip> {
        let k = a.iter().zip(b).position(|(p, q)| p != q)?;
        let (g, l) = if k == 0 { (0, 0) } else { (1, k - 1) };
        let level = &self.groups[g];
        let (mut ra, mut rb) = (self.project(level, xa), self.project(level, xb));
        // Both paths subtracted the same codewords before level l.
        for (prev, &code) in a[if g == 0 { 0 } else { 1 }..k].iter().enumerate() {
            let e = self.codeword(level, prev, code);
            for i in 0..self.dim {
                ra[i] -= e[i];
                rb[i] -= e[i];
            }
        }
        let (ea, eb) = (self.codeword(level, l, a[k]), self.codeword(level, l, b[k]));
        let dist =
            |r: &[f64], e: &[f64]| r.iter().zip(e).map(|(x, y)| (x - y).powi(2)).sum::<f64>();
        let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
        let delta: Vec<f64> = ra.iter().zip(&rb).map(|(x, y)| x - y).collect();
        let diff: Vec<f64> = ea.iter().zip(eb).map(|(x, y)| x - y).collect();
        // γ_n = n·u/(1 − n·u): the f32 dot-product bound for n = 256 terms.
        let u = f32::EPSILON as f64 / 2.0;
        let gamma = self.dim as f64 * u / (1.0 - self.dim as f64 * u);
        let (nr, na, nb) = (norm(&ra), norm(ea), norm(eb));
        let rounding = gamma * (2.0 * nr * (na + nb) + na * na + nb * nb);
        Some(Flip {
            codebook: k,
            gap: dist(&ra, ea) - dist(&ra, eb),
            explained_up_to: 2.0 * norm(&delta) * norm(&diff) + rounding,
        })
    }

    /// The codes the f64 quantizer picks for latent `x` (debugging).
    pub fn encode(&self, x: &[f32]) -> Vec<u32> {
        let mut out = vec![];
        for (g, level) in self.groups.iter().enumerate() {
            let mut r = self.project(level, x);
            for l in 0..level.codebooks.len() {
                let best = (0..2048u32)
                    .min_by(|&a, &b| {
                        let da: f64 = r
                            .iter()
                            .zip(self.codeword(level, l, a))
                            .map(|(x, y)| (x - y).powi(2))
                            .sum();
                        let db: f64 = r
                            .iter()
                            .zip(self.codeword(level, l, b))
                            .map(|(x, y)| (x - y).powi(2))
                            .sum();
                        da.total_cmp(&db)
                    })
                    .unwrap();
                let e = self.codeword(level, l, best).to_vec();
                for i in 0..self.dim {
                    r[i] -= e[i];
                }
                out.push(best);
            }
            let _ = g;
        }
        out
    }
}
