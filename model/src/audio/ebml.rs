//! A structural check of Matroska/WebM files before symphonia 0.5 reads
//! them. Its demuxer asserts, rather than errs, when a child element claims
//! more bytes than its parent holds (symphonia issue #486, fixed only in
//! the 0.6 rewrite): a corrupt WebM would panic — a trap, in the browser's
//! worker. This walks the element tree (headers only, seeking over data)
//! and refuses such a file with an error instead.
//!
//! It also follows what the demuxer seeks to: every SeekHead entry
//! symphonia reads (Tracks, Info, Tags, Cues) and every cue's cluster must
//! point at a readable element of that type inside the file (its
//! `read_element` panics on a missing header, issues #432/#491).
//!
//! Sizes may be unknown (all value bits set) for Segment and Cluster, as
//! live recordings (MediaRecorder, ffmpeg `-live`) write them: such an
//! element ends at its parent's end, or where a sibling of its level
//! starts. A file cut short is left to the demuxer (it reports truncation).

use std::io::{Read, Seek, SeekFrom};

const SEGMENT: u32 = 0x1853_8067;
const CLUSTER: u32 = 0x1F43_B675;
/// Elements directly under Segment: they end an unknown-size Cluster.
const LEVEL1: [u32; 8] = [
    CLUSTER,
    0x114D_9B74, // SeekHead
    0x1549_A966, // Info
    0x1654_AE6B, // Tracks
    0x1C53_BB6B, // Cues
    0x1254_C367, // Tags
    0x1043_A770, // Chapters
    0x1941_A469, // Attachments
];
/// Master elements (their data is child elements): symphonia 0.5's table.
const MASTERS: [u32; 30] = [
    0x75A1,      // BlockAdditions
    0xA6,        // BlockMore
    0x5035,      // ContentEncryption
    0x47E7,      // ContentEncAesSettings
    0x55B0,      // Colour
    0x55D0,      // MasteringMetadata
    0x1A45_DFA3, // EBML header
    SEGMENT,
    0x114D_9B74, // SeekHead
    0x4DBB,      // Seek
    0x1549_A966, // Info
    0x1654_AE6B, // Tracks
    0xAE,        // TrackEntry
    0xE0,        // Video
    0xE1,        // Audio
    0x6D80,      // ContentEncodings
    0x6240,      // ContentEncoding
    CLUSTER,
    0xA0,        // BlockGroup
    0x1C53_BB6B, // Cues
    0xBB,        // CuePoint
    0xB7,        // CueTrackPositions
    0x1254_C367, // Tags
    0x7373,      // Tag
    0x63C0,      // Targets
    0x67C8,      // SimpleTag
    0x1043_A770, // Chapters
    0x45B9,      // EditionEntry
    0xB6,        // ChapterAtom
    0x80,        // ChapterDisplay
];
const MAX_DEPTH: usize = 12;
const BLOCK_GROUP: u32 = 0xA0;
/// What a BlockGroup may hold (Matroska spec); symphonia 0.5 loses its
/// place on anything else (a seeded fuzz find).
const BLOCK_GROUP_CHILDREN: [u32; 10] = [
    0xA1, 0xA2, 0x75A1, 0x9B, 0xFA, 0xFB, 0xFD, 0xA4, 0x75A2, 0x8E,
];
const SEEK: u32 = 0x4DBB;
const SEEK_ID: u32 = 0x53AB;
const SEEK_POSITION: u32 = 0x53AC;
const CUE_CLUSTER_POSITION: u32 = 0xF1;
/// SeekHead targets symphonia 0.5 reads: Tracks, Info, Tags, Cues.
const SEEK_TARGETS: [u32; 4] = [0x1654_AE6B, 0x1549_A966, 0x1254_C367, 0x1C53_BB6B];

struct Walker<'a, R> {
    r: &'a mut R,
    len: u64,
    /// Where the (first) Segment's data starts: seek positions count from it.
    segment_data: Option<u64>,
    /// (SeekID, SeekPosition) of each Seek entry.
    seeks: Vec<(u32, u64)>,
    cue_clusters: Vec<u64>,
}

