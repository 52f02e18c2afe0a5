//! The WGSL kernels, embedded in the binary, and the one place where they
//! are assembled: textual splices at `//! STEP_PARAMS` (the shared uniform
//! struct), `//! WEIGHTS` (the matvec's weight format) and `//! REDUCE`
//! (workgroup memory or subgroups), plus the `enable` directives the
//! optional features need; everything else is `override` constants.

use crate::repack::GpuFormat;

const EMBED: &str = include_str!("kernels/embed.wgsl");
const ATTENTION: &str = include_str!("kernels/attention.wgsl");
const STEP_PARAMS: &str = include_str!("kernels/step_params.wgsl");
pub const ARGMAX_HEADS: &str = include_str!("kernels/argmax_heads.wgsl");
pub const SUBGROUP_PROBE: &str = include_str!("kernels/subgroup_probe.wgsl");
pub const READ_BANDWIDTH: &str = include_str!("kernels/read_bandwidth.wgsl");
const MATVEC: &str = include_str!("kernels/matvec.wgsl");
const WEIGHTS_F32: &str = include_str!("kernels/weights_f32.wgsl");
const WEIGHTS_F16: &str = include_str!("kernels/weights_f16.wgsl");
const WEIGHTS_F16_PACKED: &str = include_str!("kernels/weights_f16_packed.wgsl");
const WEIGHTS_Q8: &str = include_str!("kernels/weights_q8.wgsl");
const WEIGHTS_Q4: &str = include_str!("kernels/weights_q4.wgsl");
const REDUCE_WORKGROUP: &str = include_str!("kernels/reduce_workgroup.wgsl");
const REDUCE_SUBGROUP: &str = include_str!("kernels/reduce_subgroup.wgsl");

/// Which optional shader features a kernel may use (those the device has
/// enabled and, for subgroups, the probe accepted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ShaderFeatures {
    pub f16: bool,
    pub subgroups: bool,
}

/// Source that uses subgroup builtins. Browsers (Tint) require the
/// `enable` directive; naga rejects it (it enables subgroups from the
/// device features instead), so it is added only for WebGPU.
pub fn subgroup_source(source: &str) -> String {
    if cfg!(target_arch = "wasm32") {
        format!("enable subgroups;\n{source}")
    } else {
        source.to_string()
    }
}

/// A kernel that reads the per-step params, with their struct spliced in.
fn with_step_params(source: &str) -> String {
    source.replacen("\n//! STEP_PARAMS\n", &format!("\n{STEP_PARAMS}\n"), 1)
}

/// embed.wgsl, ready to compile.
pub fn embed_source() -> String {
    with_step_params(EMBED)
}

/// attention.wgsl, ready to compile.
pub fn attention_source() -> String {
    with_step_params(ATTENTION)
}

/// The matvec kernel for one weight format and feature set.
pub fn matvec_source(format: GpuFormat, features: ShaderFeatures) -> String {
    let weights = match format {
        GpuFormat::F32 => WEIGHTS_F32,
        GpuFormat::F16 if features.f16 => WEIGHTS_F16,
        GpuFormat::F16 => WEIGHTS_F16_PACKED,
        GpuFormat::Q8 => WEIGHTS_Q8,
        GpuFormat::Q4 => WEIGHTS_Q4,
    };
    let reduce = if features.subgroups {
        REDUCE_SUBGROUP
    } else {
        REDUCE_WORKGROUP
    };
    let source = MATVEC
        .replacen("\n//! WEIGHTS\n", &format!("\n{weights}\n"), 1)
        .replacen("\n//! REDUCE\n", &format!("\n{reduce}\n"), 1);
    let source = if format == GpuFormat::F16 && features.f16 {
        format!("enable f16;\n{source}")
    } else {
        source
    };
    if features.subgroups {
        subgroup_source(&source)
    } else {
        source
    }
}

