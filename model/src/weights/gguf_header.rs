//! A bounds check of a GGUF header before candle parses it. candle's reader
//! trusts the file's counts and lengths: a corrupt or hostile header can
//! make it allocate terabytes (an abort, not an error; in a browser tab, a
//! dead worker) or divide by a zero `general.alignment`. This walks the
//! same layout (GGUF v1: u32 counts; v2/v3: u64) and checks every count and
//! length against the bytes left in the file, array lengths against a cap,
//! tensor ranks and element counts, and the alignment, without allocating.

use super::Shards;

/// Arrays longer than this are refused: real files' longest (tokenizer
/// vocabularies) hold ~10⁵ entries, and candle reserves ~32 bytes each.
const MAX_ARRAY_LEN: u64 = 1 << 24;
/// Nested arrays deeper than this are refused (none exist in practice).
const MAX_DEPTH: usize = 4;
/// GGML tensors have at most 4 dimensions.
const MAX_DIMS: u64 = 4;
/// Elements per tensor (2⁴⁸: far above any model, far below overflow).
const MAX_ELEMENTS: u64 = 1 << 48;

struct Cursor<'a> {
    shards: &'a Shards,
    pos: u64,
    wide: bool,
}

impl Cursor<'_> {
    fn left(&self) -> u64 {
        self.shards.len().saturating_sub(self.pos)
    }

    fn bytes<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut b = [0u8; N];
        if self.left() < N as u64 {
            return Err(format!("header ends early at byte {}", self.pos));
        }
        self.shards
            .read_at(self.pos, &mut b)
            .map_err(|e| e.to_string())?;
        self.pos += N as u64;
        Ok(b)
    }

    fn u32(&mut self) -> Result<u32, String> {
        self.bytes::<4>().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Result<u64, String> {
        self.bytes::<8>().map(u64::from_le_bytes)
    }

    /// A count or length: u32 in v1, u64 after.
    fn len(&mut self) -> Result<u64, String> {
        if self.wide {
            self.u64()
        } else {
            self.u32().map(u64::from)
        }
    }

    fn skip(&mut self, n: u64, what: &str) -> Result<(), String> {
        if n > self.left() {
            return Err(format!(
                "{what} of {n} bytes at byte {} runs past the end of the file",
                self.pos
            ));
        }
        self.pos += n;
        Ok(())
    }

    fn string(&mut self, what: &str) -> Result<(), String> {
        let n = self.len()?;
        self.skip(n, what)
    }

    /// Reads a string's bytes (keys: only to recognise general.alignment).
    fn short_string(&mut self) -> Result<Option<Vec<u8>>, String> {
        let n = self.len()?;
        if n > self.left() {
            return Err(format!("key of {n} bytes runs past the end of the file"));
        }
        if n > 64 {
            self.pos += n;
            return Ok(None);
        }
        let mut b = vec![0u8; n as usize];
        self.shards
            .read_at(self.pos, &mut b)
            .map_err(|e| e.to_string())?;
        self.pos += n;
        Ok(Some(b))
    }

    /// Skips a value of GGUF type `ty`; returns it when it is an integer.
    fn value(&mut self, ty: u32, depth: usize) -> Result<Option<u64>, String> {
        let fixed = |ty: u32| match ty {
            0 | 1 | 7 => Some(1),
            2 | 3 => Some(2),
            4..=6 => Some(4),
            10..=12 => Some(8),
            _ => None,
        };
        match ty {
            0 | 7 => Ok(Some(u64::from(self.bytes::<1>()?[0]))),
            1 => Ok(Some(u64::from(self.bytes::<1>()?[0] as i8 as u8))),
            2 | 3 => Ok(Some(u64::from(u16::from_le_bytes(self.bytes::<2>()?)))),
            4 | 5 => Ok(Some(u64::from(self.u32()?))),
            6 => self.skip(4, "f32").map(|_| None),
            10 | 11 => self.u64().map(Some),
            12 => self.skip(8, "f64").map(|_| None),
            8 => self.string("string value").map(|_| None),
            9 => {
                if depth >= MAX_DEPTH {
                    return Err("arrays nested too deep".into());
                }
                let elem = self.u32()?;
                let n = self.len()?;
                if n > MAX_ARRAY_LEN {
                    return Err(format!("an array of {n} entries (at most {MAX_ARRAY_LEN})"));
                }
                match fixed(elem) {
                    Some(size) => self.skip(n * size, "array").map(|_| None),
                    None => {
                        // Strings and arrays: each takes at least 8 (or 4) bytes.
                        let min = if self.wide { 8 } else { 4 };
                        if n.saturating_mul(min) > self.left() {
                            return Err(format!("an array of {n} entries runs past the end"));
                        }
                        for _ in 0..n {
                            self.value(elem, depth + 1)?;
                        }
                        Ok(None)
                    }
                }
            }
            t => Err(format!("unknown metadata value type {t}")),
        }
    }
}

