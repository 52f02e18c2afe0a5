//! A small, seeded mutation fuzzer for stable Rust and CI: each corpus file,
//! then random mutations of corpus files (bit flips, byte sets to
//! boundary values, inserted and deleted runs, truncation, splices of two
//! files, 64-bit integers overwritten with boundary values — lengths and
//! offsets live in those). No coverage guidance: libFuzzer (`just fuzz`)
//! explores; this replays the corpus and shakes it in every CI run.

/// xorshift64*: deterministic, so a failure names its seed and iteration.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }
}

const BOUNDARY_U64: [u64; 8] = [
    0,
    1,
    0x7F,
    0xFF,
    0xFFFF_FFFF,
    0x8000_0000_0000_0000,
    u64::MAX,
    1 << 40,
];

/// One mutation of `corpus[i]` (possibly spliced with another).
pub fn mutate(rng: &mut Rng, corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut d = corpus[rng.below(corpus.len())].clone();
    for _ in 0..1 + rng.below(4) {
        let len = d.len();
        match rng.below(7) {
            0 if len > 0 => {
                let i = rng.below(len);
                d[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                d[i] = [0, 1, 0x7F, 0x80, 0xFF][rng.below(5)];
            }
            2 => {
                let at = rng.below(len + 1);
                let n = 1 + rng.below(16);
                let fill: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
                d.splice(at..at, fill);
            }
            3 if len > 0 => {
                let at = rng.below(len);
                let n = (1 + rng.below(64)).min(len - at);
                d.drain(at..at + n);
            }
            4 => d.truncate(rng.below(len + 1)),
            5 => {
                let other = &corpus[rng.below(corpus.len())];
                let at = rng.below(len + 1);
                let from = rng.below(other.len() + 1);
                d.truncate(at);
                d.extend_from_slice(&other[from..]);
            }
            _ if len >= 8 => {
                let at = rng.below(len - 7);
                let v = BOUNDARY_U64[rng.below(BOUNDARY_U64.len())];
                let bytes = if rng.below(2) == 0 {
                    v.to_le_bytes()
                } else {
                    v.to_be_bytes()
                };
                let width = [1, 2, 4, 8][rng.below(4)];
                d[at..at + width].copy_from_slice(&bytes[..width]);
            }
            _ => {}
        }
    }
    d
}

/// An input that made a target panic.
#[derive(Debug)]
pub struct Crash {
    /// None: corpus file `index`; Some(i): mutation `i` of this seed.
    pub mutation: Option<usize>,
    pub index: usize,
    pub input: Vec<u8>,
}

fn survives(target: fn(&[u8]), input: &[u8]) -> bool {
    std::panic::catch_unwind(|| target(input)).is_ok()
}

/// Runs `target` on every corpus file, then on `iterations` mutations; the
/// first input that panics is returned. Ok: how many inputs ran.
pub fn run(
    target: fn(&[u8]),
    corpus: &[Vec<u8>],
    iterations: usize,
    seed: u64,
) -> Result<usize, Crash> {
    for (index, input) in corpus.iter().enumerate() {
        if !survives(target, input) {
            return Err(Crash {
                mutation: None,
                index,
                input: input.clone(),
            });
        }
    }
    let mut rng = Rng::new(seed);
    for i in 0..iterations {
        let input = mutate(&mut rng, corpus);
        if !survives(target, &input) {
            return Err(Crash {
                mutation: Some(i),
                index: i,
                input,
            });
        }
    }
    Ok(corpus.len() + iterations)
}
