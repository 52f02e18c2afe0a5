//! The WGSL kernels, embedded in the binary, and the one place where they
//! are assembled: textual splices at `//! STEP_PARAMS` (the shared uniform
//! struct), `//! WEIGHTS` (the matvec's weight format) and `//! REDUCE`
//! (workgroup memory or subgroups), plus the `enable` directives the
//! optional features need; everything else is `override` constants.
//!
//! Also the kernels' limits as Rust constants (each checked against the
//! WGSL by a test below) and [`check_fits`], which refuses a model shape
//! the kernels cannot run. This module depends on nothing else in the crate
//! but the error type.

use crate::error::{GpuError, Result};

const EMBED: &str = include_str!("kernels/embed.wgsl");
const ATTENTION: &str = include_str!("kernels/attention.wgsl");
const KV_F32: &str = include_str!("kernels/kv_f32.wgsl");
const KV_F16: &str = include_str!("kernels/kv_f16.wgsl");
const STEP_PARAMS: &str = include_str!("kernels/step_params.wgsl");
const ARGMAX_HEADS: &str = include_str!("kernels/argmax_heads.wgsl");
pub const ATTENTION_MERGE: &str = include_str!("kernels/attention_merge.wgsl");
#[cfg(not(target_arch = "wasm32"))]
pub const READ_BANDWIDTH: &str = include_str!("kernels/read_bandwidth.wgsl");
#[cfg(not(target_arch = "wasm32"))]
pub const DISPATCH_CHAIN: &str = include_str!("kernels/dispatch_chain.wgsl");
const MATVEC: &str = include_str!("kernels/matvec.wgsl");
const MATVEC_BATCH: &str = include_str!("kernels/matvec_batch.wgsl");
const MATVEC_COMMON: &str = include_str!("kernels/matvec_common.wgsl");
const WEIGHTS_F32: &str = include_str!("kernels/weights_f32.wgsl");
const WEIGHTS_F16: &str = include_str!("kernels/weights_f16.wgsl");
const WEIGHTS_F16_PACKED: &str = include_str!("kernels/weights_f16_packed.wgsl");
const WEIGHTS_Q8: &str = include_str!("kernels/weights_q8.wgsl");
const WEIGHTS_Q4: &str = include_str!("kernels/weights_q4.wgsl");
const REDUCE_WORKGROUP: &str = include_str!("kernels/reduce_workgroup.wgsl");
const REDUCE_SUBGROUP: &str = include_str!("kernels/reduce_subgroup.wgsl");
const CONV_PARAMS: &str = include_str!("kernels/conv_params.wgsl");
const CONV1D: &str = include_str!("kernels/conv1d.wgsl");
const CONV1D_SPLIT: &str = include_str!("kernels/conv1d_split.wgsl");
const CONV1D_TILED: &str = include_str!("kernels/conv1d_tiled.wgsl");
const CONV1D_COMMON: &str = include_str!("kernels/conv1d_common.wgsl");
const CONV_HISTORY: &str = include_str!("kernels/conv_history.wgsl");
const MIMI_LAYER_NORM: &str = include_str!("kernels/mimi_layer_norm.wgsl");
const MIMI_ROPE_KV: &str = include_str!("kernels/mimi_rope_kv.wgsl");
const MIMI_ATTENTION: &str = include_str!("kernels/mimi_attention.wgsl");
const MIMI_RVQ_SCORE: &str = include_str!("kernels/mimi_rvq_score.wgsl");
const MIMI_RVQ_PICK: &str = include_str!("kernels/mimi_rvq_pick.wgsl");
const MIMI_RVQ_COMMON: &str = include_str!("kernels/mimi_rvq_common.wgsl");
/// mimi_rvq_score.wgsl / mimi_rvq_pick.wgsl: invocations per workgroup (at
/// least the codebook dimension) and codewords scored per workgroup.
pub const MIMI_RVQ_WORKGROUP: usize = 256;
pub const MIMI_RVQ_ROWS: usize = 32;
/// mimi_attention.wgsl: invocations per workgroup (= the head dimension it
/// supports) and the most keys one position attends to.
pub const MIMI_ATTENTION_WORKGROUP: usize = 64;
pub const MIMI_ATTENTION_MAX_KEYS: usize = 256;
/// mimi_rope_kv.wgsl and mimi_layer_norm.wgsl workgroups.
pub const MIMI_ROPE_WORKGROUP: u32 = 64;
/// A Mimi encoder kernel with its shared parts spliced in (`ConvParams`,
/// conv1d's constants/bindings/activations, the quantizer's level uniform).
pub fn mimi_source(kernel: MimiKernel) -> String {
    let source = match kernel {
        MimiKernel::Conv1d => CONV1D,
        MimiKernel::Conv1dSplit => CONV1D_SPLIT,
        MimiKernel::Conv1dTiled => CONV1D_TILED,
        MimiKernel::ConvHistory => CONV_HISTORY,
        MimiKernel::LayerNorm => MIMI_LAYER_NORM,
        MimiKernel::RopeKv => MIMI_ROPE_KV,
        MimiKernel::Attention => MIMI_ATTENTION,
        MimiKernel::RvqScore => MIMI_RVQ_SCORE,
        MimiKernel::RvqPick => MIMI_RVQ_PICK,
    };
    // Shared declarations, spliced where a kernel marks them (each at most
    // once; a kernel without the marker is unchanged).
    [
        ("CONV_PARAMS", CONV_PARAMS),
        ("CONV1D_COMMON", CONV1D_COMMON),
        ("MIMI_RVQ_COMMON", MIMI_RVQ_COMMON),
    ]
    .iter()
    .fold(source.to_string(), |src, (marker, text)| {
        src.replacen(&format!("\n//! {marker}\n"), &format!("\n{text}\n"), 1)
    })
}

