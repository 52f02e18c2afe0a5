//! Symphonia-based decoding of any supported container to mono f32 at the
//! source sample rate, one packet at a time.

use std::sync::OnceLock;
use symphonia::core::audio::{AudioBuffer, AudioBufferRef, Signal};

use symphonia::core::codecs::{CodecRegistry, Decoder, DecoderOptions, CODEC_TYPE_NULL};
use symphonia::core::conv::FromSample;
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::{FormatOptions, FormatReader};
use symphonia::core::io::{MediaSource, MediaSourceStream};
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;
use symphonia::core::sample::Sample;

use super::guard::guarded;
use super::resample::MAX_RATE_HZ;
use super::AudioError;

/// Consecutive undecodable packets tolerated before giving up. MP3 streams
/// can carry an occasional corrupt frame; a run this long means the data is
/// not audio any more.
const MAX_CONSECUTIVE_ERRORS: u32 = 16;
/// Consecutive packets yielding no audio before we assume the demuxer is
/// stuck (e.g. a WAV whose data chunk claims more bytes than the file has
/// keeps handing out empty packets without advancing).
const MAX_EMPTY_PACKETS: u32 = 256;

/// Container formats compiled in, for the "what was tried" message.
const FORMATS_TRIED: &str =
    "WAV/AIFF, MP3/MP2/MP1, AAC (ADTS), MP4/M4A/MOV, FLAC, OGG/Opus, WebM/MKV";

/// Symphonia's codecs plus Opus (which symphonia demuxes but cannot decode).
fn codecs() -> &'static CodecRegistry {
    static REGISTRY: OnceLock<CodecRegistry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut registry = CodecRegistry::new();
        symphonia::default::register_enabled_codecs(&mut registry);
        registry.register_all::<super::opus::OpusDecoder>();
        registry
    })
}

/// Pulls packets from a container and decodes them to mono.
pub(crate) struct SourceDecoder {
    format: Box<dyn FormatReader>,
    decoder: Box<dyn Decoder>,
    track_id: u32,
    /// Rate and channel count announced by the container, if any.
    pub(crate) announced_rate: Option<u32>,
    pub(crate) announced_channels: Option<usize>,
    /// Frames announced by the container (may be an estimate for CBR MP3).
    pub(crate) announced_frames: Option<u64>,
    /// Channel count of the most recently decoded buffer.
    pub(crate) last_channels: Option<usize>,
    frames_decoded: u64,
    seconds_decoded: f64,
    last_rate: Option<u32>,
    finished: bool,
}

fn check_rate(rate: u32) -> Result<u32, AudioError> {
    if rate == 0 || rate > MAX_RATE_HZ {
        Err(AudioError::UnsupportedRate(rate))
    } else {
        Ok(rate)
    }
}

