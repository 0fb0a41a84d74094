//! Reductions over a ragged array given by offsets (token -> string): segment s holds
//! `values[offsets[s]..offsets[s + 1]]`.
//!
//! Values may be ±inf (a token outside an adaptor's support has log-probability -inf, and so has
//! its string); NaN is rejected.

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::parallel;

/// Offsets must start at 0, never decrease, and end at `n_values`.
pub fn check_offsets(offsets: &[u64], n_values: usize) -> Result<()> {
    let Some(&first) = offsets.first() else {
        return Err(Error::argument(
            "offsets",
            "is empty; it needs n_segments + 1 entries, starting at 0",
        ));
    };
    if first != 0 {
        return Err(Error::argument(
            "offsets",
            format!("must start at 0, got {first}"),
        ));
    }
    if let Some(i) = offsets.windows(2).position(|w| w[1] < w[0]) {
        return Err(Error::argument(
            "offsets",
            format!(
                "must not decrease, but offsets[{}] = {} < offsets[{i}] = {}",
                i + 1,
                offsets[i + 1],
                offsets[i]
            ),
        ));
    }
    let last = offsets[offsets.len() - 1];
    if last != n_values as u64 {
        return Err(Error::argument(
            "offsets",
            format!("must end at len(values) = {n_values}, got {last}"),
        ));
    }
    Ok(())
}

fn check_values(values: &[f64]) -> Result<()> {
    match values.iter().position(|v| v.is_nan()) {
        None => Ok(()),
        Some(i) => Err(Error::argument(
            "values",
            format!("has NaN at index {i}; values must be numbers (±inf allowed)"),
        )),
    }
}

/// Segments per parallel task.
const SEGMENTS_PER_TASK: usize = 4096;

/// The sum of each segment (0 for an empty one).
pub fn segment_sum(values: &[f64], offsets: &[u64]) -> Result<Vec<f64>> {
    check_values(values)?;
    check_offsets(offsets, values.len())?;
    let mut out = vec![0.0; offsets.len() - 1];
    parallel::pool().install(|| {
        out.par_chunks_mut(SEGMENTS_PER_TASK)
            .enumerate()
            .for_each(|(task, sums)| {
                let first = task * SEGMENTS_PER_TASK;
                for (k, s) in sums.iter_mut().enumerate() {
                    let (a, b) = (offsets[first + k] as usize, offsets[first + k + 1] as usize);
                    // From +0.0: std's empty float sum is -0.0.
                    *s = values[a..b].iter().fold(0.0, |acc, v| acc + v);
                }
            })
    });
    Ok(out)
}

/// The mean of each segment (NaN for an empty one).
pub fn segment_mean(values: &[f64], offsets: &[u64]) -> Result<Vec<f64>> {
    let mut sums = segment_sum(values, offsets)?;
    for (s, w) in sums.iter_mut().zip(offsets.windows(2)) {
        *s /= (w[1] - w[0]) as f64;
    }
    Ok(sums)
}

/// The number of values in each segment.
pub fn segment_count(offsets: &[u64], n_values: usize) -> Result<Vec<u64>> {
    check_offsets(offsets, n_values)?;
    Ok(offsets.windows(2).map(|w| w[1] - w[0]).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_means_and_counts() {
        let v = [1.0, 2.0, 3.0, 4.0, f64::NEG_INFINITY];
        let o = [0, 2, 2, 4, 5];
        assert_eq!(
            segment_sum(&v, &o).unwrap(),
            [3.0, 0.0, 7.0, f64::NEG_INFINITY]
        );
        let m = segment_mean(&v, &o).unwrap();
        assert_eq!(m[0], 1.5);
        assert!(m[1].is_nan());
        assert_eq!(segment_count(&o, 5).unwrap(), [2, 0, 2, 1]);
    }

    #[test]
    fn many_segments_in_parallel() {
        let v: Vec<f64> = (0..30_000).map(|i| i as f64).collect();
        let o: Vec<u64> = (0..=10_000).map(|s| 3 * s).collect();
        let sums = segment_sum(&v, &o).unwrap();
        for (s, sum) in sums.iter().enumerate() {
            assert_eq!(*sum, (9 * s + 3) as f64);
        }
    }

    #[test]
    fn bad_offsets_are_named() {
        let v = [1.0, 2.0];
        let msg = |o: &[u64]| segment_sum(&v, o).unwrap_err().to_string();
        assert_eq!(msg(&[1, 2]), "`offsets` must start at 0, got 1");
        assert_eq!(
            msg(&[0, 2, 1]),
            "`offsets` must not decrease, but offsets[2] = 1 < offsets[1] = 2"
        );
        assert_eq!(msg(&[0, 1]), "`offsets` must end at len(values) = 2, got 1");
        assert!(msg(&[]).starts_with("`offsets` is empty"));
        let e = segment_sum(&[f64::NAN], &[0, 1]).unwrap_err().to_string();
        assert!(e.starts_with("`values` has NaN at index 0"));
    }
}
