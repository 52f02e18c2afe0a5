//! The GGML block formats stt-web reads and writes: Q8_0, Q4_0 and Q4_K.
//! Byte layouts are ggml's (what candle and llama.cpp read). Each format has a
//! quantizer of our own and a plain scalar dequantizer; the tests check both
//! against candle's implementation.

use half::f16;

/// GGML type ids as stored in GGUF tensor infos.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuantType {
    F32,
    F16,
    Q4_0,
    Q8_0,
    Q4K,
}

impl QuantType {
    pub fn ggml_type_id(self) -> u32 {
        match self {
            Self::F32 => 0,
            Self::F16 => 1,
            Self::Q4_0 => 2,
            Self::Q8_0 => 8,
            Self::Q4K => 12,
        }
    }

    /// The same type as candle names it.
    pub fn ggml_dtype(self) -> candle_core::quantized::GgmlDType {
        use candle_core::quantized::GgmlDType;
        match self {
            Self::F32 => GgmlDType::F32,
            Self::F16 => GgmlDType::F16,
            Self::Q4_0 => GgmlDType::Q4_0,
            Self::Q8_0 => GgmlDType::Q8_0,
            Self::Q4K => GgmlDType::Q4K,
        }
    }

    /// Elements per block.
    pub fn block_elems(self) -> usize {
        match self {
            Self::F32 | Self::F16 => 1,
            Self::Q4_0 | Self::Q8_0 => 32,
            Self::Q4K => QK_K,
        }
    }

    /// Bytes per block.
    pub fn block_bytes(self) -> usize {
        match self {
            Self::F32 => 4,
            Self::F16 => 2,
            Self::Q4_0 => Q4_0_BLOCK_BYTES,
            Self::Q8_0 => Q8_0_BLOCK_BYTES,
            Self::Q4K => Q4K_BLOCK_BYTES,
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_lowercase().as_str() {
            "f32" => Self::F32,
            "f16" => Self::F16,
            "q4_0" | "q40" => Self::Q4_0,
            "q8_0" | "q80" => Self::Q8_0,
            "q4_k" | "q4k" => Self::Q4K,
            _ => return None,
        })
    }

    /// The type a tensor of `shape` gets when `self` is requested: vectors
    /// stay f32; a matrix whose rows are not whole blocks falls back to
    /// Q8_0, else f32. `stt-cli quantize` and quantize-at-load share it, so
    /// both give the same values.
    pub fn for_shape(self, shape: &[usize]) -> Self {
        let rows_of_blocks = |t: Self| shape.last().is_some_and(|&k| k % t.block_elems() == 0);
        let is_matrix = shape.iter().filter(|&&d| d > 1).count() >= 2;
        if !is_matrix {
            Self::F32
        } else if rows_of_blocks(self) {
            self
        } else if rows_of_blocks(Self::Q8_0) {
            Self::Q8_0
        } else {
            Self::F32
        }
    }

    /// Bytes for `n` elements (`n` a multiple of the block size).
    pub fn bytes_for(self, n: usize) -> usize {
        n / self.block_elems() * self.block_bytes()
    }
}

/// Q8_0: f16 scale `d`, then 32 signed bytes; x = d * q.
pub const Q8_0_BLOCK_BYTES: usize = 2 + 32;
/// Q4_0: f16 scale `d`, then 16 bytes of nibbles (element i in the low nibble
/// of byte i, element i + 16 in its high nibble); x = d * (q - 8).
pub const Q4_0_BLOCK_BYTES: usize = 2 + 16;
/// Q4_K super-block of 256 = 8 sub-blocks of 32: f16 `d`, f16 `dmin`, 12 bytes
/// of 6-bit (scale, min) pairs, 128 bytes of nibbles; x = d*sc*q - dmin*m.
pub const QK_K: usize = 256;
pub const Q4K_BLOCK_BYTES: usize = 2 + 2 + 12 + QK_K / 2;

/// Quantizes `xs` (a multiple of the block size) and appends the blocks.
pub fn quantize(ty: QuantType, xs: &[f32], out: &mut Vec<u8>) {
    match ty {
        QuantType::F32 => xs
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        QuantType::F16 => xs
            .iter()
            .for_each(|x| out.extend_from_slice(&f16::from_f32(*x).to_le_bytes())),
        QuantType::Q8_0 => xs.chunks_exact(32).for_each(|b| quantize_q8_0(b, out)),
        QuantType::Q4_0 => xs.chunks_exact(32).for_each(|b| quantize_q4_0(b, out)),
        QuantType::Q4K => xs.chunks_exact(QK_K).for_each(|b| quantize_q4k(b, out)),
    }
}

