//! Pearson's r, Spearman's rho, Kendall's tau-b and least-squares regression, with two-sided
//! p-values computed as `scipy.stats` computes them (pearsonr, spearmanr, kendalltau, linregress).
//!
//! A constant column has no correlation: the statistic and p-value are NaN, as in scipy.

use crate::error::{Error, Result};
use crate::parallel;
use crate::stats::moments::{centred, check_pair, is_constant, r_from};
use crate::stats::rank::{argsort, average_ranks, for_each_tie_run};
use crate::stats::special::{beta_inc_complement, normal_sf, student_t_sf};

/// A correlation coefficient and its two-sided p-value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Correlation {
    pub statistic: f64,
    pub pvalue: f64,
}

impl Correlation {
    const UNDEFINED: Self = Correlation {
        statistic: f64::NAN,
        pvalue: f64::NAN,
    };
}

/// Pearson's r; the p-value is exact for normal data: r has a beta distribution on (-1, 1) with
/// a = b = n/2 - 1 under the null. n = 2 gives r = ±1 with p = 1.
pub fn pearson(x: &[f64], y: &[f64]) -> Result<Correlation> {
    check_pair(x, y, 2)?;
    if is_constant(x) || is_constant(y) {
        return Ok(Correlation::UNDEFINED);
    }
    let r = r_from(&centred(x, y));
    if x.len() == 2 {
        return Ok(Correlation {
            statistic: r.round(),
            pvalue: 1.0,
        });
    }
    Ok(Correlation {
        statistic: r,
        pvalue: pearson_pvalue(r, x.len()),
    })
}

/// `2 * sf(|r|)` of the null beta distribution.
pub fn pearson_pvalue(r: f64, n: usize) -> f64 {
    let ab = n as f64 / 2.0 - 1.0;
    2.0 * beta_inc_complement(ab, ab, (r.abs() + 1.0) / 2.0)
}

/// Spearman's rho: Pearson's r of the average ranks. The p-value is scipy's t approximation with
/// n - 2 degrees of freedom (NaN for n = 2, as in scipy).
pub fn spearman(x: &[f64], y: &[f64]) -> Result<Correlation> {
    check_pair(x, y, 2)?;
    if is_constant(x) || is_constant(y) {
        return Ok(Correlation::UNDEFINED);
    }
    let (rx, ry) =
        parallel::pool().install(|| rayon::join(|| average_ranks(x), || average_ranks(y)));
    let rho = r_from(&centred(&rx, &ry));
    Ok(Correlation {
        statistic: rho,
        pvalue: t_test_pvalue(rho, x.len(), 0.0),
    })
}

/// The two-sided p-value of a correlation through `t = r sqrt(df / ((1 - r)(1 + r)))`, df = n - 2;
/// `tiny` is linregress's guard against r = ±1.
fn t_test_pvalue(r: f64, n: usize, tiny: f64) -> f64 {
    let df = n as f64 - 2.0;
    let t2 = df / ((1.0 - r + tiny) * (1.0 + r + tiny));
    let t = r.abs() * t2.max(0.0).sqrt();
    2.0 * student_t_sf(t, df)
}