impl SourceDecoder {
    pub(crate) fn open(
        source: Box<dyn MediaSource>,
        hint: Option<&str>,
    ) -> Result<Self, AudioError> {
        let mut probe_hint = Hint::new();
        if let Some(ext) = hint {
            let ext = ext.trim().trim_start_matches('.').to_ascii_lowercase();
            if !ext.is_empty() {
                probe_hint.with_extension(&ext);
            }
        }
        let stream = MediaSourceStream::new(source, Default::default());
        // Gapless trimming stays off: for MP3 without a LAME tag it would trim
        // to an n_frames that is only a bitrate estimate, silently dropping audio.
        let probed = guarded(|| {
            super::probe::probe().format(
                &probe_hint,
                stream,
                &FormatOptions::default(),
                &MetadataOptions::default(),
            )
        })
        .map_err(|panic| AudioError::Decode(format!("the file is malformed ({panic})")))?
        .map_err(|e| match e {
            // A structure check refused the file (`super::probe`).
            SymError::IoError(io) if io.kind() == std::io::ErrorKind::InvalidData => {
                AudioError::UnsupportedFormat(io.to_string())
            }
            // A real I/O failure (not "ran out of bytes") is not a format problem.
            SymError::IoError(io) if io.kind() != std::io::ErrorKind::UnexpectedEof => {
                AudioError::Io(io)
            }
            other => AudioError::UnsupportedFormat(format!(
                "not a recognised audio file (hint: {}; tried {FORMATS_TRIED}): {other}",
                hint.unwrap_or("none")
            )),
        })?;
        let format = probed.format;

        // Prefer the container's default track, else the first one with a codec.
        let track = format
            .default_track()
            .filter(|t| t.codec_params.codec != CODEC_TYPE_NULL)
            .or_else(|| {
                format
                    .tracks()
                    .iter()
                    .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
            })
            .ok_or_else(|| AudioError::UnsupportedFormat("the file has no audio track".into()))?;
        let params = track.codec_params.clone();
        let track_id = track.id;

        if let Some(rate) = params.sample_rate {
            check_rate(rate)?;
        }
        let decoder = codecs()
            .make(&params, &DecoderOptions::default())
            .map_err(|e| {
                AudioError::UnsupportedFormat(format!("audio codec not supported ({e})"))
            })?;

        Ok(Self {
            format,
            decoder,
            track_id,
            announced_rate: params.sample_rate,
            announced_channels: params.channels.map(|c| c.count()),
            announced_frames: params.n_frames,
            last_channels: None,
            frames_decoded: 0,
            seconds_decoded: 0.0,
            last_rate: None,
            finished: false,
        })
    }

    /// Error for a failure at the current position: `Decode` if nothing has
    /// come out yet, `Truncated` otherwise.
    fn failure(&mut self, what: String) -> AudioError {
        self.finished = true;
        if self.frames_decoded == 0 {
            AudioError::Decode(what)
        } else {
            AudioError::Truncated {
                decoded_seconds: self.seconds_decoded,
            }
        }
    }

    /// End of data. Most demuxers (MP3, WAV) report a cut-off file exactly
    /// like a normal end of stream, so compare with the announced length:
    /// clearly fewer frames than announced means the file was truncated.
    fn end_of_stream(&mut self) -> Result<Option<u32>, AudioError> {
        self.finished = true;
        if let (Some(announced), Some(rate)) = (self.announced_frames, self.last_rate) {
            // Slack covers encoder padding and bitrate-based MP3 estimates.
            let slack = (announced / 50).max(u64::from(rate) / 2);
            if self.frames_decoded > 0 && self.frames_decoded.saturating_add(slack) < announced {
                return Err(AudioError::Truncated {
                    decoded_seconds: self.seconds_decoded,
                });
            }
        }
        Ok(None)
    }

