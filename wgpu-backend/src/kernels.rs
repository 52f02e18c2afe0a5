//! The WGSL kernels, embedded in the binary, and the one place where a
//! matvec kernel is specialised to a weight format (a textual splice at
//! `//! WEIGHTS`; everything else is `override` constants).

use crate::repack::GpuFormat;

pub const EMBED: &str = include_str!("kernels/embed.wgsl");
pub const ATTENTION: &str = include_str!("kernels/attention.wgsl");
pub const ARGMAX_HEADS: &str = include_str!("kernels/argmax_heads.wgsl");
const MATVEC: &str = include_str!("kernels/matvec.wgsl");
const WEIGHTS_F32: &str = include_str!("kernels/weights_f32.wgsl");
const WEIGHTS_Q8: &str = include_str!("kernels/weights_q8.wgsl");
const WEIGHTS_Q4: &str = include_str!("kernels/weights_q4.wgsl");

/// The matvec kernel for one weight format.
pub fn matvec_source(format: GpuFormat) -> String {
    let weights = match format {
        GpuFormat::F32 => WEIGHTS_F32,
        GpuFormat::Q8 => WEIGHTS_Q8,
        GpuFormat::Q4 => WEIGHTS_Q4,
    };
    MATVEC.replacen("\n//! WEIGHTS\n", &format!("\n{weights}\n"), 1)
}

/// `INPUT_MODE` of matvec.wgsl.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatvecInput {
    Plain = 0,
    RmsNorm = 1,
    SiluGate = 2,
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
}

pub const MATVEC_ROWS_PER_WORKGROUP: u32 = 32;
pub const ATTENTION_MAX_HEAD_DIM: usize = 128;
pub const ATTENTION_MAX_CONTEXT: usize = 1024;
