//! Rank correlations of a bootstrap resample given as counts: how many times each of the n pairs
//! was drawn. A rank statistic depends only on the multiset of pairs, so it can be had from the
//! pairs' orders, sorted once, without sorting the resample: Spearman in O(n), Kendall's tau-b in
//! O(n log n) with a Fenwick tree (instead of two sorts and a merge per resample). The values are
//! those of the statistics on the expanded resample (the tests check it).

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::parallel;
use crate::stats::moments::check_pair;
use crate::stats::rank::{argsort, for_each_tie_run};

/// The pairs' x and y orders and their tie groups, computed once per bootstrap.
pub struct RankedPairs {
    /// Item indices in increasing x, and the [start, end) runs of equal x in that order.
    x_order: Vec<u32>,
    x_runs: Vec<(usize, usize)>,
    y_order: Vec<u32>,
    y_runs: Vec<(usize, usize)>,
    /// Dense rank of each item's y (0 .. the number of distinct y values).
    y_dense: Vec<u32>,
}

/// Per-worker scratch for one resample.
pub struct RankScratch {
    x_ranks: Vec<f64>,
    y_ranks: Vec<f64>,
    tree: Vec<u64>,
    /// The draws in the tree at each dense y rank (so that "at or below" is one query, not two).
    at: Vec<u64>,
}

fn runs(keys: &[u64]) -> Vec<(usize, usize)> {
    let mut runs = Vec::new();
    for_each_tie_run(keys, |start, end| runs.push((start, end)));
    runs
}

impl RankedPairs {
    pub fn new(x: &[f64], y: &[f64]) -> Self {
        let (x_order, x_keys) = argsort(x);
        let (y_order, y_keys) = argsort(y);
        let (x_runs, y_runs) = (runs(&x_keys), runs(&y_keys));
        let mut y_dense = vec![0u32; y.len()];
        for (rank, &(start, end)) in y_runs.iter().enumerate() {
            for &i in &y_order[start..end] {
                y_dense[i as usize] = rank as u32;
            }
        }
        Self {
            x_order,
            x_runs,
            y_order,
            y_runs,
            y_dense,
        }
    }

    pub fn scratch(&self) -> RankScratch {
        RankScratch {
            x_ranks: vec![0.0; self.x_order.len()],
            y_ranks: vec![0.0; self.y_order.len()],
            tree: vec![0; self.y_runs.len() + 1],
            at: vec![0; self.y_runs.len()],
        }
    }

    /// Spearman's rho of the resample: Pearson's r of the average ranks, each pair weighted by
    /// its count. NaN when either side is constant in the resample.
    pub fn spearman(&self, counts: &[u32], scratch: &mut RankScratch) -> f64 {
        average_ranks(&self.x_order, &self.x_runs, counts, &mut scratch.x_ranks);
        average_ranks(&self.y_order, &self.y_runs, counts, &mut scratch.y_ranks);
        let total: f64 = counts.iter().map(|&c| c as f64).sum();
        // Average ranks of N draws have mean (N + 1) / 2 on both sides.
        let mean = (total + 1.0) / 2.0;
        let (mut sxx, mut syy, mut sxy) = (0.0, 0.0, 0.0);
        for ((&c, &rx), &ry) in counts.iter().zip(&scratch.x_ranks).zip(&scratch.y_ranks) {
            if c > 0 {
                let (dx, dy, c) = (rx - mean, ry - mean, c as f64);
                sxx += c * dx * dx;
                syy += c * dy * dy;
                sxy += c * dx * dy;
            }
        }
        if sxx == 0.0 || syy == 0.0 {
            return f64::NAN;
        }
        (sxy / (sxx * syy).sqrt()).clamp(-1.0, 1.0)
    }

