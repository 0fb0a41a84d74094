//! The trade-off's two regressions. Across corpora: mean reward on mean prior log-likelihood,
//! whose slope is -β for typical corpora of the tilted prior. Per string: `log π - log p` on
//! reward, whose slope is 1/β when π = p exp(r/β) / Z (PAPER.md: log π = log p + r/β - log Z).

use crate::error::{Error, Result};
use crate::stats::bootstrap::{bootstrap_ci, Interval, Method, Options, Statistic};
use crate::stats::correlation::{linregress, Regression};
use crate::stats::moments::{check_finite, check_pair, check_same_len};

#[derive(Debug, Clone)]
pub struct TradeoffLine {
    pub regression: Regression,
    /// BCa bootstrap interval of the slope, resampling corpora.
    pub slope: Interval,
}

pub fn tradeoff_line(
    mean_log_prior: &[f64],
    mean_reward: &[f64],
    n_resamples: usize,
    level: f64,
    seed: u64,
) -> Result<TradeoffLine> {
    let regression = linregress(mean_log_prior, mean_reward)?;
    let slope = bootstrap_ci(
        mean_log_prior,
        Some(mean_reward),
        Options {
            statistic: Statistic::Slope,
            n_resamples,
            level,
            seed,
            method: Method::Bca,
        },
    )?;
    Ok(TradeoffLine { regression, slope })
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImpliedBeta {
    /// The slope of `log π - log p` on reward: 1/β.
    pub inverse_beta: f64,
    pub beta: f64,
    /// The line's intercept, an estimate of -log Z (NaN with groups: one per group).
    pub intercept: f64,
    pub r_squared: f64,
    /// Standard error of `inverse_beta`.
    pub stderr: f64,
    pub n: usize,
}

/// Regresses `log_aligned - log_prior` on `reward`. With `groups` (e.g. the prompt of each
/// string; Z depends on the prompt) each group has its own intercept: the fit is on values
/// centred within their group.
pub fn implied_beta(
    log_aligned: &[f64],
    log_prior: &[f64],
    reward: &[f64],
    groups: Option<&[u32]>,
) -> Result<ImpliedBeta> {
    check_pair(log_aligned, log_prior, 3)?;
    check_same_len("reward", reward.len(), "log_aligned", log_aligned.len())?;
    check_finite("reward", reward)?;
    let d: Vec<f64> = log_aligned
        .iter()
        .zip(log_prior)
        .map(|(a, p)| a - p)
        .collect();
    let Some(groups) = groups else {
        let fit = linregress(reward, &d)?;
        return Ok(ImpliedBeta {
            inverse_beta: fit.slope,
            beta: 1.0 / fit.slope,
            intercept: fit.intercept,
            r_squared: fit.rvalue * fit.rvalue,
            stderr: fit.stderr,
            n: d.len(),
        });
    };
    check_same_len("groups", groups.len(), "log_aligned", d.len())?;
    let n_groups = groups.iter().max().map_or(0, |&g| g as usize + 1);
    let mut sums = vec![(0.0f64, 0.0f64, 0usize); n_groups];
    for ((&r, &v), &g) in reward.iter().zip(&d).zip(groups) {
        let s = &mut sums[g as usize];
        s.0 += r;
        s.1 += v;
        s.2 += 1;
    }
    let used = sums.iter().filter(|s| s.2 > 0).count();
    let (mut srr, mut srd, mut sdd) = (0.0, 0.0, 0.0);
    for ((&r, &v), &g) in reward.iter().zip(&d).zip(groups) {
        let s = sums[g as usize];
        let (cr, cd) = (r - s.0 / s.2 as f64, v - s.1 / s.2 as f64);
        srr += cr * cr;
        srd += cr * cd;
        sdd += cd * cd;
    }
    if srr == 0.0 {
        return Err(Error::argument(
            "reward",
            "does not vary within any group; the slope is not identified",
        ));
    }
    let slope = srd / srr;
    let residual = (sdd - slope * srd).max(0.0);
    let df = d.len() as f64 - used as f64 - 1.0;
    Ok(ImpliedBeta {
        inverse_beta: slope,
        beta: 1.0 / slope,
        intercept: f64::NAN,
        r_squared: if sdd > 0.0 {
            1.0 - residual / sdd
        } else {
            f64::NAN
        },
        stderr: if df > 0.0 {
            (residual / df / srr).sqrt()
        } else {
            f64::NAN
        },
        n: d.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_beta_from_a_tilted_prior() {
        // log π = log p + r / β - log Z(prompt), β = 0.5, two prompts.
        let reward: Vec<f64> = (0..40).map(|i| (i as f64 * 0.37).sin()).collect();
        let prior: Vec<f64> = (0..40).map(|i| -(i as f64) * 0.1).collect();
        let groups: Vec<u32> = (0..40).map(|i| i % 2).collect();
        let aligned: Vec<f64> = (0..40)
            .map(|i| prior[i] + reward[i] / 0.5 - [0.3, 1.7][i % 2])
            .collect();
        let fit = implied_beta(&aligned, &prior, &reward, Some(&groups)).unwrap();
        assert!((fit.beta - 0.5).abs() < 1e-12);
        assert!((fit.r_squared - 1.0).abs() < 1e-12);
        let one_prompt: Vec<f64> = (0..40).map(|i| prior[i] + reward[i] / 0.5 - 0.3).collect();
        let fit = implied_beta(&one_prompt, &prior, &reward, None).unwrap();
        assert!((fit.inverse_beta - 2.0).abs() < 1e-12);
        assert!((fit.intercept + 0.3).abs() < 1e-12);
    }

    #[test]
    fn line_slope_has_an_interval() {
        let x: Vec<f64> = (0..200)
            .map(|i| -100.0 - (i as f64 * 0.7).cos() * 10.0)
            .collect();
        let y: Vec<f64> = x
            .iter()
            .enumerate()
            .map(|(i, v)| -0.5 * v + (i as f64 * 1.3).sin())
            .collect();
        let line = tradeoff_line(&x, &y, 500, 0.95, 0).unwrap();
        assert!((line.regression.slope + 0.5).abs() < 0.05);
        assert!(line.slope.low < line.regression.slope && line.regression.slope < line.slope.high);
    }
}