/// Checks the header's counts, lengths, ranks and alignment against the
/// file; Err says what is wrong, for the caller's "not a valid GGUF file".
pub(crate) fn check(shards: &Shards) -> Result<(), String> {
    let mut c = Cursor {
        shards,
        pos: 0,
        wide: true,
    };
    let _magic = c.u32()?;
    let version = c.u32()?;
    c.wide = match version {
        1 => false,
        2 | 3 => true,
        v => return Err(format!("GGUF version {v}")),
    };
    let tensors = c.len()?;
    let kvs = c.len()?;
    // A metadata entry takes at least 9 bytes, a tensor entry at least 20
    // (v1's u32 lengths; v2/v3 take more).
    if kvs.saturating_mul(9) > c.left() || tensors.saturating_mul(20) > c.left() {
        return Err(format!(
            "{kvs} metadata entries and {tensors} tensors cannot fit in the file"
        ));
    }
    for _ in 0..kvs {
        let key = c.short_string()?;
        let ty = c.u32()?;
        let v = c.value(ty, 0)?;
        if key.as_deref() == Some(b"general.alignment".as_slice()) && v == Some(0) {
            return Err("general.alignment is 0".into());
        }
    }
    for _ in 0..tensors {
        c.string("tensor name")?;
        let dims = u64::from(c.u32()?);
        if dims > MAX_DIMS {
            return Err(format!("a tensor of rank {dims}"));
        }
        let mut elements = 1u64;
        for _ in 0..dims {
            let d = if c.wide {
                c.u64()?
            } else {
                u64::from(c.u32()?)
            };
            elements = elements
                .checked_mul(d)
                .filter(|&e| e <= MAX_ELEMENTS)
                .ok_or_else(|| "a tensor with too many elements".to_string())?;
        }
        // candle views an empty tensor's dangling pointer as f32s (UB that
        // its debug checks catch; found by libFuzzer); no model has one.
        if elements == 0 {
            return Err("a tensor with no elements".into());
        }
        c.skip(4 + 8, "tensor type and offset")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(tensors: u64, kvs: u64, body: &[u8]) -> Shards {
        let mut b = b"GGUF".to_vec();
        b.extend(3u32.to_le_bytes());
        b.extend(tensors.to_le_bytes());
        b.extend(kvs.to_le_bytes());
        b.extend_from_slice(body);
        Shards::new(vec![b])
    }

    fn kv_u32(key: &str, v: u32) -> Vec<u8> {
        let mut b = (key.len() as u64).to_le_bytes().to_vec();
        b.extend(key.as_bytes());
        b.extend(4u32.to_le_bytes());
        b.extend(v.to_le_bytes());
        b
    }

    #[test]
    fn counts_lengths_and_alignment_are_checked() {
        assert_eq!(
            check(&header(0, 1, &kv_u32("general.alignment", 32))),
            Ok(())
        );
        // candle would divide by it.
        let zero = check(&header(0, 1, &kv_u32("general.alignment", 0))).unwrap_err();
        assert!(zero.contains("alignment"), "{zero}");
        // candle would reserve 2⁶⁰ entries.
        assert!(check(&header(0, 1 << 60, &[])).is_err());
        assert!(check(&header(1 << 60, 0, &[])).is_err());
        // A key claiming more bytes than the file has.
        let mut long_key = (1u64 << 40).to_le_bytes().to_vec();
        long_key.extend(b"x");
        assert!(check(&header(0, 1, &long_key)).is_err());
        // A tensor of shape [0].
        let mut empty = 1u64.to_le_bytes().to_vec();
        empty.extend(b"t");
        empty.extend(1u32.to_le_bytes());
        empty.extend(0u64.to_le_bytes());
        empty.extend([0u8; 12]);
        assert!(check(&header(1, 0, &empty))
            .unwrap_err()
            .contains("no elements"));
        // An array of 2⁶⁰ u8 in a tiny file.
        let mut array = kv_u32("a", 0)[..9].to_vec();
        array.truncate(8 + 1);
        array.extend(9u32.to_le_bytes()); // type: array
        array.extend(0u32.to_le_bytes()); // of u8
        array.extend((1u64 << 60).to_le_bytes());
        assert!(check(&header(0, 1, &array)).is_err());
    }
}
