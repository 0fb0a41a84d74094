"""Correlations and regression against scipy.stats, to 1e-10 relative."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.stats
from hypothesis import given
from hypothesis import strategies as st

from tradeoff import stats

RTOL = 1e-10


@st.composite
def paired_samples(draw, max_n: int = 300):
    """(x, y) with a drawn kind: continuous, heavy ties (small integer grids), correlated or not."""
    seed = draw(st.integers(0, 2**32 - 1))
    n = draw(st.one_of(st.sampled_from([2, 3, 4, 5, 33, 34]), st.integers(2, max_n)))
    kind = draw(st.sampled_from(["normal", "grid", "binary", "correlated", "mixed"]))
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    y = rng.normal(size=n)
    if kind == "grid":
        x, y = np.round(x * 2), np.round(y * 2)
    elif kind == "binary":
        x, y = (x > 0).astype(float), np.round(y)
    elif kind == "correlated":
        y = x + 0.3 * y
    elif kind == "mixed":
        y = np.round(x + y)
    return x, y


def close(ours: float, ref: float, rtol: float = RTOL) -> bool:
    if np.isnan(ref):
        return bool(np.isnan(ours))
    return abs(ours - ref) <= rtol * abs(ref) + 1e-300


def perfect_line(ours, ref) -> bool:
    """Exactly (anti)monotone data: ours is exactly ±1 with p = 0 (the limit), where scipy's
    statistic rounds to 1 - 1e-16 and its p-value (1e-16 .. 1e-24) is that rounding's artifact."""
    if abs(ours.statistic) == 1.0 and abs(ref.statistic) < 1.0:
        assert abs(ours.statistic - ref.statistic) < 1e-13
        assert ours.pvalue <= ref.pvalue or (np.isnan(ref.pvalue) and np.isnan(ours.pvalue))
        return True
    return False


def scipy_silent(fn, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args)


