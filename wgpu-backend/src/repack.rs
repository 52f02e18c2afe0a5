//! Weights from the files stt-model reads, repacked once at load into the
//! layouts the kernels read (each kernel header restates its layout):
//! - F32: row-major f32 (from f32 and bf16 — exact conversions).
//! - F16: row-major f16 (from F16 GGUF tensors, or f16 asked at load).
//! - Q8: i8 quants (4 per u32) + one f32 scale per 32-block (from Q8_0).
//! - Q4: 4-bit quants (8 per u32) + (scale, bias) f32 per 32-block (from
//!   Q4_0: d, −8d; from Q4_K: d·sc, −dmin·m per 32-wide sub-block).
//!
//! Quants and scales live in separate buffers because GGML blocks (18 or 34
//! bytes) are not 4-byte aligned, which WGSL storage arrays require.
//!
//! Float checkpoints can be quantized at load (`quantize`): each matrix goes
//! through the same quantizer and the same repacking as `stt-cli quantize`
//! followed by loading its GGUF, so both give identical GPU weights.

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{DType, Device};
use half::f16;
use stt_model::weights::quant::{self, QuantType};
use stt_model::weights::LmWeights;

use crate::error::{GpuError, Result};
use crate::kernels::GpuFormat;

/// One matrix in a GPU layout, still on the host.
pub struct PackedMatrix {
    pub name: String,
    pub format: GpuFormat,
    pub rows: usize,
    pub cols: usize,
    /// Weights (f32, f16) or quants (Q8, Q4).
    pub data: Vec<u8>,
    /// Per-block scales (Q8: f32) or (scale, bias) pairs (Q4); empty for F32.
    pub scales: Vec<u8>,
}

impl PackedMatrix {
    pub fn from_f32(name: &str, rows: usize, cols: usize, xs: &[f32]) -> Self {
        Self {
            name: name.to_string(),
            format: GpuFormat::F32,
            rows,
            cols,
            data: bytemuck::cast_slice(xs).to_vec(),
            scales: vec![],
        }
    }

    /// The values as the GPU will see them, for tests and the CPU reference.
    pub fn dequantize(&self) -> Vec<f32> {
        match self.format {
            GpuFormat::F32 => bytemuck::pod_collect_to_vec(&self.data),
            GpuFormat::F16 => self
                .data
                .chunks_exact(2)
                .map(|h| f16::from_le_bytes([h[0], h[1]]).to_f32())
                .collect(),
            GpuFormat::Q8 => {
                let s: Vec<f32> = bytemuck::pod_collect_to_vec(&self.scales);
                self.data
                    .iter()
                    .enumerate()
                    .map(|(i, &q)| s[i / 32] * (q as i8) as f32)
                    .collect()
            }
            GpuFormat::Q4 => {
                let sb: Vec<f32> = bytemuck::pod_collect_to_vec(&self.scales);
                (0..self.rows * self.cols)
                    .map(|i| {
                        let q = (self.data[i / 2] >> (4 * (i % 2))) & 15;
                        sb[2 * (i / 32)] * q as f32 + sb[2 * (i / 32) + 1]
                    })
                    .collect()
            }
        }
    }
}

fn f16_at(b: &[u8], at: usize) -> f32 {
    f16::from_le_bytes([b[at], b[at + 1]]).to_f32()
}

/// Q4_0 blocks → Q4 layout. Element i of a block: low nibble of byte i
/// (i < 16) or high nibble of byte i − 16.
fn repack_q4_0(raw: &[u8], q: &mut Vec<u8>, sb: &mut Vec<f32>) {
    for blk in raw.chunks_exact(quant::Q4_0_BLOCK_BYTES) {
        let d = f16_at(blk, 0);
        sb.extend_from_slice(&[d, -8.0 * d]);
        let qs = &blk[2..];
        let nib = |i: usize| if i < 16 { qs[i] & 15 } else { qs[i - 16] >> 4 };
        for i in (0..32).step_by(2) {
            q.push(nib(i) | (nib(i + 1) << 4));
        }
    }
}

/// Q4_K super-blocks → Q4 layout, one (scale, bias) per 32-wide sub-block.
fn repack_q4k(raw: &[u8], q: &mut Vec<u8>, sb: &mut Vec<f32>) {
    for blk in raw.chunks_exact(quant::Q4K_BLOCK_BYTES) {
        let d = f16_at(blk, 0);
        let dmin = f16_at(blk, 2);
        let scales = &blk[4..16];
        let qs = &blk[16..];
        for (pair, bytes) in qs.chunks_exact(32).enumerate() {
            for half in 0..2 {
                let j = 2 * pair + half;
                let (sc, m) = quant::q4k_scale_min(j, scales);
                sb.extend_from_slice(&[d * sc as f32, -(dmin * m as f32)]);
                let nib = |i: usize| {
                    if half == 0 {
                        bytes[i] & 15
                    } else {
                        bytes[i] >> 4
                    }
                };
                for i in (0..32).step_by(2) {
                    q.push(nib(i) | (nib(i + 1) << 4));
                }
            }
        }
    }
}

