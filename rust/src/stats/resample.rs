//! Resampled corpora: means of value columns over corpora drawn with replacement from a pool (the
//! N strings, or an IMH chain's states).
//!
//! A corpus of M draws from a pool in which item i occurs c_i times out of C has item counts
//! k ~ Multinomial(M, c / C), and its mean is Σ k_i v_i / M. When M is large against the number K
//! of distinct items (the paper: M = 200,000 from a chain over 2,000 strings), the counts are drawn
//! exactly as K conditional binomials, k_i ~ Binomial(M - Σ_{j<i} k_j, c_i / (C - Σ_{j<i} c_j)),
//! in O(K) per corpus instead of O(M); otherwise the M draws are made one by one. Both give the
//! exact distribution; corpus j always uses its own stream, so results do not depend on threads.

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::parallel;
use crate::stats::binomial::binomial;
use crate::stats::moments::{check_finite, check_same_len};
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

/// Where a corpus's strings are drawn from.
#[derive(Debug, Clone, Copy)]
pub enum Pool<'a> {
    /// Uniformly over the rows of `values`.
    Rows,
    /// Uniformly over these entries (row indices, e.g. an IMH chain's states).
    Indices(&'a [u32]),
    /// Row i with probability `weights[i] / Σ weights`.
    Weights(&'a [f64]),
}

/// Means of each column over `n_corpora` corpora of `corpus_size` draws from `pool`, row-major
/// [n_corpora, n_columns].
pub fn resample_means(
    values: Table<'_>,
    n_corpora: usize,
    corpus_size: usize,
    seed: u64,
    pool: Pool<'_>,
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
    // The pool as items with weights (counts for a uniform pool), over the items that occur.
    let (items, weights): (Vec<u32>, Vec<f64>) = match pool {
        Pool::Rows => ((0..n_items as u32).collect(), vec![1.0; n_items]),
        Pool::Indices(indices) => {
            check_indices(indices, n_items)?;
            let mut counts = vec![0u64; n_items];
            for &i in indices {
                counts[i as usize] += 1;
            }
            nonzero(counts.iter().map(|&c| c as f64))
        }
        Pool::Weights(weights) => {
            check_weights(weights, n_items)?;
            nonzero(weights.iter().copied())
        }
    };
    // Items with identical rows are one category: a multinomial's merged counts are the
    // multinomial of the merged weights, and a corpus mean sees only the rows (repeated strings
    // of a configuration make many such items).
    let (items, weights) = merge_identical_rows(values, items, weights);
    // suffix[i] = Σ_{j >= i} weights[j]: exact for counts, and for real weights it avoids the
    // drift of subtracting from a running total.
    let mut suffix = vec![0.0; weights.len() + 1];
    for i in (0..weights.len()).rev() {
        suffix[i] = suffix[i + 1] + weights[i];
    }
    let m = values.n_columns;
    let by_binomials = corpus_size / BINOMIAL_COST >= items.len();
    let alias = match pool {
        Pool::Weights(_) if !by_binomials => Some(AliasTable::new(&weights)),
        _ => None,
    };
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
                    let pool = WeightedPool {
                        items: &items,
                        weights: &weights,
                        suffix: &suffix,
                    };
                    corpus_by_binomials(values, pool, corpus_size, &mut stream, row);
                } else if let Some(alias) = &alias {
                    for _ in 0..corpus_size {
                        let item = items[alias.draw(&mut stream)] as usize;
                        add_row(values, item, row);
                    }
                } else {
                    let indices = match pool {
                        Pool::Indices(indices) => indices,
                        _ => &[],
                    };
                    corpus_by_draws(values, indices, corpus_size, &mut stream, buffer, row);
                }
                for v in row.iter_mut() {
                    *v /= corpus_size as f64;
                }
            },
        )
    });
    Ok(out)
}

fn check_indices(indices: &[u32], n_items: usize) -> Result<()> {
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
    Ok(())
}

fn check_weights(weights: &[f64], n_items: usize) -> Result<()> {
    check_same_len("weights", weights.len(), "values", n_items)?;
    if let Some(i) = weights.iter().position(|w| !(w.is_finite() && *w >= 0.0)) {
        return Err(Error::argument(
            "weights",
            format!(
                "has {} at index {i}; weights must be finite and >= 0",
                weights[i]
            ),
        ));
    }
    // Every weight is finite and >= 0 here, so the sum is 0 or positive.
    if weights.iter().sum::<f64>() == 0.0 {
        return Err(Error::argument(
            "weights",
            "sum to 0; at least one weight must be > 0",
        ));
    }
    Ok(())
}

