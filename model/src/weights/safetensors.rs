//! Safetensors read from shards: the header is parsed and checked once, each
//! tensor is copied out of the shards only when moshi's loader asks for it.

use std::collections::HashMap;

use candle_core::{DType, Device, Shape, Tensor};

use super::finite;
use super::Shards;
use crate::error::{Error, Result};

/// Headers beyond this are not weight files (upstream's are < 100 KB).
const MAX_HEADER_BYTES: u64 = 100 << 20;

#[derive(Debug, Clone)]
pub struct TensorEntry {
    pub dtype: DType,
    pub shape: Vec<usize>,
    /// Absolute byte range in the file.
    pub start: u64,
    pub end: u64,
}

#[derive(Clone)]
pub struct SafetensorsFile {
    name: String,
    shards: Shards,
    tensors: HashMap<String, TensorEntry>,
}

#[derive(serde::Deserialize)]
struct RawEntry {
    dtype: String,
    shape: Vec<usize>,
    data_offsets: (u64, u64),
}

fn dtype_of(s: &str) -> Option<DType> {
    Some(match s {
        "F32" => DType::F32,
        "F16" => DType::F16,
        "BF16" => DType::BF16,
        "F64" => DType::F64,
        "U8" | "BOOL" => DType::U8,
        "U32" => DType::U32,
        "I64" => DType::I64,
        _ => return None,
    })
}

impl SafetensorsFile {
    pub fn from_shards(name: &str, shards: Shards) -> Result<Self> {
        let bad = |reason: String| Error::WeightFile {
            file: name.to_string(),
            reason,
        };
        if shards.len() < 8 {
            return Err(bad(format!(
                "{} bytes is too short for a safetensors file",
                shards.len()
            )));
        }
        let mut n = [0u8; 8];
        shards.read_at(0, &mut n)?;
        let header_len = u64::from_le_bytes(n);
        if header_len > MAX_HEADER_BYTES || 8 + header_len > shards.len() {
            return Err(bad(format!(
                "not a safetensors file (header length {header_len} for a file of {} bytes)",
                shards.len()
            )));
        }
        let header = shards.read_vec(8, header_len as usize)?;
        let raw: HashMap<String, serde_json::Value> = serde_json::from_slice(&header)
            .map_err(|e| bad(format!("not a safetensors file (header is not JSON: {e})")))?;
        let data_start = 8 + header_len;
        let data_len = shards.len() - data_start;
        let mut tensors = HashMap::with_capacity(raw.len());
        for (tname, v) in raw {
            if tname == "__metadata__" {
                continue;
            }
            let e: RawEntry = serde_json::from_value(v)
                .map_err(|e| bad(format!("tensor `{tname}`: bad header entry: {e}")))?;
            let dtype = dtype_of(&e.dtype)
                .ok_or_else(|| bad(format!("tensor `{tname}`: unsupported dtype {}", e.dtype)))?;
            let (s, t) = e.data_offsets;
            let numel = e.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
            let want = numel.and_then(|n| n.checked_mul(dtype.size_in_bytes()));
            if s > t || t > data_len || want != Some((t - s) as usize) {
                return Err(bad(format!(
                    "tensor `{tname}`: data range {s}..{t} does not hold shape {:?} of {} within {data_len} bytes (truncated file?)",
                    e.shape, e.dtype
                )));
            }
            tensors.insert(
                tname,
                TensorEntry {
                    dtype,
                    shape: e.shape,
                    start: data_start + s,
                    end: data_start + t,
                },
            );
        }
        Ok(Self {
            name: name.to_string(),
            shards,
            tensors,
        })
    }

    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    pub fn entries(&self) -> &HashMap<String, TensorEntry> {
        &self.tensors
    }

    /// Loads one tensor in its stored dtype.
    pub fn tensor(&self, name: &str, device: &Device) -> Result<Tensor> {
        let e = self.tensors.get(name).ok_or_else(|| Error::MissingTensor {
            name: name.to_string(),
        })?;
        let bytes = self.shards.read_vec(e.start, (e.end - e.start) as usize)?;
        finite::refuse(&self.name, name, finite::first_in_plain(e.dtype, &bytes))?;
        Ok(Tensor::from_raw_buffer(&bytes, e.dtype, &e.shape, device)?)
    }

    /// A candle var builder that reads lazily from these shards, as f32.
    pub fn var_builder(&self, device: &Device) -> candle_nn::VarBuilder<'static> {
        candle_nn::VarBuilder::from_backend(Box::new(self.clone()), DType::F32, device.clone())
    }

    pub fn file_name(&self) -> &str {
        &self.name
    }
}

impl candle_nn::var_builder::SimpleBackend for SafetensorsFile {
    fn get(
        &self,
        s: Shape,
        name: &str,
        _: candle_nn::Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        if let Some(e) = self.tensors.get(name) {
            if e.shape.as_slice() != s.dims() {
                // A plain message: candle can carry no typed error of ours.
                let e = Error::ShapeMismatch {
                    name: name.to_string(),
                    expected: s.dims().to_vec(),
                    found: e.shape.clone(),
                };
                return Err(candle_core::Error::Msg(e.to_string()));
            }
        }
        self.get_unchecked(name, dtype, dev)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        self.tensor(name, dev)
            .map_err(|e| match e {
                Error::Candle(c) => c,
                e => candle_core::Error::Msg(e.to_string()),
            })?
            .to_dtype(dtype)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.contains(name)
    }
}
