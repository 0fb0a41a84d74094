//! Top-n-sigma (Tang et al. 2024, "Top-nσ: Not All Logits Are You Need"): keep values
//! `>= max - n * sigma`, where sigma is the (population) standard deviation of the finite current
//! values; the `min_keep` largest values are always kept. transformers has no such warper.

use super::{check_range, narrow_by_rule, Row};
use crate::error::Result;
use crate::kernels;

#[derive(Debug, Clone, PartialEq)]
pub struct TopNSigma {
    pub n: f64,
    pub min_keep: usize,
}

impl TopNSigma {
    /// `n`: finite, > 0.
    pub fn new(n: f64, min_keep: usize) -> Result<Self> {
        let n = check_range("top_nsigma", n, "a finite number > 0", |n| n > 0.0)?;
        Ok(Self { n, min_keep })
    }

    pub fn narrow(&self, row: &mut Row) {
        let max = row.max();
        let count = row.count() as f64;
        let (lo, hi) = row.bounds();
        let mean = kernels::sum_in(row.values(), lo, hi) / count;
        let sigma = (kernels::sum_sq_dev_in(row.values(), lo, hi, mean) / count).sqrt();
        let threshold = max - (self.n * sigma) as f32;
        narrow_by_rule(row, self.min_keep, |v| v >= threshold);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adaptors::Adaptor;
    use crate::test_util::{compare_kept, indices, kept, random_row, threshold_reference, Rng};

    fn top_nsigma(n: f64, min_keep: usize) -> Adaptor {
        Adaptor::TopNSigma(TopNSigma::new(n, min_keep).unwrap())
    }

    /// `z >= max z - n sigma` in f64, sigma the population standard deviation of the finite
    /// logits; ambiguous within 1e-5 (relative to the logits' scale) of the threshold.
    fn reference(z: &[f32], n: f64, min_keep: usize) -> Vec<(bool, bool)> {
        let finite: Vec<f64> = z
            .iter()
            .filter(|x| x.is_finite())
            .map(|&x| x as f64)
            .collect();
        let count = finite.len() as f64;
        let mean = finite.iter().sum::<f64>() / count;
        let sigma = (finite.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / count).sqrt();
        let max = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let threshold = max - n * sigma;
        let score: Vec<f64> = z.iter().map(|&x| x as f64).collect();
        threshold_reference(
            z,
            min_keep,
            &score,
            threshold,
            1e-5 * (1.0 + max.abs() + n * sigma),
        )
    }

    #[test]
    fn keeps_logits_within_n_population_sigmas_of_the_max() {
        // mean 0, population sigma sqrt(5) = 2.236
        let z = [3.0f32, 1.0, -1.0, -3.0];
        assert_eq!(indices(&kept(top_nsigma(0.5, 1), &z)), vec![0]); // >= 1.88
        assert_eq!(indices(&kept(top_nsigma(1.0, 1), &z)), vec![0, 1]); // >= 0.76
        assert_eq!(indices(&kept(top_nsigma(2.0, 1), &z)), vec![0, 1, 2]); // >= -1.47
        assert_eq!(indices(&kept(top_nsigma(3.0, 1), &z)), vec![0, 1, 2, 3]);
        // population (not sample) sigma: [1, 0] has sigma 0.5 (the sample sigma 0.71 would keep both)
        assert_eq!(indices(&kept(top_nsigma(1.5, 1), &[1.0, 0.0])), vec![0]);
    }

    #[test]
    fn sigma_is_over_the_finite_logits_and_minus_inf_is_never_kept() {
        let z = [1.0f32, f32::NEG_INFINITY, 0.0, f32::NEG_INFINITY];
        assert_eq!(indices(&kept(top_nsigma(1.5, 1), &z)), vec![0]);
        assert_eq!(indices(&kept(top_nsigma(2.5, 1), &z)), vec![0, 2]);
        assert_eq!(indices(&kept(top_nsigma(1e-3, 4), &z)), vec![0, 2]);
    }

    #[test]
    fn min_tokens_to_keep_protects_the_largest_logits() {
        let z = [3.0f32, 1.0, -1.0, -3.0];
        assert_eq!(indices(&kept(top_nsigma(0.1, 2), &z)), vec![0, 1]);
        assert_eq!(
            indices(&kept(top_nsigma(0.1, 1), &[2.0, 2.0, 0.0])),
            vec![0, 1]
        );
    }

    #[test]
    fn rejects_non_positive_or_non_finite_n() {
        for n in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let err = TopNSigma::new(n, 1).unwrap_err().to_string();
            assert!(err.contains("`top_nsigma`") && err.contains("> 0"), "{err}");
        }
    }

    #[test]
    fn matches_a_scalar_reference_on_random_rows() {
        let mut rng = Rng::new(71);
        let (mut k_total, mut r_total) = (0, 0);
        for trial in 0..300 {
            let v = 1 + rng.below(300);
            let z = random_row(&mut rng, v);
            let n = [0.5, 1.0, 1.5, 2.0, 3.0 * rng.uniform() + 0.01][rng.below(5)];
            let min_keep = [1, 1, 2, 5][rng.below(4)];
            let ctx = format!("trial {trial} n={n} min_keep={min_keep}");
            let (a, b) = compare_kept(
                &kept(top_nsigma(n, min_keep), &z),
                &reference(&z, n, min_keep),
                &z,
                &ctx,
            );
            k_total += a;
            r_total += b;
        }
        assert!(k_total > 1000 && r_total > 1000, "{k_total} {r_total}");
    }
}
