//! Resampled corpora: means of value columns over corpora drawn with replacement from a pool (the
//! N strings, or an IMH chain's states).
//!
//! A corpus of M draws from a pool in which item i occurs c_i times out of C has item counts
//! k ~ Multinomial(M, c / C), and its mean is Σ k_i v_i / M. When M is large against the number K
//! of distinct items (the paper: M = 200,000 from a chain over 2,000 strings), the counts are drawn
//! exactly as K conditional binomials, k_i ~ Binomial(M - Σ_{j<i} k_j, c_i / (C - Σ_{j<i} c_j)),
//! in O(K) per corpus instead of O(M); otherwise the M draws are made one by one. Both give the
//! exact distribution; corpus j always uses its own stream, so results do not depend on threads.

use rand_distr::{Binomial, Distribution};
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::parallel;
use crate::stats::moments::check_finite;
use crate::stats::stream::{Purpose, Stream};

/// Values as a row-major [n_items, n_columns] table.
#[derive(Debug, Clone, Copy)]
pub struct Table<'a> {
    pub data: &'a [f64],
    pub n_columns: usize,
}

impl Table<'_> {
    pub fn n_items(&self) -> usize {
        self.data.len().checked_div(self.n_columns).unwrap_or(0)
    }
}

/// One binomial draw costs about this many single draws; above that ratio of M to K the counts
/// are drawn by binomials.
const BINOMIAL_COST: usize = 20;

/// Means of each column over `n_corpora` corpora of `corpus_size` draws, row-major
/// [n_corpora, n_columns].
pub fn resample_means(
    values: Table<'_>,
    n_corpora: usize,
    corpus_size: usize,
    seed: u64,
    indices: Option<&[u32]>,
) -> Result<Vec<f64>> {
    let n_items = values.n_items();
    if values.n_columns == 0 || n_items == 0 {
        return Err(Error::argument(
            "values",
            "is empty; it needs at least one row and column",
        ));
    }
    check_finite("values", values.data)?;
    if n_corpora < 1 {
        return Err(Error::parameter("n_corpora", n_corpora, "an integer >= 1"));
    }
    if corpus_size < 1 {
        return Err(Error::parameter(
            "corpus_size",
            corpus_size,
            "an integer >= 1",
        ));
    }
    if let Some(indices) = indices {
        if indices.is_empty() {
            return Err(Error::argument(
                "indices",
                "is empty; give at least one index or None",
            ));
        }
        if let Some(p) = indices.iter().position(|&i| i as usize >= n_items) {
            return Err(Error::argument(
                "indices",
                format!(
                    "has {} at position {p}; indices must be in [0, {n_items}) (the rows of `values`)",
                    indices[p]
                ),
            ));
        }
    }
    // The pool as (item, count) over the items that occur.
    let (items, counts): (Vec<u32>, Vec<u64>) = match indices {
        None => ((0..n_items as u32).collect(), vec![1; n_items]),
        Some(indices) => {
            let mut counts = vec![0u64; n_items];
            for &i in indices {
                counts[i as usize] += 1;
            }
            counts
                .iter()
                .enumerate()
                .filter(|(_, &c)| c > 0)
                .map(|(i, &c)| (i as u32, c))
                .unzip()
        }
    };
    let pool_size: u64 = counts.iter().sum();
    let m = values.n_columns;
    let by_binomials = corpus_size / BINOMIAL_COST >= items.len();
    let mut out = vec![0.0; n_corpora * m];
    parallel::pool().install(|| {
        out.par_chunks_mut(m).enumerate().for_each_init(
            || {
                vec![
                    0u32;
                    if by_binomials {
                        0
                    } else {
                        corpus_size.min(4096)
                    }
                ]
            },
            |buffer, (corpus, row)| {
                let mut stream = Stream::new(seed, Purpose::Corpora, corpus as u64);
                if by_binomials {
                    corpus_by_binomials(
                        values,
                        &items,
                        &counts,
                        pool_size,
                        corpus_size,
                        &mut stream,
                        row,
                    );
                } else {
                    let pool = indices.unwrap_or(&[]);
                    corpus_by_draws(values, pool, corpus_size, &mut stream, buffer, row);
                }
                for v in row.iter_mut() {
                    *v /= corpus_size as f64;
                }
            },
        )
    });
    Ok(out)
}