/// Kendall's tau-b with scipy's p-value: exact (Kendall 1970) when there are no ties and n <= 33
/// or at most one discordant (or concordant) pair, else the normal approximation with the tie
/// corrected variance. O(n log n).
pub fn kendall(x: &[f64], y: &[f64]) -> Result<Correlation> {
    check_pair(x, y, 2)?;
    let n = x.len();
    let ((order_x, keys_x), (order_y, keys_y)) =
        parallel::pool().install(|| rayon::join(|| argsort(x), || argsort(y)));
    let (x_ties, x0, x1) = tie_stats(&keys_x);
    let (ry, (y_ties, y0, y1)) = dense_ranks_and_ties(&order_y, &keys_y);
    // Order by (x, y); then the discordant pairs are exactly the inversions of the y ranks.
    let (mut ys, joint_ties) = y_ranks_in_xy_order(&order_x, &keys_x, &order_y, &ry);
    let distinct_y = ry.iter().max().map_or(0, |&m| m as usize + 1);
    let discordant = if distinct_y <= FENWICK_MAX_VALUES {
        count_inversions_few_values(&ys, distinct_y)
    } else {
        parallel::pool().install(|| count_inversions(&mut ys))
    };

    let total = pair_count(n);
    if x_ties == total || y_ties == total {
        return Ok(Correlation::UNDEFINED);
    }
    let con_minus_dis =
        total as f64 - x_ties as f64 - y_ties as f64 + joint_ties as f64 - 2.0 * discordant as f64;
    let tau = (con_minus_dis / ((total - x_ties) as f64).sqrt() / ((total - y_ties) as f64).sqrt())
        .clamp(-1.0, 1.0);
    let pvalue =
        if x_ties == 0 && y_ties == 0 && (n <= 33 || discordant.min(total - discordant) <= 1) {
            kendall_exact_pvalue(n, discordant.min(total - discordant))
        } else {
            let nf = n as f64;
            let m = nf * (nf - 1.0);
            let var = (m * (2.0 * nf + 5.0) - x1 - y1) / 18.0
                + (2.0 * x_ties as f64 * y_ties as f64) / m
                + x0 * y0 / (9.0 * m * (nf - 2.0));
            2.0 * normal_sf((con_minus_dis / var.sqrt()).abs())
        };
    Ok(Correlation {
        statistic: tau,
        pvalue,
    })
}

/// The y ranks ordered by (x, y), and the number of pairs tied in both.
fn y_ranks_in_xy_order(
    order_x: &[u32],
    keys_x: &[u64],
    order_y: &[u32],
    ry: &[u32],
) -> (Vec<u32>, u64) {
    let n = order_x.len();
    let mut groups = Vec::new(); // (start, end) of each run of tied x
    for_each_tie_run(keys_x, |s, e| groups.push((s, e)));
    let mut ys = vec![0u32; n];
    if groups.len() * 64 < n {
        // Few distinct x: one stable counting pass by x group over the indices in y order
        // (few write streams, so it stays in cache) puts y ascending within each group.
        let mut group_of = vec![0u32; n];
        for (g, &(s, e)) in groups.iter().enumerate() {
            for &i in &order_x[s..e] {
                group_of[i as usize] = g as u32;
            }
        }
        let mut next: Vec<usize> = groups.iter().map(|&(s, _)| s).collect();
        for &i in order_y {
            let slot = &mut next[group_of[i as usize] as usize];
            ys[*slot] = ry[i as usize];
            *slot += 1;
        }
    } else {
        // Mostly distinct x: gather the y ranks in x order and sort the few tied runs.
        for (y, &i) in ys.iter_mut().zip(order_x) {
            *y = ry[i as usize];
        }
        for &(s, e) in groups.iter().filter(|(s, e)| e - s > 1) {
            ys[s..e].sort_unstable();
        }
    }
    let mut joint_ties = 0u64;
    for &(s, e) in groups.iter().filter(|(s, e)| e - s > 1) {
        let group = &ys[s..e];
        let mut a = 0;
        while a < group.len() {
            let b = a + group[a..].iter().take_while(|&&v| v == group[a]).count();
            joint_ties += pair_count(b - a);
            a = b;
        }
    }
    (ys, joint_ties)
}

fn pair_count(k: usize) -> u64 {
    (k as u64) * (k as u64).saturating_sub(1) / 2
}

/// Over the tie groups (of size t) of sorted keys: (Σ t(t-1)/2, Σ t(t-1)(t-2), Σ t(t-1)(2t+5)).
fn tie_stats(keys: &[u64]) -> (u64, f64, f64) {
    let (mut ties, mut s0, mut s1) = (0u64, 0.0, 0.0);
    for_each_tie_run(keys, |s, e| {
        let t = (e - s) as f64;
        ties += pair_count(e - s);
        s0 += t * (t - 1.0) * (t - 2.0);
        s1 += t * (t - 1.0) * (2.0 * t + 5.0);
    });
    (ties, s0, s1)
}

/// Dense ranks (0-based) from an argsort, with the tie statistics of [`tie_stats`].
fn dense_ranks_and_ties(order: &[u32], keys: &[u64]) -> (Vec<u32>, (u64, f64, f64)) {
    let mut ranks = vec![0u32; order.len()];
    let mut rank = 0u32;
    for_each_tie_run(keys, |s, e| {
        for &i in &order[s..e] {
            ranks[i as usize] = rank;
        }
        rank += 1;
    });
    (ranks, tie_stats(keys))
}

