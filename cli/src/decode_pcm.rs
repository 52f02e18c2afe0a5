//! `stt-cli decode-pcm` (hidden): writes the 24 kHz mono PCM our audio path
//! decodes from a file, as raw little-endian f32, so that the PyTorch parity
//! reference (`tests/parity/reference.py`) feeds upstream's Mimi exactly the
//! samples ours sees: resampling differences cannot hide model differences.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};

#[derive(Debug, clap::Args)]
pub struct DecodePcmArgs {
    /// Any audio file `transcribe` reads.
    pub input: PathBuf,
    /// Output: raw little-endian f32 samples at 24 kHz, mono (`.f32`).
    pub output: PathBuf,
    /// Keep only the first this many seconds.
    #[arg(long)]
    pub seconds: Option<f64>,
}

pub fn run(args: DecodePcmArgs) -> Result<bool> {
    if args.output.extension().and_then(|e| e.to_str()) != Some("f32") {
        bail!(
            "{}: the output is raw f32 samples; name it *.f32",
            args.output.display()
        );
    }
    let mut pcm = stt_model::audio::read_all_24k(&args.input)
        .with_context(|| format!("decoding {}", args.input.display()))?;
    if let Some(s) = args.seconds {
        if !(s > 0.0 && s.is_finite()) {
            bail!("--seconds must be a positive number of seconds, got {s}");
        }
        let keep = (s * stt_model::config::SAMPLE_RATE_HZ as f64).round() as usize;
        pcm.truncate(keep);
    }
    let bytes: Vec<u8> = pcm.iter().flat_map(|x| x.to_le_bytes()).collect();
    let mut f = std::fs::File::create(&args.output)
        .with_context(|| format!("creating {}", args.output.display()))?;
    f.write_all(&bytes)
        .with_context(|| format!("writing {}", args.output.display()))?;
    Ok(true)
}
