//! The paper's independent Metropolis–Hastings (IMH) correction over a finite corpus: proposals
//! are drawn uniformly with replacement from the N strings, and a proposal j is accepted from state
//! i with probability min(1, exp(w_j - w_i)), w = log_target - log_proposal. The chain's long-run
//! frequency of item i is w_i / Σ w (in linear weights). Also the chain's diagnostics: an
//! effective sample size and Cramér's V of its state-transition table (the paper's check).

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::parallel;
use crate::stats::moments::{check_finite, check_len, check_same_len};
use crate::stats::stream::{Purpose, Stream};

#[derive(Debug, Clone)]
pub struct Chain {
    /// The state (an index into the N inputs) after each step.
    pub indices: Vec<u32>,
    pub acceptance_rate: f64,
    /// Effective sample size of the log importance weight along the chain.
    pub ess: f64,
    /// Cramér's V between consecutive states (0: no lag-1 dependence).
    pub cramers_v: f64,
}

pub fn imh(log_target: &[f64], log_proposal: &[f64], n_steps: usize, seed: u64) -> Result<Chain> {
    check_len("log_target", log_target, 1)?;
    check_same_len(
        "log_proposal",
        log_proposal.len(),
        "log_target",
        log_target.len(),
    )?;
    check_finite("log_target", log_target)?;
    check_finite("log_proposal", log_proposal)?;
    if n_steps < 1 {
        return Err(Error::parameter("n_steps", n_steps, "an integer >= 1"));
    }
    if log_target.len() > u32::MAX as usize {
        return Err(Error::argument(
            "log_target",
            "has more than 2^32 - 1 values",
        ));
    }
    let weights: Vec<f64> = log_target
        .iter()
        .zip(log_proposal)
        .map(|(t, p)| t - p)
        .collect();
    if let Some(i) = weights.iter().position(|w| !w.is_finite()) {
        return Err(Error::argument(
            "log_target",
            format!("minus `log_proposal` overflows at index {i}"),
        ));
    }
    let n = weights.len() as u64;
    let mut stream = Stream::new(seed, Purpose::Imh, 0);
    let mut state = stream.below(n) as usize;
    let mut accepted = 0usize;
    let mut indices = Vec::with_capacity(n_steps);
    for _ in 0..n_steps {
        let proposal = stream.below(n) as usize;
        let u = stream.uniform();
        let log_ratio = weights[proposal] - weights[state];
        // In log space, so no ratio overflows; u = 0 has ln u = -inf and always accepts.
        if log_ratio >= 0.0 || u.ln() < log_ratio {
            state = proposal;
            accepted += 1;
        }
        indices.push(state as u32);
    }
    let trace: Vec<f64> = indices.iter().map(|&i| weights[i as usize]).collect();
    let ess = effective_sample_size(&trace).unwrap_or((1 + accepted).min(n_steps) as f64);
    let cramers_v = if n_steps >= 2 {
        cramers_v(&indices[..n_steps - 1], &indices[1..])
    } else {
        f64::NAN
    };
    Ok(Chain {
        indices,
        acceptance_rate: accepted as f64 / n_steps as f64,
        ess,
        cramers_v,
    })
}

/// Lags computed per parallel batch while looking for the truncation point.
const LAG_BATCH: usize = 32;
/// Past this many lags (a sticky chain, e.g. acceptance 0.1%), the remaining autocovariances come
/// from one FFT (O(n log n)) instead of lag by lag (O(n) each, O(n^2) in the worst case).
const FFT_AFTER: usize = 64;

/// Every autocovariance `(1/n) Σ_t d_t d_{t+k}`, k = 0 .. n - 1, through a zero-padded FFT.
fn autocovariances_fft(d: &[f64]) -> Vec<f64> {
    use rustfft::{num_complex::Complex, FftPlanner};
    let n = d.len();
    let size = (2 * n).next_power_of_two();
    let mut buffer: Vec<Complex<f64>> = d
        .iter()
        .map(|&v| Complex::new(v, 0.0))
        .chain(std::iter::repeat(Complex::new(0.0, 0.0)))
        .take(size)
        .collect();
    let mut planner = FftPlanner::new();
    planner.plan_fft_forward(size).process(&mut buffer);
    for z in buffer.iter_mut() {
        *z = Complex::new(z.norm_sqr(), 0.0);
    }
    planner.plan_fft_inverse(size).process(&mut buffer);
    let scale = 1.0 / (size as f64 * n as f64);
    buffer[..n].iter().map(|z| z.re * scale).collect()
}