/// `INPUT_MODE` of matvec.wgsl.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatvecInput {
    Plain = 0,
    RmsNorm = 1,
    SiluGate = 2,
    /// Merges attention.wgsl's per-split partial results.
    AttentionMerge = 3,
}

/// Which specialisation of matvec.wgsl a projection uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MatvecKey {
    pub format: GpuFormat,
    pub k: u32,
    pub rows: u32,
    pub input: MatvecInput,
    pub residual: bool,
    pub y_offset: u32,
    /// `AttentionMerge` only (else 1): the attention layout.
    pub head_dim: u32,
    pub splits: u32,
    /// Write silu(row p)·(row p + rows/2) for p < rows/2 (GATED_OUT).
    pub gated_output: bool,
    /// Lanes per row: 8, 16 or 32 (`LANES`).
    pub lanes: u32,
}

impl MatvecKey {
    /// Workgroups of one dispatch.
    pub fn workgroups(&self) -> u32 {
        let rows_per_workgroup = MATVEC_WORKGROUP / self.lanes;
        if self.gated_output {
            (self.rows / 2).div_ceil(rows_per_workgroup / 2)
        } else {
            self.rows.div_ceil(rows_per_workgroup)
        }
    }
}

/// The matvec lanes per row unless asked otherwise. Measured on an H100
/// (full-size Q4_K step, before the vec4 input tile, bench/README.md):
/// 8 lanes 3.05 ms, 16 lanes 3.12, 32 lanes 4.83 (4× the workgroups, each
/// paying the norm/input prologue, no longer fit in one wave); lavapipe
/// also prefers 8.
pub const MATVEC_DEFAULT_LANES: u32 = 8;

/// Invocations per matvec workgroup.
pub const MATVEC_WORKGROUP: u32 = 256;
/// matvec.wgsl caches inputs of at most this many elements in workgroup
/// memory; `AttentionMerge` needs the cache.
pub const MATVEC_INPUT_CACHE: usize = 2048;
/// matvec.wgsl's room for (head, split) weights in `AttentionMerge`.
pub const MATVEC_MAX_SPLIT_WEIGHTS: usize = 256;
/// Keys per attention workgroup (attention.wgsl's CHUNK).
pub const ATTENTION_CHUNK: usize = 64;
pub const ATTENTION_MAX_HEAD_DIM: usize = 128;
pub const ATTENTION_MAX_CONTEXT: usize = 1024;

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernels sharing StepParams parse and validate once spliced.
    #[test]
    fn step_params_kernels_validate() {
        for (name, src) in [("embed", embed_source()), ("attention", attention_source())] {
            assert!(!src.contains("//! STEP_PARAMS"), "{name}");
            let module =
                naga::front::wgsl::parse_str(&src).unwrap_or_else(|e| panic!("{name}: {e}"));
            naga::valid::Validator::new(
                naga::valid::ValidationFlags::all(),
                naga::valid::Capabilities::all(),
            )
            .validate(&module)
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        }
    }

    /// Every variant of the matvec source parses and validates under naga.
    #[test]
    fn matvec_variants_validate() {
        let formats = [GpuFormat::F32, GpuFormat::F16, GpuFormat::Q8, GpuFormat::Q4];
        for format in formats {
            for f16 in [false, true] {
                for subgroups in [false, true] {
                    let src = matvec_source(format, ShaderFeatures { f16, subgroups });
                    assert!(!src.contains("//! WEIGHTS") && !src.contains("//! REDUCE"));
                    let module = naga::front::wgsl::parse_str(&src)
                        .unwrap_or_else(|e| panic!("{format:?} f16={f16} sg={subgroups}: {e}"));
                    naga::valid::Validator::new(
                        naga::valid::ValidationFlags::all(),
                        naga::valid::Capabilities::all(),
                    )
                    .validate(&module)
                    .unwrap_or_else(|e| panic!("{format:?} f16={f16} sg={subgroups}: {e:?}"));
                }
            }
        }
    }
}
