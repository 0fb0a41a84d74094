//! Exact binomial draws for the resampled corpora.
//!
//! A corpus's multinomial counts are one binomial per distinct string (see
//! [`crate::stats::resample`]), so at the paper's scale (2,000 strings, 2,000 corpora, 35
//! configurations) the binomial is most of `analyze`. Two exact algorithms, by n·min(p, 1 - p):
//!
//! - at least 10: BTRS, Hörmann's transformed rejection with squeeze (W. Hörmann 1993, "The
//!   generation of binomial random variates", J. Statist. Comput. Simul. 46). Two uniforms and no
//!   logarithm for most draws; the rest are accepted or rejected on the exact log ratio of the
//!   probabilities, written with Stirling's series as in TensorFlow's `random_binomial_op.cc`.
//! - below 10: inversion by sequential search from k = 0 (BINV, Kachitvichyanukul & Schmeiser
//!   1988), about n·p + 1 multiplications.
//!
//! p > 1/2 draws n - Binomial(n, 1 - p).

use crate::stats::stream::Stream;

/// Below this n·min(p, 1 - p) inversion is cheaper than rejection (and BTRS's hat is only valid
/// above it).
const INVERSION_BELOW: f64 = 10.0;

/// A draw from Binomial(n, p). `p` outside [0, 1] (or NaN) is the caller's error: it is treated
/// as 0 below 0 and as 1 above 1 in release builds.
pub fn binomial(n: u64, p: f64, stream: &mut Stream) -> u64 {
    debug_assert!((0.0..=1.0).contains(&p), "p = {p}");
    if n == 0 || p.is_nan() || p <= 0.0 {
        return 0;
    }
    if p >= 1.0 {
        return n;
    }
    let flipped = p > 0.5;
    let p_small = if flipped { 1.0 - p } else { p };
    let k = if n as f64 * p_small < INVERSION_BELOW {
        inversion(n, p_small, stream)
    } else {
        transformed_rejection(n, p_small, stream)
    };
    if flipped {
        n - k
    } else {
        k
    }
}

/// BINV for p <= 1/2 and n·p < 10: walk the probabilities P(k) from k = 0 until the uniform
/// falls in one.
fn inversion(n: u64, p: f64, stream: &mut Stream) -> u64 {
    // P(0) = q^n through log1p, exact also when 1 - p rounds to 1.
    let p0 = (n as f64 * (-p).ln_1p()).exp();
    let odds = p / (1.0 - p);
    let a = (n as f64 + 1.0) * odds;
    // Rounding can leave the summed probabilities short of u; past this many sds (31 at the
    // largest variance, 10) or past n the search starts again with a new uniform.
    let last = n.min(110);
    'search: loop {
        let mut u = stream.uniform();
        let mut pk = p0;
        let mut k = 0u64;
        while u > pk {
            u -= pk;
            k += 1;
            if k > last {
                continue 'search;
            }
            // P(k) / P(k - 1) = (n - k + 1) / k · p / q.
            pk *= a / k as f64 - odds;
        }
        return k;
    }
}

/// BTRS for p <= 1/2 and n·p >= 10.
fn transformed_rejection(n: u64, p: f64, stream: &mut Stream) -> u64 {
    let nf = n as f64;
    let q = 1.0 - p;
    let spq = (nf * p * q).sqrt();
    let b = 1.15 + 2.53 * spq;
    let a = -0.0873 + 0.0248 * b + 0.01 * p;
    let c = nf * p + 0.5;
    let v_r = 0.92 - 4.2 / b;
    loop {
        let u = stream.uniform() - 0.5;
        let v = stream.uniform();
        let us = 0.5 - u.abs();
        let k = ((2.0 * a / us + b) * u + c).floor();
        // Outside the support (or us = 0, which makes k infinite): reject.
        if !(0.0..=nf).contains(&k) {
            continue;
        }
        // The squeeze: a box inside the acceptance region.
        if us >= 0.07 && v <= v_r {
            return k as u64;
        }
        // Accept with the exact ratio P(k) / P(m) against the hat at (u, v).
        let alpha = (2.83 + 5.1 / b) * spq;
        let log_v = (v * alpha / (a / (us * us) + b)).ln();
        if log_v <= log_ratio_to_mode(nf, p, k) {
            return k as u64;
        }
    }
}

