//! `stt-cli`: Kyutai's stt-1b-en_fr speech-to-text on this machine.
//!
//! Exit codes: 0 success; 1 an input or model failed (the message says
//! which); 2 bad command line.

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};
use stt_cli::{bench, decode_pcm, eval, quantize, serve, soak, synth, transcribe};

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
    Transcribe(transcribe::TranscribeArgs),
    /// Word error rate on a corpus with reference texts (LibriSpeech folder
    /// or JSONL manifest), as a JSON report; or compare two reports.
    Eval(eval::EvalArgs),
    /// Write a synthetic model (random weights, real architecture and file layout).
    Synth(synth::SynthArgs),
    /// Quantize an LM safetensors file to GGUF.
    Quantize(quantize::QuantizeArgs),
    /// Time LM steps on the GPU (and the CPU) and print JSON.
    Bench(bench::BenchArgs),
    /// Serve the browser app (and a model directory) on this machine.
    Serve(serve::ServeArgs),
    /// One long live stream through the GPU and CPU engines: memory, words
    /// after every context wrap, identical words (JSON).
    Soak(soak::SoakArgs),
    /// Decoded 24 kHz mono PCM of a file, as raw f32 (parity goldens).
    #[command(hide = true)]
    DecodePcm(decode_pcm::DecodePcmArgs),
}

/// Ok(false): some input failed (already reported); Err: nothing could run.
fn run(cli: Cli) -> Result<bool> {
    match cli.command {
        Command::Transcribe(args) => transcribe::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Synth(args) => synth::run(args),
        Command::Quantize(args) => quantize::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Soak(args) => soak::run(args),
        Command::DecodePcm(args) => decode_pcm::run(args),
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
