//! Epsilon sampling (Hewitt, Manning and Liang 2022): remove tokens with `p < epsilon`; the
//! `min_keep` largest values are always kept.

use super::{check_range, narrow_by_rule, prob, Row};
use crate::error::Result;

#[derive(Debug, Clone, PartialEq)]
pub struct Epsilon {
    pub epsilon: f64,
    pub min_keep: usize,
}

impl Epsilon {
    /// `epsilon` in (0, 1).
    pub fn new(epsilon: f64, min_keep: usize) -> Result<Self> {
        let epsilon = check_range("epsilon", epsilon, "in (0, 1)", |e| e > 0.0 && e < 1.0)?;
        Ok(Self { epsilon, min_keep })
    }

    pub fn narrow(&self, row: &mut Row) {
        let max = row.max();
        let sum = row.sum_exp();
        let threshold = self.epsilon as f32;
        narrow_by_rule(row, self.min_keep, |v| prob(v, max, sum) >= threshold);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adaptors::Adaptor;
    use crate::test_util::{
        compare_kept, dyadic_row, indices, kept, random_row, softmax, threshold_reference, Rng,
    };

    fn epsilon(e: f64, min_keep: usize) -> Adaptor {
        Adaptor::Epsilon(Epsilon::new(e, min_keep).unwrap())
    }

    /// `p >= epsilon` in f64, ambiguous within 1e-5 relative of epsilon.
    fn reference(z: &[f32], e: f64, min_keep: usize) -> Vec<(bool, bool)> {
        threshold_reference(z, min_keep, &softmax(z), e, 1e-5 * e)
    }

    #[test]
    fn dyadic_probabilities_give_exact_sets() {
        let z = dyadic_row(); // p = 0.5, 0.25, 0.125, 0.125
        assert_eq!(indices(&kept(epsilon(0.125, 1), &z)), vec![0, 1, 2, 3]); // 0.125 >= 0.125
        assert_eq!(indices(&kept(epsilon(0.126, 1), &z)), vec![0, 1]);
        assert_eq!(indices(&kept(epsilon(0.25, 1), &z)), vec![0, 1]);
        assert_eq!(indices(&kept(epsilon(0.3, 1), &z)), vec![0]);
    }

    #[test]
    fn min_tokens_to_keep_protects_the_largest_logits() {
        let z = dyadic_row();
        // no token reaches 0.9: only the protected ones survive
        assert_eq!(indices(&kept(epsilon(0.9, 1), &z)), vec![0]);
        assert_eq!(indices(&kept(epsilon(0.9, 2), &z)), vec![0, 1]);
        assert_eq!(indices(&kept(epsilon(0.9, 3), &z)), vec![0, 1, 2, 3]);
        // a flat row where every p is below epsilon keeps the whole tied top
        assert_eq!(
            indices(&kept(epsilon(0.5, 1), &[0.0; 5])),
            vec![0, 1, 2, 3, 4]
        );
    }

    #[test]
    fn minus_inf_is_never_kept() {
        let z = [0.0f32, f32::NEG_INFINITY, -1.0, f32::NEG_INFINITY];
        assert_eq!(indices(&kept(epsilon(1e-9, 1), &z)), vec![0, 2]);
        assert_eq!(indices(&kept(epsilon(0.9, 4), &z)), vec![0, 2]);
    }

    #[test]
    fn rejects_epsilon_outside_the_open_unit_interval() {
        for e in [0.0, 1.0, -0.5, f64::NAN, f64::INFINITY] {
            let err = Epsilon::new(e, 1).unwrap_err().to_string();
            assert!(err.contains("`epsilon`") && err.contains("(0, 1)"), "{err}");
        }
    }

    #[test]
    fn matches_a_scalar_reference_on_random_rows() {
        let mut rng = Rng::new(41);
        let (mut k_total, mut r_total) = (0, 0);
        for trial in 0..300 {
            let v = 1 + rng.below(300);
            let z = random_row(&mut rng, v);
            let e = [3e-4, 1e-3, 3e-3, 0.01, 0.05, 0.2][rng.below(6)];
            let min_keep = [1, 1, 2, 5][rng.below(4)];
            let ctx = format!("trial {trial} epsilon={e} min_keep={min_keep}");
            let (a, b) = compare_kept(
                &kept(epsilon(e, min_keep), &z),
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