@pytest.mark.parametrize(
    "ours_fn, scipy_fn",
    [(stats.pearson, scipy.stats.pearsonr), (stats.spearman, scipy.stats.spearmanr)],
    ids=["pearson", "spearman"],
)
@given(sample=paired_samples())
def test_pearson_and_spearman_match_scipy(ours_fn, scipy_fn, sample):
    x, y = sample
    ref = scipy_silent(scipy_fn, x, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        ours = ours_fn(x, y)
    if perfect_line(ours, ref):
        return
    assert abs(ours.statistic - ref.statistic) <= 1e-13 or close(ours.statistic, ref.statistic)
    # Spearman's p-value goes through t = r sqrt((n-2)/(1-r^2)), which amplifies r's last bits.
    rtol = 1e-9 if ours_fn is stats.spearman and len(x) > 3 else RTOL
    assert close(ours.pvalue, ref.pvalue, rtol), (ours, ref)


@given(paired_samples())
def test_kendall_matches_scipy(sample):
    x, y = sample
    ref = scipy_silent(scipy.stats.kendalltau, x, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        ours = stats.kendall(x, y)
    assert close(ours.statistic, ref.statistic, 1e-13), (ours, ref)
    assert close(ours.pvalue, ref.pvalue), (ours, ref)


@given(paired_samples())
def test_linregress_matches_scipy(sample):
    x, y = sample
    if np.all(x == x[0]):
        with pytest.raises(ValueError, match="`x` has only one distinct value"):
            stats.linregress(x, y)
        return
    ref = scipy_silent(scipy.stats.linregress, x, y)
    ours = stats.linregress(x, y)
    for name in ("slope", "intercept", "rvalue", "pvalue", "stderr", "intercept_stderr"):
        a, b = getattr(ours, name), getattr(ref, name)
        # Values that are zero in exact arithmetic come out as rounding noise in both.
        assert close(a, b, 1e-9) or abs(a - b) < 1e-12, (name, a, b)


@pytest.mark.parametrize("kind", ["continuous", "ties"])
def test_large_n_matches_scipy(kind):
    rng = np.random.default_rng(1)
    n = 200_000
    x = rng.normal(size=n)
    y = 0.01 * x + rng.normal(size=n)
    if kind == "ties":
        x, y = np.round(x * 3), np.round(y * 3)
    for ours, ref in [
        (stats.pearson(x, y), scipy.stats.pearsonr(x, y)),
        (stats.spearman(x, y), scipy.stats.spearmanr(x, y)),
        (stats.kendall(x, y), scipy.stats.kendalltau(x, y)),
    ]:
        assert close(ours.statistic, ref.statistic, 1e-12), (ours, ref)
        # A p-value's relative sensitivity to r grows like n * r; allow for the last bits of r.
        assert close(ours.pvalue, ref.pvalue, 1e-9), (ours, ref)


def test_n_equals_two_and_constant_columns_follow_scipy():
    assert stats.pearson([1, 2], [3, 1]) == stats.CorrelationResult(-1.0, 1.0)
    assert stats.kendall([1, 2], [3, 1]) == stats.CorrelationResult(-1.0, 1.0)
    rho = stats.spearman([1, 2], [3, 1])
    assert rho.statistic == pytest.approx(-1.0) and np.isnan(rho.pvalue)
    for fn in (stats.pearson, stats.spearman):
        with pytest.warns(stats.ConstantInputWarning, match="constant"):
            result = fn([1.0, 1.0, 1.0], [1.0, 2.0, 3.0])
        assert np.isnan(result.statistic) and np.isnan(result.pvalue)
    with pytest.warns(stats.ConstantInputWarning):
        assert np.isnan(stats.kendall([2.0, 2.0, 2.0], [1.0, 2.0, 3.0]).statistic)


def test_exact_kendall_pvalue_for_small_samples_and_extremes():
    rng = np.random.default_rng(3)
    for n in (3, 10, 33, 34, 200):
        x = rng.permutation(n).astype(float)
        for y in (x.copy(), -x, rng.permutation(n).astype(float)):
            ref = scipy.stats.kendalltau(x, y)
            ours = stats.kendall(x, y)
            assert close(ours.statistic, ref.statistic, 1e-14)
            assert close(ours.pvalue, ref.pvalue), (n, ours, ref)


def test_plane_fit_recovers_an_exact_plane_and_refuses_a_degenerate_one():
    from tradeoff import stats

    rng = np.random.default_rng(4)
    x, z = rng.normal(size=50) + 1e4, rng.normal(size=50) - 3e3
    intercept, b_x, b_z = stats.plane_fit(x, 2.5 - 0.75 * x + 4.0 * z, z)
    assert (intercept, b_x, b_z) == pytest.approx((2.5, -0.75, 4.0), rel=1e-9)
    # Against least squares by scipy on noisy data.
    from scipy.linalg import lstsq

    y = 1.0 + x - z + rng.normal(size=50)
    reference = lstsq(np.column_stack([np.ones(50), x, z]), y)[0]
    assert stats.plane_fit(x, y, z) == pytest.approx(tuple(reference), rel=1e-6)
    assert all(np.isnan(stats.plane_fit(x, y, 2 * x + 1)))
    with pytest.raises(ValueError, match="one length"):
        stats.plane_fit(x, y, z[:3])


def test_grouped_plane_slopes_equal_plane_fit_on_the_drawn_groups():
    from tradeoff import stats

    rng = np.random.default_rng(9)
    k = 5
    groups = rng.integers(0, k, size=200)
    x = rng.normal(size=200) + 3 * groups - 50.0
    z = 0.5 * x + rng.normal(size=200) + 1e3
    y = -x + 2 * z + rng.normal(size=200)
    counts = rng.multinomial(k, np.full(k, 1 / k), size=40)
    counts[0] = [0, 0, 5, 0, 0]  # one group only, still a full-rank design
    slopes = stats.grouped_plane_slopes(x, y, z, groups, counts)
    for row, slope in zip(counts, slopes, strict=True):
        members = [np.flatnonzero(groups == g) for g in range(k)]
        pick = np.concatenate([members[g] for g in range(k) for _ in range(row[g])])
        assert slope == pytest.approx(stats.plane_fit(x[pick], y[pick], z[pick])[1], rel=1e-9)
    # z a linear function of x within every group: degenerate, as plane_fit says.
    degenerate = stats.grouped_plane_slopes(x, y, 2 * x + 1, groups, counts)
    assert np.isnan(degenerate).all()
    with pytest.raises(ValueError, match=r"integers in \[0, 5\)"):
        stats.grouped_plane_slopes(x, y, z, groups + 1, counts)