fn repack_q8_0(raw: &[u8], q: &mut Vec<u8>, s: &mut Vec<f32>) {
    for blk in raw.chunks_exact(quant::Q8_0_BLOCK_BYTES) {
        s.push(f16_at(blk, 0));
        q.extend_from_slice(&blk[2..]);
    }
}

/// GGML blocks (or f16/f32 rows) → a GPU layout; `None` for ggml types
/// without one (the caller dequantizes those to f32).
fn repack_raw(ty: GgmlDType, raw: &[u8]) -> Option<(GpuFormat, Vec<u8>, Vec<f32>)> {
    let (mut q, mut s) = (Vec::new(), Vec::<f32>::new());
    let format = match ty {
        GgmlDType::Q4_0 => {
            repack_q4_0(raw, &mut q, &mut s);
            GpuFormat::Q4
        }
        GgmlDType::Q4K => {
            repack_q4k(raw, &mut q, &mut s);
            GpuFormat::Q4
        }
        GgmlDType::Q8_0 => {
            repack_q8_0(raw, &mut q, &mut s);
            GpuFormat::Q8
        }
        // GGUF F16 rows are the F16 layout already (little-endian halves).
        GgmlDType::F16 => {
            q.extend_from_slice(raw);
            GpuFormat::F16
        }
        _ => return None,
    };
    Some((format, q, s))
}

fn float_tensor(weights: &LmWeights, name: &str, dims: &[usize]) -> Result<Vec<f32>> {
    let LmWeights::Safetensors(f) = weights else {
        unreachable!("float_tensor is only called on safetensors");
    };
    let t = f.tensor(name, &Device::Cpu)?;
    if t.dims() != dims {
        return Err(GpuError::Weights(stt_model::Error::ShapeMismatch {
            name: name.to_string(),
            expected: dims.to_vec(),
            found: t.dims().to_vec(),
        }));
    }
    let xs = t
        .to_dtype(DType::F32)
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1::<f32>());
    let xs = xs.map_err(stt_model::Error::from)?;
    if let Some(i) = xs.iter().position(|x| !x.is_finite()) {
        return Err(GpuError::Weights(stt_model::Error::BadTensor {
            name: name.to_string(),
            reason: format!("value {i} is not finite"),
        }));
    }
    Ok(xs)
}

/// Loads one matrix (rows × cols) named `name` from the LM weights; float
/// (safetensors) weights are quantized first when `quantize` asks for it.
pub fn load_matrix(
    weights: &LmWeights,
    name: &str,
    rows: usize,
    cols: usize,
    quantize: Option<QuantType>,
) -> Result<PackedMatrix> {
    if !cols.is_multiple_of(32) {
        return Err(GpuError::Unsupported(format!(
            "`{name}` has {cols} columns, not a multiple of 32"
        )));
    }
    let packed = |format, data: Vec<u8>, scales: Vec<f32>| PackedMatrix {
        name: name.to_string(),
        format,
        rows,
        cols,
        data,
        scales: bytemuck::cast_slice(&scales).to_vec(),
    };
    match weights {
        LmWeights::Safetensors(_) => {
            let xs = float_tensor(weights, name, &[rows, cols])?;
            let ty = quantize.map_or(QuantType::F32, |t| t.for_shape(&[rows, cols]));
            if ty == QuantType::F32 {
                return Ok(PackedMatrix::from_f32(name, rows, cols, &xs));
            }
            let mut raw = Vec::with_capacity(ty.bytes_for(xs.len()));
            quant::quantize(ty, &xs, &mut raw)?;
            drop(xs);
            let Some((format, q, s)) = repack_raw(ty.ggml_dtype(), &raw) else {
                unreachable!("every QuantType but F32 has a GPU layout");
            };
            Ok(packed(format, q, s))
        }
        LmWeights::Gguf(f) => {
            let qt = f.qtensor(name, &Device::Cpu)?;
            if qt.shape().dims() != [rows, cols] {
                return Err(GpuError::Weights(stt_model::Error::ShapeMismatch {
                    name: name.to_string(),
                    expected: vec![rows, cols],
                    found: qt.shape().dims().to_vec(),
                }));
            }
            pack_qtensor(name, &qt)
        }
    }
}