    /// Decodes packets until one yields audio, appends its mono downmix to
    /// `out` and returns that audio's sample rate; `Ok(None)` at the end.
    pub(crate) fn next_block(&mut self, out: &mut Vec<f32>) -> Result<Option<u32>, AudioError> {
        if self.finished {
            return Ok(None);
        }
        let mut errors = 0u32;
        let mut empty = 0u32;
        let mut last_error = String::new();
        loop {
            if errors > MAX_CONSECUTIVE_ERRORS {
                return Err(self.failure(format!(
                    "{errors} consecutive packets failed to decode: {last_error}"
                )));
            }
            if empty > MAX_EMPTY_PACKETS {
                return self.end_of_stream();
            }
            let next = guarded(|| self.format.next_packet());
            let next = match next {
                Ok(n) => n,
                Err(panic) => return Err(self.failure(format!("the file is malformed ({panic})"))),
            };
            let packet = match next {
                Ok(p) => p,
                Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    return self.end_of_stream();
                }
                Err(SymError::ResetRequired) => return self.end_of_stream(),
                Err(SymError::IoError(e)) => {
                    if self.frames_decoded == 0 {
                        self.finished = true;
                        return Err(AudioError::Io(e));
                    }
                    return Err(self.failure(e.to_string()));
                }
                Err(SymError::DecodeError(msg)) => {
                    // Malformed container data; demuxers usually resync.
                    errors += 1;
                    last_error = msg.to_string();
                    continue;
                }
                Err(e) => return Err(self.failure(e.to_string())),
            };
            if packet.track_id() != self.track_id {
                continue;
            }
            if packet.buf().is_empty() {
                empty += 1;
                continue;
            }
            let decoder = &mut self.decoder;
            let decoded = match guarded(|| decoder.decode(&packet).map(|_| ())) {
                Ok(r) => r,
                Err(panic) => return Err(self.failure(format!("the file is malformed ({panic})"))),
            };
            let decoded = match decoded.map(|_| self.decoder.last_decoded()) {
                Ok(d) => d,
                // A bad packet (or one cut short) is skipped; see MAX_CONSECUTIVE_ERRORS.
                Err(SymError::DecodeError(msg)) => {
                    errors += 1;
                    last_error = msg.to_string();
                    continue;
                }
                Err(SymError::IoError(e)) => {
                    errors += 1;
                    last_error = e.to_string();
                    continue;
                }
                Err(SymError::ResetRequired) => return self.end_of_stream(),
                Err(e) => return Err(self.failure(e.to_string())),
            };
            errors = 0;
            let frames = decoded.frames();
            let channels = decoded.spec().channels.count();
            if frames == 0 || channels == 0 {
                // E.g. Vorbis' first packet only primes the decoder.
                empty += 1;
                continue;
            }
            let rate = check_rate(decoded.spec().rate).inspect_err(|_| self.finished = true)?;

            let start = out.len();
            downmix_ref(&decoded, out);
            // NaN/inf would poison the resampler and everything downstream.
            if let Some(pos) = out
                .get(start..)
                .and_then(|s| s.iter().position(|v| !v.is_finite()))
            {
                out.truncate(start);
                self.finished = true;
                return Err(AudioError::InvalidSamples {
                    index: self.frames_decoded + pos as u64,
                });
            }
            self.frames_decoded += frames as u64;
            self.seconds_decoded += frames as f64 / f64::from(rate);
            self.last_rate = Some(rate);
            self.last_channels = Some(channels);
            return Ok(Some(rate));
        }
    }
}

fn downmix_ref(buf: &AudioBufferRef<'_>, out: &mut Vec<f32>) {
    match buf {
        AudioBufferRef::U8(b) => downmix(b, out),
        AudioBufferRef::U16(b) => downmix(b, out),
        AudioBufferRef::U24(b) => downmix(b, out),
        AudioBufferRef::U32(b) => downmix(b, out),
        AudioBufferRef::S8(b) => downmix(b, out),
        AudioBufferRef::S16(b) => downmix(b, out),
        AudioBufferRef::S24(b) => downmix(b, out),
        AudioBufferRef::S32(b) => downmix(b, out),
        AudioBufferRef::F32(b) => downmix(b, out),
        AudioBufferRef::F64(b) => downmix(b, out),
    }
}

