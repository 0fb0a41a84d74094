//! Row-parallel drivers over a `[rows, vocab]` block of logits: argument checks, one scratch per
//! worker, and the first failing row (by index, so the error never depends on scheduling).

use crate::adaptors::{validate_row, Chain, Row, Scratch};
use crate::error::{Error, Result, RowProblem};
use crate::parallel;
use rayon::prelude::*;

/// A row-major block of logits.
#[derive(Clone, Copy)]
pub struct Logits<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub vocab: usize,
}

impl<'a> Logits<'a> {
    pub fn new(data: &'a [f32], rows: usize, vocab: usize) -> Result<Self> {
        if vocab == 0 {
            return Err(Error::argument("logits", "has a vocabulary of size 0; V must be >= 1"));
        }
        if rows == 0 {
            return Err(Error::argument("logits", "has no rows; B must be >= 1"));
        }
        if data.len() != rows * vocab {
            return Err(Error::argument(
                "logits",
                format!("has {} values, expected rows x vocab = {rows} x {vocab}", data.len()),
            ));
        }
        Ok(Self { data, rows, vocab })
    }

    pub fn row(&self, i: usize) -> &'a [f32] {
        &self.data[i * self.vocab..(i + 1) * self.vocab]
    }
}

/// The chain for each row: one for all rows, or one per row.
#[derive(Clone, Copy)]
pub struct Chains<'a> {
    chains: &'a [&'a Chain],
}

impl<'a> Chains<'a> {
    pub fn new(chains: &'a [&'a Chain], rows: usize) -> Result<Self> {
        if chains.len() != 1 && chains.len() != rows {
            return Err(Error::argument(
                "chains",
                format!("has {} chains; give one chain, or one per row ({rows})", chains.len()),
            ));
        }
        Ok(Self { chains })
    }

    pub fn get(&self, row: usize) -> &'a Chain {
        if self.chains.len() == 1 {
            self.chains[0]
        } else {
            self.chains[row]
        }
    }
}

/// One `u64` per row, or one for all rows.
pub fn per_row_u64(name: &'static str, values: &[u64], rows: usize, allow_broadcast: bool) -> Result<()> {
    if values.len() == rows || (allow_broadcast && values.len() == 1) {
        Ok(())
    } else if allow_broadcast {
        Err(Error::argument(name, format!("has {} entries; give one, or one per row ({rows})", values.len())))
    } else {
        Err(Error::argument(name, format!("has {} entries; give one per row ({rows})", values.len())))
    }
}

pub(crate) fn row_error(row: usize, problem: RowProblem) -> Error {
    Error::Row {
        name: "logits",
        row,
        problem,
    }
}

/// Run `work(i, row, out_i)` for every row in parallel, where `out` is split into one chunk of
/// `out_width` per row. Rows are validated first; the error of the lowest failing row is returned.
pub fn for_each_row<T: Send>(
    logits: Logits,
    out: &mut [T],
    out_width: usize,
    work: impl Fn(usize, &mut Row, &mut [T]) -> Result<()> + Sync,
) -> Result<()> {
    debug_assert_eq!(out.len(), logits.rows * out_width);
    let pool = parallel::pool();
    let first_error = pool.install(|| {
        out.par_chunks_mut(out_width.max(1))
            .enumerate()
            .map_init(Scratch::new, |scratch, (i, out_i)| {
                let raw = logits.row(i);
                let result = validate_row(raw, i).and_then(|_| {
                    let mut row = Row::new(raw, scratch);
                    work(i, &mut row, out_i)
                });
                result.err().map(|e| (i, e))
            })
            .flatten()
            .min_by_key(|(i, _)| *i)
    });
    match first_error {
        Some((_, e)) => Err(e),
        None => Ok(()),
    }
}

/// `chain.apply` for every row: the adapted logits, `-inf` outside the support.
pub fn apply(logits: Logits, chains: Chains, out: &mut [f32]) -> Result<()> {
    check_out_len(out.len(), logits)?;
    for_each_row(logits, out, logits.vocab, |i, row, out_i| {
        chains.get(i).apply_into(row, out_i).map_err(|p| row_error(i, p))
    })
}

/// `chain.log_probs` for every row: normalised adapted log-probabilities.
pub fn log_probs(logits: Logits, chains: Chains, out: &mut [f32]) -> Result<()> {
    check_out_len(out.len(), logits)?;
    for_each_row(logits, out, logits.vocab, |i, row, out_i| {
        chains.get(i).log_probs_into(row, out_i).map_err(|p| row_error(i, p))
    })
}

fn check_out_len(len: usize, logits: Logits) -> Result<()> {
    if len != logits.rows * logits.vocab {
        return Err(Error::argument("out", format!("has {len} values, expected {}", logits.rows * logits.vocab)));
    }
    Ok(())
}
