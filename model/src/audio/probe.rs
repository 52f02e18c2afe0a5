//! Symphonia's probe with every enabled format, where the readers that
//! panic or abort on malformed structure (Matroska/WebM, MP4, WAV, ADTS in
//! symphonia 0.5; found by `stt-fuzz`) are instantiated through a check of
//! the structure first (`ebml`, `mp4`, `check_wav_rate`, `adts`). The probe picks
//! the reader and the position (it scans up to 1 MiB for a marker), so the
//! checks start exactly where the reader will.

use std::io::{Read, Seek, SeekFrom};
use std::sync::OnceLock;

use symphonia::core::errors::{Error as SymError, Result as SymResult};
use symphonia::core::formats::{FormatOptions, FormatReader};
use symphonia::core::io::{MediaSource, MediaSourceStream, ReadBytes};
use symphonia::core::probe::{Descriptor, Instantiate, Probe, QueryDescriptor};
use symphonia::default::formats::{
    AdtsReader, FlacReader, IsoMp4Reader, MkvReader, MpaReader, OggReader, WavReader,
};

/// A failed check, as symphonia carries it (an I/O error of kind
/// InvalidData; `decode` turns it into "unsupported format: …").
fn corrupt(kind: &str, e: String) -> SymError {
    SymError::IoError(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("a corrupt {kind} file: {e}"),
    ))
}

/// Runs `check(stream, start, length)` from the reader's position, then
/// puts the stream back there.
fn checked(
    mut mss: MediaSourceStream,
    check: impl FnOnce(&mut MediaSourceStream, u64, u64) -> Result<(), String>,
    kind: &str,
) -> SymResult<MediaSourceStream> {
    if let (true, Some(len)) = (mss.is_seekable(), mss.byte_len()) {
        let start = mss.pos();
        let result = check(&mut mss, start, len);
        // Back to `start`, with the bytes before it in the read-ahead
        // buffer as the probe left them: readers rewind into it (the MP4
        // reader by 4 bytes, from its `ftyp` marker to the box's start).
        let history = start.min(16);
        mss.seek(SeekFrom::Start(start - history))?;
        let mut skipped = [0u8; 16];
        ReadBytes::read_buf_exact(&mut mss, &mut skipped[..history as usize])?;
        result.map_err(|e| corrupt(kind, e))?;
    }
    Ok(mss)
}

fn mkv(mss: MediaSourceStream, opts: &FormatOptions) -> SymResult<Box<dyn FormatReader>> {
    let mss = checked(mss, super::ebml::check, "Matroska/WebM")?;
    Ok(Box::new(MkvReader::try_new(mss, opts)?))
}

/// symphonia 0.5's ADTS reader estimates the duration by sampling the rest
/// of the file in four steps of `(len − 2·pos) / 4` (it subtracts the
/// position twice), `pos` being just past the first frame header: a stream
/// starting past the file's middle steps by 0 (`step_by(0)` panics) or
/// wraps (found by libFuzzer). Refuse those: find the first sync word as
/// the reader will and require that step to be at least 1.
fn adts(mss: MediaSourceStream, opts: &FormatOptions) -> SymResult<Box<dyn FormatReader>> {
    let mss = checked(mss, check_adts, "AAC (ADTS)")?;
    Ok(Box::new(AdtsReader::try_new(mss, opts)?))
}

fn check_adts<R: Read + Seek>(r: &mut R, start: u64, len: u64) -> Result<(), String> {
    // The reader scans for the sync word; look as far as the probe does.
    let window = len.saturating_sub(start).min(1 << 20) as usize;
    let mut bytes = vec![0u8; window];
    r.seek(SeekFrom::Start(start)).map_err(|e| e.to_string())?;
    r.read_exact(&mut bytes).map_err(|e| e.to_string())?;
    let sync = bytes
        .windows(2)
        .position(|w| w[0] == 0xFF && w[1] & 0xF6 == 0xF0)
        .ok_or_else(|| "no frame header".to_string())?;
    // Past the header: 7 bytes, 9 with a CRC.
    let after_header = start + sync as u64 + 9;
    match len.checked_sub(2 * after_header) {
        Some(rest) if rest >= 4 => Ok(()),
        _ => Err("a stream that starts past the middle of the file".into()),
    }
}

/// The probe stops at the `ftyp` marker, 4 bytes into the first box.
fn mp4(mss: MediaSourceStream, opts: &FormatOptions) -> SymResult<Box<dyn FormatReader>> {
    let mss = checked(
        mss,
        |r, at, len| super::mp4::check(r, at.saturating_sub(4), len),
        "MP4",
    )?;
    Ok(Box::new(IsoMp4Reader::try_new(mss, opts)?))
}

fn wav(mss: MediaSourceStream, opts: &FormatOptions) -> SymResult<Box<dyn FormatReader>> {
    let mss = checked(mss, check_wav_rate, "WAV")?;
    Ok(Box::new(WavReader::try_new(mss, opts)?))
}

/// A WAV whose `fmt ` chunk says 0 Hz makes symphonia 0.5 panic
/// (`TimeBase::new`).
fn check_wav_rate<R: Read + Seek>(r: &mut R, start: u64, _len: u64) -> Result<(), String> {
    let mut pos = start + 12;
    // The first few chunks: `fmt ` comes before the data in practice.
    for _ in 0..16 {
        let mut h = [0u8; 16];
        r.seek(SeekFrom::Start(pos)).map_err(|e| e.to_string())?;
        if r.read_exact(&mut h).is_err() {
            return Ok(());
        }
        if &h[..4] == b"fmt " {
            // Chunk id and size, format and channels (2 bytes each), the rate.
            return match u32::from_le_bytes([h[12], h[13], h[14], h[15]]) {
                0 => Err("a sample rate of 0 Hz".into()),
                _ => Ok(()),
            };
        }
        let size = u64::from(u32::from_le_bytes([h[4], h[5], h[6], h[7]]));
        pos += 8 + size + (size & 1);
    }
    Ok(())
}

/// The probe every decode uses.
pub(crate) fn probe() -> &'static Probe {
    static PROBE: OnceLock<Probe> = OnceLock::new();
    PROBE.get_or_init(|| {
        let mut p = Probe::default();
        p.register_all::<FlacReader>();
        p.register_all::<MpaReader>();
        p.register_all::<OggReader>();
        type Inst = fn(MediaSourceStream, &FormatOptions) -> SymResult<Box<dyn FormatReader>>;
        let wrapped: [(&[Descriptor], Inst); 4] = [
            (AdtsReader::query(), adts),
            (MkvReader::query(), mkv),
            (IsoMp4Reader::query(), mp4),
            (WavReader::query(), wav),
        ];
        for (descriptors, inst) in wrapped {
            for d in descriptors {
                p.register(&Descriptor {
                    inst: Instantiate::Format(inst),
                    ..*d
                });
            }
        }
        p.register_all::<symphonia_metadata::id3v2::Id3v2Reader>();
        p
    })
}