/// The kernels of Mimi's GPU encoder (`mimi/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MimiKernel {
    Conv1d,
    Conv1dSplit,
    Conv1dTiled,
    ConvHistory,
    LayerNorm,
    RopeKv,
    Attention,
    RvqScore,
    RvqPick,
}

impl MimiKernel {
    /// The kernel's file name without `.wgsl` (profile labels).
    pub fn name(self) -> &'static str {
        match self {
            MimiKernel::Conv1d => "conv1d",
            MimiKernel::Conv1dSplit => "conv1d_split",
            MimiKernel::Conv1dTiled => "conv1d_tiled",
            MimiKernel::ConvHistory => "conv_history",
            MimiKernel::LayerNorm => "mimi_layer_norm",
            MimiKernel::RopeKv => "mimi_rope_kv",
            MimiKernel::Attention => "mimi_attention",
            MimiKernel::RvqScore => "mimi_rvq_score",
            MimiKernel::RvqPick => "mimi_rvq_pick",
        }
    }
}

/// Invocations per workgroup of conv1d.wgsl and conv_history.wgsl (one
/// output column each), and of conv1d_split.wgsl (splitting the input
/// channels of its outputs).
pub const CONV_WORKGROUP: u32 = 64;
/// conv1d_split.wgsl's (columns, output channels) per workgroup: the small
/// tile for calls of fewer than CONV_SPLIT_WIDE_MIN_COLUMNS output columns
/// (a microphone's frame), the large one for chunks.
pub const CONV_SPLIT_TILES: [(u32, u32); 2] = [(4, 1), (4, 4)];
pub const CONV_SPLIT_WIDE_MIN_COLUMNS: u32 = 16;
/// Convs with at most this many output columns per frame take
/// conv1d_split.wgsl; the others conv1d.wgsl, or conv1d_tiled.wgsl (tiles
/// of CONV_TILED_TILE columns × channels) for calls of at least
/// CONV_TILED_MIN_COLUMNS output columns.
pub const CONV_SPLIT_MAX_PER_FRAME: u32 = 8;
/// conv1d_tiled.wgsl pays ~3.5 µs per 16-deep reduction slice, so it wins
/// only with enough tiles to fill the GPU: H200, one frame (96 columns of
/// model.6): tiled 285 µs; 400 columns (25 frames of model.9): tiled 676
/// µs where conv1d.wgsl takes ~240 on 16. More than one frame's 1920.
pub const CONV_TILED_TILE: (u32, u32) = (64, 64);
pub const CONV_TILED_MIN_COLUMNS: u32 = 2048;