/// An element header: id, where its data starts, its size (None: unknown).
struct Header {
    id: u32,
    data: u64,
    size: Option<u64>,
}

impl<R: Read + Seek> Walker<'_, R> {
    /// A variable-length integer: (value without the length marker, bytes,
    /// all value bits set). None at the end of the file.
    fn vint(&mut self, max_len: u32) -> Result<Option<(u64, u32, bool)>, String> {
        let mut first = [0u8; 1];
        if self.r.read(&mut first).map_err(|e| e.to_string())? == 0 {
            return Ok(None);
        }
        let len = first[0].leading_zeros() + 1;
        if first[0] == 0 || len > max_len {
            return Err("an invalid element header".into());
        }
        let mut value = u64::from(first[0]) & ((1u64 << (8 - len)) - 1);
        let mut all_ones = value == (1u64 << (8 - len)) - 1;
        for _ in 1..len {
            let mut b = [0u8; 1];
            if self.r.read(&mut b).map_err(|e| e.to_string())? == 0 {
                return Ok(None);
            }
            all_ones &= b[0] == 0xFF;
            value = (value << 8) | u64::from(b[0]);
        }
        Ok(Some((value, len, all_ones)))
    }

    /// A small unsigned or ID value (up to 8 bytes) at `h`'s data.
    fn small_value(&mut self, h: &Header) -> Result<Option<u64>, String> {
        let size = h.size.unwrap_or(0);
        if size == 0 || size > 8 || h.data + size > self.len {
            return Ok(None);
        }
        let mut b = [0u8; 8];
        self.r
            .read_exact(&mut b[..size as usize])
            .map_err(|e| e.to_string())?;
        Ok(Some(
            b[..size as usize]
                .iter()
                .fold(0u64, |v, &x| (v << 8) | u64::from(x)),
        ))
    }

    fn header(&mut self) -> Result<Option<Header>, String> {
        let start = self.r.stream_position().map_err(|e| e.to_string())?;
        let Some((raw, id_len, _)) = self.vint(4)? else {
            return Ok(None);
        };
        // IDs keep their length marker.
        let id = (raw | (1u64 << (7 * id_len))) as u32;
        let Some((size, _, unknown)) = self.vint(8)? else {
            return Ok(None);
        };
        let data = self.r.stream_position().map_err(|e| e.to_string())?;
        debug_assert!(data > start);
        Ok(Some(Header {
            id,
            data,
            size: (!unknown).then_some(size),
        }))
    }

    /// Walks the children of an element whose data spans `from..end`
    /// (`end` None: unknown size, bounded by `parent_end`). Returns where
    /// the element ended.
    fn children(
        &mut self,
        from: u64,
        end: Option<u64>,
        parent_end: u64,
        own: u32,
        depth: usize,
    ) -> Result<u64, String> {
        if depth > MAX_DEPTH {
            return Err("elements nested too deep".into());
        }
        let limit = end.unwrap_or(parent_end);
        let mut pos = from;
        if own == SEGMENT && self.segment_data.is_none() {
            self.segment_data = Some(from);
        }
        let (mut seek_id, mut seek_pos) = (None, None);
        while pos < limit.min(self.len) {
            self.r
                .seek(SeekFrom::Start(pos))
                .map_err(|e| e.to_string())?;
            let Some(h) = self.header()? else {
                return Ok(limit); // cut short: the demuxer reports it
            };
            if own == BLOCK_GROUP && !BLOCK_GROUP_CHILDREN.contains(&h.id) {
                return Err(format!("element {:#x} inside a block group", h.id));
            }
            if end.is_none() && own == CLUSTER && LEVEL1.contains(&h.id) {
                return Ok(pos); // the next level-1 element ends this cluster
            }
            let child_end = match h.size {
                Some(size) => h
                    .data
                    .checked_add(size)
                    .ok_or_else(|| "an element size overflows".to_string())?,
                None if h.id == SEGMENT || h.id == CLUSTER => limit,
                None => return Err(format!("element {:#x} of unknown size", h.id)),
            };
            if child_end > limit {
                return Err(format!(
                    "element {:#x} at byte {pos} claims {} bytes beyond its parent",
                    h.id,
                    child_end - limit
                ));
            }
            match h.id {
                SEEK_ID => seek_id = self.small_value(&h)?,
                SEEK_POSITION => seek_pos = self.small_value(&h)?,
                CUE_CLUSTER_POSITION => {
                    if let Some(p) = self.small_value(&h)? {
                        self.cue_clusters.push(p);
                    }
                }
                _ => {}
            }
            pos = if MASTERS.contains(&h.id) {
                self.children(h.data, h.size.map(|_| child_end), limit, h.id, depth + 1)?
            } else {
                child_end
            };
        }
        if own == SEEK {
            if let (Some(id), Some(p)) = (seek_id, seek_pos) {
                self.seeks.push((id as u32, p));
            }
        }
        Ok(pos.max(from))
    }

    /// The element at segment-relative `offset` must exist and be `want`.
    fn points_at(&mut self, offset: u64, want: u32, what: &str) -> Result<(), String> {
        let bad = || format!("its {what} points outside the file or at another element");
        let at = self
            .segment_data
            .and_then(|s| s.checked_add(offset))
            .filter(|&at| at < self.len)
            .ok_or_else(bad)?;
        self.r
            .seek(SeekFrom::Start(at))
            .map_err(|e| e.to_string())?;
        match self.header()? {
            Some(h) if h.id == want => Ok(()),
            _ => Err(bad()),
        }
    }
}

