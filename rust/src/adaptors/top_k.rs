//! Top-k (Fan, Lewis and Dauphin 2018): remove values below the k-th largest; every token tied
//! with the k-th is kept.

use super::Row;
use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq)]
pub struct TopK {
    pub k: usize,
    pub min_keep: usize,
}

impl TopK {
    /// `k`: an integer >= 1; `k >= V` is a no-op. `min_keep` raises `k` as in transformers.
    pub fn new(k: usize, min_keep: usize) -> Result<Self> {
        if k < 1 {
            return Err(Error::parameter("top_k", k, "an integer >= 1"));
        }
        Ok(Self { k, min_keep })
    }

    /// From a float parameter, which must be a whole number.
    pub fn from_f64(k: f64, min_keep: usize) -> Result<Self> {
        if !(k.is_finite() && k >= 1.0 && k.fract() == 0.0 && k <= usize::MAX as f64) {
            return Err(Error::parameter("top_k", k, "an integer >= 1"));
        }
        Self::new(k as usize, min_keep)
    }

    pub fn narrow(&self, row: &mut Row) {
        let k = self.k.max(self.min_keep);
        // fewer than k tokens in the support: nothing to remove
        if let Some(kth) = row.kth_largest(k) {
            row.keep_at_least(kth);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adaptors::Adaptor;
    use crate::test_util::{compare_kept, indices, kept, random_row, Rng};

    fn top_k(k: usize, min_keep: usize) -> Adaptor {
        Adaptor::TopK(TopK::new(k, min_keep).unwrap())
    }

    /// transformers' rule by sorting: keep `z >= ` the k-th largest (k raised to `min_keep`).
    fn reference(z: &[f32], k: usize, min_keep: usize) -> Vec<bool> {
        let mut finite: Vec<f64> = z
            .iter()
            .filter(|x| x.is_finite())
            .map(|&x| x as f64)
            .collect();
        finite.sort_by(|a, b| b.partial_cmp(a).unwrap());
        let k = k.max(min_keep);
        let kth = if k >= finite.len() {
            f64::NEG_INFINITY
        } else {
            finite[k - 1]
        };
        z.iter()
            .map(|&x| x.is_finite() && x as f64 >= kth)
            .collect()
    }

    #[test]
    fn keeps_the_k_largest() {
        let z = [0.1f32, 3.0, -2.0, 2.5, 1.0, 0.0];
        assert_eq!(indices(&kept(top_k(1, 1), &z)), vec![1]);
        assert_eq!(indices(&kept(top_k(3, 1), &z)), vec![1, 3, 4]);
    }

    #[test]
    fn every_token_tied_with_the_kth_is_kept() {
        let z = [1.0f32, 3.0, 2.0, 3.0, 2.0, 0.0, 2.0];
        assert_eq!(indices(&kept(top_k(1, 1), &z)), vec![1, 3]);
        assert_eq!(indices(&kept(top_k(2, 1), &z)), vec![1, 3]);
        assert_eq!(indices(&kept(top_k(3, 1), &z)), vec![1, 2, 3, 4, 6]);
        assert_eq!(indices(&kept(top_k(5, 1), &z)), vec![1, 2, 3, 4, 6]);
        assert_eq!(indices(&kept(top_k(6, 1), &z)), vec![0, 1, 2, 3, 4, 6]);
    }

    #[test]
    fn k_of_at_least_v_is_a_no_op_and_minus_inf_is_never_kept() {
        let z = [1.0f32, f32::NEG_INFINITY, 2.0, f32::NEG_INFINITY];
        for k in [2, 3, 4, 5, 100] {
            assert_eq!(indices(&kept(top_k(k, 1), &z)), vec![0, 2], "k={k}");
        }
        assert_eq!(indices(&kept(top_k(1, 1), &z)), vec![2]);
    }

    #[test]
    fn min_tokens_to_keep_raises_k() {
        let z = [0.1f32, 3.0, -2.0, 2.5, 1.0, 0.0];
        assert_eq!(indices(&kept(top_k(1, 3), &z)), vec![1, 3, 4]);
        assert_eq!(indices(&kept(top_k(4, 2), &z)), vec![0, 1, 3, 4]);
    }

    #[test]
    fn rejects_k_that_is_not_a_positive_integer() {
        for k in [0.0, -1.0, 2.5, f64::NAN, f64::INFINITY] {
            let err = TopK::from_f64(k, 1).unwrap_err().to_string();
            assert!(
                err.contains("`top_k`") && err.contains("integer >= 1"),
                "{err}"
            );
        }
        assert!(TopK::new(0, 1).unwrap_err().to_string().contains("`top_k`"));
        assert_eq!(TopK::from_f64(7.0, 2).unwrap(), TopK { k: 7, min_keep: 2 });
    }

    #[test]
    fn matches_a_sorted_reference_on_random_rows() {
        let mut rng = Rng::new(11);
        let (mut k_total, mut r_total) = (0, 0);
        for trial in 0..300 {
            let v = 1 + rng.below(300);
            let z = random_row(&mut rng, v);
            let k = 1 + rng.below(v + 5);
            let min_keep = [1, 1, 2, 5][rng.below(4)];
            let want: Vec<(bool, bool)> = reference(&z, k, min_keep)
                .into_iter()
                .map(|w| (w, false))
                .collect();
            let (a, b) = compare_kept(
                &kept(top_k(k, min_keep), &z),
                &want,
                &z,
                &format!("trial {trial} k={k}"),
            );
            k_total += a;
            r_total += b;
        }
        assert!(k_total > 1000 && r_total > 1000, "{k_total} {r_total}");
    }
}
