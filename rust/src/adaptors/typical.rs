//! Locally typical sampling (Meister et al. 2023): with `H` the entropy and
//! `s = |-log p - H|`, sort by `s` ascending, accumulate `p`, and keep the tokens up to and
//! including the first whose cumulative mass reaches `mass`. The `min_keep` most *typical* tokens
//! (smallest `s`, not the most probable) are always kept. The cut compares by value, so ties at
//! it are kept whole. Typical can remove the most probable tokens: the support is a band of values.

use super::{check_range, Row};
use crate::error::Result;
use crate::kernels::exp_nonpositive;

#[derive(Debug, Clone, PartialEq)]
pub struct Typical {
    pub mass: f64,
    pub min_keep: usize,
}

impl Typical {
    /// `mass` in (0, 1).
    pub fn new(mass: f64, min_keep: usize) -> Result<Self> {
        let mass = check_range("typical", mass, "in (0, 1)", |m| m > 0.0 && m < 1.0)?;
        Ok(Self { mass, min_keep })
    }

    pub fn narrow(&self, row: &mut Row) {
        let max = row.max();
        let (sum, entropy) = row.sum_exp_and_entropy();
        let log_sum = sum.ln();
        // s as transformers computes it: |-(log_softmax) - H|
        let surprise_gap = move |v: f32| (-((v - max) - log_sum) - entropy).abs();
        let target = sum as f64 * (self.mass as f32) as f64;
        let pairs = row.gather_pairs(|v| (surprise_gap(v), exp_nonpositive(v - max)));
        let cut = super::select::smallest_key_reaching(pairs, target).unwrap_or(f32::INFINITY);
        let protected = if self.min_keep == 1 {
            // the most typical token's gap: the smallest key
            pairs.iter().map(|&(s, _)| s).fold(f32::INFINITY, f32::min)
        } else if self.min_keep >= pairs.len() {
            f32::INFINITY
        } else {
            let mut gaps: Vec<f32> = pairs.iter().map(|&(s, _)| -s).collect();
            -super::select::kth_largest(&mut gaps, self.min_keep)
        };
        let cut = cut.max(protected);
        if cut == f32::INFINITY {
            return;
        }
        // the kept set {s <= cut} is a band of values: find its ends
        let (lo, hi) = row.bounds();
        let (mut band_lo, mut band_hi) = (f32::INFINITY, f32::NEG_INFINITY);
        for &v in row.values() {
            if v >= lo && v <= hi && surprise_gap(v) <= cut {
                band_lo = band_lo.min(v);
                band_hi = band_hi.max(v);
            }
        }
        row.keep_at_least(band_lo);
        row.keep_at_most(band_hi);
    }
}