/// ESS = n / τ with Geyer's (1992) initial monotone sequence estimator of the integrated
/// autocorrelation time τ. `None` when the trace is constant (no variance to correlate).
pub fn effective_sample_size(trace: &[f64]) -> Option<f64> {
    let n = trace.len();
    if n < 2 {
        return None;
    }
    let m = trace.iter().sum::<f64>() / n as f64;
    let d: Vec<f64> = trace.iter().map(|v| v - m).collect();
    let autocov = |k: usize| {
        d[..n - k]
            .iter()
            .zip(&d[k..])
            .map(|(a, b)| a * b)
            .sum::<f64>()
            / n as f64
    };
    let gamma0 = autocov(0);
    if gamma0 <= 0.0 {
        return None;
    }
    let mut gammas = vec![gamma0];
    let mut sum_pairs = 0.0;
    let mut previous_pair = f64::INFINITY;
    let mut pair_index = 0;
    loop {
        let (a, b) = (2 * pair_index, 2 * pair_index + 1);
        if b >= n {
            break;
        }
        if b >= gammas.len() && gammas.len() >= FFT_AFTER {
            gammas = autocovariances_fft(&d);
            gammas[0] = gamma0; // the direct sum, as the lags before the switch
        }
        if b >= gammas.len() {
            let start = gammas.len();
            let end = (start + LAG_BATCH).min(n);
            let batch: Vec<f64> =
                parallel::pool().install(|| (start..end).into_par_iter().map(autocov).collect());
            gammas.extend(batch);
        }
        let pair = gammas[a] + gammas[b];
        if pair <= 0.0 {
            break;
        }
        // Monotone: a pair never exceeds the one before it.
        let pair = pair.min(previous_pair);
        sum_pairs += pair;
        previous_pair = pair;
        pair_index += 1;
    }
    let tau = (2.0 * sum_pairs - gamma0) / gamma0;
    Some(n as f64 / tau.max(1.0 / n as f64))
}