/// A weight layout the matvec kernel reads (`kernels/weights_*.wgsl`;
/// `repack` turns file formats into these).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GpuFormat {
    /// Row-major f32.
    F32,
    /// Row-major f16.
    F16,
    /// i8 quants, 4 per word, + one f32 scale per 32-block.
    Q8,
    /// 4-bit quants, 8 per word, + (scale, bias) f32 per 32-block.
    Q4,
}

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

/// How the LM's KV cache holds its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KvPrecision {
    /// moshi's own values (the default).
    #[default]
    F32,
    /// Half the bytes: each value rounded to f16 once, when written.
    F16,
}

impl KvPrecision {
    /// Bytes per cached value.
    pub fn bytes(self) -> usize {
        match self {
            Self::F32 => 4,
            Self::F16 => 2,
        }
    }
}

/// attention.wgsl with its KV cache `kv`, ready to compile.
pub fn attention_source(kv: KvPrecision) -> String {
    let cache = match kv {
        KvPrecision::F32 => KV_F32,
        KvPrecision::F16 => KV_F16,
    };
    with_step_params(ATTENTION).replacen("\n//! KV_CACHE\n", &format!("\n{cache}\n"), 1)
}

/// argmax_heads.wgsl, ready to compile.
pub fn argmax_heads_source() -> String {
    with_step_params(ARGMAX_HEADS)
}

/// The matvec kernel for one weight format and feature set.
pub fn matvec_source(format: GpuFormat, features: ShaderFeatures) -> String {
    matvec_kernel(MATVEC, format, features, false)
}

/// The batched matvec kernel (four streams per workgroup) for one weight
/// format and feature set.
pub fn matvec_batch_source(format: GpuFormat, features: ShaderFeatures) -> String {
    matvec_kernel(MATVEC_BATCH, format, features, true)
}

/// `kernel` with a weight file and a reduction file spliced in: their
/// parts after a `//! BATCH` line (block_dot4, lanes_sum4) only into the
/// batched kernel, which alone calls them.
fn matvec_kernel(kernel: &str, format: GpuFormat, features: ShaderFeatures, batch: bool) -> String {
    let part = |file: &'static str| -> String {
        match file.split_once("\n//! BATCH\n") {
            Some((single, extra)) if batch => format!("{single}\n{extra}"),
            Some((single, _)) => single.to_string(),
            None => file.to_string(),
        }
    };
    let weights = part(match format {
        GpuFormat::F32 => WEIGHTS_F32,
        GpuFormat::F16 if features.f16 => WEIGHTS_F16,
        GpuFormat::F16 => WEIGHTS_F16_PACKED,
        GpuFormat::Q8 => WEIGHTS_Q8,
        GpuFormat::Q4 => WEIGHTS_Q4,
    });
    let reduce = part(if features.subgroups {
        REDUCE_SUBGROUP
    } else {
        REDUCE_WORKGROUP
    });
    let source = kernel
        .replacen("\n//! MATVEC_COMMON\n", &format!("\n{MATVEC_COMMON}\n"), 1)
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

