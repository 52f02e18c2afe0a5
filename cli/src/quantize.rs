//! `stt-cli quantize IN.safetensors OUT.gguf --type q4_0|q4_k|q8_0`.

use std::io::BufWriter;
use std::path::Path;

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device};
use stt_model::weights::quant::QuantType;
use stt_model::weights::safetensors::SafetensorsFile;
use stt_model::weights::Shards;

use crate::tensor_writer::{GgufWriter, TensorSpec};

/// `stt-cli quantize`: an LM safetensors file to GGUF.
#[derive(Debug, clap::Args)]
pub struct QuantizeArgs {
    pub input: std::path::PathBuf,
    pub output: std::path::PathBuf,
    #[arg(long = "type", value_enum)]
    pub ty: crate::args::BlockQuant,
}

pub fn run(args: QuantizeArgs) -> Result<bool> {
    quantize_file(&args.input, &args.output, args.ty.into())?;
    Ok(true)
}

pub fn quantize_file(input: &Path, output: &Path, ty: QuantType) -> Result<()> {
    let shards = Shards::from_path(input)?;
    let file = SafetensorsFile::from_shards(&input.display().to_string(), shards)?;
    let mut names: Vec<&String> = file.entries().keys().collect();
    names.sort();
    let specs: Vec<TensorSpec> = names
        .iter()
        .map(|n| TensorSpec {
            name: n.to_string(),
            shape: file.entries()[*n].shape.clone(),
        })
        .collect();
    let out =
        std::fs::File::create(output).with_context(|| format!("creating {}", output.display()))?;
    let mut w = GgufWriter::new(
        BufWriter::with_capacity(8 << 20, out),
        ty,
        "stt-web quantized",
        &specs,
    )?;
    for s in &specs {
        let t = file
            .tensor(&s.name, &Device::Cpu)?
            .to_dtype(DType::F32)?
            .flatten_all()?;
        let xs = t.to_vec1::<f32>()?;
        if let Some(i) = xs.iter().position(|x| !x.is_finite()) {
            bail!("tensor `{}`: value {i} is not finite", s.name);
        }
        w.push(&s.name, &xs)?;
    }
    w.finish()
}
