//! Fused teacher-forced scoring, the counterpart of sampling: for each row (a position) and its
//! target token, the target's log-probability under the raw row and under the adapted row, without
//! writing the adapted row.

use crate::adaptors::{Chain, Row};
use crate::batch::{for_each_row, row_error, Chains, Logits};
use crate::error::{Error, Result, RowProblem};

/// One position's scores.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct TokenScore {
    /// log p(target) under the raw row.
    pub logp_base: f64,
    /// log q(target) under the adapted row; `-inf` outside the support.
    pub logp_adapted: f64,
    /// Whether the target is in the adapted support.
    pub in_support: bool,
}

/// Score `targets[i]` under row `i` of `logits`, raw and adapted by its chain.
pub fn score_tokens(logits: Logits, chains: Chains, targets: &[i64], out: &mut [TokenScore]) -> Result<()> {
    if targets.len() != logits.rows {
        return Err(Error::argument(
            "targets",
            format!("has {} entries; give one per row of `logits` ({})", targets.len(), logits.rows),
        ));
    }
    if let Some((i, &t)) = targets.iter().enumerate().find(|(_, &t)| t < 0 || t as u64 >= logits.vocab as u64) {
        return Err(Error::argument(
            "targets",
            format!("[{i}] = {t} is outside [0, {}) (the vocabulary of `logits`)", logits.vocab),
        ));
    }
    if out.len() != logits.rows {
        return Err(Error::argument("out", "needs one entry per row"));
    }
    for_each_row(logits, out, 1, |i, row, out_i| {
        out_i[0] = score_row(row, chains.get(i), targets[i] as usize).map_err(|p| row_error(i, p))?;
        Ok(())
    })
}

/// Adapt one row and score `target` under the raw and the adapted distribution.
pub fn score_row(row: &mut Row, chain: &Chain, target: usize) -> std::result::Result<TokenScore, RowProblem> {
    let base_max = row.max();
    let base_log_sum = (row.sum_exp() as f64).ln();
    let raw_value = row.raw_value(target);
    let logp_base = if raw_value == f32::NEG_INFINITY {
        f64::NEG_INFINITY
    } else {
        (raw_value - base_max) as f64 - base_log_sum
    };
    chain.narrow(row)?;
    let value = row.values()[target];
    let in_support = row.contains(value);
    let logp_adapted = if in_support {
        let max = row.max();
        (value - max) as f64 - (row.sum_exp() as f64).ln()
    } else {
        f64::NEG_INFINITY
    };
    Ok(TokenScore {
        logp_base,
        logp_adapted,
        in_support,
    })
}