/// Up to this many distinct values, inversions are counted with a Fenwick tree that stays in L1.
const FENWICK_MAX_VALUES: usize = 4096;

/// Number of pairs i < j with v[i] > v[j] for values in `0..distinct`: O(n log distinct) with a
/// Fenwick tree of the counts seen so far.
fn count_inversions_few_values(v: &[u32], distinct: usize) -> u64 {
    let mut tree = vec![0u64; distinct + 1];
    let mut count = 0u64;
    for (seen, &value) in v.iter().enumerate() {
        // Values <= value seen so far.
        let mut at_or_below = 0u64;
        let mut i = value as usize + 1;
        while i > 0 {
            at_or_below += tree[i];
            i &= i - 1;
        }
        count += seen as u64 - at_or_below;
        let mut i = value as usize + 1;
        while i <= distinct {
            tree[i] += 1;
            i += i & i.wrapping_neg();
        }
    }
    count
}

/// Number of pairs i < j with v[i] > v[j]; sorts `v`. Merge sort whose levels alternate between
/// `v` and one buffer (no copying back), halves in parallel.
fn count_inversions(v: &mut [u32]) -> u64 {
    let mut buffer = v.to_vec();
    merge_count(v, &mut buffer, false)
}

/// Sorts the values of `a` (which `b` holds too) into `b` when `into_b`, else into `a`, and
/// returns their inversions.
fn merge_count(a: &mut [u32], b: &mut [u32], into_b: bool) -> u64 {
    let n = a.len();
    if n <= 32 {
        let v = if into_b { &mut *b } else { &mut *a };
        let mut count = 0u64;
        for i in 1..n {
            let item = v[i];
            let mut j = i;
            while j > 0 && v[j - 1] > item {
                v[j] = v[j - 1];
                j -= 1;
            }
            v[j] = item;
            count += (i - j) as u64;
        }
        return count;
    }
    let mid = n / 2;
    let count = {
        let (a_left, a_right) = a.split_at_mut(mid);
        let (b_left, b_right) = b.split_at_mut(mid);
        // The halves are sorted into the other array, then merged into this one.
        if n >= 1 << 14 {
            let (x, y) = rayon::join(
                || merge_count(a_left, b_left, !into_b),
                || merge_count(a_right, b_right, !into_b),
            );
            x + y
        } else {
            merge_count(a_left, b_left, !into_b) + merge_count(a_right, b_right, !into_b)
        }
    };
    let (source, target) = if into_b { (&*a, b) } else { (&*b, a) };
    count + merge(&source[..mid], &source[mid..], target)
}

/// Merges two sorted runs into `out`, counting the pairs (left, right) with right < left.
fn merge(left: &[u32], right: &[u32], out: &mut [u32]) -> u64 {
    let (mut i, mut j, mut k) = (0, 0, 0);
    let mut count = 0u64;
    // Branch-free: on random data the comparison is a coin flip.
    while i < left.len() && j < right.len() {
        let (l, r) = (left[i], right[j]);
        let take_right = r < l;
        out[k] = if take_right { r } else { l };
        count += if take_right {
            (left.len() - i) as u64
        } else {
            0
        };
        j += take_right as usize;
        i += !take_right as usize;
        k += 1;
    }
    out[k..k + left.len() - i].copy_from_slice(&left[i..]);
    k += left.len() - i;
    out[k..].copy_from_slice(&right[j..]);
    count
}

