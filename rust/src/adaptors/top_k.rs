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
        if k >= row.count() {
            return;
        }
        let kth = row.kth_largest(k);
        row.keep_at_least(kth);
    }
}