/// A candle quantized matrix (rows × cols) in a GPU layout: Q8_0, Q4_0,
/// Q4_K and F16 repacked, F32 and other ggml types dequantized to f32
/// exactly as candle does.
pub fn pack_qtensor(name: &str, qt: &QTensor) -> Result<PackedMatrix> {
    let &[rows, cols] = qt.shape().dims() else {
        return Err(GpuError::Unsupported(format!(
            "`{name}` has shape {:?}, not a matrix",
            qt.shape().dims()
        )));
    };
    if !cols.is_multiple_of(32) {
        return Err(GpuError::Unsupported(format!(
            "`{name}` has {cols} columns, not a multiple of 32"
        )));
    }
    let raw = qt.data().map_err(stt_model::Error::from)?;
    if let Some((format, data, s)) = repack_raw(qt.dtype(), &raw) {
        return Ok(PackedMatrix {
            name: name.to_string(),
            format,
            rows,
            cols,
            data,
            scales: bytemuck::cast_slice(&s).to_vec(),
        });
    }
    let xs = qt
        .dequantize(&Device::Cpu)
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1::<f32>());
    let xs = xs.map_err(stt_model::Error::from)?;
    Ok(PackedMatrix::from_f32(name, rows, cols, &xs))
}

/// A vector (norm weights) as f32, whatever its stored shape.
pub fn load_vector(weights: &LmWeights, name: &str, len: usize) -> Result<Vec<f32>> {
    let t = match weights {
        LmWeights::Safetensors(f) => f.tensor(name, &Device::Cpu)?,
        LmWeights::Gguf(f) => f
            .qtensor(name, &Device::Cpu)?
            .dequantize(&Device::Cpu)
            .map_err(stt_model::Error::from)?,
    };
    let xs = t
        .to_dtype(DType::F32)
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1::<f32>());
    let xs = xs.map_err(stt_model::Error::from)?;
    if xs.len() != len {
        return Err(GpuError::Weights(stt_model::Error::ShapeMismatch {
            name: name.to_string(),
            expected: vec![len],
            found: t.dims().to_vec(),
        }));
    }
    Ok(xs)
}

/// An embedding table kept on the host, rows dequantized on demand exactly as
/// candle dequantizes the whole table at load (moshi's quantized embedding).
pub struct HostTable {
    ty: QuantType,
    bytes: Vec<u8>,
    row_bytes: usize,
    pub rows: usize,
    pub cols: usize,
}

impl HostTable {
    pub fn load(
        weights: &LmWeights,
        name: &str,
        rows: usize,
        cols: usize,
        quantize: Option<QuantType>,
    ) -> Result<Self> {
        // Float weights quantized at load: keep the blocks, as from a GGUF.
        if let (LmWeights::Safetensors(_), Some(ty)) = (weights, quantize) {
            let ty = ty.for_shape(&[rows, cols]);
            let xs = float_tensor(weights, name, &[rows, cols])?;
            let mut bytes = Vec::with_capacity(ty.bytes_for(xs.len()));
            quant::quantize(ty, &xs, &mut bytes)?;
            return Ok(Self::from_blocks(ty, bytes, rows, cols));
        }
        // Keep the file's own blocks for GGUF (small), f32 otherwise.
        if let LmWeights::Gguf(f) = weights {
            let qt = f.qtensor(name, &Device::Cpu)?;
            let ty = match qt.dtype() {
                GgmlDType::Q4_0 => Some(QuantType::Q4_0),
                GgmlDType::Q4K => Some(QuantType::Q4K),
                GgmlDType::Q8_0 => Some(QuantType::Q8_0),
                GgmlDType::F16 => Some(QuantType::F16),
                GgmlDType::F32 => Some(QuantType::F32),
                _ => None,
            };
            if let Some(ty) = ty {
                if qt.shape().dims() != [rows, cols] {
                    return Err(GpuError::Weights(stt_model::Error::ShapeMismatch {
                        name: name.to_string(),
                        expected: vec![rows, cols],
                        found: qt.shape().dims().to_vec(),
                    }));
                }
                let bytes = qt.data().map_err(stt_model::Error::from)?.into_owned();
                return Ok(Self::from_blocks(ty, bytes, rows, cols));
            }
        }
        let xs = load_matrix(weights, name, rows, cols, None)?.dequantize();
        Ok(Self::from_blocks(
            QuantType::F32,
            bytemuck::cast_slice(&xs).to_vec(),
            rows,
            cols,
        ))
    }

    fn from_blocks(ty: QuantType, bytes: Vec<u8>, rows: usize, cols: usize) -> Self {
        Self {
            ty,
            row_bytes: ty.bytes_for(cols),
            bytes,
            rows,
            cols,
        }
    }

    /// Appends row `r` as f32.
    pub fn row(&self, r: usize, out: &mut Vec<f32>) {
        let s = &self.bytes[r * self.row_bytes..(r + 1) * self.row_bytes];
        quant::dequantize(self.ty, s, out);
    }
}