/// Two-sided exact p-value of Kendall's statistic without ties, `c` = min(discordant, concordant):
/// the count of permutations with at most c inversions (Mahonian numbers), as scipy computes it.
fn kendall_exact_pvalue(n: usize, c: u64) -> f64 {
    let c = c as usize;
    let factorial = |k: usize| (2..=k).fold(1.0f64, |f, i| f * i as f64);
    let p = if n <= 2 {
        1.0
    } else if c == 0 {
        if n < 171 {
            2.0 / factorial(n)
        } else {
            0.0
        }
    } else if c == 1 {
        if n < 172 {
            2.0 / factorial(n - 1)
        } else {
            0.0
        }
    } else if 4 * c == n * (n - 1) {
        1.0
    } else {
        // Here n <= 33 (larger n take this branch only with c <= 1).
        let mut counts = vec![0.0f64; c + 1];
        counts[0] = 1.0;
        counts[1] = 1.0;
        for j in 3..=n {
            for i in 1..=c {
                counts[i] += counts[i - 1];
            }
            if j <= c {
                for i in (j..=c).rev() {
                    counts[i] -= counts[i - j];
                }
            }
        }
        2.0 * counts.iter().sum::<f64>() / factorial(n)
    };
    p.clamp(0.0, 1.0)
}

/// Least-squares line `y = slope x + intercept`, as `scipy.stats.linregress`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Regression {
    pub slope: f64,
    pub intercept: f64,
    pub rvalue: f64,
    pub pvalue: f64,
    /// Standard error of the slope.
    pub stderr: f64,
    pub intercept_stderr: f64,
}

pub fn linregress(x: &[f64], y: &[f64]) -> Result<Regression> {
    check_pair(x, y, 2)?;
    if is_constant(x) {
        return Err(Error::argument(
            "x",
            "has only one distinct value; a regression needs at least two",
        ));
    }
    let n = x.len();
    let c = centred(x, y);
    let r = if c.syy == 0.0 {
        if c.sxy == 0.0 {
            f64::NAN
        } else {
            0.0
        }
    } else {
        r_from(&c)
    };
    let slope = c.sxy / c.sxx;
    let intercept = c.mean_y - slope * c.mean_x;
    let (pvalue, stderr, intercept_stderr) = if n == 2 {
        (if y[0] == y[1] { 1.0 } else { 0.0 }, 0.0, 0.0)
    } else {
        let df = (n - 2) as f64;
        let stderr = ((1.0 - r * r) * c.syy / c.sxx / df).sqrt();
        let nf = n as f64;
        (
            t_test_pvalue(r, n, 1e-20),
            stderr,
            stderr * (c.sxx / nf + c.mean_x * c.mean_x).sqrt(),
        )
    };
    Ok(Regression {
        slope,
        intercept,
        rvalue: r,
        pvalue,
        stderr,
        intercept_stderr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kendall_matches_scipy_docs_example() {
        // scipy.stats.kendalltau([12, 2, 1, 12, 2], [1, 4, 7, 1, 0])
        let r = kendall(&[12.0, 2.0, 1.0, 12.0, 2.0], &[1.0, 4.0, 7.0, 1.0, 0.0]).unwrap();
        assert!((r.statistic + 0.47140452079103173).abs() < 1e-15);
        assert!((r.pvalue - 0.2827454599327748).abs() < 1e-12);
    }

    #[test]
    fn inversions_are_counted_by_both_methods() {
        let v: Vec<u32> = (0..3000u32).map(|i| (i * 7919 + i / 13) % 97).collect();
        let brute: u64 = (0..v.len())
            .map(|i| v[i + 1..].iter().filter(|&&w| w < v[i]).count() as u64)
            .sum();
        assert_eq!(count_inversions_few_values(&v, 97), brute);
        assert_eq!(count_inversions(&mut v.clone()), brute);
    }

    #[test]
    fn inversions_are_counted() {
        let mut v: Vec<u32> = (0..5000).rev().collect();
        assert_eq!(count_inversions(&mut v), 5000 * 4999 / 2);
        assert!(v.windows(2).all(|w| w[0] <= w[1]));
        let mut w = vec![3, 1, 2, 1, 0];
        assert_eq!(count_inversions(&mut w), 8);
    }

    #[test]
    fn constant_columns_are_undefined_and_short_ones_rejected() {
        let c = pearson(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]).unwrap();
        assert!(c.statistic.is_nan() && c.pvalue.is_nan());
        assert!(kendall(&[1.0, 2.0, 3.0], &[2.0; 3])
            .unwrap()
            .statistic
            .is_nan());
        assert!(spearman(&[1.0], &[1.0]).is_err());
        let e = linregress(&[1.0; 3], &[1.0, 2.0, 3.0])
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("`x` has only one distinct value"), "{e}");
    }
}
