//! Min-p (Nguyen et al. 2024): remove tokens with `p < min_p * max p`; the `min_keep` largest
//! values are always kept.

use super::{check_range, narrow_by_rule, prob, Row};
use crate::error::Result;

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
        let max = row.max();
        let sum = row.sum_exp();
        let top_prob = prob(max, max, sum);
        let threshold = self.min_p as f32 * top_prob;
        narrow_by_rule(row, self.min_keep, |v| prob(v, max, sum) >= threshold);
    }
}
