//! Weights that hold NaN or ±Inf are refused at load, naming the tensor: one
//! such value would turn every later activation into NaN, and the stream
//! would "transcribe" silence with no error anywhere.
//!
//! Plain tensors (f32, f16, bf16) are checked value by value on the raw
//! bytes, as they are read (one pass over bytes already in memory). Block
//! formats store integers and a few f16 scales per block: the scales are
//! what can be non-finite, so those are checked (Q4_0, Q4_1, Q8_0, Q4_K,
//! Q5_K, Q6_K, Q8_K); other GGML types pass unchecked.

use candle_core::quantized::GgmlDType;
use candle_core::DType;

use crate::error::{Error, Result};

/// A non-finite value: the element index (for block formats, the first
/// element of the block whose scale it is) and the value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NonFinite {
    pub element: usize,
    pub value: f32,
}

fn f16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

/// f16 with all exponent bits set: ±Inf or NaN.
fn f16_non_finite(bits: u16) -> bool {
    bits & 0x7C00 == 0x7C00
}

/// The first non-finite value of a plain tensor's little-endian bytes.
pub fn first_in_plain(dtype: DType, bytes: &[u8]) -> Option<NonFinite> {
    match dtype {
        DType::F32 => bytes.chunks_exact(4).enumerate().find_map(|(i, b)| {
            let v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            (!v.is_finite()).then_some(NonFinite {
                element: i,
                value: v,
            })
        }),
        DType::F16 => bytes.chunks_exact(2).enumerate().find_map(|(i, b)| {
            let bits = u16::from_le_bytes([b[0], b[1]]);
            f16_non_finite(bits).then(|| NonFinite {
                element: i,
                value: half::f16::from_bits(bits).to_f32(),
            })
        }),
        DType::BF16 => bytes.chunks_exact(2).enumerate().find_map(|(i, b)| {
            let bits = u16::from_le_bytes([b[0], b[1]]);
            (bits & 0x7F80 == 0x7F80).then(|| NonFinite {
                element: i,
                value: half::bf16::from_bits(bits).to_f32(),
            })
        }),
        _ => None,
    }
}

/// Byte offsets of the f16 scales inside one block of `dtype`.
fn scale_offsets(dtype: GgmlDType) -> &'static [usize] {
    match dtype {
        // d, then 16 (Q4_0, Q8_0) or 32 quant bytes; Q4_1 adds m.
        GgmlDType::Q4_0 | GgmlDType::Q8_0 => &[0],
        GgmlDType::Q4_1 => &[0, 2],
        // d, dmin, then 6-bit scales and quants.
        GgmlDType::Q4K | GgmlDType::Q5K => &[0, 2],
        // Q6_K keeps its f16 d at the end of its 210-byte block.
        GgmlDType::Q6K => &[208],
        _ => &[],
    }
}

/// The first non-finite value of a GGML tensor's bytes.
pub fn first_in_ggml(dtype: GgmlDType, bytes: &[u8]) -> Option<NonFinite> {
    match dtype {
        GgmlDType::F32 => return first_in_plain(DType::F32, bytes),
        GgmlDType::F16 => return first_in_plain(DType::F16, bytes),
        GgmlDType::BF16 => return first_in_plain(DType::BF16, bytes),
        GgmlDType::Q8K => {
            // f32 d first.
            return bytes
                .chunks_exact(dtype.type_size())
                .enumerate()
                .find_map(|(i, b)| {
                    let v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                    (!v.is_finite()).then_some(NonFinite {
                        element: i * dtype.block_size(),
                        value: v,
                    })
                });
        }
        _ => {}
    }
    let offsets = scale_offsets(dtype);
    bytes
        .chunks_exact(dtype.type_size())
        .enumerate()
        .find_map(|(i, block)| {
            offsets.iter().find_map(|&at| {
                let bits = f16_at(block, at);
                f16_non_finite(bits).then(|| NonFinite {
                    element: i * dtype.block_size(),
                    value: half::f16::from_bits(bits).to_f32(),
                })
            })
        })
}

/// `Err` naming `tensor` when `found` is a non-finite value.
pub fn refuse(file: &str, tensor: &str, found: Option<NonFinite>) -> Result<()> {
    match found {
        None => Ok(()),
        Some(NonFinite { element, value }) => Err(Error::BadTensor {
            name: tensor.to_string(),
            reason: format!(
                "holds {value} at element {element} (in {file}): the weights are corrupt"
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_values() {
        let f32s: Vec<u8> = [1.0f32, -2.0, f32::NAN, f32::INFINITY]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        assert_eq!(first_in_plain(DType::F32, &f32s[..8]), None);
        assert_eq!(
            first_in_plain(DType::F32, &f32s).map(|n| n.element),
            Some(2)
        );
        let f16s: Vec<u8> = [1.0f32, 65504.0, f32::NEG_INFINITY]
            .iter()
            .flat_map(|&x| half::f16::from_f32(x).to_le_bytes())
            .collect();
        assert_eq!(
            first_in_plain(DType::F16, &f16s),
            Some(NonFinite {
                element: 2,
                value: f32::NEG_INFINITY
            })
        );
        let bf16s: Vec<u8> = [3.0e38f32, 1.0, f32::NAN]
            .iter()
            .flat_map(|&x| half::bf16::from_f32(x).to_le_bytes())
            .collect();
        assert_eq!(first_in_plain(DType::BF16, &bf16s[..4]), None);
        assert_eq!(
            first_in_plain(DType::BF16, &bf16s).map(|n| n.element),
            Some(2)
        );
    }

    #[test]
    fn block_scales() {
        // Two Q4_K blocks (144 bytes each): quant bytes of 0xFF are fine,
        // a NaN dmin in the second block is not.
        let mut q = vec![0xFFu8; 288];
        for b in 0..2 {
            q[b * 144..b * 144 + 2].copy_from_slice(&half::f16::from_f32(0.5).to_le_bytes());
            q[b * 144 + 2..b * 144 + 4].copy_from_slice(&half::f16::from_f32(0.1).to_le_bytes());
        }
        assert_eq!(first_in_ggml(GgmlDType::Q4K, &q), None);
        q[144 + 2..144 + 4].copy_from_slice(&half::f16::NAN.to_le_bytes());
        assert_eq!(
            first_in_ggml(GgmlDType::Q4K, &q).map(|n| n.element),
            Some(256)
        );
        // Q8_0: d then 32 signed bytes.
        let mut q8 = vec![0x80u8; 34 * 3];
        for b in 0..3 {
            q8[b * 34..b * 34 + 2].copy_from_slice(&half::f16::from_f32(0.01).to_le_bytes());
        }
        assert_eq!(first_in_ggml(GgmlDType::Q8_0, &q8), None);
        q8[68..70].copy_from_slice(&half::f16::INFINITY.to_le_bytes());
        assert_eq!(
            first_in_ggml(GgmlDType::Q8_0, &q8).map(|n| n.element),
            Some(64)
        );
        let msg = refuse("m.gguf", "w", first_in_ggml(GgmlDType::Q8_0, &q8))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("`w`") && msg.contains("inf"), "{msg}");
    }
}
