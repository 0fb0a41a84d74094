//! A chain of adaptors, applied in the written order; the empty chain is ancestral sampling.

use super::{Adaptor, Row};
use crate::error::{Error, Result, RowProblem};
use crate::kernels;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Chain {
    pub adaptors: Vec<Adaptor>,
}

impl Chain {
    pub fn new(adaptors: Vec<Adaptor>) -> Self {
        Self { adaptors }
    }

    /// The empty chain: no adaptor, sampling from the model's own distribution.
    pub fn ancestral() -> Self {
        Self::default()
    }

    /// Run every adaptor on the row.
    pub fn narrow(&self, row: &mut Row) -> std::result::Result<(), RowProblem> {
        for adaptor in &self.adaptors {
            adaptor.narrow(row)?;
        }
        Ok(())
    }

    /// The adapted row: the current values in the support, `-inf` outside.
    pub fn apply_into(&self, row: &mut Row, out: &mut [f32]) -> std::result::Result<(), RowProblem> {
        self.narrow(row)?;
        let (lo, hi) = row.bounds();
        kernels::write_masked(row.values(), lo, hi, out);
        Ok(())
    }

    /// Normalised log-probabilities of the adapted row (`-inf` outside the support).
    pub fn log_probs_into(&self, row: &mut Row, out: &mut [f32]) -> std::result::Result<(), RowProblem> {
        self.narrow(row)?;
        let max = row.max();
        let log_sum = row.sum_exp().ln();
        let (lo, hi) = row.bounds();
        kernels::write_log_probs(row.values(), lo, hi, max, log_sum, out);
        Ok(())
    }
}

/// Check that a row is a distribution: not empty, no NaN, no `+inf`, at least one finite value.
/// `index` is the row's number for the message.
pub fn validate_row(row: &[f32], index: usize) -> Result<()> {
    let problem = if row.is_empty() {
        Some(RowProblem::Empty)
    } else {
        let (max, invalid) = kernels::max_and_invalid(row);
        if invalid {
            let col = row.iter().position(|v| !(*v < f32::INFINITY)).unwrap_or(0);
            Some(if row[col].is_nan() {
                RowProblem::NaN(col)
            } else {
                RowProblem::PosInf(col)
            })
        } else if max == f32::NEG_INFINITY {
            Some(RowProblem::AllMasked)
        } else {
            None
        }
    };
    match problem {
        Some(problem) => Err(Error::Row {
            name: "logits",
            row: index,
            problem,
        }),
        None => Ok(()),
    }
}