/// Checks the element structure of the Matroska/WebM file starting at
/// byte `start`. Err: what is wrong.
/// (`len`: the file's length).
pub(crate) fn check<R: Read + Seek>(r: &mut R, start: u64, len: u64) -> Result<(), String> {
    let mut w = Walker {
        r,
        len,
        segment_data: None,
        seeks: vec![],
        cue_clusters: vec![],
    };
    // Top level: a file may be truncated, so top-level sizes may run past it.
    let mut result = w.children(start, None, u64::MAX, 0, 0).map(|_| ());
    if result.is_ok() {
        let seeks = std::mem::take(&mut w.seeks);
        let cues = std::mem::take(&mut w.cue_clusters);
        result = seeks
            .into_iter()
            .filter(|(id, _)| SEEK_TARGETS.contains(id))
            .try_for_each(|(id, p)| w.points_at(p, id, "seek index"))
            .and_then(|_| {
                cues.into_iter()
                    .try_for_each(|p| w.points_at(p, CLUSTER, "cue index"))
            });
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    const EBML_MAGIC: [u8; 4] = [0x1A, 0x45, 0xDF, 0xA3];

    /// An element: 1-byte-size form when it fits.
    fn el(id: &[u8], data: &[u8]) -> Vec<u8> {
        let mut v = id.to_vec();
        assert!(data.len() < 127);
        v.push(0x80 | data.len() as u8);
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn nesting_is_checked() {
        let audio = el(&[0xE1], &el(&[0xB5], &[0x47, 0x3B, 0x80, 0x00]));
        let track = el(&[0xAE], &audio);
        let tracks = el(&[0x16, 0x54, 0xAE, 0x6B], &track);
        let mut file = el(&EBML_MAGIC, &el(&[0x42, 0x82], b"webm"));
        // A Segment of unknown size (8-byte all-ones), holding the tracks.
        file.extend_from_slice(&[
            0x18, 0x53, 0x80, 0x67, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        ]);
        file.extend_from_slice(&tracks);
        assert_eq!(check(&mut Cursor::new(&file), 0, file.len() as u64), Ok(()));
        // The Audio element claims 2 bytes more than its TrackEntry holds.
        let mut bad = file.clone();
        let at = bad.len() - audio.len();
        bad[at + 1] += 2;
        let err = check(&mut Cursor::new(&bad), 0, bad.len() as u64).unwrap_err();
        assert!(err.contains("beyond its parent"), "{err}");
        // Cut short: left to the demuxer.
        assert_eq!(
            check(
                &mut Cursor::new(&file[..file.len() - 3]),
                0,
                file.len() as u64 - 3
            ),
            Ok(())
        );
    }
}
