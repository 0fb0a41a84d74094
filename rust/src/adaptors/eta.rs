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
