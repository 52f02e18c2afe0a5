//! The GPU engine's command-line options, shared by `transcribe` and `bench`.

use stt_model::weights::quant::QuantType;
use stt_wgpu::{FeatureRequest, GpuOptions, KvPrecision};

use crate::args::LoadQuant;

#[derive(Debug, Clone, clap::Args)]
pub struct GpuArgs {
    /// Quantize float (safetensors) LM weights at load for the GPU engine:
    /// the same values `stt-cli quantize` would write. GGUF files are used
    /// as they are.
    #[arg(long, value_enum)]
    pub quantize: Option<LoadQuant>,
    /// Run only the GPU path every WebGPU adapter has: no `shader-f16`
    /// reads, no subgroup reductions (for comparisons and driver bugs).
    #[arg(long)]
    pub no_gpu_features: bool,
    /// Lanes per row in the GPU mat-vec kernels (8, 16, 32; default 32 on
    /// a discrete GPU whose subgroups allow it, else 8).
    #[arg(long, hide = true)]
    pub matvec_lanes: Option<u32>,
    /// Keep the GPU engine's KV cache in f16: half the bytes attention
    /// reads per step. Not bit-identical to moshi (each K and V value is
    /// rounded once; on the test models the logits stay within 5e-4 of
    /// their RMS and the tokens identical).
    #[arg(long)]
    pub kv_f16: bool,
}

impl GpuArgs {
    pub fn quant_type(&self) -> Option<QuantType> {
        self.quantize.map(QuantType::from)
    }

    pub fn options(&self) -> GpuOptions {
        GpuOptions {
            quantize: self.quant_type(),
            features: if self.no_gpu_features {
                FeatureRequest::NONE
            } else {
                FeatureRequest::default()
            },
            matvec_lanes: self.matvec_lanes,
            kv_cache: if self.kv_f16 {
                KvPrecision::F16
            } else {
                KvPrecision::F32
            },
            ..Default::default()
        }
    }
}
