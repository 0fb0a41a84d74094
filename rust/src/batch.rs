//! Row-parallel drivers over a `[rows, vocab]` block of logits: argument checks, one scratch per
//! worker, and the first failing row (by index, so the error never depends on scheduling).

use crate::adaptors::{validate_row, Chain, Row, Scratch};
use crate::error::{Error, Result, RowProblem};
use crate::parallel;
use rayon::prelude::*;
use std::cell::RefCell;

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
            return Err(Error::argument(
                "logits",
                "has a vocabulary of size 0; V must be >= 1",
            ));
        }
        if rows == 0 {
            return Err(Error::argument("logits", "has no rows; B must be >= 1"));
        }
        if data.len() != rows * vocab {
            return Err(Error::argument(
                "logits",
                format!(
                    "has {} values, expected rows x vocab = {rows} x {vocab}",
                    data.len()
                ),
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
                format!(
                    "has {} entries; give one chain, or one per row ({rows})",
                    chains.len()
                ),
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
pub fn per_row_u64(
    name: &'static str,
    values: &[u64],
    rows: usize,
    allow_broadcast: bool,
) -> Result<()> {
    if values.len() == rows || (allow_broadcast && values.len() == 1) {
        Ok(())
    } else if allow_broadcast {
        Err(Error::argument(
            name,
            format!(
                "has {} entries; give one, or one per row ({rows})",
                values.len()
            ),
        ))
    } else {
        Err(Error::argument(
            name,
            format!("has {} entries; give one per row ({rows})", values.len()),
        ))
    }
}

pub(crate) fn row_error(row: usize, problem: RowProblem) -> Error {
    Error::Row {
        name: "logits",
        row,
        problem,
    }
}

thread_local! {
    /// Each worker's buffers, kept across rows and calls: fresh ones per row would cost
    /// allocation and page faults comparable to the work itself.
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::new());
}

/// The fewest logits one parallel task handles.
const MIN_LOGITS_PER_TASK: usize = 1 << 16;

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
    // Enough rows per task that a task's work (about a microsecond per 3,000 logits) outweighs
    // waking a worker: small vocabularies are not spread one row per thread.
    let rows_per_task = MIN_LOGITS_PER_TASK.div_ceil(logits.vocab.max(1)).max(1);
    let first_error = pool.install(|| {
        out.par_chunks_mut(out_width.max(1))
            .with_min_len(rows_per_task)
            .enumerate()
            .filter_map(|(i, out_i)| {
                SCRATCH.with(|cell| {
                    let scratch = &mut cell.borrow_mut();
                    let raw = logits.row(i);
                    let result = validate_row(raw, i).and_then(|max| {
                        let mut row = Row::with_max(raw, scratch, max);
                        work(i, &mut row, out_i)
                    });
                    result.err().map(|e| (i, e))
                })
            })
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
        chains
            .get(i)
            .apply_into(row, out_i)
            .map_err(|p| row_error(i, p))
    })
}

/// `chain.log_probs` for every row: normalised adapted log-probabilities.
pub fn log_probs(logits: Logits, chains: Chains, out: &mut [f32]) -> Result<()> {
    check_out_len(out.len(), logits)?;
    for_each_row(logits, out, logits.vocab, |i, row, out_i| {
        chains
            .get(i)
            .log_probs_into(row, out_i)
            .map_err(|p| row_error(i, p))
    })
}

fn check_out_len(len: usize, logits: Logits) -> Result<()> {
    if len != logits.rows * logits.vocab {
        return Err(Error::argument(
            "out",
            format!("has {len} values, expected {}", logits.rows * logits.vocab),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{apply as apply_one, chain, random_row, Rng};

    fn block(rows: &[Vec<f32>]) -> Vec<f32> {
        rows.iter().flatten().copied().collect()
    }

    #[test]
    fn apply_and_log_probs_match_the_chain_row_by_row() {
        let mut rng = Rng::new(3);
        let v = 257;
        let rows: Vec<Vec<f32>> = (0..13).map(|_| random_row(&mut rng, v)).collect();
        let data = block(&rows);
        let logits = Logits::new(&data, rows.len(), v).unwrap();
        let shared = chain(&[("temperature", 0.8), ("top_p", 0.9)]);
        let others: Vec<Chain> = (0..rows.len())
            .map(|i| match i % 3 {
                0 => chain(&[("top_k", 5.0)]),
                1 => chain(&[("min_p", 0.1), ("temperature", 1.5)]),
                _ => Chain::ancestral(),
            })
            .collect();
        let other_refs: Vec<&Chain> = others.iter().collect();
        for (chains, per_row) in [(vec![&shared], false), (other_refs, true)] {
            let chains_arg = Chains::new(&chains, rows.len()).unwrap();
            let mut out = vec![0.0f32; data.len()];
            apply(logits, chains_arg, &mut out).unwrap();
            let mut lp = vec![0.0f32; data.len()];
            log_probs(logits, chains_arg, &mut lp).unwrap();
            for (i, z) in rows.iter().enumerate() {
                let c = if per_row { chains[i] } else { chains[0] };
                assert_eq!(out[i * v..(i + 1) * v], apply_one(c, z)[..], "row {i}");
                let mut scratch = Scratch::new();
                let mut row = Row::new(z, &mut scratch);
                let mut want = vec![0.0f32; v];
                c.log_probs_into(&mut row, &mut want).unwrap();
                assert_eq!(lp[i * v..(i + 1) * v], want[..], "row {i}");
            }
        }
    }

    #[test]
    fn invalid_rows_are_errors_that_name_the_row() {
        let v = 4;
        let good = vec![0.0f32, 1.0, f32::NEG_INFINITY, -2.0];
        let cases: [(Vec<f32>, RowProblem, &str); 3] = [
            (
                vec![0.0, f32::NAN, 1.0, 2.0],
                RowProblem::NaN(1),
                "NaN at column 1",
            ),
            (
                vec![0.0, 1.0, 2.0, f32::INFINITY],
                RowProblem::PosInf(3),
                "+inf at column 3",
            ),
            (
                vec![f32::NEG_INFINITY; 4],
                RowProblem::AllMasked,
                "all -inf",
            ),
        ];
        let c = chain(&[("top_p", 0.9)]);
        for (bad, problem, text) in cases {
            let data = block(&[good.clone(), good.clone(), bad, good.clone()]);
            let logits = Logits::new(&data, 4, v).unwrap();
            let mut out = vec![0.0f32; data.len()];
            let err = apply(logits, Chains::new(&[&c], 4).unwrap(), &mut out).unwrap_err();
            assert_eq!(
                err,
                Error::Row {
                    name: "logits",
                    row: 2,
                    problem
                }
            );
            let msg = err.to_string();
            assert!(
                msg.contains("`logits` row 2") && msg.contains(text),
                "{msg}"
            );
            let err = log_probs(logits, Chains::new(&[&c], 4).unwrap(), &mut out).unwrap_err();
            assert_eq!(
                err,
                Error::Row {
                    name: "logits",
                    row: 2,
                    problem
                }
            );
        }
        // several bad rows: the lowest is reported, whatever the scheduling
        let mut rows = vec![good.clone(); 64];
        for i in [9, 17, 40, 63] {
            rows[i][0] = f32::NAN;
        }
        let data = block(&rows);
        let mut out = vec![0.0f32; data.len()];
        let err = apply(
            Logits::new(&data, 64, v).unwrap(),
            Chains::new(&[&c], 64).unwrap(),
            &mut out,
        )
        .unwrap_err();
        assert_eq!(
            err,
            Error::Row {
                name: "logits",
                row: 9,
                problem: RowProblem::NaN(0)
            }
        );
        // a row the temperature overflows
        let data = [f32::MAX / 2.0, 0.0, 1.0, 2.0, 3.0, 4.0];
        let hot = chain(&[("temperature", 0.1)]);
        let mut out = vec![0.0f32; 6];
        let err = apply(
            Logits::new(&data[..], 2, 3).unwrap(),
            Chains::new(&[&hot], 2).unwrap(),
            &mut out,
        )
        .unwrap_err();
        assert_eq!(
            err,
            Error::Row {
                name: "logits",
                row: 0,
                problem: RowProblem::TemperatureOverflow
            }
        );
    }

    #[test]
    fn empty_vocabularies_and_mismatched_shapes_are_argument_errors() {
        // V = 0 is refused before any row is read; an empty row on its own is a row problem
        let err = Logits::new(&[], 3, 0).err().unwrap();
        assert!(
            matches!(err, Error::Argument { name: "logits", .. }),
            "{err}"
        );
        assert!(err.to_string().contains("V must be >= 1"), "{err}");
        assert_eq!(
            validate_row(&[], 5).unwrap_err().to_string(),
            "`logits` row 5 is empty (V = 0); a row needs at least one finite logit"
        );
        assert!(Logits::new(&[], 0, 4)
            .err()
            .unwrap()
            .to_string()
            .contains("B must be >= 1"));
        assert!(Logits::new(&[0.0; 7], 2, 4)
            .err()
            .unwrap()
            .to_string()
            .contains("2 x 4"));
        let data = [0.0f32; 8];
        let logits = Logits::new(&data, 2, 4).unwrap();
        let c = Chain::ancestral();
        let mut short = vec![0.0f32; 7];
        let err = apply(logits, Chains::new(&[&c], 2).unwrap(), &mut short).unwrap_err();
        assert!(matches!(err, Error::Argument { name: "out", .. }), "{err}");
        let err = Chains::new(&[&c, &c, &c], 2).err().unwrap();
        assert!(
            matches!(err, Error::Argument { name: "chains", .. }),
            "{err}"
        );
        assert!(per_row_u64("steps", &[1], 3, true).is_ok());
        assert!(per_row_u64("streams", &[1], 3, false)
            .unwrap_err()
            .to_string()
            .contains("`streams`"));
    }
}