/// Cramér's V of the contingency table of paired categories (no continuity correction, as
/// `scipy.stats.contingency.association(method="cramer")`), computed on the sparse table: only
/// the observed categories and cells. NaN when either side has a single category.
pub fn cramers_v(a: &[u32], b: &[u32]) -> f64 {
    let n = a.len().min(b.len());
    if n == 0 {
        return f64::NAN;
    }
    let mut cells: Vec<u64> = a[..n]
        .iter()
        .zip(&b[..n])
        .map(|(&i, &j)| (i as u64) << 32 | j as u64)
        .collect();
    crate::stats::rank::sort_keys(&mut cells);
    let size = a[..n]
        .iter()
        .chain(&b[..n])
        .max()
        .map_or(0, |&m| m as usize + 1);
    let (mut rows, mut cols) = (vec![0u64; size], vec![0u64; size]);
    for (&i, &j) in a[..n].iter().zip(&b[..n]) {
        rows[i as usize] += 1;
        cols[j as usize] += 1;
    }
    let mut sum = 0.0;
    crate::stats::rank::for_each_tie_run(&cells, |s, e| {
        let (i, j) = ((cells[s] >> 32) as usize, cells[s] as u32 as usize);
        let o = (e - s) as f64;
        sum += o * o / (rows[i] as f64 * cols[j] as f64);
    });
    let r = rows.iter().filter(|&&c| c > 0).count();
    let c = cols.iter().filter(|&&c| c > 0).count();
    let k = r.min(c);
    if k < 2 {
        return f64::NAN;
    }
    let phi2 = (sum - 1.0).max(0.0);
    (phi2 / (k - 1) as f64).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_run_frequencies_follow_the_weights() {
        // w = (1, 2, 3, 4) in linear scale: frequencies 0.1, 0.2, 0.3, 0.4.
        let target: Vec<f64> = [1.0f64, 2.0, 3.0, 4.0].iter().map(|w| w.ln()).collect();
        let proposal = vec![0.0; 4];
        let chain = imh(&target, &proposal, 400_000, 1).unwrap();
        let mut counts = [0usize; 4];
        for &i in &chain.indices {
            counts[i as usize] += 1;
        }
        for (i, &c) in counts.iter().enumerate() {
            let f = c as f64 / 400_000.0;
            assert!((f - (i + 1) as f64 / 10.0).abs() < 0.01, "{counts:?}");
        }
        assert!(chain.acceptance_rate > 0.3 && chain.acceptance_rate < 0.95);
        assert!(chain.ess > 1000.0 && chain.ess < 400_000.0, "{}", chain.ess);
    }

    #[test]
    fn equal_weights_accept_everything() {
        let chain = imh(&[0.5; 10], &[0.5; 10], 1000, 3).unwrap();
        assert_eq!(chain.acceptance_rate, 1.0);
        assert_eq!(chain.ess, 1000.0);
        assert!(chain.cramers_v < 0.5);
    }

    #[test]
    fn huge_log_ratios_do_not_overflow() {
        let chain = imh(&[0.0, 1e6, -1e6], &[0.0; 3], 100, 0).unwrap();
        assert_eq!(*chain.indices.last().unwrap(), 1);
        let e = imh(&[0.0, 1.0], &[0.0], 10, 0).unwrap_err().to_string();
        assert!(e.starts_with("`log_proposal` has 1 values"), "{e}");
        let e = imh(&[0.0, f64::NAN], &[0.0; 2], 10, 0)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("`log_target` has NaN at index 1"), "{e}");
        assert!(imh(&[0.0], &[0.0], 0, 0).is_err());
    }

    #[test]
    fn cramers_v_of_identical_and_independent_sequences() {
        let a: Vec<u32> = (0..1000).map(|i| i % 5).collect();
        assert!((cramers_v(&a, &a) - 1.0).abs() < 1e-12);
        let b: Vec<u32> = (0..1000).map(|i| (i / 5) % 5).collect();
        // V is a square root, so rounding of order 1e-16 in phi^2 shows as 1e-8.
        assert!(cramers_v(&a, &b) < 1e-6);
        assert!(cramers_v(&[1, 1, 1], &[0, 1, 2]).is_nan());
    }

    #[test]
    fn ess_of_an_ar1_trace_is_close_to_theory() {
        // AR(1) with rho = 0.5: tau = (1 + rho) / (1 - rho) = 3.
        let mut s = Stream::new(9, Purpose::Imh, 7);
        let mut x = 0.0;
        let trace: Vec<f64> = (0..200_000)
            .map(|_| {
                // A sum of uniforms is close enough to normal noise here.
                let e: f64 = (0..12).map(|_| s.uniform()).sum::<f64>() - 6.0;
                x = 0.5 * x + e;
                x
            })
            .collect();
        let ess = effective_sample_size(&trace).unwrap();
        assert!(
            (ess - 200_000.0 / 3.0).abs() < 200_000.0 / 3.0 * 0.05,
            "{ess}"
        );
    }

    /// Geyer's initial monotone sequence with every autocovariance summed directly.
    fn ess_direct(trace: &[f64]) -> f64 {
        let n = trace.len();
        let m = trace.iter().sum::<f64>() / n as f64;
        let d: Vec<f64> = trace.iter().map(|v| v - m).collect();
        let g = |k: usize| (0..n - k).map(|t| d[t] * d[t + k]).sum::<f64>() / n as f64;
        let (g0, mut sum, mut previous) = (g(0), 0.0, f64::INFINITY);
        let mut i = 0;
        while 2 * i + 1 < n {
            let pair = g(2 * i) + g(2 * i + 1);
            if pair <= 0.0 {
                break;
            }
            let pair = pair.min(previous);
            sum += pair;
            previous = pair;
            i += 1;
        }
        n as f64 / ((2.0 * sum - g0) / g0).max(1.0 / n as f64)
    }

    #[test]
    fn a_sticky_chain_s_ess_from_the_fft_equals_the_direct_sums() {
        // AR(1) with rho = 0.998 (tau about 1000): thousands of lags, past the switch to the FFT.
        let mut s = Stream::new(3, Purpose::Imh, 1);
        let mut x = 0.0;
        let trace: Vec<f64> = (0..40_000)
            .map(|_| {
                let e: f64 = (0..12).map(|_| s.uniform()).sum::<f64>() - 6.0;
                x = 0.998 * x + e;
                x
            })
            .collect();
        let (fast, direct) = (effective_sample_size(&trace).unwrap(), ess_direct(&trace));
        assert!((fast - direct).abs() < 1e-9 * direct, "{fast} vs {direct}");
        assert!(fast < 200.0, "{fast}");
        // And a piecewise-constant IMH trace: three strings hold nearly all the weight, so a
        // proposal is accepted about 0.5% of the time.
        let target: Vec<f64> = (0..500)
            .map(|i| [12.0, 11.5, 11.0].get(i).copied().unwrap_or(0.0))
            .collect();
        let chain = imh(&target, &vec![0.0; 500], 50_000, 5).unwrap();
        let trace: Vec<f64> = chain.indices.iter().map(|&i| target[i as usize]).collect();
        assert!(chain.acceptance_rate < 0.01, "{}", chain.acceptance_rate);
        let (fast, direct) = (chain.ess, ess_direct(&trace));
        assert!((fast - direct).abs() < 1e-9 * direct, "{fast} vs {direct}");
    }
}
