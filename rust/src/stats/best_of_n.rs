//! Best-of-n from k samples per prompt, without bias.
//!
//! Best-of-n draws n strings from a base policy and keeps the one with the highest reward. From
//! k >= n samples of one prompt, the unbiased estimate of `E[f(best of n)]` is the U-statistic: the
//! average, over all `C(k, n)` subsets of n samples, of f at the subset's best (ties at the top
//! shared equally, i.e. broken uniformly at random). It is a weighted mean `sum_j w_j f_j`, whose
//! weight for sample j is the probability that j is the output of a uniformly random n-subset.
//!
//! With `L` samples of lower reward than j and `T` samples tied with j (j included), the subsets
//! that contain j and whose best has j's reward, each weighted by 1 / (ties in the subset), sum to
//! `(C(L + T, n) - C(L, n)) / T` (Vandermonde), so
//! `w_j = (C(L + T, n) - C(L, n)) / (T C(k, n))`; without ties `C(L, n - 1) / C(k, n)`. The
//! ratios `C(a, n) / C(k, n)` for every a come from one recurrence, so a prompt costs a sort:
//! O(k log k).

use rayon::prelude::*;

use super::segments::check_offsets;
use crate::error::{Error, Result};
use crate::parallel;

/// `C(a, n) / C(k, n)` for a = 0..=k: 1 at a = k, then `R(a - 1) = R(a) (a - n) / a`, 0 below n.
fn subset_ratios(k: usize, n: usize) -> Vec<f64> {
    let mut ratios = vec![0.0; k + 1];
    ratios[k] = 1.0;
    for a in (n..k).rev() {
        // R(a) = R(a + 1) (a + 1 - n) / (a + 1)
        ratios[a] = ratios[a + 1] * ((a + 1 - n) as f64) / ((a + 1) as f64);
    }
    ratios
}

/// The weights of one prompt's samples (`rewards`, no NaN) for best-of-`n`; they sum to 1.
fn prompt_weights(rewards: &[f64], n: usize, out: &mut [f64]) {
    let k = rewards.len();
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by(|&a, &b| rewards[a].total_cmp(&rewards[b]));
    let ratios = subset_ratios(k, n);
    let mut start = 0;
    while start < k {
        // The block of samples tied with order[start]; -0.0 and 0.0 are one reward.
        let mut end = start + 1;
        while end < k && rewards[order[end]] == rewards[order[start]] {
            end += 1;
        }
        let (lower, tied) = (start, end - start);
        let weight = (ratios[lower + tied] - ratios[lower]) / tied as f64;
        for &j in &order[start..end] {
            out[j] = weight;
        }
        start = end;
    }
}

/// Prompts per parallel task.
const PROMPTS_PER_TASK: usize = 256;

