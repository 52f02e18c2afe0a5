//! Streaming band-limited resampler for an exact rational rate ratio.
//!
//! Output sample `k` is the band-limited reconstruction of the input at time
//! `t_k = k * in_hz / out_hz` (in input samples), computed as
//! `y[k] = sum_i x[i] * g(t_k - i)` with `g` a Kaiser-windowed sinc centred on
//! zero. Because the kernel is centred, there is no group delay to compensate:
//! the "latency" only shows up as the need to see `half_taps` future input
//! samples, which `finish()` supplies by padding with zeros.

use super::AudioError;

/// Zero crossings of the sinc on each side, counted at the lower of the two
/// rates. 32 gives a transition band of roughly 8% of the lower rate.
const ZERO_CROSSINGS: f64 = 32.0;
/// Cutoff as a fraction of the lower Nyquist frequency. Chosen so that the
/// stopband (cutoff + half the transition band) starts just below Nyquist,
/// keeping aliasing under the Kaiser sidelobe level (~-85 dB).
const ROLLOFF: f64 = 0.91;
/// Kaiser shape parameter: ~85 dB stopband attenuation.
const KAISER_BETA: f64 = 8.6;
/// Upper bound on the number of polyphase rows kept in memory. Ratios with
/// more phases than this (odd rates such as 44_101 Hz) interpolate linearly
/// between neighbouring rows instead of storing one row per phase.
const MAX_PHASES: u64 = 1024;
/// Budget (in coefficients) for the polyphase table, so that extreme
/// downsampling ratios (long kernels) don't allocate tens of megabytes.
const MAX_TABLE_COEFFS: u64 = 1 << 20;
/// Fewest rows used when interpolating; keeps the interpolation error far
/// below the filter's own stopband level.
const MIN_INTERP_PHASES: u64 = 64;

/// Ready outputs from which `process` splits the work over the cores
/// (a whole-file reader's blocks; a stream's packets stay far below).
#[cfg(not(target_arch = "wasm32"))]
const PARALLEL_MIN_OUTPUTS: usize = 1 << 16;

/// Highest input or output rate accepted.
pub(crate) const MAX_RATE_HZ: u32 = 768_000;

/// Streaming band-limited resampler for an exact rational ratio (in_hz/out_hz
/// reduced by gcd), polyphase Kaiser-windowed sinc.
///
/// Equal rates pass samples through unchanged (bit-identical). Output sample
/// `k` corresponds to input time `k * in_hz / out_hz`; after `finish()`, `N`
/// input samples have produced `ceil(N * out_hz / in_hz)` output samples.
#[derive(Debug, Clone)]
pub struct Resampler {
    /// `None` for equal rates (pass-through).
    filter: Option<Filter>,
}

#[derive(Debug, Clone)]
struct Filter {
    /// Input samples advanced per output sample is `step_num / step_den`
    /// (i.e. in_hz / out_hz reduced).
    step_num: u64,
    step_den: u64,
    /// Kernel reaches `half` samples to each side of the centre tap.
    half: usize,
    /// `2 * half + 1`.
    taps: usize,
    /// Number of table rows spanning one input sample of fractional offset.
    phases: u64,
    /// True when `phases < step_den`: blend two rows per output sample.
    interpolate: bool,
    /// `rows * taps` coefficients; row `q` is the kernel for fractional
    /// offset `q / phases`. When interpolating there is one extra row (q = phases).
    table: Vec<f32>,
    /// Scratch row for interpolated coefficients.
    blended: Vec<f32>,
    /// Input history; `buf[0]` holds absolute input index `buf_start`.
    buf: Vec<f32>,
    buf_start: i64,
    /// Integer and fractional (numerator over `step_den`) input position of
    /// the next output sample.
    next_n: i64,
    next_frac: u64,
    /// Input samples received and output samples produced since the last reset.
    total_in: u64,
    total_out: u64,
}

impl Resampler {
    /// Builds a resampler from `in_hz` to `out_hz`. Rates must be in 1..=768 kHz.
    pub fn new(in_hz: u32, out_hz: u32) -> Result<Self, AudioError> {
        for rate in [in_hz, out_hz] {
            if rate == 0 || rate > MAX_RATE_HZ {
                return Err(AudioError::UnsupportedRate(rate));
            }
        }
        if in_hz == out_hz {
            return Ok(Self { filter: None });
        }
        Ok(Self {
            filter: Some(Filter::new(in_hz, out_hz)),
        })
    }

