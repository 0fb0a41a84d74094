//! Eta sampling (Hewitt, Manning and Liang 2022): remove tokens with `p < eta`, where
//! `eta = min(epsilon, sqrt(epsilon) * exp(-H))` and `H` is the entropy of the current
//! distribution. This is transformers' code (its class docstring states a different formula);
//! the `min_keep` largest values are always kept.

use super::{check_range, narrow_by_rule, prob, Row};
use crate::error::Result;

#[derive(Debug, Clone, PartialEq)]
pub struct Eta {
    pub epsilon: f64,
    pub min_keep: usize,
}

impl Eta {
    /// `epsilon` in (0, 1).
    pub fn new(epsilon: f64, min_keep: usize) -> Result<Self> {
        let epsilon = check_range("eta", epsilon, "in (0, 1)", |e| e > 0.0 && e < 1.0)?;
        Ok(Self { epsilon, min_keep })
    }

    pub fn narrow(&self, row: &mut Row) {
        let max = row.max();
        let (sum, entropy) = row.sum_exp_and_entropy();
        // float32 throughout, as transformers holds epsilon in a float32 tensor
        let eps = self.epsilon as f32;
        let threshold = eps.min(eps.sqrt() * (-entropy).exp());
        narrow_by_rule(row, self.min_keep, |v| prob(v, max, sum) >= threshold);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adaptors::Adaptor;
    use crate::test_util::{
        compare_kept, dyadic_row, entropy, indices, kept, random_row, softmax, threshold_reference,
        Rng,
    };

    fn eta(e: f64, min_keep: usize) -> Adaptor {
        Adaptor::Eta(Eta::new(e, min_keep).unwrap())
    }

    /// transformers' code in f64: `p >= min(eps, sqrt(eps) exp(-H))`, ambiguous within 1e-5
    /// relative of the threshold.
    fn reference(z: &[f32], e: f64, min_keep: usize) -> Vec<(bool, bool)> {
        let p = softmax(z);
        let threshold = e.min(e.sqrt() * (-entropy(&p)).exp());
        threshold_reference(z, min_keep, &p, threshold, 1e-5 * threshold)
    }

    #[test]
    fn uses_the_entropy_dependent_threshold() {
        // p = 0.5, 0.25, 0.125, 0.125: H = 1.75 ln 2, exp(-H) = 2^-1.75 ~ 0.297
        let z = dyadic_row();
        // eps = 0.1: sqrt(0.1) * 0.297 = 0.094 < 0.1, so eta = 0.094 and every token stays
        assert_eq!(indices(&kept(eta(0.1, 1), &z)), vec![0, 1, 2, 3]);
        // eps = 0.2: eta = 0.133; epsilon sampling at 0.2 would keep only token 0
        assert_eq!(indices(&kept(eta(0.2, 1), &z)), vec![0, 1]);
        // eps = 0.9: eta = 0.282 > 0.25
        assert_eq!(indices(&kept(eta(0.9, 1), &z)), vec![0]);
        // a low-entropy row: eta = eps exactly (sqrt(eps) exp(-H) > eps)
        let peaked = [10.0f32, 0.0, 0.0, -1.0];
        let p = softmax(&peaked);
        assert!(0.01f64.sqrt() * (-entropy(&p)).exp() > 0.01);
        let want: Vec<usize> = (0..4).filter(|&i| p[i] >= 0.01).collect();
        assert_eq!(indices(&kept(eta(0.01, 1), &peaked)), want);
    }

    #[test]
    fn min_tokens_to_keep_protects_the_largest_logits() {
        let z = dyadic_row();
        assert_eq!(indices(&kept(eta(0.9, 2), &z)), vec![0, 1]);
        assert_eq!(indices(&kept(eta(0.9, 3), &z)), vec![0, 1, 2, 3]);
    }

    #[test]
    fn minus_inf_is_never_kept() {
        let z = [0.0f32, f32::NEG_INFINITY, -1.0, f32::NEG_INFINITY];
        assert_eq!(indices(&kept(eta(1e-9, 1), &z)), vec![0, 2]);
        assert_eq!(indices(&kept(eta(0.9, 4), &z)), vec![0, 2]);
    }

    #[test]
    fn rejects_epsilon_outside_the_open_unit_interval() {
        for e in [0.0, 1.0, 1.5, f64::NAN, f64::NEG_INFINITY] {
            let err = Eta::new(e, 1).unwrap_err().to_string();
            assert!(err.contains("`eta`") && err.contains("(0, 1)"), "{err}");
        }
    }

    #[test]
    fn matches_a_scalar_reference_on_random_rows() {
        let mut rng = Rng::new(51);
        let (mut k_total, mut r_total) = (0, 0);
        for trial in 0..300 {
            let v = 1 + rng.below(300);
            let z = random_row(&mut rng, v);
            let e = [9e-4, 3e-3, 0.01, 0.05, 0.2, 0.6][rng.below(6)];
            let min_keep = [1, 1, 2, 5][rng.below(4)];
            let ctx = format!("trial {trial} eta={e} min_keep={min_keep}");
            let (a, b) = compare_kept(
                &kept(eta(e, min_keep), &z),
                &reference(&z, e, min_keep),
                &z,
                &ctx,
            );
            k_total += a;
            r_total += b;
        }
        assert!(k_total > 1000 && r_total > 1000, "{k_total} {r_total}");
    }
}
