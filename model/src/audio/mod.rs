//! Audio input: decode any supported file, downmix to mono and resample to
//! the model's 24 kHz, streaming so that hour-long files use constant memory.

mod decode;
mod ebml;
pub mod guard;
mod mp4;
mod opus;
mod probe;
pub mod resample;

pub use resample::Resampler;

use crate::config::SAMPLE_RATE_HZ;
use decode::SourceDecoder;
use symphonia::core::io::MediaSource;

/// Smallest chunk `next_chunk` tries to return (0.1 s), so callers are not
/// handed one tiny vector per MP3 frame.
const MIN_CHUNK_SAMPLES: usize = 2_400;

/// `AudioStream::set_resample_block` for whole-file readers: 2²⁰ samples
/// (22 s at 48 kHz, 4 MiB), enough outputs to split over the cores.
pub const WHOLE_FILE_RESAMPLE_BLOCK: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AudioError {
    #[error("i/o error while reading audio: {0}")]
    Io(#[from] std::io::Error),
    #[error("the audio contains no samples")]
    Empty,
    #[error("unsupported audio format: {0}")]
    UnsupportedFormat(String),
    #[error("could not decode audio: {0}")]
    Decode(String),
    #[error("the audio is truncated or corrupt after {decoded_seconds:.2} s")]
    Truncated { decoded_seconds: f64 },
    #[error("the audio contains an invalid (NaN or infinite) sample at frame {index}")]
    InvalidSamples { index: u64 },
    #[error("unsupported sample rate: {0} Hz")]
    UnsupportedRate(u32),
}

enum State {
    Running,
    /// The source failed after producing audio; report this once, after the
    /// audio decoded before the failure has been handed out.
    Failed(AudioError),
    Done,
}

/// Streaming: decoded, downmixed to mono (mean of channels), resampled to 24 kHz. Constant memory for hour-long files.
pub struct AudioStream {
    decoder: SourceDecoder,
    resampler: Resampler,
    /// Rate the resampler is currently set up for (chained streams may change it).
    current_rate_hz: u32,
    source_rate_hz: u32,
    source_channels: usize,
    /// Mono samples decoded by `open()` to validate the stream, not yet resampled.
    primed: Option<Vec<f32>>,
    scratch: Vec<f32>,
    /// Decoded samples gathered for the resampler (`set_resample_block`).
    pending: Vec<f32>,
    /// Samples to gather before resampling; 0: each block as decoded.
    resample_block: usize,
    state: State,
}

impl AudioStream {
    /// `hint`: a file extension such as "mp3" or "wav", if known.
    ///
    /// Decodes the first packet right away, so an empty or undecodable file
    /// fails here rather than on the first `next_chunk`.
    pub fn open(source: Box<dyn MediaSource>, hint: Option<&str>) -> Result<Self, AudioError> {
        if source.byte_len() == Some(0) {
            return Err(AudioError::Empty);
        }
        let mut decoder = SourceDecoder::open(source, hint)?;
        let mut first = Vec::new();
        let rate = match decoder.next_block(&mut first)? {
            Some(rate) => rate,
            None => return Err(AudioError::Empty),
        };
        let resampler = Resampler::new(rate, SAMPLE_RATE_HZ)?;
        let source_channels = decoder
            .last_channels
            .or(decoder.announced_channels)
            .unwrap_or(1);
        Ok(Self {
            resampler,
            current_rate_hz: rate,
            source_rate_hz: decoder.announced_rate.unwrap_or(rate),
            source_channels,
            decoder,
            primed: Some(first),
            scratch: Vec::new(),
            pending: Vec::new(),
            resample_block: 0,
            state: State::Running,
        })
    }

    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_path(path: &std::path::Path) -> Result<Self, AudioError> {
        let file = std::fs::File::open(path)?;
        let ext = path.extension().and_then(|e| e.to_str());
        Self::open(Box::new(file), ext)
    }

    /// Raw bytes (e.g. from the browser). Same as open() over a Cursor.
    pub fn from_bytes(bytes: Vec<u8>, hint: Option<&str>) -> Result<Self, AudioError> {
        Self::open(Box::new(std::io::Cursor::new(bytes)), hint)
    }

    pub fn source_sample_rate_hz(&self) -> u32 {
        self.source_rate_hz
    }

    pub fn source_channels(&self) -> usize {
        self.source_channels
    }

    /// Duration announced by the container, if any.
    pub fn duration_seconds(&self) -> Option<f64> {
        let frames = self.decoder.announced_frames?;
        let rate = self.decoder.announced_rate.unwrap_or(self.source_rate_hz);
        (rate > 0).then(|| frames as f64 / f64::from(rate))
    }

    /// For readers of a whole file: resample in blocks of `samples`
    /// decoded samples, which the resampler splits over the cores (an hour
    /// at 48 kHz: 3.6 s on one core). The samples are the same; chunks
    /// come a block at a time.
    pub fn set_resample_block(&mut self, samples: usize) {
        self.resample_block = samples;
    }

    /// Resamples the gathered samples into `out`.
    fn resample_pending(&mut self, out: &mut Vec<f32>) {
        self.resampler.process(&self.pending, out);
        self.pending.clear();
    }

    /// Next chunk of mono 24 kHz f32 samples (any length > 0); Ok(None) at the end.
    ///
    /// After the source ends, the resampler's tail is flushed so that N input
    /// samples give ceil(N*24000/rate) output samples in total. A truncated
    /// file first yields all audio decoded so far, then returns
    /// `Err(Truncated)` once, then `Ok(None)`. Other errors (e.g.
    /// `InvalidSamples`) are returned as soon as they are found, followed by
    /// `Ok(None)`.
    pub fn next_chunk(&mut self) -> Result<Option<Vec<f32>>, AudioError> {
        let mut out = Vec::new();
        loop {
            match std::mem::replace(&mut self.state, State::Running) {
                State::Running => {}
                State::Done => {
                    self.state = State::Done;
                    return Ok(None);
                }
                State::Failed(err) => {
                    self.state = State::Done;
                    return Err(err);
                }
            }

            let step = match self.primed.take() {
                Some(first) => {
                    self.scratch = first;
                    Ok(Some(self.current_rate_hz))
                }
                None => {
                    self.scratch.clear();
                    self.decoder.next_block(&mut self.scratch)
                }
            };
            match step {
                Ok(Some(rate)) => {
                    if rate != self.current_rate_hz {
                        // Chained streams can switch rate: close the old
                        // segment cleanly and start a fresh resampler.
                        self.resample_pending(&mut out);
                        self.resampler.finish(&mut out);
                        self.resampler = match Resampler::new(rate, SAMPLE_RATE_HZ) {
                            Ok(r) => r,
                            Err(e) => {
                                self.state = State::Done;
                                return Err(e);
                            }
                        };
                        self.current_rate_hz = rate;
                    }
                    if self.resample_block == 0 {
                        self.resampler.process(&self.scratch, &mut out);
                    } else {
                        self.pending.extend_from_slice(&self.scratch);
                        if self.pending.len() >= self.resample_block {
                            self.resample_pending(&mut out);
                        }
                    }
                    if out.len() >= MIN_CHUNK_SAMPLES {
                        return Ok(Some(out));
                    }
                }
                Ok(None) => {
                    self.resample_pending(&mut out);
                    self.resampler.finish(&mut out);
                    self.state = State::Done;
                    return Ok((!out.is_empty()).then_some(out));
                }
                Err(err @ AudioError::Truncated { .. }) => {
                    self.resample_pending(&mut out);
                    self.resampler.finish(&mut out);
                    if out.is_empty() {
                        self.state = State::Done;
                        return Err(err);
                    }
                    self.state = State::Failed(err);
                    return Ok(Some(out));
                }
                Err(err) => {
                    self.state = State::Done;
                    return Err(err);
                }
            }
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
/// Convenience: read a whole file to mono 24 kHz (used by tests and small files). Errors as above; a truncated file is an error here.
pub fn read_all_24k(path: &std::path::Path) -> Result<Vec<f32>, AudioError> {
    let mut stream = AudioStream::from_path(path)?;
    stream.set_resample_block(WHOLE_FILE_RESAMPLE_BLOCK);
    let mut all = Vec::new();
    while let Some(chunk) = stream.next_chunk()? {
        all.extend_from_slice(&chunk);
    }
    Ok(all)
}