/// Dequantizes whole blocks of `bytes`, appending to `out`.
pub fn dequantize(ty: QuantType, bytes: &[u8], out: &mut Vec<f32>) {
    let bb = ty.block_bytes();
    for b in bytes.chunks_exact(bb) {
        match ty {
            QuantType::F32 => out.push(f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            QuantType::F16 => out.push(f16::from_le_bytes([b[0], b[1]]).to_f32()),
            QuantType::Q8_0 => {
                let d = f16::from_le_bytes([b[0], b[1]]).to_f32();
                out.extend(b[2..].iter().map(|&q| d * (q as i8) as f32));
            }
            QuantType::Q4_0 => {
                let d = f16::from_le_bytes([b[0], b[1]]).to_f32();
                let qs = &b[2..];
                out.extend(qs.iter().map(|&q| d * ((q & 0xF) as i32 - 8) as f32));
                out.extend(qs.iter().map(|&q| d * ((q >> 4) as i32 - 8) as f32));
            }
            QuantType::Q4K => dequantize_q4k(b, out),
        }
    }
}

fn quantize_q8_0(xs: &[f32], out: &mut Vec<u8>) {
    let amax = xs.iter().fold(0f32, |m, x| m.max(x.abs()));
    let d = amax / 127.0;
    let id = if d > 0.0 { 1.0 / d } else { 0.0 };
    out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
    out.extend(xs.iter().map(|x| ((x * id).round() as i8) as u8));
}

fn quantize_q4_0(xs: &[f32], out: &mut Vec<u8>) {
    // As ggml: the value of largest magnitude maps to -8, so its sign picks
    // which end of the asymmetric [-8, 7] range is used in full.
    let max = xs
        .iter()
        .fold(0f32, |m, &x| if x.abs() > m.abs() { x } else { m });
    let d = max / -8.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
    let q = |x: f32| ((x * id + 8.5) as i32).clamp(0, 15) as u8;
    for i in 0..16 {
        out.push(q(xs[i]) | (q(xs[i + 16]) << 4));
    }
}

/// Scale/min pair `j` (0..8) of a Q4_K block's 12 packed bytes.
fn q4k_scale_min(j: usize, s: &[u8]) -> (u8, u8) {
    if j < 4 {
        (s[j] & 63, s[j + 4] & 63)
    } else {
        (
            (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4),
            (s[j + 4] >> 4) | ((s[j] >> 6) << 4),
        )
    }
}

fn quantize_q4k(xs: &[f32], out: &mut Vec<u8>) {
    // Per sub-block: an affine map [min, max] → [0, 15] with min ≤ 0, then the
    // 8 scales and 8 mins are themselves quantized to 6 bits against the
    // block's largest scale (d) and largest min (dmin).
    let mut scales = [0f32; 8];
    let mut mins = [0f32; 8];
    for (j, sub) in xs.chunks_exact(32).enumerate() {
        let lo = sub.iter().fold(0f32, |m, &x| m.min(x));
        let hi = sub.iter().fold(f32::MIN, |m, &x| m.max(x));
        scales[j] = (hi - lo) / 15.0;
        mins[j] = -lo;
    }
    let max_scale = scales.iter().fold(0f32, |m, &x| m.max(x));
    let max_min = mins.iter().fold(0f32, |m, &x| m.max(x));
    let d = f16::from_f32(max_scale / 63.0);
    let dmin = f16::from_f32(max_min / 63.0);
    let (df, dminf) = (d.to_f32(), dmin.to_f32());
    let mut sc = [0u8; 8];
    let mut mn = [0u8; 8];
    for j in 0..8 {
        // Round the scale up so the whole range still fits in 15 steps.
        sc[j] = if df > 0.0 {
            (scales[j] / df).ceil().min(63.0) as u8
        } else {
            0
        };
        mn[j] = if dminf > 0.0 {
            (mins[j] / dminf).round().min(63.0) as u8
        } else {
            0
        };
    }
    let mut packed = [0u8; 12];
    for j in 0..8 {
        if j < 4 {
            packed[j] = sc[j];
            packed[j + 4] = mn[j];
        } else {
            packed[j + 4] = (sc[j] & 0xF) | ((mn[j] & 0xF) << 4);
            packed[j - 4] |= (sc[j] >> 4) << 6;
            packed[j] |= (mn[j] >> 4) << 6;
        }
    }
    let mut q = [0u8; QK_K];
    for (j, sub) in xs.chunks_exact(32).enumerate() {
        let step = df * sc[j] as f32;
        let offset = dminf * mn[j] as f32;
        let inv = if step > 0.0 { 1.0 / step } else { 0.0 };
        for (i, &x) in sub.iter().enumerate() {
            q[32 * j + i] = ((x + offset) * inv).round().clamp(0.0, 15.0) as u8;
        }
    }
    out.extend_from_slice(&d.to_le_bytes());
    out.extend_from_slice(&dmin.to_le_bytes());
    out.extend_from_slice(&packed);
    // 32 bytes per pair of sub-blocks: low nibbles the first, high the second.
    for pair in q.chunks_exact(64) {
        for l in 0..32 {
            out.push(pair[l] | (pair[32 + l] << 4));
        }
    }
}

fn dequantize_q4k(b: &[u8], out: &mut Vec<f32>) {
    let d = f16::from_le_bytes([b[0], b[1]]).to_f32();
    let dmin = f16::from_le_bytes([b[2], b[3]]).to_f32();
    let scales = &b[4..16];
    let qs = &b[16..];
    for (pair, q) in qs.chunks_exact(32).enumerate() {
        let (sc1, m1) = q4k_scale_min(2 * pair, scales);
        let (sc2, m2) = q4k_scale_min(2 * pair + 1, scales);
        let (d1, o1) = (d * sc1 as f32, dmin * m1 as f32);
        let (d2, o2) = (d * sc2 as f32, dmin * m2 as f32);
        out.extend(q.iter().map(|&v| d1 * (v & 0xF) as f32 - o1));
        out.extend(q.iter().map(|&v| d2 * (v >> 4) as f32 - o2));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::quantized::QTensor;
    use candle_core::{Device, Tensor};

    fn gaussian(n: usize, seed: u64) -> Vec<f32> {
        // Box–Muller over a small LCG: deterministic, no dependency.
        let mut s = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let mut next = || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        (0..n)
            .map(|_| {
                let (u, v) = (next(), next());
                ((-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()) as f32
            })
            .collect()
    }

    fn rms(a: &[f32], b: &[f32]) -> f32 {
        (a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f32>() / a.len() as f32).sqrt()
    }

    /// Our bytes, read by candle, dequantize to exactly what our dequantizer
    /// gives; and our quantization error is no worse than candle's own
    /// quantizer's by more than `MAX_ERROR_RATIO`.
    #[test]
    fn matches_candle() {
        // Our Q4_K quantizer is a plain min/max fit; ggml's searches scales
        // (make_qkx2_quants), which buys a little accuracy.
        const MAX_ERROR_RATIO: f32 = 1.35;
        let n = 4 * QK_K * 8;
        let mut xs = gaussian(n, 7);
        xs[5] = 0.0;
        xs[100..132].fill(0.0); // an all-zero block
        xs[300..332].fill(-1.5); // a constant block
        for ty in [
            QuantType::F32,
            QuantType::F16,
            QuantType::Q8_0,
            QuantType::Q4_0,
            QuantType::Q4K,
        ] {
            let mut bytes = vec![];
            quantize(ty, &xs, &mut bytes);
            assert_eq!(bytes.len(), ty.bytes_for(n), "{ty:?} size");
            let mut ours = vec![];
            dequantize(ty, &bytes, &mut ours);

            let storage = candle_core::quantized::QStorage::from_data(
                std::borrow::Cow::Borrowed(&bytes),
                &Device::Cpu,
                ty.ggml_dtype(),
            )
            .unwrap();
            let q = QTensor::new(storage, (8, n / 8)).unwrap();
            let theirs_of_ours = q.dequantize(&Device::Cpu).unwrap().flatten_all().unwrap();
            let theirs_of_ours = theirs_of_ours.to_vec1::<f32>().unwrap();
            assert_eq!(ours, theirs_of_ours, "{ty:?}: dequantizers disagree");

            let t = Tensor::from_vec(xs.clone(), (8, n / 8), &Device::Cpu).unwrap();
            let cq = QTensor::quantize(&t, ty.ggml_dtype()).unwrap();
            let cd = cq.dequantize(&Device::Cpu).unwrap().flatten_all().unwrap();
            let cd = cd.to_vec1::<f32>().unwrap();
            let (e_ours, e_candle) = (rms(&ours, &xs), rms(&cd, &xs));
            assert!(
                e_ours <= e_candle * MAX_ERROR_RATIO + 1e-7,
                "{ty:?}: our rms error {e_ours} vs candle's {e_candle}"
            );
        }
    }
}