    /// Resamples `input`, appending every output sample whose kernel window
    /// is already fully available.
    pub fn process(&mut self, input: &[f32], out: &mut Vec<f32>) {
        match &mut self.filter {
            None => out.extend_from_slice(input),
            Some(filter) => {
                filter.push(input);
                filter.drain_ready(out);
            }
        }
    }

    /// Flushes the tail (as if the input were followed by silence) and
    /// appends the remaining output samples. The resampler is reset
    /// afterwards, so it can be reused for a new stream.
    pub fn finish(&mut self, out: &mut Vec<f32>) {
        if let Some(filter) = &mut self.filter {
            filter.finish(out);
        }
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Zeroth-order modified Bessel function of the first kind (power series),
/// needed for the Kaiser window.
fn bessel_i0(x: f64) -> f64 {
    let half = x / 2.0;
    let mut term = 1.0;
    let mut sum = 1.0;
    let mut k = 1.0;
    while term > sum * 1e-16 {
        term *= (half / k) * (half / k);
        sum += term;
        k += 1.0;
    }
    sum
}

fn sinc(x: f64) -> f64 {
    if x.abs() < 1e-12 {
        1.0
    } else {
        let px = std::f64::consts::PI * x;
        px.sin() / px
    }
}

impl Filter {
    fn new(in_hz: u32, out_hz: u32) -> Self {
        let g = gcd(u64::from(in_hz), u64::from(out_hz)).max(1);
        let step_num = u64::from(in_hz) / g;
        let step_den = u64::from(out_hz) / g;

        // Cutoff in cycles per input sample is scale/2: below the output
        // Nyquist when downsampling, below the input Nyquist when upsampling.
        let scale = (out_hz as f64 / in_hz as f64).min(1.0) * ROLLOFF;
        let half_width = ZERO_CROSSINGS / scale; // in input samples
        let half = half_width.ceil() as usize;
        let taps = 2 * half + 1;

        let table_budget = (MAX_TABLE_COEFFS / taps as u64).clamp(MIN_INTERP_PHASES, MAX_PHASES);
        let interpolate = step_den > table_budget;
        let phases = if interpolate { table_budget } else { step_den };
        let rows = if interpolate { phases + 1 } else { phases };

        let i0_beta = bessel_i0(KAISER_BETA);
        let mut table = Vec::with_capacity(rows as usize * taps);
        for q in 0..rows {
            let frac = q as f64 / phases as f64;
            let mut sum = 0.0f64;
            let mut row = Vec::with_capacity(taps);
            for t in 0..taps {
                // Tap t multiplies x[n + t - half]; its distance from the
                // output time n + frac is frac - (t - half).
                let tau = frac - (t as f64 - half as f64);
                let u = tau / half_width;
                let c = if u.abs() >= 1.0 {
                    0.0
                } else {
                    let window = bessel_i0(KAISER_BETA * (1.0 - u * u).sqrt()) / i0_beta;
                    scale * sinc(scale * tau) * window
                };
                sum += c;
                row.push(c);
            }
            // Normalise each row to unit DC gain, so constant signals stay
            // exactly constant and there is no phase-dependent gain ripple.
            let norm = if sum.abs() > 1e-12 { 1.0 / sum } else { 1.0 };
            table.extend(row.iter().map(|&c| (c * norm) as f32));
        }

        Self {
            step_num,
            step_den,
            half,
            taps,
            phases,
            interpolate,
            table,
            blended: vec![0.0; taps],
            // Pretend `half` zeros precede the signal so the first outputs
            // have a full window.
            buf: vec![0.0; half],
            buf_start: -(half as i64),
            next_n: 0,
            next_frac: 0,
            total_in: 0,
            total_out: 0,
        }
    }

    fn push(&mut self, input: &[f32]) {
        self.buf.extend_from_slice(input);
        self.total_in += input.len() as u64;
    }

    /// Produces outputs while the window `next_n - half ..= next_n + half`
    /// lies inside the buffered input, then drops history no longer needed.
    /// Many ready outputs (a whole-file reader's large blocks) are split
    /// over the cores: each output is the same function of its index, so
    /// the samples do not depend on the split.
    fn drain_ready(&mut self, out: &mut Vec<f32>) {
        let ready = self.ready_outputs();
        let start = out.len();
        out.resize(start + ready, 0.0);
        let mut blended = std::mem::take(&mut self.blended);
        let produced = self.compute(&mut out[start..], &mut blended);
        self.blended = blended;
        out.truncate(start + produced);
        self.advance(produced as u64);

        // Drop consumed history in bulk (amortised O(1) per sample).
        let half = self.half as i64;
        let keep_from = (self.next_n - half - self.buf_start).max(0) as usize;
        if keep_from > 4096 && keep_from * 2 > self.buf.len() {
            let keep_from = keep_from.min(self.buf.len());
            self.buf.drain(..keep_from);
            self.buf_start += keep_from as i64;
        }
    }

    /// Outputs whose whole window is buffered: those j ≥ 0 with
    /// next_n + ⌊(next_frac + j·step_num) / step_den⌋ + half < buffer end.
    fn ready_outputs(&self) -> usize {
        let buf_end = self.buf_start as i128 + self.buf.len() as i128;
        let room = buf_end - self.half as i128 - self.next_n as i128;
        let bound = room * self.step_den as i128 - self.next_frac as i128;
        if bound <= 0 {
            return 0;
        }
        usize::try_from((bound as u128).div_ceil(self.step_num as u128)).unwrap_or(usize::MAX)
    }

    /// Writes the next `dst.len()` outputs into `dst`, on all cores when
    /// there are many; returns how many it wrote (all of them, unless a
    /// window is missing, which the caller's count rules out).
    fn compute(&self, dst: &mut [f32], blended: &mut [f32]) -> usize {
        #[cfg(not(target_arch = "wasm32"))]
        if dst.len() >= PARALLEL_MIN_OUTPUTS {
            // Asked only for large blocks: it reads the cgroup's quota.
            let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
            if threads > 1 {
                let per = dst.len().div_ceil(threads);
                let counts: Vec<usize> = std::thread::scope(|scope| {
                    let parts: Vec<_> = (dst.chunks_mut(per).enumerate())
                        .map(|(i, part)| {
                            scope.spawn(move || {
                                let mut blended = vec![0.0; self.taps];
                                self.compute_here(part, i * per, &mut blended)
                            })
                        })
                        .collect();
                    parts.into_iter().map(|h| h.join().unwrap_or(0)).collect()
                });
                // Outputs are kept up to the first part that stopped short.
                let mut written = 0;
                for (i, n) in counts.into_iter().enumerate() {
                    written = i * per + n;
                    if n < per {
                        break;
                    }
                }
                return written.min(dst.len());
            }
        }
        self.compute_here(dst, 0, blended)
    }

    /// Outputs `first ..` (counted from `next_n`) into `dst`, on this thread.
    fn compute_here(&self, dst: &mut [f32], first: usize, blended: &mut [f32]) -> usize {
        let (num, den, taps) = (self.step_num, self.step_den, self.taps);
        let (buf, table) = (&self.buf[..], &self.table[..]);
        // Output `first`'s position, then num/den input samples per output
        // (the fraction an exact numerator below den).
        let total = self.next_frac as u128 + first as u128 * num as u128;
        let mut n = self.next_n + (total / den as u128) as i64;
        let mut frac = (total % den as u128) as u64;
        let origin = self.buf_start + self.half as i64;
        for (j, slot) in dst.iter_mut().enumerate() {
            let offset = (n - origin) as usize;
            let Some(window) = buf.get(offset..offset + taps) else {
                return j; // unreachable by construction; never panic
            };
            *slot = if self.interpolate {
                // Position of this phase in the coarser table.
                let pos = frac as f64 * self.phases as f64 / den as f64;
                let row = (pos.floor() as usize).min(self.phases as usize - 1);
                let w = (pos - row as f64) as f32;
                let (Some(a), Some(b)) = (
                    table.get(row * taps..(row + 1) * taps),
                    table.get((row + 1) * taps..(row + 2) * taps),
                ) else {
                    return j;
                };
                for ((dst, &ca), &cb) in blended.iter_mut().zip(a).zip(b) {
                    *dst = ca + (cb - ca) * w;
                }
                dot(window, blended)
            } else {
                let row = frac as usize;
                let Some(coeffs) = table.get(row * taps..(row + 1) * taps) else {
                    return j;
                };
                dot(window, coeffs)
            };
            frac += num;
            n += (frac / den) as i64;
            frac %= den;
        }
        dst.len()
    }

    /// Moves the next output position on by `outputs` (step_num/step_den
    /// input samples each, the fraction kept as an exact numerator).
    fn advance(&mut self, outputs: u64) {
        let total = self.next_frac as u128 + outputs as u128 * self.step_num as u128;
        self.next_n += (total / self.step_den as u128) as i64;
        self.next_frac = (total % self.step_den as u128) as u64;
        self.total_out += outputs;
    }

    fn finish(&mut self, out: &mut Vec<f32>) {
        // Output k has time k*num/den; keep those with time < total_in,
        // i.e. ceil(total_in * den / num) samples in total.
        let n = u128::from(self.total_in);
        let num = u128::from(self.step_num);
        let den = u128::from(self.step_den);
        let expected = (n * den).div_ceil(num);
        // The last of them sits below input index total_in, so `half`
        // zeros of padding complete every remaining window.
        self.buf.resize(self.buf.len() + self.half, 0.0);
        let before = out.len();
        self.drain_ready(out);
        let produced = u128::from(self.total_out);
        if produced > expected {
            let extra = (produced - expected) as usize;
            out.truncate(out.len().saturating_sub(extra).max(before));
        }
        // Reset for reuse.
        self.buf.clear();
        self.buf.resize(self.half, 0.0);
        self.buf_start = -(self.half as i64);
        self.next_n = 0;
        self.next_frac = 0;
        self.total_in = 0;
        self.total_out = 0;
    }
}

/// Dot product with independent partial sums so the compiler can vectorise
/// it; the summation order is fixed, so results don't depend on chunking.
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let mut ca = a.chunks_exact(8);
    let mut cb = b.chunks_exact(8);
    for (xa, xb) in (&mut ca).zip(&mut cb) {
        for ((s, &p), &q) in acc.iter_mut().zip(xa).zip(xb) {
            *s += p * q;
        }
    }
    let mut tail = 0.0f32;
    for (&p, &q) in ca.remainder().iter().zip(cb.remainder()) {
        tail += p * q;
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::PI;

    fn sine(freq: f64, rate: u32, len: usize) -> Vec<f32> {
        (0..len)
            .map(|i| (2.0 * PI * freq * i as f64 / rate as f64).sin() as f32)
            .collect()
    }

    fn rms(x: &[f32]) -> f64 {
        (x.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>() / x.len().max(1) as f64).sqrt()
    }

    fn one_shot(input: &[f32], in_hz: u32, out_hz: u32) -> Vec<f32> {
        let mut r = Resampler::new(in_hz, out_hz).unwrap();
        let mut out = Vec::new();
        r.process(input, &mut out);
        r.finish(&mut out);
        out
    }

    #[test]
    fn equal_rates_are_identity() {
        let input: Vec<f32> = (0..1000)
            .map(|i| ((i * 7919) % 1000) as f32 / 997.0 - 0.5)
            .collect();
        let out = one_shot(&input, 24_000, 24_000);
        assert_eq!(out.len(), input.len());
        assert!(out
            .iter()
            .zip(&input)
            .all(|(a, b)| a.to_bits() == b.to_bits()));
    }

    #[test]
    fn rejects_bad_rates() {
        assert!(matches!(
            Resampler::new(0, 24_000),
            Err(AudioError::UnsupportedRate(0))
        ));
        assert!(matches!(
            Resampler::new(800_000, 24_000),
            Err(AudioError::UnsupportedRate(800_000))
        ));
    }

    #[test]
    fn sine_1khz_is_preserved_and_phase_aligned() {
        for in_hz in [48_000u32, 44_100, 8_000, 96_000, 22_050, 44_101] {
            let len = in_hz as usize; // one second
            let input = sine(1000.0, in_hz, len);
            let out = one_shot(&input, in_hz, 24_000);
            let expected = len as f64 * 24_000.0 / in_hz as f64;
            assert!(
                (out.len() as f64 - expected.round()).abs() <= 1.0,
                "{in_hz}: len {} vs {expected}",
                out.len()
            );
            let ideal = sine(1000.0, 24_000, out.len());
            // Skip 100 ms at both ends where the zero padding is in the window.
            let edge = 2400;
            let mid = &out[edge..out.len() - edge];
            let ideal_mid = &ideal[edge..ideal.len() - edge];
            let ratio = rms(mid) / rms(ideal_mid);
            assert!((ratio - 1.0).abs() < 0.01, "{in_hz}: rms ratio {ratio}");
            let max_err = mid
                .iter()
                .zip(ideal_mid)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            eprintln!(
                "{in_hz} -> 24000: rms ratio {ratio:.6}, max phase-aligned error {max_err:.2e}"
            );
            assert!(max_err < 1e-2, "{in_hz}: max err {max_err}");
        }
    }

    #[test]
    fn stopband_is_attenuated() {
        // 15 kHz is above the 12 kHz output Nyquist: it must be removed,
        // not aliased down to 9 kHz.
        let input = sine(15_000.0, 48_000, 48_000);
        let out = one_shot(&input, 48_000, 24_000);
        let edge = 2400;
        let level = rms(&out[edge..out.len() - edge]) / rms(&input);
        let db = 20.0 * level.max(1e-300).log10();
        eprintln!("15 kHz at 48k -> 24k: {db:.1} dB");
        assert!(db < -40.0, "15 kHz only attenuated by {db} dB");

        // Just below the cutoff region, speech-band content passes.
        let input = sine(9_000.0, 48_000, 48_000);
        let out = one_shot(&input, 48_000, 24_000);
        let level = rms(&out[edge..out.len() - edge]) / rms(&input);
        assert!((level - 1.0).abs() < 0.01, "9 kHz level {level}");
    }

    #[test]
    fn streaming_matches_one_shot() {
        streaming_matches_one_shot_over(30_000);
    }

    /// One `process` call of 300 000 samples has 75 000 – 900 000 outputs
    /// ready at once, which it splits over the cores (where there are
    /// several): the same bits as small chunks, which never are.
    #[test]
    fn outputs_split_over_cores_match_streaming() {
        streaming_matches_one_shot_over(300_000);
    }

    fn streaming_matches_one_shot_over(samples: usize) {
        // Deterministic pseudo-random chunk sizes (no rand dependency).
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for (in_hz, out_hz) in [
            (44_100, 24_000),
            (8_000, 24_000),
            (96_000, 24_000),
            (44_101, 24_000),
        ] {
            let input: Vec<f32> = (0..samples)
                .map(|_| (next() % 2001) as f32 / 1000.0 - 1.0)
                .collect();
            let whole = one_shot(&input, in_hz, out_hz);
            let mut r = Resampler::new(in_hz, out_hz).unwrap();
            let mut streamed = Vec::new();
            let mut pos = 0;
            while pos < input.len() {
                let n = ((next() % 3000) as usize).min(input.len() - pos);
                r.process(&input[pos..pos + n], &mut streamed);
                pos += n;
            }
            r.finish(&mut streamed);
            assert_eq!(whole.len(), streamed.len());
            assert!(
                whole
                    .iter()
                    .zip(&streamed)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "{in_hz}->{out_hz} streaming differs"
            );
            // finish() resets: a second run gives the same result.
            let mut again = Vec::new();
            r.process(&input, &mut again);
            r.finish(&mut again);
            assert_eq!(again, whole);
        }
    }

    #[test]
    fn lengths_for_short_inputs() {
        for n in 0..50usize {
            for in_hz in [48_000u32, 44_100, 8_000] {
                let out = one_shot(&vec![0.25; n], in_hz, 24_000);
                let expected = (n as f64 * 24_000.0 / in_hz as f64).round();
                assert!((out.len() as f64 - expected).abs() <= 1.0, "{n} @ {in_hz}");
            }
        }
        // DC is preserved exactly in the interior.
        let out = one_shot(&vec![0.25; 20_000], 44_100, 24_000);
        assert!(out[500..out.len() - 500]
            .iter()
            .all(|v| (v - 0.25).abs() < 1e-5));
    }
}