/// Best-of-`n` weights of every sample: prompt p's samples are
/// `rewards[offsets[p]..offsets[p + 1]]`, each prompt needs at least `n` of them; within a
/// prompt the weights sum to 1 and `sum_j w_j f_j` is the unbiased estimate of f at the best of
/// n. NaN rewards are refused; ±inf rewards are ordered as numbers.
pub fn best_of_n_weights(rewards: &[f64], offsets: &[u64], n: usize) -> Result<Vec<f64>> {
    if let Some(i) = rewards.iter().position(|v| v.is_nan()) {
        return Err(Error::argument(
            "rewards",
            format!("has NaN at index {i}; rewards must be numbers"),
        ));
    }
    check_offsets(offsets, rewards.len())?;
    if n == 0 {
        return Err(Error::argument("n", "must be >= 1, got 0"));
    }
    if let Some(p) = offsets
        .windows(2)
        .position(|w| ((w[1] - w[0]) as usize) < n)
    {
        let k = offsets[p + 1] - offsets[p];
        return Err(Error::argument(
            "n",
            format!(
                "must be at most each prompt's number of samples; prompt {p} has {k} < n = {n}"
            ),
        ));
    }
    let mut out = vec![0.0; rewards.len()];
    let n_prompts = offsets.len() - 1;
    // Split the output at prompt boundaries so each task owns whole prompts.
    let mut pieces: Vec<(usize, &mut [f64])> = Vec::with_capacity(n_prompts / PROMPTS_PER_TASK + 1);
    let mut rest: &mut [f64] = &mut out;
    let mut first = 0;
    while first < n_prompts {
        let last = (first + PROMPTS_PER_TASK).min(n_prompts);
        let len = (offsets[last] - offsets[first]) as usize;
        let (piece, tail) = rest.split_at_mut(len);
        pieces.push((first, piece));
        rest = tail;
        first = last;
    }
    parallel::pool().install(|| {
        pieces.into_par_iter().for_each(|(first, piece)| {
            let base = offsets[first] as usize;
            let last = (first + PROMPTS_PER_TASK).min(n_prompts);
            for p in first..last {
                let (a, b) = (offsets[p] as usize, offsets[p + 1] as usize);
                prompt_weights(&rewards[a..b], n, &mut piece[a - base..b - base]);
            }
        })
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Brute force: every n-subset, its best shared equally among the tied maxima.
    fn brute_force(rewards: &[f64], n: usize) -> Vec<f64> {
        let k = rewards.len();
        let mut weights = vec![0.0; k];
        let mut subsets = 0usize;
        for mask in 0u32..(1 << k) {
            if mask.count_ones() as usize != n {
                continue;
            }
            subsets += 1;
            let members: Vec<usize> = (0..k).filter(|&j| mask & (1 << j) != 0).collect();
            let best = members
                .iter()
                .map(|&j| rewards[j])
                .fold(f64::NEG_INFINITY, f64::max);
            let tied: Vec<usize> = members
                .into_iter()
                .filter(|&j| rewards[j] == best)
                .collect();
            for &j in &tied {
                weights[j] += 1.0 / tied.len() as f64;
            }
        }
        weights.iter().map(|w| w / subsets as f64).collect()
    }

    #[test]
    fn weights_equal_brute_force_over_all_subsets() {
        let cases: Vec<Vec<f64>> = vec![
            vec![0.3, -1.0, 2.5, 0.7, 1.1],
            vec![1.0, 1.0, 0.0, 1.0, -2.0, 0.0, 3.0],
            vec![2.0; 6],
            vec![
                f64::NEG_INFINITY,
                0.0,
                -0.0,
                f64::INFINITY,
                5.0,
                5.0,
                1.0,
                -3.0,
            ],
        ];
        for rewards in cases {
            for n in 1..=rewards.len() {
                let got = best_of_n_weights(&rewards, &[0, rewards.len() as u64], n).unwrap();
                let want = brute_force(&rewards, n);
                for (g, w) in got.iter().zip(&want) {
                    assert!(
                        (g - w).abs() < 1e-12,
                        "{rewards:?} n={n}: {got:?} vs {want:?}"
                    );
                }
                assert!((got.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn random_rewards_with_ties_equal_brute_force_per_prompt() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..200 {
            let sizes: Vec<usize> = (0..3).map(|_| 4 + (next() % 9) as usize).collect();
            let n = 1 + (next() % 4) as usize;
            let mut rewards = Vec::new();
            let mut offsets = vec![0u64];
            for &k in &sizes {
                // Few distinct values: many ties.
                rewards.extend((0..k).map(|_| (next() % 5) as f64 - 2.0));
                offsets.push(rewards.len() as u64);
            }
            let got = best_of_n_weights(&rewards, &offsets, n).unwrap();
            for p in 0..sizes.len() {
                let (a, b) = (offsets[p] as usize, offsets[p + 1] as usize);
                let want = brute_force(&rewards[a..b], n);
                for (g, w) in got[a..b].iter().zip(&want) {
                    assert!((g - w).abs() < 1e-12);
                }
            }
        }
    }

    #[test]
    fn best_of_one_is_the_plain_mean_and_best_of_k_the_maximum() {
        let rewards = [0.5, 3.0, -1.0, 2.0];
        let one = best_of_n_weights(&rewards, &[0, 4], 1).unwrap();
        assert!(one.iter().all(|&w| (w - 0.25).abs() < 1e-15));
        let all = best_of_n_weights(&rewards, &[0, 4], 4).unwrap();
        assert_eq!(all, vec![0.0, 1.0, 0.0, 0.0]);
    }

    #[test]
    fn large_k_stays_finite_and_normalised() {
        let k = 5000;
        let rewards: Vec<f64> = (0..k).map(|i| ((i * 7919) % k) as f64).collect();
        for n in [1, 2, 64, 1000, k] {
            let w = best_of_n_weights(&rewards, &[0, k as u64], n).unwrap();
            assert!(w.iter().all(|v| v.is_finite() && *v >= 0.0));
            assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-9, "n={n}");
        }
    }

    #[test]
    fn bad_inputs_name_the_argument() {
        let err = best_of_n_weights(&[1.0, 2.0], &[0, 2], 3).unwrap_err();
        assert!(err.to_string().contains("`n`") && err.to_string().contains("prompt 0 has 2"));
        let err = best_of_n_weights(&[1.0, f64::NAN], &[0, 2], 1).unwrap_err();
        assert!(err.to_string().contains("`rewards`"));
        let err = best_of_n_weights(&[1.0, 2.0], &[0, 2], 0).unwrap_err();
        assert!(err.to_string().contains("`n`"));
        assert!(best_of_n_weights(&[1.0, 2.0], &[0, 1], 1).is_err());
    }
}