/// Appends the per-frame mean of all channels, converted to f32.
fn downmix<S>(buf: &AudioBuffer<S>, out: &mut Vec<f32>)
where
    S: Sample,
    f32: FromSample<S>,
{
    let frames = buf.frames();
    let start = out.len();
    out.resize(start + frames, 0.0);
    let Some(dst) = out.get_mut(start..) else {
        return;
    };
    let planes = buf.planes();
    let planes = planes.planes();
    for plane in planes {
        for (d, &s) in dst.iter_mut().zip(plane.iter()) {
            *d += f32::from_sample(s);
        }
    }
    if planes.len() > 1 {
        let n = planes.len() as f32;
        for d in dst.iter_mut() {
            *d /= n;
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::audio::{read_all_24k, AudioError, AudioStream};
    use crate::config::SAMPLE_RATE_HZ;
    use std::f64::consts::PI;
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A unique path in the system temp dir (tests run in parallel).
    fn temp_path(name: &str) -> PathBuf {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        std::env::temp_dir().join(format!("stt-audio-{}-{n}-{name}", std::process::id()))
    }

    fn write_wav_i16(name: &str, rate: u32, channels: u16, frames: &[Vec<f32>]) -> PathBuf {
        let path = temp_path(name);
        let spec = hound::WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(&path, spec).unwrap();
        for frame in frames {
            for &s in frame {
                w.write_sample((s * 32767.0).round() as i16).unwrap();
            }
        }
        w.finalize().unwrap();
        path
    }

    fn rms(x: &[f32]) -> f64 {
        (x.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / x.len().max(1) as f64).sqrt()
    }

    /// Drains a stream, returning the audio and the error (if any) that
    /// ended it; also checks that nothing comes after the end.
    fn drain(mut stream: AudioStream) -> (Vec<f32>, Option<AudioError>) {
        let mut all = Vec::new();
        let mut error = None;
        loop {
            match stream.next_chunk() {
                Ok(Some(chunk)) => {
                    assert!(!chunk.is_empty());
                    assert!(error.is_none(), "audio after an error");
                    all.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => {
                    assert!(error.is_none(), "two errors: {error:?} then {e:?}");
                    error = Some(e);
                }
            }
        }
        assert!(matches!(stream.next_chunk(), Ok(None)));
        (all, error)
    }

    #[test]
    fn stereo_8k_is_averaged_and_resampled() {
        // Channels are 0.25 ± a sine, so the mean is exactly 0.25.
        let frames: Vec<Vec<f32>> = (0..8000)
            .map(|i| {
                let s = 0.5 * (2.0 * PI * 440.0 * i as f64 / 8000.0).sin() as f32;
                vec![0.25 + s, 0.25 - s]
            })
            .collect();
        let path = write_wav_i16("stereo8k.wav", 8000, 2, &frames);
        let stream = AudioStream::from_path(&path).unwrap();
        assert_eq!(stream.source_sample_rate_hz(), 8000);
        assert_eq!(stream.source_channels(), 2);
        let dur = stream.duration_seconds().unwrap();
        assert!((dur - 1.0).abs() < 1e-9, "{dur}");
        let (out, err) = drain(stream);
        assert!(err.is_none(), "{err:?}");
        assert!((out.len() as i64 - 24_000).abs() <= 1, "{}", out.len());
        let interior = &out[1000..out.len() - 1000];
        assert!(interior.iter().all(|v| (v - 0.25).abs() < 2e-3));
        // Same through from_bytes.
        let bytes = std::fs::read(&path).unwrap();
        let (from_bytes, _) = drain(AudioStream::from_bytes(bytes, Some("wav")).unwrap());
        assert_eq!(from_bytes, out);
        std::fs::remove_file(&path).ok();
    }

    #[test]
    fn mono_96k_works() {
        let frames: Vec<Vec<f32>> = (0..96_000)
            .map(|i| vec![0.5 * (2.0 * PI * 1000.0 * i as f64 / 96_000.0).sin() as f32])
            .collect();
        let path = write_wav_i16("mono96k.wav", 96_000, 1, &frames);
        let out = read_all_24k(&path).unwrap();
        assert!((out.len() as i64 - 24_000).abs() <= 1);
        let level = rms(&out[1000..out.len() - 1000]);
        assert!((level - 0.5 / 2f64.sqrt()).abs() < 0.005, "{level}");
        std::fs::remove_file(&path).ok();
    }

    #[test]
    fn float_wav_with_nan_is_rejected() {
        let path = temp_path("nan.wav");
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 16_000,
            bits_per_sample: 32,
            sample_format: hound::SampleFormat::Float,
        };
        let mut w = hound::WavWriter::create(&path, spec).unwrap();
        for i in 0..16_000 {
            w.write_sample(if i == 12_345 { f32::NAN } else { 0.1f32 })
                .unwrap();
        }
        w.finalize().unwrap();
        match read_all_24k(&path) {
            Err(AudioError::InvalidSamples { index }) => assert_eq!(index, 12_345),
            other => panic!("expected InvalidSamples, got {other:?}"),
        }
        std::fs::remove_file(&path).ok();
    }

    #[test]
    fn float_wav_decodes() {
        let path = temp_path("float.wav");
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 48_000,
            bits_per_sample: 32,
            sample_format: hound::SampleFormat::Float,
        };
        let mut w = hound::WavWriter::create(&path, spec).unwrap();
        for _ in 0..4800 {
            w.write_sample(0.5f32).unwrap();
            w.write_sample(-0.1f32).unwrap();
        }
        w.finalize().unwrap();
        let out = read_all_24k(&path).unwrap();
        assert!((out.len() as i64 - 2400).abs() <= 1);
        assert!(out[200..2200].iter().all(|v| (v - 0.2).abs() < 1e-5));
        std::fs::remove_file(&path).ok();
    }

    #[test]
    fn empty_inputs() {
        let path = temp_path("empty.wav");
        std::fs::write(&path, b"").unwrap();
        assert!(matches!(read_all_24k(&path), Err(AudioError::Empty)));
        std::fs::remove_file(&path).ok();
        assert!(matches!(
            AudioStream::from_bytes(Vec::new(), None),
            Err(AudioError::Empty)
        ));

        // A well-formed WAV with no samples.
        let path = write_wav_i16("nosamples.wav", 16_000, 1, &[]);
        assert!(matches!(read_all_24k(&path), Err(AudioError::Empty)));
        std::fs::remove_file(&path).ok();
    }

    #[test]
    fn text_file_is_unsupported() {
        let path = temp_path("x.wav");
        std::fs::write(&path, "this is not audio, just some text\n".repeat(20)).unwrap();
        match read_all_24k(&path) {
            Err(AudioError::UnsupportedFormat(msg)) => assert!(msg.contains("WAV"), "{msg}"),
            other => panic!("expected UnsupportedFormat, got {other:?}"),
        }
        std::fs::remove_file(&path).ok();
    }

    #[test]
    fn missing_file_is_io_error() {
        let path = temp_path("does-not-exist.wav");
        assert!(matches!(read_all_24k(&path), Err(AudioError::Io(_))));
    }

    #[test]
    fn absurd_rate_is_rejected() {
        let path = write_wav_i16("fast.wav", 1_000_000, 1, &vec![vec![0.0]; 100]);
        assert!(matches!(
            read_all_24k(&path),
            Err(AudioError::UnsupportedRate(1_000_000))
        ));
        std::fs::remove_file(&path).ok();
    }

    #[test]
    fn truncated_wav_reports_truncation_after_audio() {
        let frames: Vec<Vec<f32>> = (0..32_000)
            .map(|i| vec![((i % 100) as f32 - 50.0) / 100.0])
            .collect();
        let path = write_wav_i16("trunc.wav", 16_000, 1, &frames);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::remove_file(&path).ok();
        // Keep the header and ~1.25 s of audio, cut mid-sample (odd length).
        let cut = bytes.get(..44 + 40_001).unwrap().to_vec();
        let (out, err) = drain(AudioStream::from_bytes(cut, Some("wav")).unwrap());
        match err {
            Some(AudioError::Truncated { decoded_seconds }) => {
                assert!((decoded_seconds - 1.25).abs() < 0.01, "{decoded_seconds}")
            }
            other => panic!("expected Truncated, got {other:?}"),
        }
        assert!((out.len() as i64 - 30_000).abs() <= 1, "{}", out.len());
    }

    /// Whole-file blocks (`set_resample_block`) give the stream's samples
    /// and errors: small blocks (many flushes), the whole-file size (one
    /// flush at the end, its 160 000 outputs split over the cores) and a
    /// file cut short (the gathered block flushed before `Truncated`).
    #[test]
    fn resample_blocks_give_the_streams_samples() {
        let frames: Vec<Vec<f32>> = (0..320_000)
            .map(|i| {
                let t = i as f64 / 48_000.0;
                let s = (0.4 * (2.0 * PI * 440.0 * t).sin()) as f32;
                vec![s, ((i % 97) as f32 - 48.0) / 200.0]
            })
            .collect();
        let path = write_wav_i16("blocks.wav", 48_000, 2, &frames);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::remove_file(&path).ok();
        let cut = bytes.get(..44 + 4 * 250_001).unwrap().to_vec();
        for file in [bytes, cut] {
            let decode = |block: usize| {
                let mut stream = AudioStream::from_bytes(file.clone(), Some("wav")).unwrap();
                stream.set_resample_block(block);
                let (pcm, err) = drain(stream);
                (pcm, format!("{err:?}"))
            };
            let (want, want_err) = decode(0);
            assert!(want.len() > 100_000);
            for block in [4_096, crate::audio::WHOLE_FILE_RESAMPLE_BLOCK] {
                let (got, err) = decode(block);
                assert_eq!(err, want_err, "block {block}");
                assert_eq!(got.len(), want.len(), "block {block}");
                assert!(
                    got.iter()
                        .zip(&want)
                        .all(|(a, b)| a.to_bits() == b.to_bits()),
                    "block {block}: samples differ"
                );
            }
        }
    }

    /// The shared fixture clips; a missing folder fails the test (set
    /// `STT_FIXTURES` to point elsewhere), it does not skip it.
    fn fixtures_dir() -> PathBuf {
        let dir = std::env::var_os("STT_FIXTURES")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/../../shared/fixtures/audio/"
                ))
            });
        assert!(
            dir.is_dir(),
            "audio fixtures not found at {} (set STT_FIXTURES)",
            dir.display()
        );
        dir
    }

    fn check_fixture(dir: &Path, name: &str, expected_seconds: f64) {
        let path = dir.join(name);
        let stream = AudioStream::from_path(&path).unwrap();
        let announced = stream.duration_seconds();
        let rate = stream.source_sample_rate_hz();
        let channels = stream.source_channels();
        let (out, err) = drain(stream);
        assert!(err.is_none(), "{name}: {err:?}");
        let seconds = out.len() as f64 / f64::from(SAMPLE_RATE_HZ);
        eprintln!(
            "{name}: {rate} Hz, {channels} ch, announced {announced:?} s, decoded {seconds:.3} s, rms {:.4}",
            rms(&out)
        );
        assert!(
            (seconds - expected_seconds).abs() < 0.1 + expected_seconds * 0.02,
            "{name}: {seconds} s"
        );
        if let Some(a) = announced {
            assert!(
                (a - seconds).abs() < 0.1,
                "{name}: announced {a} vs {seconds}"
            );
        }
        assert!(rms(&out) > 0.01, "{name} is silent");
        assert!(out.iter().all(|v| v.is_finite() && v.abs() < 2.0));
    }

    #[test]
    fn fixture_mp3s_decode() {
        let dir = fixtures_dir();
        check_fixture(&dir, "bria.mp3", 45.0);
        check_fixture(&dir, "loona.mp3", 1.0);
        check_fixture(&dir, "sample_fr_hibiki_crepes.mp3", 56.0);
    }

    #[test]
    fn truncated_mp3_never_panics() {
        let dir = fixtures_dir();
        // bria.mp3 has no Xing header (length is a bitrate estimate, so a cut
        // file simply ends early); crepes has Xing+LAME (announced length
        // survives the cut, so truncation is detected).
        for (name, expect_truncated) in [("bria.mp3", false), ("sample_fr_hibiki_crepes.mp3", true)]
        {
            let bytes = std::fs::read(dir.join(name)).unwrap();
            let sixty = bytes.len() * 6 / 10;
            for cut in [sixty & !1, sixty | 1, sixty + 417] {
                let part = bytes.get(..cut).unwrap().to_vec();
                let (out, err) = drain(AudioStream::from_bytes(part, Some("mp3")).unwrap());
                let seconds = out.len() as f64 / f64::from(SAMPLE_RATE_HZ);
                eprintln!(
                    "{name} cut at {cut}/{} bytes: {seconds:.2} s, {err:?}",
                    bytes.len()
                );
                assert!(seconds >= 20.0, "{seconds}");
                match err {
                    None => assert!(!expect_truncated, "{name}: truncation not detected"),
                    Some(AudioError::Truncated { decoded_seconds }) => {
                        assert!((decoded_seconds - seconds).abs() < 0.1)
                    }
                    Some(other) => panic!("unexpected {other:?}"),
                }
            }
        }
    }
}