/// Column sums of one corpus from multinomial counts drawn as conditional binomials.
fn corpus_by_binomials(
    values: Table<'_>,
    items: &[u32],
    counts: &[u64],
    pool_size: u64,
    corpus_size: usize,
    stream: &mut Stream,
    sums: &mut [f64],
) {
    let m = values.n_columns;
    let mut draws_left = corpus_size as u64;
    let mut pool_left = pool_size;
    for (&item, &count) in items.iter().zip(counts) {
        if draws_left == 0 {
            break;
        }
        let k = if count >= pool_left {
            draws_left
        } else {
            let p = count as f64 / pool_left as f64;
            match Binomial::new(draws_left, p) {
                Ok(binomial) => binomial.sample(stream),
                // p is in (0, 1) by construction; this arm is unreachable.
                Err(_) => 0,
            }
        };
        if k > 0 {
            let row = &values.data[item as usize * m..(item as usize + 1) * m];
            for (s, v) in sums.iter_mut().zip(row) {
                *s += k as f64 * v;
            }
        }
        draws_left -= k;
        pool_left -= count;
    }
}

/// Column sums of one corpus drawn one index at a time from `pool` (all items when empty).
fn corpus_by_draws(
    values: Table<'_>,
    pool: &[u32],
    corpus_size: usize,
    stream: &mut Stream,
    buffer: &mut [u32],
    sums: &mut [f64],
) {
    let m = values.n_columns;
    let range = if pool.is_empty() {
        values.n_items()
    } else {
        pool.len()
    } as u64;
    let mut left = corpus_size;
    while left > 0 {
        let take = left.min(buffer.len());
        let draws = &mut buffer[..take];
        stream.fill_below(range, draws);
        for &d in draws.iter() {
            let item = if pool.is_empty() {
                d as usize
            } else {
                pool[d as usize] as usize
            };
            let row = &values.data[item * m..(item + 1) * m];
            for (s, v) in sums.iter_mut().zip(row) {
                *s += v;
            }
        }
        left -= take;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(data: &[f64], n_columns: usize) -> Table<'_> {
        Table { data, n_columns }
    }

    #[test]
    fn both_methods_have_the_multinomial_mean_and_variance() {
        // Pool: item 0 once, item 1 three times; column 0 is the indicator of item 1.
        let values = [0.0, 5.0, 1.0, 7.0];
        let pool = [0u32, 1, 1, 1];
        for corpus_size in [10usize, 1000] {
            let means =
                resample_means(table(&values, 2), 20_000, corpus_size, 3, Some(&pool)).unwrap();
            let col0: Vec<f64> = means.chunks(2).map(|r| r[0]).collect();
            let mean = col0.iter().sum::<f64>() / col0.len() as f64;
            let var = col0.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / col0.len() as f64;
            // Binomial(M, 3/4) / M: mean 0.75, variance 0.1875 / M.
            assert!((mean - 0.75).abs() < 0.01, "{corpus_size} {mean}");
            let expected = 0.1875 / corpus_size as f64;
            assert!((var / expected - 1.0).abs() < 0.05, "{corpus_size} {var}");
            for r in means.chunks(2) {
                // Column 1 is 5 + 2 * column 0.
                assert!((r[1] - (5.0 + 2.0 * r[0])).abs() < 1e-9);
            }
        }
    }

    #[test]
    fn same_result_on_one_or_two_threads() {
        let values: Vec<f64> = (0..300).map(|i| (i as f64).sin()).collect();
        let chain: Vec<u32> = (0..5000).map(|i| (i * i % 300) as u32).collect();
        for corpus_size in [50usize, 100_000] {
            let run = |threads| {
                parallel::set_num_threads(threads).unwrap();
                resample_means(table(&values, 1), 64, corpus_size, 11, Some(&chain)).unwrap()
            };
            assert_eq!(run(1), run(2));
        }
    }

    #[test]
    fn bad_arguments_are_named() {
        let v = [1.0, 2.0];
        let e = resample_means(table(&v, 1), 1, 0, 0, None)
            .unwrap_err()
            .to_string();
        assert_eq!(e, "`corpus_size` must be an integer >= 1, got 0");
        let e = resample_means(table(&v, 1), 1, 5, 0, Some(&[0, 2]))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("`indices` has 2 at position 1"), "{e}");
        let e = resample_means(table(&[f64::NAN], 1), 1, 5, 0, None)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("`values` has NaN"), "{e}");
    }
}