/// Invocations per matvec workgroup.
pub const MATVEC_WORKGROUP: u32 = 256;
/// matvec.wgsl caches inputs of at most this many elements in workgroup
/// memory; `AttentionMerge` needs the cache.
pub const MATVEC_INPUT_CACHE: usize = 2048;
/// Streams per workgroup of matvec_batch.wgsl.
pub const MATVEC_BATCH_STREAMS: usize = 4;
/// Rows each invocation of matvec_batch.wgsl computes (for four streams)
/// at most (`matvec::MatvecKey::with_strides` halves it for short grids).
pub const MATVEC_BATCH_ROWS_PER_INVOCATION: u32 = 4;
/// Workgroup memory matvec_batch.wgsl needs at most (input tiles, gate,
/// and the reduction trees without subgroups): the batch kernel runs only
/// where the adapter allows this much.
pub const MATVEC_BATCH_WORKGROUP_BYTES: u32 = 18432 + 2048 + 1024 + 4096;
/// matvec.wgsl's room for (head, split) weights in `AttentionMerge`.
pub const MATVEC_MAX_SPLIT_WEIGHTS: usize = 256;
/// Keys per attention workgroup (attention.wgsl's CHUNK).
pub const ATTENTION_CHUNK: usize = 128;
/// attention.wgsl keeps the rotated query in `q_rot: array<vec4<f32>, 32>`.
pub const ATTENTION_MAX_HEAD_DIM: usize = 128;
pub const ATTENTION_MAX_CONTEXT: usize = 1024;
/// Invocations of argmax_heads.wgsl's one workgroup: one per end-of-turn
/// head, so at most this many heads.
pub const ARGMAX_WORKGROUP: usize = 256;

/// How attention.wgsl splits one head's keys, for a model that fits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttentionShape {
    pub head_dim: usize,
    /// Key chunks of `ATTENTION_CHUNK` per head (workgroups along y).
    pub splits: usize,
}

