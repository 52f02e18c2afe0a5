//! A structural check of MP4/M4A/MOV files before symphonia 0.5 reads them.
//! Its isomp4 demuxer sizes tables from their entry counts before reading
//! them (`Vec::with_capacity(count)`), so a corrupt count makes it allocate
//! tens of gigabytes — an abort, not an error (found by `stt-fuzz`). This
//! walks the boxes on the path to the sample tables (headers only) and
//! checks that each child fits in its parent and that every table's entry
//! count fits in its box.

use std::io::{Read, Seek, SeekFrom};

/// Boxes whose data is child boxes, on the way to the sample tables and
/// the iTunes-style tags (`udta/meta/ilst/<tag>/data`) symphonia reads.
const CONTAINERS: [&[u8; 4]; 12] = [
    b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts", b"dinf", b"mvex", b"moof", b"traf",
    b"udta", b"ilst",
];
/// Smallest valid size of boxes symphonia reads a fixed header of.
fn min_size(kind: &[u8; 4]) -> u64 {
    match kind {
        b"data" => 16,           // type + locale
        b"mean" | b"name" => 12, // version/flags
        _ => 8,
    }
}
const MAX_DEPTH: usize = 10;

fn read_n<R: Read>(r: &mut R, buf: &mut [u8]) -> Result<bool, String> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => return Ok(false),
            Ok(n) => got += n,
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(true)
}

/// Bytes per entry and where the count sits, for a table box: (offset of
/// the u32 count from the data start, bytes before the entries, entry size).
fn table_layout<R: Read + Seek>(
    r: &mut R,
    kind: &[u8; 4],
    data: u64,
) -> Result<Option<(u64, u64)>, String> {
    let mut vf = [0u8; 4];
    r.seek(SeekFrom::Start(data)).map_err(|e| e.to_string())?;
    if !read_n(r, &mut vf)? {
        return Ok(None);
    }
    let (version, flags) = (vf[0], u32::from_be_bytes([0, vf[1], vf[2], vf[3]]));
    Ok(match kind {
        b"stsc" | b"stco" | b"stts" | b"ctts" | b"stss" | b"co64" | b"elst" => {
            let entry = match kind {
                b"stsc" => 12,
                b"co64" | b"stts" | b"ctts" => 8,
                b"elst" if version == 1 => 20,
                b"elst" => 12,
                _ => 4,
            };
            Some((4, entry))
        }
        b"stsz" => {
            // sample_size then sample_count; entries only when sample_size is 0.
            let mut b = [0u8; 4];
            if !read_n(r, &mut b)? {
                return Ok(None);
            }
            Some((8, if u32::from_be_bytes(b) == 0 { 4 } else { 0 }))
        }
        b"trun" => {
            let per_sample = [0x100, 0x200, 0x400, 0x800]
                .iter()
                .filter(|&&bit| flags & bit != 0)
                .count() as u64
                * 4;
            Some((4, per_sample))
        }
        _ => None,
    })
}

/// Walks the boxes in `from..end`; `parent` is their box's type (a tag
/// under `ilst` holds `data` boxes).
fn walk<R: Read + Seek>(
    r: &mut R,
    from: u64,
    end: u64,
    depth: usize,
    parent: &[u8; 4],
) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err("boxes nested too deep".into());
    }
    let mut pos = from;
    while pos + 8 <= end {
        r.seek(SeekFrom::Start(pos)).map_err(|e| e.to_string())?;
        let mut h = [0u8; 8];
        if !read_n(r, &mut h)? {
            return Ok(()); // cut short: the demuxer reports it
        }
        let kind: [u8; 4] = [h[4], h[5], h[6], h[7]];
        let (size, header) = match u32::from_be_bytes([h[0], h[1], h[2], h[3]]) {
            // "To the end of the file": only the last top-level box may.
            0 if depth == 0 => (end - pos, 8),
            0 => {
                return Err(format!(
                    "box `{}` of size 0 inside another",
                    String::from_utf8_lossy(&kind)
                ))
            }
            1 => {
                let mut b = [0u8; 8];
                if !read_n(r, &mut b)? {
                    return Ok(());
                }
                (u64::from_be_bytes(b), 16)
            }
            n => (u64::from(n), 8),
        };
        if size < header.max(min_size(&kind)) {
            return Err(format!(
                "box `{}` of {size} bytes",
                String::from_utf8_lossy(&kind)
            ));
        }
        let box_end = pos.checked_add(size).ok_or("a box size overflows")?;
        if box_end > end && depth > 0 {
            return Err(format!(
                "box `{}` claims {} bytes beyond its parent",
                String::from_utf8_lossy(&kind),
                box_end - end
            ));
        }
        let data = pos + header;
        if &kind == b"mdhd" || &kind == b"mvhd" {
            // A zero timescale panics in symphonia's TimeBase::new.
            let mut v = [0u8; 1];
            r.seek(SeekFrom::Start(data)).map_err(|e| e.to_string())?;
            if read_n(r, &mut v)? {
                let at = data + if v[0] == 1 { 20 } else { 12 };
                let mut t = [0u8; 4];
                r.seek(SeekFrom::Start(at)).map_err(|e| e.to_string())?;
                if at + 4 <= box_end && read_n(r, &mut t)? && u32::from_be_bytes(t) == 0 {
                    return Err(format!(
                        "`{}` with a timescale of 0",
                        String::from_utf8_lossy(&kind)
                    ));
                }
            }
        }
        if &kind == b"moov" {
            check_esds(r, data, box_end.min(end))?;
        }
        if CONTAINERS.contains(&&kind) || parent == b"ilst" {
            walk(r, data, box_end.min(end), depth + 1, &kind)?;
        } else if &kind == b"meta" {
            // ISO meta is a FullBox (4 bytes of version/flags first); QuickTime's is not.
            let mut probe = [0u8; 8];
            r.seek(SeekFrom::Start(data)).map_err(|e| e.to_string())?;
            let skip = if read_n(r, &mut probe)? && &probe[4..8] == b"hdlr" {
                0
            } else {
                4
            };
            walk(r, data + skip, box_end.min(end), depth + 1, &kind)?;
        } else if let Some((count_at, entry)) = table_layout(r, &kind, data)? {
            r.seek(SeekFrom::Start(data + count_at))
                .map_err(|e| e.to_string())?;
            let mut c = [0u8; 4];
            if read_n(r, &mut c)? {
                let count = u64::from(u32::from_be_bytes(c));
                let room = box_end.saturating_sub(data + count_at + 4);
                if count.saturating_mul(entry) > room {
                    return Err(format!(
                        "table `{}` claims {count} entries in {room} bytes",
                        String::from_utf8_lossy(&kind)
                    ));
                }
            }
        }
        pos = box_end;
    }
    Ok(())
}

