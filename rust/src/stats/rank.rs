//! Ordering of samples: argsort, average ranks (ties share the mean of their positions, as
//! `scipy.stats.rankdata`), and dense ranks.

use rayon::prelude::*;

use crate::parallel;

/// Above this many values the sorts run on the pool.
const PARALLEL_SORT: usize = 1 << 15;

/// An integer key that orders like the float: finite values, with -0.0 and 0.0 equal (a tie).
#[inline]
pub fn order_key(v: f64) -> u64 {
    let bits = (v + 0.0).to_bits(); // -0.0 + 0.0 == +0.0
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | 1 << 63
    }
}

/// Sorts `keys` (on the pool when large).
pub fn sort_keys<T: Ord + Send>(keys: &mut [T]) {
    if keys.len() >= PARALLEL_SORT {
        parallel::pool().install(|| keys.par_sort_unstable());
    } else {
        keys.sort_unstable();
    }
}

/// Below this many values the argsort is a comparison sort; above, a radix sort.
const RADIX_SORT: usize = 1 << 12;

/// The indices that sort `x`, ties in index order, with the sorted keys.
pub fn argsort(x: &[f64]) -> (Vec<u32>, Vec<u64>) {
    let keys: Vec<u64> = x.iter().map(|&v| order_key(v)).collect();
    if x.len() >= RADIX_SORT {
        return radix_argsort(keys);
    }
    // One u128 per value: key in the high half, index in the low half, so a plain integer sort
    // orders by value and then by index.
    let mut packed: Vec<u128> = keys
        .iter()
        .enumerate()
        .map(|(i, &k)| (k as u128) << 64 | i as u128)
        .collect();
    packed.sort_unstable();
    let order = packed.iter().map(|&p| p as u32).collect();
    let keys = packed.iter().map(|&p| (p >> 64) as u64).collect();
    (order, keys)
}

/// Bits per radix digit: 256 buckets, so that the write streams of a pass stay in L1.
const DIGIT_BITS: u32 = 8;

/// Stable least-significant-digit radix sort of (key, index) pairs: eight counting passes of 8
/// bits, skipping a pass where every key has the same digit.
fn radix_argsort(mut keys: Vec<u64>) -> (Vec<u32>, Vec<u64>) {
    let n = keys.len();
    let buckets = 1usize << DIGIT_BITS;
    let passes = 64u32.div_ceil(DIGIT_BITS) as usize;
    let mut counts = vec![0usize; passes * buckets];
    for &k in &keys {
        for p in 0..passes {
            counts[p * buckets + ((k >> (p as u32 * DIGIT_BITS)) as usize & (buckets - 1))] += 1;
        }
    }
    let mut order: Vec<u32> = (0..n as u32).collect();
    let mut keys_out = vec![0u64; n];
    let mut order_out = vec![0u32; n];
    for p in 0..passes {
        let count = &mut counts[p * buckets..(p + 1) * buckets];
        if count.contains(&n) {
            continue;
        }
        let mut next = 0;
        for c in count.iter_mut() {
            let start = next;
            next += *c;
            *c = start;
        }
        let shift = p as u32 * DIGIT_BITS;
        for (&k, &i) in keys.iter().zip(&order) {
            let slot = &mut count[(k >> shift) as usize & (buckets - 1)];
            keys_out[*slot] = k;
            order_out[*slot] = i;
            *slot += 1;
        }
        std::mem::swap(&mut keys, &mut keys_out);
        std::mem::swap(&mut order, &mut order_out);
    }
    (order, keys)
}

/// Calls `f(start, end)` for each run of equal keys in sorted `keys`.
pub fn for_each_tie_run(keys: &[u64], mut f: impl FnMut(usize, usize)) {
    let mut start = 0;
    while start < keys.len() {
        let mut end = start + 1;
        while end < keys.len() && keys[end] == keys[start] {
            end += 1;
        }
        f(start, end);
        start = end;
    }
}

/// Average ranks, 1-based, as `scipy.stats.rankdata(x, method="average")`.
pub fn average_ranks(x: &[f64]) -> Vec<f64> {
    let (order, keys) = argsort(x);
    let mut ranks = vec![0.0; x.len()];
    for_each_tie_run(&keys, |start, end| {
        let rank = (start + end + 1) as f64 / 2.0;
        for &i in &order[start..end] {
            ranks[i as usize] = rank;
        }
    });
    ranks
}

/// Dense ranks, 0-based (equal values share a rank, ranks have no gaps).
pub fn dense_ranks(x: &[f64]) -> Vec<u32> {
    let (order, keys) = argsort(x);
    let mut ranks = vec![0u32; x.len()];
    let mut rank = 0u32;
    for_each_tie_run(&keys, |start, end| {
        for &i in &order[start..end] {
            ranks[i as usize] = rank;
        }
        rank += 1;
    });
    ranks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_order_like_floats_with_signed_zeros_tied() {
        let values = [-1e300, -2.5, -1e-300, -0.0, 0.0, 1e-300, 3.0, 1e300];
        for w in values.windows(2) {
            assert!(order_key(w[0]) <= order_key(w[1]), "{w:?}");
        }
        assert_eq!(order_key(-0.0), order_key(0.0));
        assert!(order_key(-2.5) < order_key(-1e-300));
    }

    #[test]
    fn ranks_match_rankdata() {
        // scipy.stats.rankdata([3, 1, 4, 1, 5, 9, 2, 6, 5, 3])
        let x = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0, 5.0, 3.0];
        assert_eq!(
            average_ranks(&x),
            [4.5, 1.5, 6.0, 1.5, 7.5, 10.0, 3.0, 9.0, 7.5, 4.5]
        );
        assert_eq!(dense_ranks(&x), [2, 0, 3, 0, 4, 6, 1, 5, 4, 2]);
        let (order, _) = argsort(&x);
        assert_eq!(order, [1, 3, 6, 0, 9, 2, 4, 8, 7, 5]);
    }

    #[test]
    fn radix_and_comparison_argsorts_agree() {
        let x: Vec<f64> = (0..50_000)
            .map(|i| match i % 4 {
                0 => ((i * 7919) % 1000) as f64 - 500.0,
                1 => -((i as f64) * 1e-300),
                2 => (i as f64).sin() * 1e300,
                _ => -0.0,
            })
            .collect();
        let (order, keys) = argsort(&x);
        let mut packed: Vec<(u64, u32)> = x
            .iter()
            .enumerate()
            .map(|(i, &v)| (order_key(v), i as u32))
            .collect();
        packed.sort_unstable();
        assert_eq!(order, packed.iter().map(|p| p.1).collect::<Vec<_>>());
        assert_eq!(keys, packed.iter().map(|p| p.0).collect::<Vec<_>>());
    }

    #[test]
    fn large_inputs_take_the_radix_sort() {
        let x: Vec<f64> = (0..100_000).map(|i| ((i * 7919) % 1000) as f64).collect();
        let ranks = average_ranks(&x);
        // Each of the 1000 values occurs 100 times; value v holds positions 100v+1 ..= 100v+100.
        for (v, r) in x.iter().zip(&ranks) {
            assert_eq!(*r, 100.0 * v + 50.5);
        }
    }
}