    /// Kendall's tau-b of the resample: concordant minus discordant pairs of draws over
    /// sqrt((pairs - x ties)(pairs - y ties)); NaN when either side is constant.
    pub fn kendall(&self, counts: &[u32], scratch: &mut RankScratch) -> f64 {
        let (tree, at) = (&mut scratch.tree, &mut scratch.at);
        tree.iter_mut().for_each(|t| *t = 0);
        at.iter_mut().for_each(|t| *t = 0);
        let (mut concordant, mut discordant, mut seen) = (0u64, 0u64, 0u64);
        let mut x_tied = 0u64;
        for &(start, end) in &self.x_runs {
            let run = &self.x_order[start..end];
            let mut in_run = 0u64;
            // Pairs within a run of equal x are neither; compare with the earlier runs only.
            for &i in run {
                let c = counts[i as usize] as u64;
                if c == 0 {
                    continue;
                }
                let r = self.y_dense[i as usize] as usize;
                let below = prefix(tree, r);
                concordant += c * below;
                discordant += c * (seen - below - at[r]);
                in_run += c;
            }
            for &i in run {
                let c = counts[i as usize] as u64;
                if c > 0 {
                    let r = self.y_dense[i as usize] as usize;
                    add(tree, r + 1, c);
                    at[r] += c;
                }
            }
            seen += in_run;
            x_tied += in_run * in_run.saturating_sub(1) / 2;
        }
        let mut y_tied = 0u64;
        for &(start, end) in &self.y_runs {
            let c: u64 = self.y_order[start..end]
                .iter()
                .map(|&i| counts[i as usize] as u64)
                .sum();
            y_tied += c * c.saturating_sub(1) / 2;
        }
        let pairs = seen * seen.saturating_sub(1) / 2;
        let denominator = ((pairs - x_tied) as f64 * (pairs - y_tied) as f64).sqrt();
        if denominator == 0.0 {
            return f64::NAN;
        }
        ((concordant as f64 - discordant as f64) / denominator).clamp(-1.0, 1.0)
    }
}

/// Spearman's rho and Kendall's tau-b of every resample of a bootstrap over groups: point i
/// belongs to group `groups[i]`, and resample b holds group g `group_counts[b * n_groups + g]`
/// times (every point of a group drawn twice enters twice). The pairs are sorted once; each
/// resample costs O(n) (Spearman) and O(n log n) (Kendall) without building its points.
pub fn grouped_rank_replicates(
    x: &[f64],
    y: &[f64],
    groups: &[u32],
    group_counts: &[u32],
    n_groups: usize,
) -> Result<(Vec<f64>, Vec<f64>)> {
    check_pair(x, y, 2)?;
    if groups.len() != x.len() {
        return Err(Error::argument(
            "groups",
            format!("has {} labels for {} points", groups.len(), x.len()),
        ));
    }
    if let Some(i) = groups.iter().position(|&g| g as usize >= n_groups) {
        return Err(Error::argument(
            "groups",
            format!(
                "has {} at position {i}; labels must be in [0, {n_groups}) (`n_groups`)",
                groups[i]
            ),
        ));
    }
    if n_groups == 0 || !group_counts.len().is_multiple_of(n_groups) {
        return Err(Error::argument(
            "group_counts",
            format!(
                "has {} entries; it needs n_resamples x n_groups ({n_groups})",
                group_counts.len()
            ),
        ));
    }
    let pairs = RankedPairs::new(x, y);
    let n_resamples = group_counts.len() / n_groups;
    let mut spearman = vec![0.0; n_resamples];
    let mut kendall = vec![0.0; n_resamples];
    parallel::pool().install(|| {
        spearman
            .par_iter_mut()
            .zip(kendall.par_iter_mut())
            .zip(group_counts.par_chunks(n_groups))
            .for_each_init(
                || (pairs.scratch(), vec![0u32; x.len()]),
                |(scratch, counts), ((rho, tau), multiplicity)| {
                    for (c, &g) in counts.iter_mut().zip(groups) {
                        *c = multiplicity[g as usize];
                    }
                    *rho = pairs.spearman(counts, scratch);
                    *tau = pairs.kendall(counts, scratch);
                },
            )
    });
    Ok((spearman, kendall))
}

/// Average ranks (1-based) of each item in a resample of `counts` draws: a run of equal values
/// holding C draws after `cum` smaller ones has rank cum + (C + 1) / 2.
fn average_ranks(order: &[u32], runs: &[(usize, usize)], counts: &[u32], ranks: &mut [f64]) {
    let mut cumulative = 0u64;
    for &(start, end) in runs {
        let items = &order[start..end];
        let c: u64 = items.iter().map(|&i| counts[i as usize] as u64).sum();
        let rank = cumulative as f64 + (c as f64 + 1.0) / 2.0;
        for &i in items {
            ranks[i as usize] = rank;
        }
        cumulative += c;
    }
}

/// The total weight at Fenwick positions 1 ..= k (`tree[0]` unused).
fn prefix(tree: &[u64], mut k: usize) -> u64 {
    let mut sum = 0;
    while k > 0 {
        sum += tree[k];
        k &= k - 1;
    }
    sum
}

