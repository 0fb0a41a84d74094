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