/// The (item, weight) pairs with a positive weight.
fn nonzero(weights: impl Iterator<Item = f64>) -> (Vec<u32>, Vec<f64>) {
    weights
        .enumerate()
        .filter(|&(_, w)| w > 0.0)
        .map(|(i, w)| (i as u32, w))
        .unzip()
}

/// The items with their weights summed over items whose value rows are bit for bit equal, each
/// kept as its first item, in the order of first occurrence.
fn merge_identical_rows(
    values: Table<'_>,
    items: Vec<u32>,
    weights: Vec<f64>,
) -> (Vec<u32>, Vec<f64>) {
    let m = values.n_columns;
    let mut first: std::collections::HashMap<&[u64], usize> = std::collections::HashMap::new();
    // f64 rows as bit patterns (the values are finite; -0.0 and 0.0 stay apart, which is exact).
    let bits: Vec<u64> = values.data.iter().map(|v| v.to_bits()).collect();
    let (mut merged_items, mut merged_weights) = (Vec::new(), Vec::new());
    for (&item, &weight) in items.iter().zip(&weights) {
        let row = &bits[item as usize * m..(item as usize + 1) * m];
        match first.get(row) {
            Some(&k) => merged_weights[k] += weight,
            None => {
                first.insert(row, merged_items.len());
                merged_items.push(item);
                merged_weights.push(weight);
            }
        }
    }
    (merged_items, merged_weights)
}

fn add_row(values: Table<'_>, item: usize, sums: &mut [f64]) {
    let m = values.n_columns;
    for (s, v) in sums.iter_mut().zip(&values.data[item * m..(item + 1) * m]) {
        *s += v;
    }
}

/// Items with positive weights and the suffix sums of the weights.
#[derive(Clone, Copy)]
struct WeightedPool<'a> {
    items: &'a [u32],
    weights: &'a [f64],
    suffix: &'a [f64],
}

/// Column sums of one corpus from multinomial counts drawn as conditional binomials:
/// k_i ~ Binomial(draws left, w_i / Σ_{j >= i} w_j).
fn corpus_by_binomials(
    values: Table<'_>,
    pool: WeightedPool<'_>,
    corpus_size: usize,
    stream: &mut Stream,
    sums: &mut [f64],
) {
    let m = values.n_columns;
    let mut draws_left = corpus_size as u64;
    let last = pool.items.len() - 1;
    for (i, (&item, &weight)) in pool.items.iter().zip(pool.weights).enumerate() {
        if draws_left == 0 {
            break;
        }
        let p = weight / pool.suffix[i];
        let k = if i == last || p >= 1.0 {
            draws_left
        } else {
            binomial(draws_left, p, stream)
        };
        if k > 0 {
            let row = &values.data[item as usize * m..(item as usize + 1) * m];
            for (s, v) in sums.iter_mut().zip(row) {
                *s += k as f64 * v;
            }
        }
        draws_left -= k;
    }
}

/// Vose's alias method: one uniform index and one uniform number per draw.
struct AliasTable {
    threshold: Vec<f64>,
    alias: Vec<usize>,
}

impl AliasTable {
    fn new(weights: &[f64]) -> Self {
        let n = weights.len();
        let total: f64 = weights.iter().sum();
        let mut scaled: Vec<f64> = weights.iter().map(|w| w * n as f64 / total).collect();
        let (mut small, mut large): (Vec<usize>, Vec<usize>) =
            (0..n).partition(|&i| scaled[i] < 1.0);
        let mut threshold = vec![1.0; n];
        let mut alias: Vec<usize> = (0..n).collect();
        while let (Some(s), Some(&l)) = (small.pop(), large.last()) {
            threshold[s] = scaled[s];
            alias[s] = l;
            scaled[l] -= 1.0 - scaled[s];
            if scaled[l] < 1.0 {
                large.pop();
                small.push(l);
            }
        }
        // What is left is 1 up to rounding.
        Self { threshold, alias }
    }

