"""Bootstrap intervals: the interval from the bootstrap distribution is scipy's (percentile and
BCa, rebuilt here from scipy.special and numpy), the distribution agrees with
scipy.stats.bootstrap's within Monte-Carlo error, results do not depend on threads, and 95%
intervals cover the true mean 93-97% of the time."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.special
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st

import tradeoff
from tradeoff import stats

STATISTICS = {
    "mean": lambda x, y: np.mean(x),
    "mean_difference": lambda x, y: np.mean(x - y),
    "pearson": lambda x, y: scipy.stats.pearsonr(x, y).statistic,
    "spearman": lambda x, y: scipy.stats.spearmanr(x, y).statistic,
    "kendall": lambda x, y: scipy.stats.kendalltau(x, y).statistic,
    "slope": lambda x, y: scipy.stats.linregress(x, y).slope,
}


def reference_interval(x, y, statistic, distribution, level, method):
    """scipy.stats.bootstrap's percentile / BCa interval (``_bca_interval``) from a given
    bootstrap distribution; the jackknife re-evaluates the statistic with scipy."""
    fn = STATISTICS[statistic]
    alpha = (1 - level) / 2
    if method == "percentile":
        low, high = alpha, 1 - alpha
    else:
        n = len(x)
        theta = fn(x, y)
        share = (np.sum(distribution < theta) + np.sum(distribution <= theta)) / (
            2 * len(distribution)
        )
        z0 = scipy.special.ndtri(share)
        keep = ~np.eye(n, dtype=bool)
        jack = np.array(
            [fn(x[keep[i]], None if y is None else y[keep[i]]) for i in range(n)], dtype=float
        )
        u = (n - 1) * (jack.mean() - jack)
        a_hat = (u**3).sum() / n**3 / 6 / ((u**2).sum() / n**2) ** 1.5
        z_alpha = scipy.special.ndtri(alpha)
        low = scipy.special.ndtr(z0 + (z0 + z_alpha) / (1 - a_hat * (z0 + z_alpha)))
        high = scipy.special.ndtr(z0 + (z0 - z_alpha) / (1 - a_hat * (z0 - z_alpha)))
    return np.percentile(distribution, 100 * low), np.percentile(distribution, 100 * high)


@settings(max_examples=60)
@given(
    seed=st.integers(0, 2**32 - 1),
    # From 12 up, a resample that permutes the sample (an exact tie with the estimate, which
    # rounding may put on either side) is rare: the BCa bias correction counts such ties.
    n=st.integers(12, 60),
    statistic=st.sampled_from(sorted(STATISTICS)),
    method=st.sampled_from(["percentile", "bca"]),
    level=st.sampled_from([0.5, 0.9, 0.95, 0.99]),
    ties=st.booleans(),
)
def test_interval_is_scipys_from_the_distribution(seed, n, statistic, method, level, ties):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    y = x + rng.normal(size=n)
    if ties:
        x, y = np.round(x), np.round(y * 2)
    paired = statistic != "mean"
    result = stats.bootstrap_ci(
        x,
        y=y if paired else None,
        statistic=statistic,
        n_resamples=499,
        level=level,
        seed=seed,
        method=method,
    )
    dist = result.bootstrap_distribution
    assert dist.shape == (499,)
    assert result.statistic == pytest.approx(STATISTICS[statistic](x, y), rel=1e-12, abs=1e-14)
    if np.isnan(dist).any() or np.isnan(result.statistic):
        assert np.isnan(result.low) and np.isnan(result.high)
        return
    low, high = reference_interval(x, y if paired else None, statistic, dist, level, method)
    scale = max(np.ptp(dist), 1e-12)
    assert result.low == pytest.approx(low, rel=1e-9, abs=1e-10 * scale)
    assert result.high == pytest.approx(high, rel=1e-9, abs=1e-10 * scale)
    assert result.standard_error == pytest.approx(np.std(dist, ddof=1), rel=1e-10, abs=1e-15)


def test_distribution_agrees_with_scipy_bootstrap():
    rng = np.random.default_rng(0)
    x = rng.exponential(size=300)
    y = x + rng.normal(size=300)
    for statistic, data, fn in [
        ("mean", (x,), np.mean),
        ("pearson", (x, y), lambda a, b: scipy.stats.pearsonr(a, b).statistic),
    ]:
        ref = scipy.stats.bootstrap(
            data,
            fn,
            n_resamples=4000,
            method="BCa",
            paired=len(data) == 2,
            vectorized=False,
            rng=1,
        )
        ours = stats.bootstrap_ci(
            x,
            y=y if len(data) == 2 else None,
            statistic=statistic,
            n_resamples=4000,
            method="bca",
            seed=1,
        )
        se = ref.standard_error
        assert ours.standard_error == pytest.approx(se, rel=0.1)
        assert abs(ours.low - ref.confidence_interval.low) < 0.2 * se
        assert abs(ours.high - ref.confidence_interval.high) < 0.2 * se


def test_same_result_for_any_thread_count():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=1000), rng.normal(size=1000)
    before = tradeoff.get_num_threads()
    try:
        runs = []
        for threads in (1, 2, 3):
            tradeoff.set_num_threads(threads)
            runs.append(
                stats.bootstrap_ci(
                    x, y=y, statistic="spearman", n_resamples=300, seed=9, method="bca"
                )
            )
        for r in runs[1:]:
            np.testing.assert_array_equal(r.bootstrap_distribution, runs[0].bootstrap_distribution)
            assert (r.low, r.high) == (runs[0].low, runs[0].high)
    finally:
        tradeoff.set_num_threads(before)
    other_seed = stats.bootstrap_ci(x, y=y, statistic="spearman", n_resamples=300, seed=10)
    assert not np.array_equal(other_seed.bootstrap_distribution, runs[0].bootstrap_distribution)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["percentile", "bca"])
def test_95_percent_intervals_cover_the_true_mean(method):
    rng = np.random.default_rng(12345)
    repetitions, n, mu = 1000, 100, 3.0
    covered = 0
    for rep in range(repetitions):
        x = rng.normal(mu, 2.0, size=n)
        r = stats.bootstrap_ci(x, n_resamples=2000, level=0.95, seed=rep, method=method)
        covered += r.low <= mu <= r.high
    assert 0.93 <= covered / repetitions <= 0.97, covered
