//! Bulk uniform draws for the bootstrap of a mean: the sum of `values[i]` over `count` indices
//! drawn uniformly with replacement, from eight interleaved xoshiro256++ streams.
//!
//! Lane k of `(seed, purpose, id)` is the [`Stream`] of id `8 * id + k`. Each step of the eight
//! lanes gives 16 draws (the two 32-bit halves of each output, low halves first), mapped to
//! `0..n` exactly by Lemire's method (a rejected half, probability < n / 2^32, is redrawn from its
//! lane) and added into 16 accumulators. The AVX-512 version does the same operations in the same
//! order, so the sums are bit-identical on every machine.

use crate::stats::stream::{Purpose, Stream};

#[cfg(target_arch = "x86_64")]
mod avx512;

pub const LANES: usize = 8;

/// The lanes' states, word-major: `state[w][k]` is word w of lane k.
pub type LaneStates = [[u64; LANES]; 4];

#[derive(Debug, Clone)]
pub struct StreamLanes {
    state: LaneStates,
}

impl StreamLanes {
    pub fn new(seed: u64, purpose: Purpose, id: u64) -> Self {
        let mut state = [[0u64; LANES]; 4];
        for k in 0..LANES {
            let lane_id = id.wrapping_mul(LANES as u64).wrapping_add(k as u64);
            let lane = Stream::new(seed, purpose, lane_id);
            for (word, value) in state.iter_mut().zip(lane.state) {
                word[k] = value;
            }
        }
        Self { state }
    }

    /// The sum of `values[i]` over `count` uniform draws of i in `0..values.len()`
    /// (`1 <= len <= 2^32`).
    pub fn sum_of_draws(&mut self, values: &[f64], count: usize) -> f64 {
        debug_assert!((1..=1usize << 32).contains(&values.len()));
        let mut acc = [0.0f64; 2 * LANES];
        let full_steps = count / (2 * LANES);
        #[cfg(target_arch = "x86_64")]
        let done = if avx512::available() {
            // SAFETY: the CPU has AVX-512F (checked above).
            unsafe { avx512::add_draws(&mut self.state, values, full_steps, &mut acc) };
            full_steps
        } else {
            0
        };
        #[cfg(not(target_arch = "x86_64"))]
        let done = 0;
        for _ in done..full_steps {
            add_draws_step(&mut self.state, values, 2 * LANES, &mut acc);
        }
        let tail = count % (2 * LANES);
        if tail > 0 {
            add_draws_step(&mut self.state, values, tail, &mut acc);
        }
        acc.iter().sum()
    }
}

/// One step of the eight lanes.
#[inline(always)]
pub fn step(s: &mut LaneStates) -> [u64; LANES] {
    let mut out = [0u64; LANES];
    for k in 0..LANES {
        out[k] = s[0][k]
            .wrapping_add(s[3][k])
            .rotate_left(23)
            .wrapping_add(s[0][k]);
        let t = s[1][k] << 17;
        s[2][k] ^= s[0][k];
        s[3][k] ^= s[1][k];
        s[1][k] ^= s[2][k];
        s[0][k] ^= s[3][k];
        s[2][k] ^= t;
        s[3][k] = s[3][k].rotate_left(45);
    }
    out
}

/// `2^32 mod n`: a 32-bit half h is accepted when the low word of h * n is at least this.
#[inline]
pub fn rejection_threshold(n: u64) -> u64 {
    ((1u64 << 32) - n) % n
}

/// The 16 indices of one step, slot j < 8 from lane j's low half, slot 8 + j from its high half.
#[inline(always)]
fn indices(s: &mut LaneStates, words: &[u64; LANES], n: u64) -> [usize; 2 * LANES] {
    let threshold = rejection_threshold(n);
    let mut slots = [0usize; 2 * LANES];
    let mut rejected = false;
    for k in 0..LANES {
        let (m0, m1) = ((words[k] & 0xFFFF_FFFF) * n, (words[k] >> 32) * n);
        rejected |= ((m0 & 0xFFFF_FFFF) < threshold) | ((m1 & 0xFFFF_FFFF) < threshold);
        slots[k] = (m0 >> 32) as usize;
        slots[LANES + k] = (m1 >> 32) as usize;
    }
    if rejected {
        redraw_rejected(s, words, n, &mut slots);
    }
    slots
}

