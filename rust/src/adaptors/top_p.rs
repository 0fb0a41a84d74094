//! Top-p, nucleus sampling (Holtzman et al. 2020): keep the most probable tokens whose mass
//! reaches `p`. As in transformers, sorted ascending, a token is removed when the cumulative mass up
//! to and including it is `<= 1 - p`; the token that crosses is kept. A group of exactly equal
//! values that straddles the cut is kept whole (transformers keeps a part of it chosen by torch's
//! sort order, which is not stable), so a token's fate never depends on its index.
//!
//! The cut is found without sorting: a weighted quickselect over the candidates.

use super::{check_range, protected_from, Row};
use crate::error::Result;
use crate::kernels::exp_nonpositive;

#[derive(Debug, Clone, PartialEq)]
pub struct TopP {
    pub p: f64,
    pub min_keep: usize,
}

impl TopP {
    /// `p` in (0, 1]; 1 is a no-op.
    pub fn new(p: f64, min_keep: usize) -> Result<Self> {
        let p = check_range("top_p", p, "in (0, 1]", |p| p > 0.0 && p <= 1.0)?;
        Ok(Self { p, min_keep })
    }

    pub fn narrow(&self, row: &mut Row) {
        if self.p >= 1.0 {
            return;
        }
        let max = row.max();
        let sum = row.sum_exp();
        // transformers removes when cum <= (1 - p), the threshold cast to float32: a token is kept
        // iff the mass strictly above it is < sum * (1 - threshold).
        let removed_mass = (1.0 - self.p) as f32;
        let target = sum as f64 * (1.0 - removed_mass as f64);
        let cut = nucleus_cut(row, max, target);
        let protected = protected_from(row, self.min_keep);
        if let Some(cut) = cut {
            row.keep_at_least(cut.min(protected));
        }
    }
}

/// The smallest value whose strictly-greater mass is below `target` (unnormalised, relative to
/// `exp(v - max)`), or `None` when every token qualifies.
fn nucleus_cut(row: &mut Row, max: f32, target: f64) -> Option<f32> {
    // Keys are negated values, so "smallest key whose cumulative weight reaches the target" is
    // the largest-first walk of the nucleus.
    let pairs = row.gather_pairs(|v| (-v, exp_nonpositive(v - max)));
    super::select::smallest_key_reaching(pairs, target).map(|key| -key)
}
