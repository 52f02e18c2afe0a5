//! The GGML block formats stt-web reads and writes: Q8_0, Q4_0 and Q4_K.
//! Byte layouts are ggml's (what candle and llama.cpp read). Quantizing is
//! candle's (ggml's scale search: a plain min/max fit had up to 1.35× its
//! error); dequantizing has a plain scalar version here, the slow reference
//! the GPU layouts and the tests compare against.

use candle_core::quantized::QTensor;
use candle_core::{Device, Tensor};
use half::f16;

use crate::error::Result;

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

/// Quantizes `xs` (a multiple of the block size) and appends the blocks:
/// candle's quantizer (bit-identical to ggml's) for the block formats.
pub fn quantize(ty: QuantType, xs: &[f32], out: &mut Vec<u8>) -> Result<()> {
    match ty {
        QuantType::F32 => xs
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        QuantType::F16 => xs
            .iter()
            .for_each(|x| out.extend_from_slice(&f16::from_f32(*x).to_le_bytes())),
        QuantType::Q8_0 | QuantType::Q4_0 | QuantType::Q4K => {
            let t = Tensor::from_slice(xs, xs.len(), &Device::Cpu)?;
            let q = QTensor::quantize(&t, ty.ggml_dtype())?;
            out.extend_from_slice(&q.data()?);
        }
    }
    Ok(())
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

/// Scale/min pair `j` (0..8) of a Q4_K block's 12 packed bytes.
pub fn q4k_scale_min(j: usize, s: &[u8]) -> (u8, u8) {
    if j < 4 {
        (s[j] & 63, s[j + 4] & 63)
    } else {
        (
            (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4),
            (s[j + 4] >> 4) | ((s[j] >> 6) << 4),
        )
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
    use candle_core::Device;

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

    /// The reference dequantizer agrees with candle's, bit for bit, on
    /// candle-quantized blocks (the quantizer is candle's own).
    #[test]
    fn dequantizer_matches_candle() {
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
            quantize(ty, &xs, &mut bytes).unwrap();
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
            let theirs = q.dequantize(&Device::Cpu).unwrap().flatten_all().unwrap();
            assert_eq!(ours, theirs.to_vec1::<f32>().unwrap(), "{ty:?}");
            // A quantizer that wrote garbage would still agree above.
            let err = rms(&ours, &xs);
            let bound = match ty {
                QuantType::F32 => 0.0,
                QuantType::F16 => 1e-3,
                QuantType::Q8_0 => 0.01,
                _ => 0.15,
            };
            assert!(err <= bound, "{ty:?}: rms error {err} over {bound}");
        }
    }
}