fn add(tree: &mut [u64], mut k: usize, weight: u64) {
    while k < tree.len() {
        tree[k] += weight;
        k += k & k.wrapping_neg();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::correlation::kendall;
    use crate::stats::moments::{centred, r_from};
    use crate::stats::stream::{Purpose, Stream};

    fn expanded(values: &[f64], counts: &[u32]) -> Vec<f64> {
        values
            .iter()
            .zip(counts)
            .flat_map(|(&v, &c)| std::iter::repeat_n(v, c as usize))
            .collect()
    }

    #[test]
    fn equal_the_statistics_of_the_expanded_resample() {
        let mut s = Stream::new(1, Purpose::Bootstrap, 0);
        for (n, levels) in [(40usize, 5u64), (300, 1000), (1000, 30), (7, 3)] {
            // Values on a few levels: ties within x, within y and in both.
            let x: Vec<f64> = (0..n).map(|_| s.below(levels) as f64).collect();
            let y: Vec<f64> = (0..n)
                .map(|i| (x[i] + s.below(levels) as f64 * 0.5).round())
                .collect();
            let pairs = RankedPairs::new(&x, &y);
            let mut scratch = pairs.scratch();
            for _ in 0..50 {
                let mut counts = vec![0u32; n];
                for _ in 0..n {
                    counts[s.below(n as u64) as usize] += 1;
                }
                let (xs, ys) = (expanded(&x, &counts), expanded(&y, &counts));
                let c = centred(
                    &crate::stats::rank::average_ranks(&xs),
                    &crate::stats::rank::average_ranks(&ys),
                );
                let spearman = if c.sxx == 0.0 || c.syy == 0.0 {
                    f64::NAN
                } else {
                    r_from(&c)
                };
                let fast = pairs.spearman(&counts, &mut scratch);
                assert!(
                    (fast - spearman).abs() < 1e-12 || (fast.is_nan() && spearman.is_nan()),
                    "n {n}: {fast} vs {spearman}"
                );
                let tau = kendall(&xs, &ys).map_or(f64::NAN, |k| k.statistic);
                let fast = pairs.kendall(&counts, &mut scratch);
                assert!(
                    (fast - tau).abs() < 1e-12 || (fast.is_nan() && tau.is_nan()),
                    "n {n}: {fast} vs {tau}"
                );
            }
        }
    }

    #[test]
    fn grouped_replicates_equal_the_statistics_of_the_drawn_groups() {
        let mut s = Stream::new(2, Purpose::Bootstrap, 0);
        let (n, n_groups) = (120usize, 6usize);
        let x: Vec<f64> = (0..n).map(|_| s.below(15) as f64).collect();
        let y: Vec<f64> = (0..n).map(|i| x[i] + s.below(9) as f64).collect();
        let groups: Vec<u32> = (0..n).map(|i| (i % n_groups) as u32).collect();
        let mut group_counts = vec![0u32; 20 * n_groups];
        for row in group_counts.chunks_mut(n_groups) {
            for _ in 0..n_groups {
                row[s.below(n_groups as u64) as usize] += 1;
            }
        }
        let (rho, tau) = grouped_rank_replicates(&x, &y, &groups, &group_counts, n_groups).unwrap();
        for (b, row) in group_counts.chunks(n_groups).enumerate() {
            // The resample's points, group by group.
            let (mut xs, mut ys) = (Vec::new(), Vec::new());
            for (g, &times) in row.iter().enumerate() {
                for _ in 0..times {
                    for i in (0..n).filter(|&i| groups[i] as usize == g) {
                        xs.push(x[i]);
                        ys.push(y[i]);
                    }
                }
            }
            let c = centred(
                &crate::stats::rank::average_ranks(&xs),
                &crate::stats::rank::average_ranks(&ys),
            );
            assert!((rho[b] - r_from(&c)).abs() < 1e-12, "{b}");
            assert!((tau[b] - kendall(&xs, &ys).unwrap().statistic).abs() < 1e-12);
        }
        let e = grouped_rank_replicates(&x, &y, &groups, &group_counts[..7], n_groups);
        assert!(e
            .unwrap_err()
            .to_string()
            .starts_with("`group_counts` has 7"));
        let e = grouped_rank_replicates(&x, &y, &groups, &group_counts, 5);
        assert!(e
            .unwrap_err()
            .to_string()
            .starts_with("`groups` has 5 at position 5"));
    }

    #[test]
    fn constant_sides_have_no_correlation() {
        let pairs = RankedPairs::new(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]);
        let mut scratch = pairs.scratch();
        assert!(pairs.spearman(&[1, 1, 1], &mut scratch).is_nan());
        assert!(pairs.kendall(&[1, 1, 1], &mut scratch).is_nan());
        let pairs = RankedPairs::new(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]);
        // One pair drawn three times: constant.
        assert!(pairs.kendall(&[0, 3, 0], &mut scratch).is_nan());
        assert_eq!(pairs.kendall(&[1, 1, 1], &mut scratch), -1.0);
    }
}
