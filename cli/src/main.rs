//! `stt-cli`: Kyutai's stt-1b-en_fr speech-to-text on this machine.
//!
//! Exit codes: 0 success; 1 an input or model failed (the message says
//! which); 2 bad command line.

mod decode_pcm;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};
use stt_cli::synth::{Preset, SynthOptions};
use stt_cli::tensor_writer::StDtype;
use stt_cli::transcribe::TranscribeArgs;
use stt_model::weights::quant::QuantType;

#[derive(Parser)]
#[command(
    name = "stt-cli",
    version,
    about = "Streaming speech-to-text (Kyutai stt-1b-en_fr), on your own machine"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Transcribe audio files (wav, mp3, flac, ogg, m4a/aac) or stdin.
    Transcribe(TranscribeArgs),
    /// Write a synthetic model (random weights, real architecture and file layout).
    Synth {
        /// Output directory.
        #[arg(long, short)]
        out: PathBuf,
        #[arg(long, value_enum, default_value = "tiny")]
        preset: Preset,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Element type of model.safetensors.
        #[arg(long, value_parser = ["bf16", "f32"], default_value = "bf16")]
        lm_dtype: String,
        /// GGUF files to write as well (comma-separated: q4_0,q4_k,q8_0).
        #[arg(long, value_delimiter = ',')]
        gguf: Vec<String>,
        /// Leave out the end-of-turn heads.
        #[arg(long)]
        no_extra_heads: bool,
    },
    /// Quantize an LM safetensors file to GGUF.
    Quantize {
        input: PathBuf,
        output: PathBuf,
        #[arg(long = "type", value_parser = ["q4_0", "q4_k", "q8_0"])]
        ty: String,
    },
    /// Time LM steps on the GPU (and the CPU) and print JSON.
    Bench(stt_cli::bench::BenchArgs),
    /// Decoded 24 kHz mono PCM of a file, as raw f32 (parity goldens).
    #[command(hide = true)]
    DecodePcm(decode_pcm::DecodePcmArgs),
}

fn parse_quant(s: &str) -> Result<QuantType> {
    QuantType::parse(s)
        .ok_or_else(|| anyhow::anyhow!("unknown quantization `{s}` (use q4_0, q4_k or q8_0)"))
}

fn run(cli: Cli) -> Result<bool> {
    match cli.command {
        Command::Transcribe(args) => stt_cli::transcribe::run(args),
        Command::Synth {
            out,
            preset,
            seed,
            lm_dtype,
            gguf,
            no_extra_heads,
        } => {
            let mut opts = SynthOptions::new(preset, seed);
            opts.lm_dtype = if lm_dtype == "f32" {
                StDtype::F32
            } else {
                StDtype::BF16
            };
            opts.gguf = gguf.iter().map(|s| parse_quant(s)).collect::<Result<_>>()?;
            opts.extra_heads = !no_extra_heads;
            stt_cli::synth::synth(&out, &opts)?;
            Ok(true)
        }
        Command::Quantize { input, output, ty } => {
            stt_cli::quantize::quantize_file(&input, &output, parse_quant(&ty)?)?;
            Ok(true)
        }
        Command::DecodePcm(args) => decode_pcm::run(args),
        Command::Bench(args) => stt_cli::bench::run(args),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
