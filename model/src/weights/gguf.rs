//! GGUF (Q4_0, Q4_K, Q8_0, F16, F32 tensors) read from shards and checked
//! before candle's quantized var builder sees it, so that a corrupt or
//! truncated file gets an error naming the problem.

use candle_core::quantized::gguf_file;
use candle_core::Device;
use candle_transformers::quantized_var_builder::VarBuilder as QuantizedVarBuilder;

use super::{finite, Shards};
use crate::error::{candle_message, Error, Result};

pub const GGUF_MAGIC: &[u8; 4] = b"GGUF";

/// Cheap to clone: the bytes and the parsed header are shared.
#[derive(Clone)]
pub struct GgufFile {
    name: String,
    shards: Shards,
    content: std::sync::Arc<gguf_file::Content>,
}

impl GgufFile {
    pub fn from_shards(name: &str, shards: Shards) -> Result<Self> {
        let bad = |reason: String| Error::WeightFile {
            file: name.to_string(),
            reason,
        };
        super::gguf_header::check(&shards)
            .map_err(|e| bad(format!("not a valid GGUF file: {e}")))?;
        let mut reader = shards.reader();
        let content = gguf_file::Content::read(&mut reader)
            .map_err(|e| bad(format!("not a valid GGUF file: {}", candle_message(e))))?;
        for (tname, info) in &content.tensor_infos {
            let numel = info.shape.elem_count();
            let block = info.ggml_dtype.block_size();
            if numel % block != 0 {
                return Err(bad(format!(
                    "tensor `{tname}`: {numel} elements is not a whole number of {:?} blocks",
                    info.ggml_dtype
                )));
            }
            let bytes = (numel / block) as u64 * info.ggml_dtype.type_size() as u64;
            let start = content.tensor_data_offset.checked_add(info.offset);
            if start
                .and_then(|s| s.checked_add(bytes))
                .is_none_or(|end| end > shards.len())
            {
                return Err(bad(format!(
                    "tensor `{tname}` ({:?}, {:?}) runs past the end of the file ({} bytes): truncated?",
                    info.ggml_dtype,
                    info.shape.dims(),
                    shards.len()
                )));
            }
        }
        Ok(Self {
            name: name.to_string(),
            shards,
            content: std::sync::Arc::new(content),
        })
    }

    pub fn contains(&self, name: &str) -> bool {
        self.content.tensor_infos.contains_key(name)
    }

    pub fn file_name(&self) -> &str {
        &self.name
    }

    pub fn content(&self) -> &gguf_file::Content {
        &self.content
    }

    /// Reads one tensor as candle's `QTensor`.
    pub fn qtensor(&self, name: &str, device: &Device) -> Result<candle_core::quantized::QTensor> {
        if !self.contains(name) {
            return Err(Error::MissingTensor {
                name: name.to_string(),
            });
        }
        let qt = self
            .content
            .tensor(&mut self.shards.reader(), name, device)?;
        finite::refuse(
            &self.name,
            name,
            finite::first_in_ggml(qt.dtype(), &qt.data()?),
        )?;
        Ok(qt)
    }

    /// candle's quantized var builder. It only takes one contiguous buffer,
    /// so a multi-shard file is joined here (upstream GGUFs are 0.56 GB for
    /// Q4_K and 1.05 GB for Q8_0, within one browser ArrayBuffer).
    pub fn var_builder(&self, device: &Device) -> Result<QuantizedVarBuilder> {
        let bytes = self.shards.contiguous();
        // candle's builder keeps its tensors to itself: check them here,
        // in place (sizes and offsets were checked at open).
        for (tname, info) in &self.content.tensor_infos {
            let start = (self.content.tensor_data_offset + info.offset) as usize;
            let len = info.shape.elem_count() / info.ggml_dtype.block_size()
                * info.ggml_dtype.type_size();
            let found = bytes
                .get(start..start + len)
                .and_then(|b| finite::first_in_ggml(info.ggml_dtype, b));
            finite::refuse(&self.name, tname, found)?;
        }
        QuantizedVarBuilder::from_gguf_buffer(&bytes, device).map_err(|e| Error::WeightFile {
            file: self.name.clone(),
            reason: candle_message(e),
        })
    }
}

/// Dequantizing view: the GGUF's values as f32 tensors, for the CPU
/// reference that does the same arithmetic as a GPU engine reading these
/// weights (candle's quantized matmul would also quantize the activations).
impl candle_nn::var_builder::SimpleBackend for &GgufFile {
    fn get(
        &self,
        s: candle_core::Shape,
        name: &str,
        _: candle_nn::Init,
        dtype: candle_core::DType,
        dev: &Device,
    ) -> candle_core::Result<candle_core::Tensor> {
        let t = self.get_unchecked(name, dtype, dev)?;
        if t.dims() != s.dims() {
            let e = Error::ShapeMismatch {
                name: name.to_string(),
                expected: s.dims().to_vec(),
                found: t.dims().to_vec(),
            };
            return Err(candle_core::Error::Msg(e.to_string()));
        }
        Ok(t)
    }

    fn get_unchecked(
        &self,
        name: &str,
        dtype: candle_core::DType,
        dev: &Device,
    ) -> candle_core::Result<candle_core::Tensor> {
        let q = self
            .qtensor(name, dev)
            .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
        q.dequantize(dev)?.to_dtype(dtype)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.contains(name)
    }
}