    fn draw(&self, stream: &mut Stream) -> usize {
        let i = stream.below(self.threshold.len() as u64) as usize;
        if stream.uniform() < self.threshold[i] {
            i
        } else {
            self.alias[i]
        }
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
            add_row(values, item, sums);
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
    fn repeated_rows_are_one_category() {
        // Items 0 and 2 have the same row; 1 differs. Pool weights 1, 1, 2: the row (1, 1) has
        // weight 3 of 4 once merged, so column 0's corpus mean is Binomial(M, 3/4) / M.
        let values = [1.0, 1.0, 0.0, 3.0, 1.0, 1.0];
        let (items, weights) =
            merge_identical_rows(table(&values, 2), vec![0, 1, 2], vec![1.0, 1.0, 2.0]);
        assert_eq!((items, weights), (vec![0, 1], vec![3.0, 1.0]));
        let means = resample_means(
            table(&values, 2),
            20_000,
            1000,
            4,
            Pool::Weights(&[1.0, 1.0, 2.0]),
        )
        .unwrap();
        let col0: Vec<f64> = means.chunks(2).map(|r| r[0]).collect();
        let mean = col0.iter().sum::<f64>() / col0.len() as f64;
        let var = col0.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / col0.len() as f64;
        assert!((mean - 0.75).abs() < 0.01, "{mean}");
        assert!((var / (0.1875 / 1000.0) - 1.0).abs() < 0.05, "{var}");
    }

    #[test]
    fn both_methods_have_the_multinomial_mean_and_variance() {
        // Pool: item 0 once, item 1 three times; column 0 is the indicator of item 1.
        let values = [0.0, 5.0, 1.0, 7.0];
        let pool = [0u32, 1, 1, 1];
        for corpus_size in [10usize, 1000] {
            let means = resample_means(
                table(&values, 2),
                20_000,
                corpus_size,
                3,
                Pool::Indices(&pool),
            )
            .unwrap();
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
    fn weighted_pools_have_the_multinomial_mean_and_variance() {
        // Item 1 with probability 0.3; column 0 is its indicator.
        let values = [0.0, 1.0, 0.0];
        let weights = [0.5, 0.3, 0.2];
        for corpus_size in [7usize, 1000] {
            let means = resample_means(
                table(&values, 1),
                20_000,
                corpus_size,
                5,
                Pool::Weights(&weights),
            )
            .unwrap();
            let mean = means.iter().sum::<f64>() / means.len() as f64;
            let var = means.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / means.len() as f64;
            assert!((mean - 0.3).abs() < 0.01, "{corpus_size} {mean}");
            let expected = 0.21 / corpus_size as f64;
            assert!((var / expected - 1.0).abs() < 0.05, "{corpus_size} {var}");
        }
        let e = resample_means(table(&values, 1), 1, 5, 0, Pool::Weights(&[1.0, -1.0, 0.0]));
        assert!(e
            .unwrap_err()
            .to_string()
            .starts_with("`weights` has -1 at index 1"));
        let e = resample_means(table(&values, 1), 1, 5, 0, Pool::Weights(&[0.0; 3]));
        assert!(e.unwrap_err().to_string().starts_with("`weights` sum to 0"));
        let e = resample_means(table(&values, 1), 1, 5, 0, Pool::Weights(&[1.0]));
        assert!(e
            .unwrap_err()
            .to_string()
            .starts_with("`weights` has 1 values"));
    }

    #[test]
    fn same_result_on_one_or_two_threads() {
        let values: Vec<f64> = (0..300).map(|i| (i as f64).sin()).collect();
        let chain: Vec<u32> = (0..5000).map(|i| (i * i % 300) as u32).collect();
        for corpus_size in [50usize, 100_000] {
            let run = |threads| {
                parallel::set_num_threads(threads).unwrap();
                resample_means(
                    table(&values, 1),
                    64,
                    corpus_size,
                    11,
                    Pool::Indices(&chain),
                )
                .unwrap()
            };
            assert_eq!(run(1), run(2));
        }
    }

    #[test]
    fn bad_arguments_are_named() {
        let v = [1.0, 2.0];
        let e = resample_means(table(&v, 1), 1, 0, 0, Pool::Rows)
            .unwrap_err()
            .to_string();
        assert_eq!(e, "`corpus_size` must be an integer >= 1, got 0");
        let e = resample_means(table(&v, 1), 1, 5, 0, Pool::Indices(&[0, 2]))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("`indices` has 2 at position 1"), "{e}");
        let e = resample_means(table(&[f64::NAN], 1), 1, 5, 0, Pool::Rows)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("`values` has NaN"), "{e}");
    }
}
