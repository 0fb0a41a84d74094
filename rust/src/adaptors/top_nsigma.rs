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