/// Redraws each rejected half, in slot order, from the high half of its lane's next outputs (each
/// redraw steps all lanes).
#[cold]
pub fn redraw_rejected(
    s: &mut LaneStates,
    words: &[u64; LANES],
    n: u64,
    slots: &mut [usize; 2 * LANES],
) {
    let threshold = rejection_threshold(n);
    for h in 0..2 {
        for k in 0..LANES {
            let mut half = (words[k] >> (32 * h)) & 0xFFFF_FFFF;
            while (half * n) & 0xFFFF_FFFF < threshold {
                half = step(s)[k] >> 32;
            }
            slots[h * LANES + k] = ((half * n) >> 32) as usize;
        }
    }
}

/// One step: adds `values` at the first `take` of its 16 draws into `acc` (slot j into acc[j]).
#[inline]
fn add_draws_step(s: &mut LaneStates, values: &[f64], take: usize, acc: &mut [f64; 2 * LANES]) {
    let words = step(s);
    let slots = indices(s, &words, values.len() as u64);
    for (a, &i) in acc.iter_mut().zip(&slots[..take]) {
        *a += values[i];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_uniform_and_counted_exactly() {
        let mut counts = [0.0f64; 7];
        for (i, c) in counts.iter_mut().enumerate() {
            let mut indicator = [0.0; 7];
            indicator[i] = 1.0;
            *c = StreamLanes::new(1, Purpose::Bootstrap, 0).sum_of_draws(&indicator, 70_003);
        }
        assert_eq!(counts.iter().sum::<f64>(), 70_003.0);
        let expected = 70_003.0 / 7.0;
        let chi2: f64 = counts
            .iter()
            .map(|&c| (c - expected).powi(2) / expected)
            .sum();
        // Chi-square with 6 degrees of freedom; 22.46 is its 0.999 quantile.
        assert!(chi2 < 22.46, "{chi2} {counts:?}");
        assert_eq!(
            StreamLanes::new(0, Purpose::Bootstrap, 3).sum_of_draws(&[2.0], 13),
            26.0
        );
    }

    #[test]
    fn the_vector_path_is_bit_identical_to_the_portable_one() {
        // With n = 10^7 about 1 half in 430 is rejected, so both paths take the redraw.
        for n in [1usize, 3, 1000, 10_007, 10_000_019] {
            let values: Vec<f64> = (0..n).map(|i| ((i * 7919) % 1013) as f64 * 0.37).collect();
            for count in [0usize, 5, 16, 1000, 100_003] {
                let fast = StreamLanes::new(9, Purpose::Bootstrap, 2).sum_of_draws(&values, count);
                let mut lanes = StreamLanes::new(9, Purpose::Bootstrap, 2);
                let mut acc = [0.0; 2 * LANES];
                for _ in 0..count / (2 * LANES) {
                    add_draws_step(&mut lanes.state, &values, 2 * LANES, &mut acc);
                }
                if count % (2 * LANES) > 0 {
                    add_draws_step(&mut lanes.state, &values, count % (2 * LANES), &mut acc);
                }
                assert_eq!(
                    fast.to_bits(),
                    acc.iter().sum::<f64>().to_bits(),
                    "{n} {count}"
                );
            }
        }
    }

    #[test]
    fn rejections_are_redrawn_identically() {
        // n = 2^31 + 1: almost half of all halves are rejected.
        let n = (1u64 << 31) + 1;
        let mut a = StreamLanes::new(4, Purpose::Bootstrap, 0);
        let mut b = a.clone();
        let words = step(&mut a.state);
        let slots = indices(&mut a.state, &words, n);
        assert!(slots.iter().all(|&i| (i as u64) < n));
        let words_b = step(&mut b.state);
        let mut slots_b = [0usize; 2 * LANES];
        redraw_rejected(&mut b.state, &words_b, n, &mut slots_b);
        assert_eq!(slots, slots_b);
        assert_eq!(a.state, b.state);
    }
}
