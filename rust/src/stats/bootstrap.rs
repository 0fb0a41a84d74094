//! Bootstrap confidence intervals (Efron & Tibshirani 1993): percentile and BCa, for the mean and
//! for paired statistics, computed as `scipy.stats.bootstrap` computes them from the bootstrap
//! distribution. Resample b draws its indices from its own stream (seed, b), so the result is the
//! same for any thread count.

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::parallel;
use crate::stats::correlation::kendall;
use crate::stats::draws::StreamLanes;
use crate::stats::moments::{centred, check_finite, check_len, check_pair, mean, r_from};
use crate::stats::rank::average_ranks;
use crate::stats::resampled_ranks::{RankScratch, RankedPairs};
use crate::stats::special::{normal_cdf, normal_ppf};
use crate::stats::stream::{Purpose, Stream};

/// What is estimated. The paired statistics resample (x, y) pairs together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Statistic {
    Mean,
    /// mean(x - y) over pairs.
    MeanDifference,
    Pearson,
    Spearman,
    /// Kendall's tau-b.
    Kendall,
    /// The least-squares slope of y on x.
    Slope,
}

impl Statistic {
    pub const NAMES: [&'static str; 5] =
        ["mean", "mean_difference", "pearson", "spearman", "slope"];

    pub fn from_name(name: &str) -> Result<Self> {
        Ok(match name {
            "mean" => Statistic::Mean,
            "mean_difference" => Statistic::MeanDifference,
            "pearson" => Statistic::Pearson,
            "spearman" => Statistic::Spearman,
            "kendall" => Statistic::Kendall,
            "slope" => Statistic::Slope,
            _ => {
                return Err(Error::argument(
                    "statistic",
                    format!("must be one of {:?}, got {name:?}", Self::NAMES),
                ))
            }
        })
    }

    pub fn is_paired(self) -> bool {
        self != Statistic::Mean
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Percentile,
    /// Bias-corrected and accelerated (Efron 1987).
    Bca,
}

impl Method {
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "percentile" => Ok(Method::Percentile),
            "bca" | "BCa" => Ok(Method::Bca),
            _ => Err(Error::argument(
                "method",
                format!("must be \"percentile\" or \"bca\", got {name:?}"),
            )),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub statistic: Statistic,
    pub n_resamples: usize,
    pub level: f64,
    pub seed: u64,
    pub method: Method,
}

/// An estimate with its interval; `distribution` holds the statistic of every resample.
#[derive(Debug, Clone)]
pub struct Interval {
    pub statistic: f64,
    pub low: f64,
    pub high: f64,
    pub standard_error: f64,
    pub distribution: Vec<f64>,
}

/// Resamples per unit of parallel work; each resample still has its own stream.
const RESAMPLES_PER_TASK: usize = 16;

pub fn bootstrap_ci(x: &[f64], y: Option<&[f64]>, options: Options) -> Result<Interval> {
    let Options {
        statistic,
        n_resamples,
        level,
        seed,
        method,
    } = options;
    if n_resamples < 1 {
        return Err(Error::parameter(
            "n_resamples",
            n_resamples,
            "an integer >= 1",
        ));
    }
    if !(level > 0.0 && level < 1.0) {
        return Err(Error::parameter("level", level, "in (0, 1)"));
    }
    let owned_difference;
    let (x, y) =
        match (statistic, y) {
            (Statistic::Mean, None) => {
                check_len("x", x, 2)?;
                check_finite("x", x)?;
                (x, None)
            }
            (Statistic::Mean, Some(_)) => {
                return Err(Error::argument(
                    "y",
                    "must not be given with statistic=\"mean\"; use \"mean_difference\" for pairs",
                ))
            }
            (Statistic::MeanDifference, Some(y)) => {
                check_pair(x, y, 2)?;
                owned_difference = x.iter().zip(y).map(|(a, b)| a - b).collect::<Vec<_>>();
                (&owned_difference[..], None)
            }
            (_, Some(y)) => {
                check_pair(x, y, 3)?;
                (x, Some(y))
            }
            (_, None) => return Err(Error::argument(
                "y",
                "is required for a paired statistic (pearson, spearman, mean_difference, slope)",
            )),
        };
    // The mean difference is the mean of the differences from here on.
    let kind = if statistic == Statistic::MeanDifference {
        Statistic::Mean
    } else {
        statistic
    };
    let n = x.len();
    let estimate = evaluate(kind, x, y);
    // Rank statistics of a resample come from the pairs' orders, sorted once.
    let ranked = match (kind, y) {
        (Statistic::Spearman | Statistic::Kendall, Some(y)) => Some(RankedPairs::new(x, y)),
        _ => None,
    };
    let mut distribution = vec![0.0; n_resamples];
    parallel::pool().install(|| {
        distribution
            .par_chunks_mut(RESAMPLES_PER_TASK)
            .enumerate()
            .for_each_init(
                || Buffers::new(n, y.is_some(), ranked.as_ref()),
                |buffers, (task, out)| {
                    for (offset, slot) in out.iter_mut().enumerate() {
                        let b = (task * RESAMPLES_PER_TASK + offset) as u64;
                        *slot = match y {
                            None => {
                                let mut stream = StreamLanes::new(seed, Purpose::Bootstrap, b);
                                stream.sum_of_draws(x, n) / n as f64
                            }
                            Some(y) => {
                                let mut stream = Stream::new(seed, Purpose::Bootstrap, b);
                                match &ranked {
                                    Some(ranked) => {
                                        buffers.resample_ranks(kind, ranked, &mut stream)
                                    }
                                    None => buffers.resample(kind, x, y, &mut stream),
                                }
                            }
                        };
                    }
                },
            )
    });
    let alpha = (1.0 - level) / 2.0;
    let (p_low, p_high) = match method {
        Method::Percentile => (alpha, 1.0 - alpha),
        Method::Bca => {
            let jack = jackknife(kind, x, y);
            bca_levels(&distribution, estimate, &jack, alpha)
        }
    };
    let mut sorted = distribution.clone();
    let any_nan = sorted.iter().any(|v| v.is_nan());
    sorted.sort_unstable_by(|a, b| a.total_cmp(b));
    let (low, high) = if any_nan {
        (f64::NAN, f64::NAN)
    } else {
        (percentile(&sorted, p_low), percentile(&sorted, p_high))
    };
    Ok(Interval {
        statistic: estimate,
        low,
        high,
        standard_error: std_ddof1(&distribution),
        distribution,
    })
}

/// The statistic on the full sample.
fn evaluate(kind: Statistic, x: &[f64], y: Option<&[f64]>) -> f64 {
    match (kind, y) {
        // A plain sum, as in the resamples: a resample that is a permutation of the sample then
        // ties with the estimate exactly when the values are integers.
        (Statistic::Mean, _) => x.iter().sum::<f64>() / x.len() as f64,
        (Statistic::Pearson, Some(y)) => pearson_r(x, y),
        (Statistic::Spearman, Some(y)) => pearson_r(&average_ranks(x), &average_ranks(y)),
        (Statistic::Kendall, Some(y)) => kendall(x, y).map_or(f64::NAN, |c| c.statistic),
        (Statistic::Slope, Some(y)) => slope(x, y),
        _ => f64::NAN,
    }
}

fn pearson_r(x: &[f64], y: &[f64]) -> f64 {
    let c = centred(x, y);
    if c.sxx == 0.0 || c.syy == 0.0 {
        return f64::NAN;
    }
    r_from(&c)
}

fn slope(x: &[f64], y: &[f64]) -> f64 {
    let c = centred(x, y);
    if c.sxx == 0.0 {
        return f64::NAN;
    }
    c.sxy / c.sxx
}

/// Per-worker scratch for one resample.
struct Buffers {
    indices: Vec<u32>,
    xs: Vec<f64>,
    ys: Vec<f64>,
    counts: Vec<u32>,
    ranks: Option<RankScratch>,
}

impl Buffers {
    fn new(n: usize, paired: bool, ranked: Option<&RankedPairs>) -> Self {
        let n = if paired { n } else { 0 };
        let values = if ranked.is_some() { 0 } else { n };
        Self {
            indices: vec![0; n],
            xs: vec![0.0; values],
            ys: vec![0.0; values],
            counts: vec![0; if ranked.is_some() { n } else { 0 }],
            ranks: ranked.map(RankedPairs::scratch),
        }
    }

    /// A rank statistic on one resample: the same draws as [`Self::resample`], as counts.
    fn resample_ranks(&mut self, kind: Statistic, ranked: &RankedPairs, s: &mut Stream) -> f64 {
        s.fill_below(self.indices.len() as u64, &mut self.indices);
        self.counts.iter_mut().for_each(|c| *c = 0);
        for &i in &self.indices {
            self.counts[i as usize] += 1;
        }
        let scratch = self
            .ranks
            .as_mut()
            .expect("rank scratch for a rank statistic");
        match kind {
            Statistic::Spearman => ranked.spearman(&self.counts, scratch),
            _ => ranked.kendall(&self.counts, scratch),
        }
    }

    /// A paired statistic on one resample of the pairs.
    fn resample(&mut self, kind: Statistic, x: &[f64], y: &[f64], s: &mut Stream) -> f64 {
        s.fill_below(x.len() as u64, &mut self.indices);
        for ((i, a), b) in self.indices.iter().zip(&mut self.xs).zip(&mut self.ys) {
            *a = x[*i as usize];
            *b = y[*i as usize];
        }
        evaluate(kind, &self.xs, Some(&self.ys))
    }
}

/// Leave-one-out values of the statistic, for the BCa acceleration.
fn jackknife(kind: Statistic, x: &[f64], y: Option<&[f64]>) -> Vec<f64> {
    let n = x.len();
    let nf = n as f64;
    match (kind, y) {
        (Statistic::Mean, _) => {
            let sum: f64 = x.iter().sum();
            x.iter().map(|v| (sum - v) / (nf - 1.0)).collect()
        }
        (Statistic::Pearson | Statistic::Slope, Some(y)) => {
            // Downdating the centred sums: removing point k changes S by n/(n-1) dx_k dy_k.
            let c = centred(x, y);
            let f = nf / (nf - 1.0);
            x.iter()
                .zip(y)
                .map(|(a, b)| {
                    let (dx, dy) = (a - c.mean_x, b - c.mean_y);
                    let sxx = c.sxx - f * dx * dx;
                    let sxy = c.sxy - f * dx * dy;
                    if kind == Statistic::Slope {
                        sxy / sxx
                    } else {
                        let syy = c.syy - f * dy * dy;
                        (sxy / (sxx.sqrt() * syy.sqrt())).clamp(-1.0, 1.0)
                    }
                })
                .collect()
        }
        (Statistic::Spearman, Some(y)) => {
            // Removing point k lowers the rank of every larger value by 1 and of every tie by 1/2.
            let (rx, ry) = (average_ranks(x), average_ranks(y));
            parallel::pool().install(|| {
                (0..n)
                    .into_par_iter()
                    .map_init(
                        || (vec![0.0; n - 1], vec![0.0; n - 1]),
                        |(ax, ay), k| {
                            let adjust = |r: f64, rk: f64| {
                                r - if r > rk {
                                    1.0
                                } else if r == rk {
                                    0.5
                                } else {
                                    0.0
                                }
                            };
                            for (j, i) in (0..n).filter(|&i| i != k).enumerate() {
                                ax[j] = adjust(rx[i], rx[k]);
                                ay[j] = adjust(ry[i], ry[k]);
                            }
                            pearson_r(ax, ay)
                        },
                    )
                    .collect()
            })
        }
        (Statistic::Kendall, Some(y)) => {
            // Recomputed for each left-out pair: O(n^2 log n).
            parallel::pool().install(|| {
                (0..n)
                    .into_par_iter()
                    .map(|k| evaluate(Statistic::Kendall, &without(x, k), Some(&without(y, k))))
                    .collect()
            })
        }
        _ => vec![f64::NAN; n],
    }
}

/// `v` without its k-th value (a jackknife sample).
fn without(v: &[f64], k: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(v.len().saturating_sub(1));
    out.extend_from_slice(&v[..k]);
    out.extend_from_slice(&v[k + 1..]);
    out
}

/// The BCa levels (scipy's `_bca_interval`): bias correction from the share of resamples below
/// the estimate, acceleration from the jackknife skewness.
fn bca_levels(distribution: &[f64], estimate: f64, jack: &[f64], alpha: f64) -> (f64, f64) {
    let b = distribution.len() as f64;
    let below = distribution.iter().filter(|&&v| v < estimate).count();
    let at_or_below = distribution.iter().filter(|&&v| v <= estimate).count();
    let z0 = normal_ppf((below + at_or_below) as f64 / (2.0 * b));
    let n = jack.len() as f64;
    let dot = jack.iter().sum::<f64>() / n;
    let (mut num, mut den) = (0.0, 0.0);
    for &t in jack {
        let u = (n - 1.0) * (dot - t);
        num += u * u * u;
        den += u * u;
    }
    let a_hat = (num / (n * n * n)) / 6.0 / (den / (n * n)).powf(1.5);
    let z_alpha = normal_ppf(alpha);
    let level = |z: f64| {
        let num = z0 + z;
        normal_cdf(z0 + num / (1.0 - a_hat * num))
    };
    (level(z_alpha), level(-z_alpha))
}

/// NumPy's default ("linear") percentile of sorted values at fraction `q` in [0, 1].
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if !(0.0..=1.0).contains(&q) {
        return f64::NAN;
    }
    let h = (sorted.len() - 1) as f64 * q;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    let t = h - lo as f64;
    let (a, b) = (sorted[lo], sorted[hi]);
    let diff = b - a;
    // NumPy's lerp: from the nearer end, so that t = 1 returns b exactly.
    if t >= 0.5 {
        b - diff * (1.0 - t)
    } else {
        a + diff * t
    }
}

fn std_ddof1(values: &[f64]) -> f64 {
    if values.len() < 2 {
        return f64::NAN;
    }
    let m = mean(values);
    (values.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (values.len() - 1) as f64).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(statistic: Statistic, method: Method) -> Options {
        Options {
            statistic,
            n_resamples: 2000,
            level: 0.9,
            seed: 5,
            method,
        }
    }

    #[test]
    fn same_result_on_one_or_two_threads() {
        let x: Vec<f64> = (0..500).map(|i| ((i * 37) % 101) as f64).collect();
        let y: Vec<f64> = x
            .iter()
            .enumerate()
            .map(|(i, v)| v + (i % 7) as f64)
            .collect();
        for statistic in [Statistic::Mean, Statistic::Pearson, Statistic::Spearman] {
            let yy = statistic.is_paired().then_some(&y[..]);
            let run = |threads| {
                parallel::set_num_threads(threads).unwrap();
                bootstrap_ci(&x, yy, options(statistic, Method::Bca)).unwrap()
            };
            let (one, two) = (run(1), run(2));
            assert_eq!(one.distribution, two.distribution);
            assert_eq!((one.low, one.high), (two.low, two.high));
            assert!(one.low < one.statistic && one.statistic < one.high);
        }
    }

    #[test]
    fn spearman_jackknife_matches_reranking() {
        let x = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0, 5.0, 3.0];
        let y = [2.0, 7.0, 1.0, 8.0, 2.0, 8.0, 1.0, 8.0, 2.0, 8.0];
        let jack = jackknife(Statistic::Spearman, &x, Some(&y));
        for (k, &value) in jack.iter().enumerate() {
            let expected = pearson_r(
                &average_ranks(&without(&x, k)),
                &average_ranks(&without(&y, k)),
            );
            assert!((value - expected).abs() < 1e-14, "{k}");
        }
    }

    #[test]
    fn bad_arguments_are_named() {
        let x = [1.0, 2.0, 3.0];
        let mut o = options(Statistic::Mean, Method::Percentile);
        o.level = 1.0;
        let e = bootstrap_ci(&x, None, o).unwrap_err().to_string();
        assert_eq!(e, "`level` must be in (0, 1), got 1");
        o.level = 0.95;
        o.n_resamples = 0;
        let e = bootstrap_ci(&x, None, o).unwrap_err().to_string();
        assert_eq!(e, "`n_resamples` must be an integer >= 1, got 0");
        let e = bootstrap_ci(&x, None, options(Statistic::Pearson, Method::Bca));
        assert!(e.unwrap_err().to_string().starts_with("`y` is required"));
        assert!(Statistic::from_name("median").is_err());
    }

    #[test]
    fn percentile_interpolates_like_numpy() {
        let s = [1.0, 2.0, 4.0, 8.0];
        assert_eq!(percentile(&s, 0.0), 1.0);
        assert_eq!(percentile(&s, 1.0), 8.0);
        assert_eq!(percentile(&s, 0.5), 3.0);
        assert!((percentile(&s, 0.25) - 1.75).abs() < 1e-15);
    }
}
