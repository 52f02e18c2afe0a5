//! A file as a list of byte shards, with random access and a `Read + Seek` view.

use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;

use crate::error::{Error, Result};

/// Shard size used when reading a file from disk.
#[cfg(not(target_arch = "wasm32"))]
const FILE_SHARD_BYTES: usize = 256 << 20;

/// Immutable bytes of one file, split in any number of shards.
#[derive(Clone, Default)]
pub struct Shards {
    parts: Arc<Vec<Vec<u8>>>,
    /// Offset of each part's first byte in the file.
    starts: Arc<Vec<u64>>,
    len: u64,
}

impl Shards {
    pub fn new(parts: Vec<Vec<u8>>) -> Self {
        let mut starts = Vec::with_capacity(parts.len());
        let mut len = 0u64;
        for p in &parts {
            starts.push(len);
            len += p.len() as u64;
        }
        Self {
            parts: Arc::new(parts),
            starts: Arc::new(starts),
            len,
        }
    }

    #[cfg(not(target_arch = "wasm32"))]
    /// Reads a file from disk in 256 MiB shards.
    pub fn from_path(path: &std::path::Path) -> Result<Self> {
        let mut file = std::fs::File::open(path).map_err(|e| Error::WeightFile {
            file: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let mut parts = vec![];
        loop {
            let mut part = Vec::with_capacity(FILE_SHARD_BYTES);
            let n = (&mut file)
                .take(FILE_SHARD_BYTES as u64)
                .read_to_end(&mut part)?;
            if n == 0 {
                break;
            }
            parts.push(part);
        }
        Ok(Self::new(parts))
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn num_shards(&self) -> usize {
        self.parts.len()
    }

    /// Fills `buf` from `offset`; an error if that runs past the end.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let end = offset.checked_add(buf.len() as u64);
        if end.is_none_or(|end| end > self.len) {
            return Err(Error::Io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!(
                    "read of {} bytes at {offset} past the end ({} bytes)",
                    buf.len(),
                    self.len
                ),
            )));
        }
        // The part holding `offset`: the last one starting at or before it.
        let mut idx = self
            .starts
            .partition_point(|&s| s <= offset)
            .saturating_sub(1);
        let mut pos = offset;
        let mut done = 0;
        while done < buf.len() {
            let (part, start) = (&self.parts[idx], self.starts[idx]);
            let within = (pos - start) as usize;
            let n = (part.len() - within).min(buf.len() - done);
            buf[done..done + n].copy_from_slice(&part[within..within + n]);
            done += n;
            pos += n as u64;
            idx += 1;
        }
        Ok(())
    }

    pub fn read_vec(&self, offset: u64, len: usize) -> Result<Vec<u8>> {
        let mut v = vec![0u8; len];
        self.read_at(offset, &mut v)?;
        Ok(v)
    }

    /// The whole file as one slice: borrowed when there is one shard, joined otherwise.
    pub fn contiguous(&self) -> std::borrow::Cow<'_, [u8]> {
        match self.parts.as_slice() {
            [one] => std::borrow::Cow::Borrowed(one.as_slice()),
            parts => std::borrow::Cow::Owned(parts.concat()),
        }
    }

    pub fn reader(&self) -> ShardReader {
        ShardReader {
            shards: self.clone(),
            pos: 0,
        }
    }
}

/// `Read + Seek` over [`Shards`], for parsers that want a stream (GGUF).
pub struct ShardReader {
    shards: Shards,
    pos: u64,
}

impl Read for ShardReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = (self.shards.len.saturating_sub(self.pos)).min(buf.len() as u64) as usize;
        self.shards
            .read_at(self.pos, &mut buf[..n])
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::UnexpectedEof, e.to_string()))?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for ShardReader {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let new = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.shards.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        let new = new.ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before the start")
        })?;
        self.pos = new;
        Ok(new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_across_shard_boundaries() {
        let whole: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let parts = vec![
            whole[..3].to_vec(),
            vec![],
            whole[3..500].to_vec(),
            whole[500..].to_vec(),
        ];
        let s = Shards::new(parts);
        assert_eq!(s.len(), 1000);
        for (off, len) in [(0, 1000), (2, 5), (499, 2), (500, 500), (999, 1), (1000, 0)] {
            assert_eq!(
                s.read_vec(off, len).unwrap(),
                &whole[off as usize..off as usize + len]
            );
        }
        assert!(s.read_vec(999, 2).is_err());
        assert!(s.read_vec(u64::MAX, 2).is_err());
        let mut r = s.reader();
        r.seek(SeekFrom::Start(498)).unwrap();
        let mut b = [0u8; 4];
        r.read_exact(&mut b).unwrap();
        assert_eq!(&b, &whole[498..502]);
        assert_eq!(&*s.contiguous(), whole.as_slice());
    }
}
