//! Random streams for the statistics: xoshiro256++ (Blackman & Vigna 2021) for fast sequential
//! draws, each stream keyed by Philox4x32-10 from (seed, purpose, id). A resample, a corpus or a
//! chain owns its stream, so results do not depend on the thread count or the order of work.

use crate::rng::philox4x32_10;

/// What a stream is for, so that two uses of one seed never share draws.
#[derive(Debug, Clone, Copy)]
#[repr(u32)]
pub enum Purpose {
    Imh = 1,
    Bootstrap = 2,
    Corpora = 3,
}

/// A xoshiro256++ generator.
#[derive(Debug, Clone)]
pub struct Stream {
    pub(crate) state: [u64; 4],
}

impl Stream {
    /// The stream for `(seed, purpose, id)`: 256 bits of Philox output as the state.
    pub fn new(seed: u64, purpose: Purpose, id: u64) -> Self {
        let key = [seed as u32, (seed >> 32) as u32];
        let block =
            |half: u32| philox4x32_10([id as u32, (id >> 32) as u32, purpose as u32, half], key);
        let (a, b) = (block(0), block(1));
        let join = |w: [u32; 4], i: usize| (w[i] as u64) << 32 | w[i + 1] as u64;
        let mut state = [join(a, 0), join(a, 2), join(b, 0), join(b, 2)];
        if state == [0; 4] {
            // The one state xoshiro cannot leave; Philox gives it with probability 2^-256.
            state[0] = 1;
        }
        Self { state }
    }

    #[cfg(test)]
    pub(crate) fn from_state(state: [u64; 4]) -> Self {
        Self { state }
    }

    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.state;
        let out = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        out
    }

    /// A uniform draw in [0, 1) with 53 random bits.
    #[inline]
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A uniform integer in `0..n` (`n >= 1`), exactly uniform (Lemire 2019, with rejection).
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        debug_assert!(n >= 1);
        let mut m = self.next_u64() as u128 * n as u128;
        if (m as u64) < n {
            let threshold = n.wrapping_neg() % n;
            while (m as u64) < threshold {
                m = self.next_u64() as u128 * n as u128;
            }
        }
        (m >> 64) as u64
    }

    /// Fills `out` with uniform integers in `0..n` (`1 <= n <= 2^32`), two per 64-bit draw.
    pub fn fill_below(&mut self, n: u64, out: &mut [u32]) {
        debug_assert!((1..=1u64 << 32).contains(&n));
        let threshold = ((1u64 << 32) - n) % n; // 2^32 mod n
        let mut pairs = out.chunks_exact_mut(2);
        for pair in &mut pairs {
            let word = self.next_u64();
            for (slot, half) in pair.iter_mut().zip([word as u32, (word >> 32) as u32]) {
                let m = half as u64 * n;
                *slot = if (m as u32 as u64) < threshold {
                    self.below(n) as u32
                } else {
                    (m >> 32) as u32
                };
            }
        }
        for slot in pairs.into_remainder() {
            *slot = self.below(n) as u32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_xoshiro256plusplus_reference() {
        // http://xoshiro.di.unimi.it/xoshiro256plusplus.c from the state [1, 2, 3, 4].
        let mut s = Stream::from_state([1, 2, 3, 4]);
        let expected = [
            41943041,
            58720359,
            3588806011781223,
            3591011842654386,
            9228616714210784205,
            9973669472204895162,
            14011001112246962877,
            12406186145184390807,
            15849039046786891736,
            10450023813501588000,
        ];
        for e in expected {
            assert_eq!(s.next_u64(), e);
        }
    }

    #[test]
    fn streams_differ_by_seed_purpose_and_id() {
        let first = |seed, purpose, id| Stream::new(seed, purpose, id).next_u64();
        let a = first(0, Purpose::Imh, 0);
        assert_eq!(a, first(0, Purpose::Imh, 0));
        assert_ne!(a, first(1, Purpose::Imh, 0));
        assert_ne!(a, first(0, Purpose::Bootstrap, 0));
        assert_ne!(a, first(0, Purpose::Imh, 1));
    }

    #[test]
    fn below_is_uniform() {
        let mut s = Stream::new(3, Purpose::Corpora, 0);
        let n = 7u64;
        let mut counts = [0u64; 7];
        let draws = 700_000;
        let mut buf = vec![0u32; draws];
        s.fill_below(n, &mut buf);
        for &v in &buf {
            counts[v as usize] += 1;
        }
        // Chi-square with 6 degrees of freedom; 22.46 is its 0.999 quantile.
        let expected = draws as f64 / n as f64;
        let chi2: f64 = counts
            .iter()
            .map(|&c| (c as f64 - expected).powi(2) / expected)
            .sum();
        assert!(chi2 < 22.46, "{chi2} {counts:?}");
        for _ in 0..1000 {
            assert!(s.below(3) < 3);
            assert_eq!(s.below(1), 0);
        }
        let mut odd = [0u32; 5];
        s.fill_below(1 << 32, &mut odd);
        assert!(s.uniform() < 1.0);
    }
}