/// ln P(k) - ln P(m) for Binomial(n, p) and its mode m = floor((n + 1) p), with each
/// ln Γ(x + 1) = (x + 1/2) ln(x + 1) - (x + 1) + ln √(2π) + tail(x); the linear and constant
/// terms cancel, and the logs of ratios keep the precision that differences of large log-gammas
/// lose.
fn log_ratio_to_mode(n: f64, p: f64, k: f64) -> f64 {
    let m = ((n + 1.0) * p).floor();
    let r = p / (1.0 - p);
    (m + 0.5) * ((m + 1.0) / (r * (n - m + 1.0))).ln()
        + (n + 1.0) * ((n - m + 1.0) / (n - k + 1.0)).ln()
        + (k + 0.5) * (r * (n - k + 1.0) / (k + 1.0)).ln()
        + stirling_tail(m)
        + stirling_tail(n - m)
        - stirling_tail(k)
        - stirling_tail(n - k)
}

/// ln Γ(x + 1) - [(x + 1/2) ln(x + 1) - (x + 1) + ln √(2π)] for integer x >= 0: tabulated to
/// 9, then three terms of Stirling's series in z = x + 1 (the next is 1 / (1680 z^7) < 4e-11).
fn stirling_tail(x: f64) -> f64 {
    // The tail at x = 0, ..., 9, from ln Γ in double precision.
    const TABLE: [f64; 10] = [
        0.08106146679532733,
        0.04134069595540946,
        0.027677925684997717,
        0.02079067210376584,
        0.01664469118982126,
        0.013876128823072875,
        0.011896709945893313,
        0.010411265261973668,
        0.00925546218270945,
        0.008330563433359472,
    ];
    if x <= 9.0 {
        return TABLE[x as usize];
    }
    let z = x + 1.0;
    let z2 = z * z;
    (1.0 / 12.0 - (1.0 / 360.0 - 1.0 / 1260.0 / z2) / z2) / z
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::special::ln_gamma;
    use crate::stats::stream::Purpose;

    fn ln_pmf(n: u64, p: f64, k: u64) -> f64 {
        let (n, kf) = (n as f64, k as f64);
        ln_gamma(n + 1.0) - ln_gamma(kf + 1.0) - ln_gamma(n - kf + 1.0)
            + kf * p.ln()
            + (n - kf) * (-p).ln_1p()
    }

    /// Pearson's chi-square of `draws` against Binomial(n, p), over the values whose expected
    /// count is at least 20 and one bin for the rest; with its degrees of freedom.
    fn chi_square(n: u64, p: f64, draws: &[u64]) -> (f64, usize) {
        let total = draws.len() as f64;
        let mut observed = std::collections::HashMap::new();
        for &k in draws {
            *observed.entry(k).or_insert(0u64) += 1;
        }
        let (mut statistic, mut bins) = (0.0, 0usize);
        let (mut rest_expected, mut rest_observed) = (total, total);
        for k in 0..=n {
            let expected = total * ln_pmf(n, p, k).exp();
            if expected >= 20.0 {
                let o = *observed.get(&k).unwrap_or(&0) as f64;
                statistic += (o - expected).powi(2) / expected;
                bins += 1;
                rest_expected -= expected;
                rest_observed -= o;
            }
        }
        if rest_expected > 1.0 {
            statistic += (rest_observed - rest_expected).powi(2) / rest_expected;
            bins += 1;
        }
        (statistic, bins - 1)
    }

    #[test]
    fn stirling_tail_matches_the_log_gamma() {
        for x in (0u32..=12).chain([30, 1000, 150_000]) {
            let x = x as f64;
            let log_gamma = ln_gamma(x + 1.0);
            let exact = log_gamma
                - ((x + 0.5) * (x + 1.0).ln() - (x + 1.0)
                    + 0.5 * (2.0 * std::f64::consts::PI).ln());
            // The series' first omitted term (< 4e-11) and ln_gamma's rounding.
            let tol = 5e-11 + 1e-14 * log_gamma.abs();
            assert!((stirling_tail(x) - exact).abs() < tol, "{x}");
        }
    }

    #[test]
    fn log_ratio_to_mode_is_the_pmf_ratio() {
        for &(n, p) in &[(20u64, 0.5), (1000, 0.3), (200_000, 5e-4), (60, 0.2)] {
            let m = ((n as f64 + 1.0) * p).floor() as u64;
            for k in [0, m / 2, m, m + 1, (m * 3 / 2).min(n), n] {
                let exact = ln_pmf(n, p, k) - ln_pmf(n, p, m);
                let got = log_ratio_to_mode(n as f64, p, k as f64);
                assert!(
                    (got - exact).abs() < 1e-8 * (1.0 + exact.abs()),
                    "{n} {p} {k}: {got} against {exact}"
                );
            }
        }
    }

    #[test]
    fn draws_follow_the_binomial_in_both_regimes() {
        // Inversion (n·p < 10), rejection (>= 10), the boundary, and p > 1/2 (flipped).
        let cases: [(u64, f64); 9] = [
            (100, 0.05),
            (19, 0.5),
            (20, 0.5),
            (200_000, 5e-4),
            (1000, 0.3),
            (35, 0.4),
            (1000, 0.97),
            (30, 0.999),
            (100_000, 0.5),
        ];
        for (case, &(n, p)) in cases.iter().enumerate() {
            let mut stream = Stream::new(17, Purpose::Corpora, case as u64);
            let draws: Vec<u64> = (0..400_000).map(|_| binomial(n, p, &mut stream)).collect();
            let (statistic, df) = chi_square(n, p, &draws);
            // 6 standard deviations of the chi-square's null distribution above its mean.
            let bound = df as f64 + 6.0 * (2.0 * df as f64).sqrt();
            assert!(
                statistic < bound,
                "Binomial({n}, {p}): chi-square {statistic:.1} on {df} df"
            );
            let mean = draws.iter().sum::<u64>() as f64 / draws.len() as f64;
            let sd = (n as f64 * p * (1.0 - p) / draws.len() as f64).sqrt();
            assert!((mean - n as f64 * p).abs() < 6.0 * sd, "{n} {p}: {mean}");
        }
    }

    #[test]
    fn a_biased_sampler_fails_the_chi_square() {
        // The check above can fail: Binomial(n, 1.02 p) against Binomial(n, p).
        let (n, p) = (1000u64, 0.3);
        let mut stream = Stream::new(3, Purpose::Corpora, 0);
        let draws: Vec<u64> = (0..400_000)
            .map(|_| binomial(n, 1.02 * p, &mut stream))
            .collect();
        let (statistic, df) = chi_square(n, p, &draws);
        assert!(statistic > df as f64 + 6.0 * (2.0 * df as f64).sqrt());
    }

    #[test]
    fn end_points_and_tiny_probabilities() {
        let mut s = Stream::new(1, Purpose::Corpora, 0);
        assert_eq!(binomial(0, 0.3, &mut s), 0);
        assert_eq!(binomial(50, 0.0, &mut s), 0);
        assert_eq!(binomial(50, 1.0, &mut s), 50);
        // 1 - p rounds to 1; n·p = 2, so the mean of many draws is 2.
        let (n, p) = (2_000_000_000_000_000_000u64, 1e-18);
        let draws: Vec<u64> = (0..100_000).map(|_| binomial(n, p, &mut s)).collect();
        let mean = draws.iter().sum::<u64>() as f64 / draws.len() as f64;
        assert!(
            (mean - 2.0).abs() < 6.0 * (2.0f64 / 100_000.0).sqrt(),
            "{mean}"
        );
    }
}
