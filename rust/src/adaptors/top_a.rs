//! Top-a (BlinkDL's RWKV sampler): remove tokens with `p < a * (max p)^2`; the `min_keep`
//! largest values are always kept. transformers has no top-a warper; this is the published rule.

use super::{check_range, narrow_by_rule, prob, Row};
use crate::error::Result;

#[derive(Debug, Clone, PartialEq)]
pub struct TopA {
    pub a: f64,
    pub min_keep: usize,
}

impl TopA {
    /// `a`: finite, >= 0; 0 is a no-op.
    pub fn new(a: f64, min_keep: usize) -> Result<Self> {
        let a = check_range("top_a", a, "a finite number >= 0", |a| a >= 0.0)?;
        Ok(Self { a, min_keep })
    }

    pub fn narrow(&self, row: &mut Row) {
        if self.a == 0.0 {
            return;
        }
        let max = row.max();
        let sum = row.sum_exp();
        let top_prob = prob(max, max, sum);
        let threshold = self.a as f32 * (top_prob * top_prob);
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

    fn top_a(a: f64, min_keep: usize) -> Adaptor {
        Adaptor::TopA(TopA::new(a, min_keep).unwrap())
    }

    /// `p >= a * (max p)^2` in f64, ambiguous within 1e-5 relative of the threshold.
    fn reference(z: &[f32], a: f64, min_keep: usize) -> Vec<(bool, bool)> {
        let p = softmax(z);
        let top = p.iter().copied().fold(0.0, f64::max);
        let threshold = a * top * top;
        threshold_reference(z, min_keep, &p, threshold, 1e-5 * threshold)
    }

    #[test]
    fn dyadic_probabilities_give_exact_sets() {
        let z = dyadic_row(); // p = 0.5, 0.25, 0.125, 0.125; (max p)^2 = 0.25
        assert_eq!(indices(&kept(top_a(0.5, 1), &z)), vec![0, 1, 2, 3]); // 0.125 >= 0.125
        assert_eq!(indices(&kept(top_a(0.6, 1), &z)), vec![0, 1]);
        assert_eq!(indices(&kept(top_a(1.0, 1), &z)), vec![0, 1]); // 0.25 >= 0.25
        assert_eq!(indices(&kept(top_a(1.1, 1), &z)), vec![0]);
        assert_eq!(indices(&kept(top_a(0.0, 1), &z)), vec![0, 1, 2, 3]);
        // a > 1 / max p removes even the top token's rule; min_keep keeps it
        assert_eq!(indices(&kept(top_a(10.0, 1), &z)), vec![0]);
        assert_eq!(indices(&kept(top_a(10.0, 2), &z)), vec![0, 1]);
    }

    #[test]
    fn minus_inf_is_never_kept() {
        let z = [0.0f32, f32::NEG_INFINITY, -1.0, f32::NEG_INFINITY];
        assert_eq!(indices(&kept(top_a(0.0, 1), &z)), vec![0, 2]);
        assert_eq!(indices(&kept(top_a(1e-9, 1), &z)), vec![0, 2]);
        assert_eq!(indices(&kept(top_a(100.0, 4), &z)), vec![0, 2]);
    }

    #[test]
    fn rejects_negative_or_non_finite_a() {
        for a in [-0.1, f64::NAN, f64::INFINITY] {
            let err = TopA::new(a, 1).unwrap_err().to_string();
            assert!(err.contains("`top_a`") && err.contains(">= 0"), "{err}");
        }
        assert!(TopA::new(5.0, 1).is_ok());
    }

    #[test]
    fn matches_a_scalar_reference_on_random_rows() {
        let mut rng = Rng::new(61);
        let (mut k_total, mut r_total) = (0, 0);
        for trial in 0..300 {
            let v = 1 + rng.below(300);
            let z = random_row(&mut rng, v);
            let a = [0.05, 0.2, 0.5, 1.0, 3.0 * rng.uniform()][rng.below(5)];
            let min_keep = [1, 1, 2, 5][rng.below(4)];
            let ctx = format!("trial {trial} top_a={a} min_keep={min_keep}");
            let (x, y) = compare_kept(
                &kept(top_a(a, min_keep), &z),
                &reference(&z, a, min_keep),
                &z,
                &ctx,
            );
            k_total += x;
            r_total += y;
        }
        assert!(k_total > 1000 && r_total > 1000, "{k_total} {r_total}");
    }
}
