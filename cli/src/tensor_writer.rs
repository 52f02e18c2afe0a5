//! Streaming writers for the two weight formats: the header is laid out from
//! the tensor list first, then tensors are appended one at a time, so a 4 GB
//! model never has to sit in memory.

use std::io::Write;

use anyhow::{bail, Context, Result};
use stt_model::weights::quant::{self, QuantType};

/// Element types a safetensors file can hold here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StDtype {
    F32,
    BF16,
}

impl StDtype {
    fn name(self) -> &'static str {
        match self {
            Self::F32 => "F32",
            Self::BF16 => "BF16",
        }
    }

    fn size(self) -> usize {
        match self {
            Self::F32 => 4,
            Self::BF16 => 2,
        }
    }

    /// The values as this type stores them (bf16 rounds).
    pub fn round_trip(self, xs: &mut [f32]) {
        if self == Self::BF16 {
            xs.iter_mut()
                .for_each(|x| *x = half::bf16::from_f32(*x).to_f32());
        }
    }
}

pub struct TensorSpec {
    pub name: String,
    pub shape: Vec<usize>,
}

impl TensorSpec {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// safetensors: u64 header length, JSON header (padded to 8 bytes), data.
pub struct SafetensorsWriter<W: Write> {
    out: W,
    dtype: StDtype,
    expected: Vec<(String, usize)>,
    next: usize,
}

impl<W: Write> SafetensorsWriter<W> {
    pub fn new(mut out: W, dtype: StDtype, specs: &[TensorSpec]) -> Result<Self> {
        let mut header = serde_json::Map::new();
        let mut offset = 0usize;
        for s in specs {
            let bytes = s.numel() * dtype.size();
            header.insert(
                s.name.clone(),
                serde_json::json!({"dtype": dtype.name(), "shape": s.shape, "data_offsets": [offset, offset + bytes]}),
            );
            offset += bytes;
        }
        let mut header = serde_json::to_vec(&header)?;
        while header.len() % 8 != 0 {
            header.push(b' ');
        }
        out.write_all(&(header.len() as u64).to_le_bytes())?;
        out.write_all(&header)?;
        let expected = specs.iter().map(|s| (s.name.clone(), s.numel())).collect();
        Ok(Self {
            out,
            dtype,
            expected,
            next: 0,
        })
    }

    /// Appends the next tensor, in the order the specs were given.
    pub fn push(&mut self, name: &str, xs: &[f32]) -> Result<()> {
        match self.expected.get(self.next) {
            Some((n, numel)) if n == name && *numel == xs.len() => {}
            _ => bail!(
                "safetensors writer: unexpected tensor `{name}` ({} values)",
                xs.len()
            ),
        }
        self.next += 1;
        let mut buf = Vec::with_capacity(xs.len() * self.dtype.size());
        match self.dtype {
            StDtype::F32 => xs
                .iter()
                .for_each(|x| buf.extend_from_slice(&x.to_le_bytes())),
            StDtype::BF16 => xs
                .iter()
                .for_each(|x| buf.extend_from_slice(&half::bf16::from_f32(*x).to_le_bytes())),
        }
        self.out.write_all(&buf)?;
        Ok(())
    }

    pub fn finish(mut self) -> Result<()> {
        if self.next != self.expected.len() {
            bail!(
                "safetensors writer: {} of {} tensors written",
                self.next,
                self.expected.len()
            );
        }
        self.out.flush()?;
        Ok(())
    }
}

/// GGUF v3 tensor data alignment (the default, also written as `general.alignment`).
const GGUF_ALIGNMENT: usize = 32;

/// The storage type a tensor gets in a GGUF of `requested` type: matrices
/// whose rows hold whole blocks are quantized; Q4_K rows that do not hold
/// whole 256-blocks fall back to Q8_0 (as llama.cpp does); vectors and norms
/// stay F32.
pub fn gguf_type_for(shape: &[usize], requested: QuantType) -> QuantType {
    requested.for_shape(shape)
}

pub struct GgufWriter<W: Write> {
    out: W,
    expected: Vec<(String, usize, QuantType)>,
    next: usize,
    written: usize,
}

fn gguf_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn pad_to(n: usize) -> usize {
    n.div_ceil(GGUF_ALIGNMENT) * GGUF_ALIGNMENT
}

impl<W: Write> GgufWriter<W> {
    pub fn new(mut out: W, requested: QuantType, name: &str, specs: &[TensorSpec]) -> Result<Self> {
        const GGUF_TYPE_U32: u32 = 4;
        const GGUF_TYPE_STRING: u32 = 8;
        let mut h = Vec::new();
        h.extend_from_slice(b"GGUF");
        h.extend_from_slice(&3u32.to_le_bytes());
        h.extend_from_slice(&(specs.len() as u64).to_le_bytes());
        h.extend_from_slice(&2u64.to_le_bytes());
        gguf_string(&mut h, "general.name");
        h.extend_from_slice(&GGUF_TYPE_STRING.to_le_bytes());
        gguf_string(&mut h, name);
        gguf_string(&mut h, "general.alignment");
        h.extend_from_slice(&GGUF_TYPE_U32.to_le_bytes());
        h.extend_from_slice(&(GGUF_ALIGNMENT as u32).to_le_bytes());
        let mut offset = 0usize;
        let mut expected = vec![];
        for s in specs {
            let ty = gguf_type_for(&s.shape, requested);
            gguf_string(&mut h, &s.name);
            h.extend_from_slice(&(s.shape.len() as u32).to_le_bytes());
            // ggml lists dimensions innermost first.
            for d in s.shape.iter().rev() {
                h.extend_from_slice(&(*d as u64).to_le_bytes());
            }
            h.extend_from_slice(&ty.ggml_type_id().to_le_bytes());
            h.extend_from_slice(&(offset as u64).to_le_bytes());
            offset = pad_to(offset + ty.bytes_for(s.numel()));
            expected.push((s.name.clone(), s.numel(), ty));
        }
        h.resize(pad_to(h.len()), 0);
        out.write_all(&h)?;
        Ok(Self {
            out,
            expected,
            next: 0,
            written: 0,
        })
    }

    pub fn push(&mut self, name: &str, xs: &[f32]) -> Result<()> {
        let ty = match self.expected.get(self.next) {
            Some((n, numel, ty)) if n == name && *numel == xs.len() => *ty,
            _ => bail!(
                "gguf writer: unexpected tensor `{name}` ({} values)",
                xs.len()
            ),
        };
        self.next += 1;
        let mut buf = Vec::with_capacity(ty.bytes_for(xs.len()) + GGUF_ALIGNMENT);
        quant::quantize(ty, xs, &mut buf)?;
        buf.resize(pad_to(buf.len()), 0);
        self.out
            .write_all(&buf)
            .with_context(|| format!("writing `{name}`"))?;
        self.written += buf.len();
        Ok(())
    }

    pub fn finish(mut self) -> Result<()> {
        if self.next != self.expected.len() {
            bail!(
                "gguf writer: {} of {} tensors written",
                self.next,
                self.expected.len()
            );
        }
        self.out.flush()?;
        Ok(())
    }
}