/// Refuses a model shape the kernels cannot run (the engine and the candle
/// ops both call it before building anything).
pub fn check_fits(dim: usize, num_heads: usize, context: usize) -> Result<AttentionShape> {
    if num_heads == 0 || !dim.is_multiple_of(num_heads) {
        return Err(GpuError::Unsupported(format!(
            "dim {dim} is not a multiple of {num_heads} heads"
        )));
    }
    let head_dim = dim / num_heads;
    if head_dim > ATTENTION_MAX_HEAD_DIM || !head_dim.is_multiple_of(16) {
        return Err(GpuError::Unsupported(format!(
            "head dim {head_dim} (at most {ATTENTION_MAX_HEAD_DIM} and a multiple of 16)"
        )));
    }
    if context == 0 || context > ATTENTION_MAX_CONTEXT {
        return Err(GpuError::Unsupported(format!(
            "context {context} (1 to {ATTENTION_MAX_CONTEXT})"
        )));
    }
    let splits = context.div_ceil(ATTENTION_CHUNK);
    if dim > MATVEC_INPUT_CACHE || num_heads * splits > MATVEC_MAX_SPLIT_WEIGHTS {
        return Err(GpuError::Unsupported(format!(
            "dim {dim} with {num_heads} heads × {splits} key splits (at most \
             {MATVEC_INPUT_CACHE} and {MATVEC_MAX_SPLIT_WEIGHTS})"
        )));
    }
    Ok(AttentionShape { head_dim, splits })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(name: &str, source: &str) -> naga::Module {
        naga::front::wgsl::parse_str(source).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    /// A `const` of a WGSL module, as u32.
    fn wgsl_const(module: &naga::Module, name: &str) -> usize {
        let (_, c) = (module.constants.iter())
            .find(|(_, c)| c.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no const {name}"));
        match module.global_expressions[c.init] {
            naga::Expression::Literal(naga::Literal::U32(v)) => v as usize,
            ref e => panic!("const {name} is {e:?}, not a u32 literal"),
        }
    }

    /// The fixed length of an array type.
    fn array_len(module: &naga::Module, ty: naga::Handle<naga::Type>) -> usize {
        match module.types[ty].inner {
            naga::TypeInner::Array {
                size: naga::ArraySize::Constant(n),
                ..
            } => n.get() as usize,
            ref t => panic!("{t:?} is not a fixed-size array"),
        }
    }

    /// The fixed length of a module-scope array variable.
    fn global_array_len(module: &naga::Module, name: &str) -> usize {
        let (_, var) = (module.global_variables.iter())
            .find(|(_, v)| v.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no variable {name}"));
        array_len(module, var.ty)
    }

    /// The limits Rust checks models against are the ones the shaders
    /// were written for: each Rust constant equals the WGSL one.
    #[test]
    fn rust_constants_match_the_shaders() {
        let features = ShaderFeatures::default();
        let matvec = parse("matvec", &matvec_source(GpuFormat::F32, features));
        assert_eq!(wgsl_const(&matvec, "WG"), MATVEC_WORKGROUP as usize);
        assert_eq!(wgsl_const(&matvec, "CACHE"), MATVEC_INPUT_CACHE);
        assert_eq!(
            wgsl_const(&matvec, "MAX_SPLIT_WEIGHTS"),
            MATVEC_MAX_SPLIT_WEIGHTS
        );
        // Rows per workgroup at the fewest lanes (8) the host allows.
        assert_eq!(
            wgsl_const(&matvec, "MAX_ROWS_PER_WG"),
            MATVEC_WORKGROUP as usize / 8
        );

        let attention = parse("attention", &attention_source(KvPrecision::F32));
        assert_eq!(wgsl_const(&attention, "CHUNK"), ATTENTION_CHUNK);
        assert_eq!(
            4 * global_array_len(&attention, "q_rot"),
            ATTENTION_MAX_HEAD_DIM
        );
        let (_, params) = (attention.types.iter())
            .find(|(_, t)| t.name.as_deref() == Some("StepParams"))
            .expect("StepParams is declared");
        let naga::TypeInner::Struct { members, .. } = &params.inner else {
            panic!("StepParams is not a struct");
        };
        let rope = (members.iter())
            .find(|m| m.name.as_deref() == Some("rope"))
            .expect("StepParams has rope");
        assert_eq!(
            array_len(&attention, rope.ty),
            crate::step_params::ROPE_ENTRIES
        );

        parse("attention_merge", ATTENTION_MERGE);
        let batch = parse(
            "matvec_batch",
            &matvec_batch_source(GpuFormat::F32, features),
        );
        // Room for the most rows per invocation at the fewest lanes (8).
        assert_eq!(
            wgsl_const(&batch, "MAX_ROWS_PER_WG"),
            MATVEC_WORKGROUP as usize / 8 * MATVEC_BATCH_ROWS_PER_INVOCATION as usize
        );
        assert_eq!(wgsl_const(&batch, "STREAMS"), MATVEC_BATCH_STREAMS);
        assert_eq!(
            16 * global_array_len(&batch, "xin")
                + 16 * global_array_len(&batch, "gate")
                + 4 * 256
                + 16 * 256,
            MATVEC_BATCH_WORKGROUP_BYTES as usize
        );
        let argmax = parse("argmax_heads", &argmax_heads_source());
        assert_eq!(wgsl_const(&argmax, "WG"), ARGMAX_WORKGROUP);

        for (name, kernel) in [
            ("conv1d", MimiKernel::Conv1d),
            ("conv_history", MimiKernel::ConvHistory),
            ("conv1d_split", MimiKernel::Conv1dSplit),
        ] {
            let module = parse(name, &mimi_source(kernel));
            assert_eq!(wgsl_const(&module, "WG"), CONV_WORKGROUP as usize);
        }
        let split = parse("conv1d_split", &mimi_source(MimiKernel::Conv1dSplit));
        for (columns, channels) in CONV_SPLIT_TILES {
            assert_eq!(columns as usize, wgsl_const(&split, "TILE"));
            assert!(channels == 1 || channels == 4, "CO_TILE is 1 or 4");
        }
        let tiled = parse("conv1d_tiled", &mimi_source(MimiKernel::Conv1dTiled));
        assert_eq!(
            (wgsl_const(&tiled, "TN"), wgsl_const(&tiled, "TM")),
            (CONV_TILED_TILE.0 as usize, CONV_TILED_TILE.1 as usize)
        );
        let rk = wgsl_const(&tiled, "RK");
        assert_eq!(
            global_array_len(&tiled, "w_tile"),
            rk * CONV_TILED_TILE.1 as usize
        );
        assert_eq!(
            global_array_len(&tiled, "x_tile"),
            rk * CONV_TILED_TILE.0 as usize
        );
        assert_eq!(
            global_array_len(&split, "partial"),
            CONV_WORKGROUP as usize * 4
        );
        let attention = parse("mimi_attention", &mimi_source(MimiKernel::Attention));
        assert_eq!(wgsl_const(&attention, "WG"), MIMI_ATTENTION_WORKGROUP);
        assert_eq!(wgsl_const(&attention, "MAX_KEYS"), MIMI_ATTENTION_MAX_KEYS);
        let rope = parse("mimi_rope_kv", &mimi_source(MimiKernel::RopeKv));
        assert_eq!(wgsl_const(&rope, "WG"), MIMI_ROPE_WORKGROUP as usize);
        parse("mimi_layer_norm", &mimi_source(MimiKernel::LayerNorm));
        let score = parse("mimi_rvq_score", &mimi_source(MimiKernel::RvqScore));
        assert_eq!(wgsl_const(&score, "WG"), MIMI_RVQ_WORKGROUP);
        assert_eq!(wgsl_const(&score, "ROWS"), MIMI_RVQ_ROWS);
        assert_eq!(
            wgsl_const(&score, "ROWS") * wgsl_const(&score, "LANES"),
            MIMI_RVQ_WORKGROUP
        );
        let pick = parse("mimi_rvq_pick", &mimi_source(MimiKernel::RvqPick));
        assert_eq!(wgsl_const(&pick, "WG"), MIMI_RVQ_WORKGROUP);
        assert_eq!(wgsl_const(&pick, "ROWS"), MIMI_RVQ_ROWS);
    }

    #[test]
    fn check_fits_refuses_what_the_kernels_cannot_run() {
        let fits = check_fits(2048, 16, 750).expect("stt-1b-en_fr fits");
        assert_eq!(fits.head_dim, 128);
        assert_eq!(fits.splits, 6);
        for (dim, heads, context) in [
            (2048, 8, 750),   // head dim 256
            (2048, 0, 750),   // no heads
            (2040, 16, 750),  // not divisible
            (2560, 20, 750),  // dim over the input cache
            (2048, 16, 2000), // context over the limit
            (1024, 64, 1024), // head dim 16 but 64 × 16 splits
        ] {
            assert!(
                check_fits(dim, heads, context).is_err(),
                "{dim} {heads} {context}"
            );
        }
    }

    /// The kernels sharing StepParams parse and validate once spliced.
    #[test]
    fn step_params_kernels_validate() {
        for (name, src) in [
            ("embed", embed_source()),
            ("attention", attention_source(KvPrecision::F32)),
            ("attention f16 KV", attention_source(KvPrecision::F16)),
            ("argmax_heads", argmax_heads_source()),
        ] {
            assert!(
                !src.contains("//! STEP_PARAMS") && !src.contains("//! KV_CACHE"),
                "{name}"
            );
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
                    for src in [
                        matvec_source(format, ShaderFeatures { f16, subgroups }),
                        matvec_batch_source(format, ShaderFeatures { f16, subgroups }),
                    ] {
                        assert!(!src.contains("//! WEIGHTS") && !src.contains("//! REDUCE"));
                        assert!(!src.contains("//! BATCH") && !src.contains("//! MATVEC_COMMON"));
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

    /// Positive loop steps: the constants and names the kernels step by
    /// (each ≥ 1: WG, KEYS_PER_PASS = WG / 4, CACHE and RK are constants;
    /// LANES and LANES_PER_KEY are ≥ 8 and 4 by the host's checks;
    /// key_groups = 256 / (HEAD_DIM / 4) ≥ 8 for HEAD_DIM ≤ 128; stride is
    /// the probe's invocation count).
    const POSITIVE_STEPS: [&str; 10] = [
        "1u",
        "4u",
        "WG",
        "KEYS_PER_PASS",
        "LANES",
        "LANES_PER_KEY",
        "key_groups",
        "CACHE",
        "RK",
        "stride",
    ];

    /// Whether a `for` header (init; condition; update) ends: the counter
    /// goes up by a positive step while below a bound, or halves while
    /// above 0.
    fn loop_ends(header: &str) -> bool {
        let parts: Vec<&str> = header.split(';').map(str::trim).collect();
        let [_, cond, update] = parts[..] else {
            return false;
        };
        let counter = cond.split_whitespace().next().unwrap_or("");
        let step = (update.strip_prefix(&format!("{counter} = {counter} + ")))
            .or_else(|| update.strip_prefix(&format!("{counter} += ")))
            .or((update == format!("{counter}++")).then_some("1u"));
        if let Some(step) = step {
            // The bound is the last term of `counter [+ c] < bound`.
            return POSITIVE_STEPS.contains(&step) && cond.contains(" < ");
        }
        let halves =
            update == format!("{counter} = {counter} / 2u") || update == format!("{counter} /= 2u");
        halves && cond == format!("{counter} > 0u")
    }

    /// pipelines.rs creates shader modules without wgpu's loop counters,
    /// which is sound only while every loop of every kernel ends: only
    /// `for` loops of the two forms `loop_ends` accepts, no `loop` or
    /// `while`.
    #[test]
    fn every_loop_is_bounded() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/kernels");
        let mut loops = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "wgsl") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let code: String = (text.lines())
                .map(|l| l.split("//").next().unwrap_or(""))
                .collect::<Vec<_>>()
                .join("\n");
            let words = code.split(|c: char| !(c.is_alphanumeric() || c == '_'));
            let mut fors = 0;
            for word in words {
                assert!(
                    !matches!(word, "loop" | "while" | "continuing"),
                    "{}: `{word}` (only counted `for` loops are allowed)",
                    path.display()
                );
                fors += usize::from(word == "for");
            }
            // Every `for` is written `for (`, so the scan below sees them all.
            assert_eq!(
                code.matches("for (").count(),
                fors,
                "{}: a `for` not written `for (`",
                path.display()
            );
            for (at, _) in code.match_indices("for (") {
                // The header ends at the `)` that closes `for (`.
                let rest = &code[at + 5..];
                let mut depth = 1;
                let end = (rest.char_indices())
                    .find(|&(_, c)| {
                        depth += match c {
                            '(' => 1,
                            ')' => -1,
                            _ => 0,
                        };
                        depth == 0
                    })
                    .map_or(rest.len(), |(i, _)| i);
                let header = &rest[..end];
                assert!(
                    loop_ends(header),
                    "{}: `for ({header})` is not a loop known to end",
                    path.display()
                );
                loops += 1;
            }
        }
        assert!(loops > 50, "found only {loops} loops in {dir}");
    }

    #[test]
    fn loop_ends_refuses_loops_that_may_not_end() {
        assert!(loop_ends("var i = lid; i < K / 4u; i = i + WG"));
        assert!(loop_ends("; r + 3u < reduction; r += 4u"));
        assert!(loop_ends("var s = WG / 2u; s > 0u; s /= 2u"));
        assert!(!loop_ends("var i = 0u; i < n; i = i + step"));
        assert!(!loop_ends("var i = 0u; i < n; i = i - 1u"));
        assert!(!loop_ends("var i = 0u; i != n; i = i + 4u"));
        assert!(!loop_ends("var i = 0u; j < n; i = i + 1u"));
        assert!(!loop_ends("var s = 8u; s >= 0u; s = s / 2u"));
    }
}
