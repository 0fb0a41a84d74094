//! Fused adapt-and-sample: each row is adapted by its chain and sampled by inverse CDF over the
//! support in vocabulary order, with one uniform from Philox keyed by (seed, stream, step). No
//! adapted row is written: the chain only narrows an interval of values.

use crate::adaptors::Row;
use crate::batch::{for_each_row, per_row_u64, row_error, Chains, Logits};
use crate::error::Result;
use crate::kernels::{self, exp_nonpositive};
use crate::rng;

/// Entries per block of the inverse-CDF search: block sums are vectorised, then one block is
/// walked token by token.
const BLOCK: usize = 512;

/// One row's draw.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Draw {
    /// The token id.
    pub token: u32,
    /// log q(token): under the adapted, renormalised distribution.
    pub logp_adapted: f64,
    /// log p(token): under the raw row.
    pub logp_base: f64,
    /// Number of tokens in the adapted support.
    pub support_size: u32,
}

/// Sample one token per row. `streams` has one entry per row; `steps` one per row or one for all.
pub fn sample(logits: Logits, chains: Chains, seed: u64, streams: &[u64], steps: &[u64], out: &mut [Draw]) -> Result<()> {
    per_row_u64("streams", streams, logits.rows, false)?;
    per_row_u64("steps", steps, logits.rows, true)?;
    if out.len() != logits.rows {
        return Err(crate::error::Error::argument("out", "needs one entry per row"));
    }
    for_each_row(logits, out, 1, |i, row, out_i| {
        let step = if steps.len() == 1 { steps[0] } else { steps[i] };
        let u = rng::uniform(seed, streams[i], step);
        out_i[0] = sample_row(row, chains.get(i), u).map_err(|p| row_error(i, p))?;
        Ok(())
    })
}

/// Adapt one row and draw a token with the uniform `u` in [0, 1).
pub fn sample_row(
    row: &mut Row,
    chain: &crate::adaptors::Chain,
    u: f64,
) -> std::result::Result<Draw, crate::error::RowProblem> {
    let base_max = row.max();
    let base_log_sum = (row.sum_exp() as f64).ln();
    chain.narrow(row)?;
    let max = row.max();
    let support_size = row.count() as u32;
    let log_sum = (row.sum_exp() as f64).ln();
    let (lo, hi) = row.bounds();
    let (values, blocks) = row.values_and_blocks();
    let total = kernels::block_sums_exp_in(values, lo, hi, max, BLOCK, blocks);
    let target = u * total;
    let token = inverse_cdf(values, lo, hi, max, blocks, target);
    let value = values[token];
    let raw_value = row.raw_value(token);
    Ok(Draw {
        token: token as u32,
        logp_adapted: (value - max) as f64 - log_sum,
        logp_base: (raw_value - base_max) as f64 - base_log_sum,
        support_size,
    })
}

/// The first token whose cumulative weight exceeds `target`. Rounding can leave the walk short of
/// the target at the very end: then the last token with positive weight is taken.
fn inverse_cdf(values: &[f32], lo: f32, hi: f32, max: f32, blocks: &[f64], target: f64) -> usize {
    let mut before = 0.0f64;
    let mut last_positive = None;
    for (b, &mass) in blocks.iter().enumerate() {
        if mass > 0.0 {
            last_positive = Some(b);
        }
        if before + mass > target && mass > 0.0 {
            if let Some(t) = walk_block(values, lo, hi, max, b, before, target) {
                return t;
            }
        }
        before += mass;
    }
    let b = last_positive.expect("the support has positive mass");
    last_positive_in_block(values, lo, hi, max, b)
}

fn walk_block(values: &[f32], lo: f32, hi: f32, max: f32, b: usize, before: f64, target: f64) -> Option<usize> {
    let start = b * BLOCK;
    let end = (start + BLOCK).min(values.len());
    let mut acc = before;
    for (j, &v) in values[start..end].iter().enumerate() {
        if v >= lo && v <= hi {
            let e = exp_nonpositive(v - max) as f64;
            acc += e;
            if acc > target && e > 0.0 {
                return Some(start + j);
            }
        }
    }
    None
}

fn last_positive_in_block(values: &[f32], lo: f32, hi: f32, max: f32, b: usize) -> usize {
    let start = b * BLOCK;
    let end = (start + BLOCK).min(values.len());
    (start..end)
        .rev()
        .find(|&j| {
            let v = values[j];
            v >= lo && v <= hi && exp_nonpositive(v - max) > 0.0
        })
        .expect("a block with positive mass has a positive token")
}
