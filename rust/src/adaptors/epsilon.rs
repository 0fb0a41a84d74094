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