/// Every `esds` box in the movie header (they sit inside sample entries,
/// whose layouts vary) must hold an ES descriptor (tag 3): symphonia
/// unwraps it. Found by scanning the `moov` bytes for the box type.
fn check_esds<R: Read + Seek>(r: &mut R, from: u64, end: u64) -> Result<(), String> {
    let len = end.saturating_sub(from).min(64 << 20) as usize;
    let mut moov = vec![0u8; len];
    r.seek(SeekFrom::Start(from)).map_err(|e| e.to_string())?;
    if !read_n(r, &mut moov)? {
        return Ok(()); // cut short: the demuxer reports it
    }
    let mut at = 4;
    while let Some(i) = moov
        .get(at..)
        .and_then(|m| m.windows(4).position(|w| w == b"esds"))
    {
        let start = at + i - 4;
        at += i + 4;
        let size = u32::from_be_bytes([
            moov[start],
            moov[start + 1],
            moov[start + 2],
            moov[start + 3],
        ]) as usize;
        // Descriptors follow the 8-byte header and 4 bytes of version/flags.
        let body = moov
            .get(start + 12..(start + size).min(moov.len()))
            .unwrap_or(&[]);
        let mut p = 0;
        let mut found = false;
        while p + 2 <= body.len() {
            let tag = body[p];
            let (mut length, mut n) = (0usize, 0);
            while n < 4 {
                let Some(&b) = body.get(p + 1 + n) else { break };
                length = (length << 7) | usize::from(b & 0x7F);
                n += 1;
                if b & 0x80 == 0 {
                    break;
                }
            }
            if tag == 3 {
                found = true;
                break;
            }
            p += 1 + n + length;
        }
        if !found {
            return Err("an `esds` box without an ES descriptor".into());
        }
    }
    Ok(())
}

/// Checks the boxes of the MP4 file starting at byte `start`. Err: what
/// is wrong.
/// (`len`: the file's length).
pub(crate) fn check<R: Read + Seek>(r: &mut R, start: u64, len: u64) -> Result<(), String> {
    walk(r, start, len, 0, b"file")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn bx(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let mut v = ((8 + data.len()) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn tables_must_fit_their_boxes() {
        // stsc with 1 entry (12 bytes) after version/flags and the count.
        let mut stsc = vec![0, 0, 0, 0, 0, 0, 0, 1];
        stsc.extend_from_slice(&[0; 12]);
        let file = |stsc: &[u8]| {
            let stbl = bx(b"stbl", &bx(b"stsc", stsc));
            let mut f = bx(b"ftyp", b"M4A \0\0\0\0");
            f.extend(bx(b"moov", &bx(b"trak", &bx(b"mdia", &bx(b"minf", &stbl)))));
            f
        };
        let good = file(&stsc);
        assert_eq!(check(&mut Cursor::new(&good), 0, good.len() as u64), Ok(()));
        let mut huge = stsc.clone();
        huge[4..8].copy_from_slice(&0x4000_0000u32.to_be_bytes());
        let err = check(&mut Cursor::new(file(&huge)), 0, good.len() as u64).unwrap_err();
        assert!(err.contains("stsc"), "{err}");
    }
}
