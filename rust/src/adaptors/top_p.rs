//! Top-p, nucleus sampling (Holtzman et al. 2020): keep the most probable tokens whose mass
//! reaches `p`. As in transformers, sorted ascending, a token is removed when the cumulative mass up
//! to and including it is `<= 1 - p`; the token that crosses is kept. A group of exactly equal
//! values that straddles the cut is kept whole (transformers keeps a part of it chosen by torch's
//! sort order, which is not stable), so a token's fate never depends on its index.
//!
//! The cut is found without sorting: vectorised passes narrow a bracket of values around it
//! ([`Row::weighted_cut`]), then a weighted quickselect among the few tokens left decides it
//! exactly.

use super::{check_range, protected_from, Row};
use crate::error::Result;
use crate::kernels::CutKey;

#[derive(Debug, Clone, PartialEq)]
pub struct TopP {
    pub p: f64,
    pub min_keep: usize,
}

impl TopP {
    /// `p` in (0, 1]; 1 is a no-op.
    pub fn new(p: f64, min_keep: usize) -> Result<Self> {
        let p = check_range("top_p", p, "in (0, 1]", |p| p > 0.0 && p <= 1.0)?;
        Ok(Self { p, min_keep })
    }

    pub fn narrow(&self, row: &mut Row) {
        if self.p >= 1.0 {
            return;
        }
        // transformers removes when cum <= (1 - p), the threshold cast to float32: a token is kept
        // iff the mass strictly above it is < sum * (1 - threshold).
        let removed_mass = (1.0 - self.p) as f32;
        let kept_share = 1.0 - removed_mass as f64;
        // Keys are negated values: the smallest key whose cumulative weight reaches the target is
        // the last value of the largest-first walk of the nucleus.
        let cut = row
            .weighted_cut(CutKey::Nucleus, |sum| sum * kept_share)
            .map(|key| -key);
        let protected = protected_from(row, self.min_keep);
        if let Some(cut) = cut {
            row.keep_at_least(cut.min(protected));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adaptors::Adaptor;
    use crate::kernels::exp_nonpositive;
    use crate::test_util::{compare_kept, dyadic_row, indices, kept, random_row, softmax, Rng};

    fn top_p(p: f64, min_keep: usize) -> Adaptor {
        Adaptor::TopP(TopP::new(p, min_keep).unwrap())
    }

    /// transformers' rule in f64: sort ascending, remove where the cumulative mass (the token
    /// included) is `<= 1 - top_p`, keep the last `min_keep` positions; then keep whole every tied
    /// group that has a kept member. Per token `(keep, ambiguous)`: ambiguous when the mass strictly
    /// above its value lies within 1e-5 of `top_p` (float32 rounding may decide either way).
    fn reference(z: &[f32], top_p: f64, min_keep: usize) -> Vec<(bool, bool)> {
        let p = softmax(z);
        let mut order: Vec<usize> = (0..z.len()).filter(|&i| z[i].is_finite()).collect();
        order.sort_by(|&a, &b| z[a].total_cmp(&z[b]));
        let n = order.len();
        let mut cum = 0.0;
        let mut lowest_kept = f32::INFINITY;
        for (pos, &i) in order.iter().enumerate() {
            cum += p[i];
            let removed = cum <= 1.0 - top_p && pos + min_keep < n;
            if !removed {
                lowest_kept = lowest_kept.min(z[i]);
            }
        }
        let protected = crate::test_util::protected(z, min_keep);
        (0..z.len())
            .map(|i| {
                let keep = z[i].is_finite() && z[i] >= lowest_kept;
                let above: f64 = (0..z.len()).filter(|&j| z[j] > z[i]).map(|j| p[j]).sum();
                (keep, !protected[i] && (above - top_p).abs() <= 1e-5)
            })
            .collect()
    }

    #[test]
    fn dyadic_probabilities_give_exact_sets_and_ties_at_the_cut_are_kept_whole() {
        let z = dyadic_row();
        // the premise: float32 sees exactly 0.5, 0.25, 0.125, 0.125
        for (i, want) in [1.0f32, 0.5, 0.25, 0.25].iter().enumerate() {
            assert_eq!(exp_nonpositive(z[i] - z[0]), *want);
        }
        assert_eq!(indices(&kept(top_p(0.5, 1), &z)), vec![0]);
        assert_eq!(indices(&kept(top_p(0.75, 1), &z)), vec![0, 1]);
        assert_eq!(indices(&kept(top_p(0.8, 1), &z)), vec![0, 1, 2, 3]);
        // transformers would drop one of the two tied 0.125 tokens (cum 0.125 <= 0.125); the tied
        // group straddles the cut and is kept whole
        assert_eq!(indices(&kept(top_p(0.875, 1), &z)), vec![0, 1, 2, 3]);
        assert_eq!(indices(&kept(top_p(1.0, 1), &z)), vec![0, 1, 2, 3]);
        // the order of the tokens does not matter
        let shuffled = [z[2], z[1], z[3], z[0]];
        assert_eq!(indices(&kept(top_p(0.75, 1), &shuffled)), vec![1, 3]);
        assert_eq!(indices(&kept(top_p(0.875, 1), &shuffled)), vec![0, 1, 2, 3]);
    }

    #[test]
    fn the_token_that_crosses_the_threshold_is_kept() {
        // p = 0.5, 0.25, 0.125, 0.125: top_p = 0.6 needs the 0.25 token to reach it
        let z = dyadic_row();
        assert_eq!(indices(&kept(top_p(0.6, 1), &z)), vec![0, 1]);
        assert_eq!(indices(&kept(top_p(0.01, 1), &z)), vec![0]);
    }

    #[test]
    fn min_tokens_to_keep_protects_the_most_probable() {
        let z = dyadic_row();
        assert_eq!(indices(&kept(top_p(0.01, 2), &z)), vec![0, 1]);
        // ties with the min_keep-th are protected too
        assert_eq!(indices(&kept(top_p(0.01, 3), &z)), vec![0, 1, 2, 3]);
    }

    #[test]
    fn minus_inf_is_never_kept() {
        let z = [0.0f32, f32::NEG_INFINITY, -1.0, f32::NEG_INFINITY, -30.0];
        for p in [0.1, 0.9, 0.999_999, 1.0] {
            for &i in &indices(&kept(top_p(p, 1), &z)) {
                assert!(z[i].is_finite(), "p={p}");
            }
        }
        assert_eq!(indices(&kept(top_p(1.0, 1), &z)), vec![0, 2, 4]);
        assert_eq!(indices(&kept(top_p(0.1, 5), &z)), vec![0, 2, 4]);
    }

    #[test]
    fn rejects_p_outside_zero_one() {
        for p in [0.0, -0.1, 1.000_001, 2.0, f64::NAN, f64::INFINITY] {
            let err = TopP::new(p, 1).unwrap_err().to_string();
            assert!(err.contains("`top_p`") && err.contains("(0, 1]"), "{err}");
        }
    }

    #[test]
    fn matches_a_sorted_reference_on_random_rows() {
        let mut rng = Rng::new(21);
        let (mut k_total, mut r_total) = (0, 0);
        for trial in 0..300 {
            let v = 1 + rng.below(300);
            let z = random_row(&mut rng, v);
            let p = [0.1, 0.5, 0.8, 0.9, 0.95, 0.99, rng.uniform().max(1e-3)][rng.below(7)];
            let min_keep = [1, 1, 2, 5][rng.below(4)];
            let want = reference(&z, p, min_keep);
            let ctx = format!("trial {trial} p={p} min_keep={min_keep}");
            let (a, b) = compare_kept(&kept(top_p(p, min_keep), &z), &want, &z, &ctx);
            k_total += a;
            r_total += b;
        }
        assert!(k_total > 1000 && r_total > 1000, "{k_total} {r_total}");
    }
}
