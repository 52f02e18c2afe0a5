//! Small option types shared by several subcommands, as `clap::ValueEnum`s
//! mapped onto the library's own types (which know nothing of clap).

use stt_model::weights::quant::QuantType;

use crate::tensor_writer::StDtype;

/// A GGUF block format to write (`synth --gguf`, `quantize --type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BlockQuant {
    #[value(name = "q4_0")]
    Q4_0,
    #[value(name = "q4_k")]
    Q4K,
    #[value(name = "q8_0")]
    Q8_0,
}

impl From<BlockQuant> for QuantType {
    fn from(q: BlockQuant) -> Self {
        match q {
            BlockQuant::Q4_0 => QuantType::Q4_0,
            BlockQuant::Q4K => QuantType::Q4K,
            BlockQuant::Q8_0 => QuantType::Q8_0,
        }
    }
}

/// What the GPU engine may quantize float weights to at load (`--quantize`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LoadQuant {
    #[value(name = "q4_k")]
    Q4K,
    #[value(name = "q4_0")]
    Q4_0,
    #[value(name = "q8_0")]
    Q8_0,
    F16,
}

impl std::fmt::Display for LoadQuant {
    /// The name on the command line (`q4_k`, …).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use clap::ValueEnum;
        match self.to_possible_value() {
            Some(v) => f.write_str(v.get_name()),
            None => write!(f, "{self:?}"),
        }
    }
}

impl From<LoadQuant> for QuantType {
    fn from(q: LoadQuant) -> Self {
        match q {
            LoadQuant::Q4K => QuantType::Q4K,
            LoadQuant::Q4_0 => QuantType::Q4_0,
            LoadQuant::Q8_0 => QuantType::Q8_0,
            LoadQuant::F16 => QuantType::F16,
        }
    }
}

/// Element type of a written `model.safetensors`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LmDtype {
    Bf16,
    F32,
}

impl From<LmDtype> for StDtype {
    fn from(d: LmDtype) -> Self {
        match d {
            LmDtype::Bf16 => StDtype::BF16,
            LmDtype::F32 => StDtype::F32,
        }
    }
}

/// Transcript format (`transcribe --format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatArg {
    Txt,
    Srt,
    Vtt,
    Json,
    Jsonl,
}

impl From<FormatArg> for stt_model::export::Format {
    fn from(f: FormatArg) -> Self {
        use stt_model::export::Format;
        match f {
            FormatArg::Txt => Format::Txt,
            FormatArg::Srt => Format::Srt,
            FormatArg::Vtt => Format::Vtt,
            FormatArg::Json => Format::Json,
            FormatArg::Jsonl => Format::Jsonl,
        }
    }
}
