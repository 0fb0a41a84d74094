//! Min-p (Nguyen et al. 2024): remove tokens with `p < min_p * max p`; the `min_keep` largest
//! values are always kept.

use super::{check_range, narrow_by_rule, Row};
use crate::error::Result;
use crate::kernels::exp_nonpositive;

#[derive(Debug, Clone, PartialEq)]
pub struct MinP {
    pub min_p: f64,
    pub min_keep: usize,
}

impl MinP {
    /// `min_p` in [0, 1]; 0 is a no-op.
    pub fn new(min_p: f64, min_keep: usize) -> Result<Self> {
        let min_p = check_range("min_p", min_p, "in [0, 1]", |p| (0.0..=1.0).contains(&p))?;
        Ok(Self { min_p, min_keep })
    }

    pub fn narrow(&self, row: &mut Row) {
        if self.min_p == 0.0 {
            return;
        }
        // p >= min_p * max p  <=>  exp(v - max) >= min_p: no normaliser, so no pass over the row
        // (transformers divides both sides by it; only rounding at the cut can differ)
        let max = row.max();
        let threshold = self.min_p as f32;
        narrow_by_rule(row, self.min_keep, |v| {
            exp_nonpositive(v - max) >= threshold
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adaptors::Adaptor;
    use crate::test_util::{
        compare_kept, dyadic_row, indices, kept, random_row, softmax, threshold_reference, Rng,
    };

    fn min_p(p: f64, min_keep: usize) -> Adaptor {
        Adaptor::MinP(MinP::new(p, min_keep).unwrap())
    }

    /// `p >= min_p * max p` in f64, ambiguous within 1e-5 relative of the threshold.
    fn reference(z: &[f32], m: f64, min_keep: usize) -> Vec<(bool, bool)> {
        let p = softmax(z);
        let threshold = m * p.iter().copied().fold(0.0, f64::max);
        threshold_reference(z, min_keep, &p, threshold, 1e-5 * threshold)
    }

    #[test]
    fn dyadic_probabilities_give_exact_sets() {
        let z = dyadic_row(); // p = 0.5, 0.25, 0.125, 0.125
        assert_eq!(indices(&kept(min_p(0.25, 1), &z)), vec![0, 1, 2, 3]); // p >= 0.125
        assert_eq!(indices(&kept(min_p(0.26, 1), &z)), vec![0, 1]);
        assert_eq!(indices(&kept(min_p(0.5, 1), &z)), vec![0, 1]); // 0.25 >= 0.25: kept
        assert_eq!(indices(&kept(min_p(0.51, 1), &z)), vec![0]);
        assert_eq!(indices(&kept(min_p(1.0, 1), &z)), vec![0]);
        assert_eq!(indices(&kept(min_p(0.0, 1), &z)), vec![0, 1, 2, 3]);
    }

    #[test]
    fn min_tokens_to_keep_protects_the_largest_logits() {
        let z = dyadic_row();
        assert_eq!(indices(&kept(min_p(1.0, 2), &z)), vec![0, 1]);
        assert_eq!(indices(&kept(min_p(1.0, 3), &z)), vec![0, 1, 2, 3]); // tie with the 3rd
                                                                         // a tie at the top survives min_p = 1
        assert_eq!(indices(&kept(min_p(1.0, 1), &[1.0, 0.0, 1.0])), vec![0, 2]);
    }

    #[test]
    fn minus_inf_is_never_kept() {
        let z = [0.0f32, f32::NEG_INFINITY, -1.0, f32::NEG_INFINITY];
        assert_eq!(indices(&kept(min_p(0.0, 1), &z)), vec![0, 2]);
        assert_eq!(indices(&kept(min_p(1e-9, 1), &z)), vec![0, 2]);
        assert_eq!(indices(&kept(min_p(1.0, 4), &z)), vec![0, 2]);
    }

    #[test]
    fn rejects_min_p_outside_zero_one() {
        for m in [-0.01, 1.01, f64::NAN, f64::INFINITY] {
            let err = MinP::new(m, 1).unwrap_err().to_string();
            assert!(err.contains("`min_p`") && err.contains("[0, 1]"), "{err}");
        }
    }

    #[test]
    fn matches_a_scalar_reference_on_random_rows() {
        let mut rng = Rng::new(31);
        let (mut k_total, mut r_total) = (0, 0);
        for trial in 0..300 {
            let v = 1 + rng.below(300);
            let z = random_row(&mut rng, v);
            let m = [0.01, 0.05, 0.1, 0.3, rng.uniform()][rng.below(5)];
            let min_keep = [1, 1, 2, 5][rng.below(4)];
            let ctx = format!("trial {trial} min_p={m} min_keep={min_keep}");
            let (a, b) = compare_kept(
                &kept(min_p(m, min_keep), &z),
                &reference(&z, m, min_keep),
                &z,
                &ctx,
            );
            k_total += a;
            r_total += b;
        }
        assert!(k_total > 1000 && r_total > 1000, "{k_total} {r_total}");
    }
}
