"""IMH, resampled corpora, ragged reductions and the trade-off diagnostics, against exact answers
(known stationary and multinomial distributions) and scipy references."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
from hypothesis import given
from hypothesis import strategies as st

import tradeoff
from tradeoff import stats


def with_threads(threads, fn):
    before = tradeoff.get_num_threads()
    tradeoff.set_num_threads(threads)
    try:
        return fn()
    finally:
        tradeoff.set_num_threads(before)


# --- IMH ---------------------------------------------------------------------------------------


def test_imh_time_averages_match_the_stationary_distribution():
    rng = np.random.default_rng(0)
    n_items = 20
    log_target = rng.normal(0, 1.0, n_items)
    log_proposal = rng.normal(0, 0.5, n_items)
    weights = np.exp(log_target - log_proposal)
    exact = weights / weights.sum()
    n_steps = 1_000_000
    chain = stats.imh(log_target, log_proposal, n_steps=n_steps, seed=4)
    frequency = np.bincount(chain.indices, minlength=n_items) / n_steps
    # Monte-Carlo error of a frequency: sqrt(p (1 - p) / ESS), ESS of the chain.
    tolerance = 5 * np.sqrt(exact * (1 - exact) / chain.ess)
    assert np.all(np.abs(frequency - exact) < tolerance), (frequency - exact) / tolerance
    # The time average of a function, e.g. the log target, likewise.
    average = log_target[chain.indices].mean()
    assert average == pytest.approx(
        exact @ log_target, abs=5 * log_target.std() / np.sqrt(chain.ess)
    )
    # Acceptance of IMH: E[min(1, w_j / w_i)] with i ~ exact, j uniform.
    expected_rate = (
        np.sum(exact[:, None] * np.minimum(1, weights[None, :] / weights[:, None])) / n_items
    )
    assert chain.acceptance_rate == pytest.approx(expected_rate, abs=0.005)
    assert 0 < chain.cramers_v < 1


def test_imh_same_chain_on_one_or_two_threads_and_per_seed():
    lt, lp = np.log(np.arange(1.0, 101.0)), np.zeros(100)
    one = with_threads(1, lambda: stats.imh(lt, lp, n_steps=50_000, seed=7))
    two = with_threads(2, lambda: stats.imh(lt, lp, n_steps=50_000, seed=7))
    np.testing.assert_array_equal(one.indices, two.indices)
    assert (one.acceptance_rate, one.ess, one.cramers_v) == (
        two.acceptance_rate,
        two.ess,
        two.cramers_v,
    )
    other = stats.imh(lt, lp, n_steps=50_000, seed=8)
    assert not np.array_equal(one.indices, other.indices)


def test_imh_log_space_never_overflows():
    # exp(800) overflows float64; the chain must still go to and stay at the heaviest item.
    chain = stats.imh([0.0, 800.0, -800.0], [0.0, -50.0, 50.0], n_steps=2000, seed=1)
    assert chain.indices[-1] == 1
    assert np.mean(chain.indices[100:] == 1) == 1.0


def test_cramers_v_matches_scipy_association():
    rng = np.random.default_rng(5)
    for categories in (2, 3, 7):
        a = rng.integers(0, categories, 500)
        b = (a + rng.integers(0, 2, 500)) % (categories + 1)
        table = scipy.stats.contingency.crosstab(a, b).count
        ref = scipy.stats.contingency.association(table, method="cramer")
        assert stats.cramers_v(a, b) == pytest.approx(ref, rel=1e-12)
    chain = stats.imh(np.log([1.0, 2.0, 3.0, 4.0]), np.zeros(4), n_steps=10_000, seed=0)
    idx = chain.indices
    table = scipy.stats.contingency.crosstab(idx[:-1], idx[1:]).count
    ref = scipy.stats.contingency.association(table, method="cramer")
    assert chain.cramers_v == pytest.approx(ref, rel=1e-12)


def test_effective_sample_size_of_iid_and_sticky_traces():
    rng = np.random.default_rng(6)
    iid = rng.normal(size=20_000)
    assert stats.effective_sample_size(iid) == pytest.approx(20_000, rel=0.1)
    sticky = np.repeat(rng.normal(size=2_000), 10)  # each value held 10 steps
    assert stats.effective_sample_size(sticky) == pytest.approx(2_000, rel=0.2)
    assert np.isnan(stats.effective_sample_size(np.ones(10)))


# --- resampled corpora -------------------------------------------------------------------------


@pytest.mark.parametrize("corpus_size", [7, 300, 200_000])
def test_corpus_counts_have_the_exact_multinomial_law(corpus_size):
    # Pool = a chain's states: item 0 twice, item 1 five times, item 2 three times (C = 10).
    # Column 0 of values is the indicator of item 1, so corpus_size * mean ~ Binomial(M, 1/2).
    pool = np.array([0, 0, 1, 1, 1, 1, 1, 2, 2, 2])
    values = np.array([[0.0, 1.0], [1.0, 2.0], [0.0, 3.0]])
    n_corpora = 20_000
    means = stats.resample_means(
        values, n_corpora=n_corpora, corpus_size=corpus_size, seed=1, indices=pool
    )
    assert means.shape == (n_corpora, 2)
    counts = np.rint(means[:, 0] * corpus_size).astype(int)
    np.testing.assert_allclose(counts, means[:, 0] * corpus_size, atol=1e-6)
    binom = scipy.stats.binom(corpus_size, 0.5)
    # Chi-square goodness of fit over bins of the binomial's central range.
    edges = np.unique(binom.ppf(np.linspace(0.001, 0.999, 15)).astype(int))
    observed = np.histogram(counts, bins=np.r_[-0.5, edges + 0.5, corpus_size + 0.5])[0]
    cdf = binom.cdf(np.r_[edges, corpus_size])
    expected = np.diff(np.r_[0.0, cdf]) * n_corpora
    keep = expected > 5
    chi2 = ((observed[keep] - expected[keep]) ** 2 / expected[keep]).sum()
    assert chi2 < scipy.stats.chi2(keep.sum() - 1).ppf(0.999), (chi2, observed, expected)
    # The corpus means of column 1 average to the pool mean (2 * .2 + 2 * .5 ... = 2.1).
    assert means[:, 1].mean() == pytest.approx(2.1, abs=4 * means[:, 1].std() / np.sqrt(n_corpora))


@pytest.mark.parametrize("corpus_size", [5, 100_000])
def test_weighted_corpora_have_the_multinomial_law(corpus_size):
    rng = np.random.default_rng(3)
    weights = rng.dirichlet(np.full(50, 0.3))
    values = np.column_stack([np.arange(50) == 7, rng.normal(size=50)]).astype(float)
    means = stats.resample_means(values, n_corpora=20_000, corpus_size=corpus_size, seed=2,
                                 weights=weights * 3.0)  # fmt: skip
    p = weights[7]
    assert means[:, 0].mean() == pytest.approx(
        p, abs=5 * np.sqrt(p * (1 - p) / corpus_size / 20_000)
    )
    assert means[:, 0].var() == pytest.approx(p * (1 - p) / corpus_size, rel=0.05)
    assert means[:, 1].mean() == pytest.approx(weights @ values[:, 1], abs=0.01)
    with pytest.raises(ValueError, match="cannot both be given"):
        stats.resample_means(
            values, n_corpora=2, corpus_size=3, seed=0, indices=[0], weights=weights
        )
    with pytest.raises(ValueError, match="`weights` has 2 values but `values` has 50"):
        stats.resample_means(values, n_corpora=2, corpus_size=3, seed=0, weights=[1.0, 2.0])


def test_resample_means_without_indices_and_one_column():
    values = np.arange(10.0)
    means = stats.resample_means(values, n_corpora=5000, corpus_size=50, seed=2)
    assert means.shape == (5000,)
    assert means.mean() == pytest.approx(4.5, abs=0.05)
    assert means.var() == pytest.approx(values.var() / 50, rel=0.1)
    again = stats.resample_means(values, n_corpora=5000, corpus_size=50, seed=2)
    np.testing.assert_array_equal(means, again)
    one = with_threads(
        1, lambda: stats.resample_means(values, n_corpora=64, corpus_size=10**5, seed=3)
    )
    two = with_threads(
        2, lambda: stats.resample_means(values, n_corpora=64, corpus_size=10**5, seed=3)
    )
    np.testing.assert_array_equal(one, two)


def test_paper_scale_imh_and_corpora():
    rng = np.random.default_rng(7)
    n = 2000
    log_target = rng.normal(-150, 20, n)
    log_proposal = log_target + rng.normal(0, 0.5, n)
    values = np.column_stack([rng.normal(4, 1, n), log_target])
    chain = stats.imh(log_target, log_proposal, n_steps=200_000, seed=0)
    means = stats.resample_means(
        values, n_corpora=2000, corpus_size=200_000, seed=0, indices=chain.indices
    )
    assert means.shape == (2000, 2)
    chain_means = values[chain.indices].mean(axis=0)
    np.testing.assert_allclose(means.mean(axis=0), chain_means, rtol=1e-3)


# --- ragged reductions -------------------------------------------------------------------------


@given(st.lists(st.integers(0, 6), min_size=1, max_size=40), st.integers(0, 2**32 - 1))
def test_segments_match_numpy(lengths, seed):
    rng = np.random.default_rng(seed)
    offsets = np.r_[0, np.cumsum(lengths)]
    values = rng.normal(size=offsets[-1])
    expected = np.array([values[a:b].sum() for a, b in zip(offsets[:-1], offsets[1:], strict=True)])
    np.testing.assert_allclose(stats.segment_sum(values, offsets), expected, rtol=1e-12, atol=1e-12)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = expected / np.array(lengths)
    np.testing.assert_allclose(stats.segment_mean(values, offsets), mean, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(stats.segment_count(offsets, len(values)), lengths)


def test_segments_propagate_minus_infinity():
    out = stats.segment_sum([-1.0, -np.inf, -2.0], [0, 2, 3])
    assert out[0] == -np.inf and out[1] == -2.0


# --- diagnostics -------------------------------------------------------------------------------


def test_typicality_split():
    result = stats.typicality([-5.0, -5.0004, -4.99, -5.2], 5.0, tolerance=0.001)
    np.testing.assert_array_equal(result.typical, [True, True, False, False])
    np.testing.assert_allclose(result.sample_entropy, [5.0, 5.0004, 4.99, 5.2])
    assert result.fraction_typical == 0.5


def test_simpson_reports_within_and_between_against_scipy():
    rng = np.random.default_rng(8)
    x, y, g = [], [], []
    for k, label in enumerate(["temperature=0.5", "temperature=1.0", "temperature=1.5"]):
        xs = rng.normal(-100 - 40 * k, 5, 200)
        ys = 0.05 * (xs + 100 + 40 * k) + 4 + 0.3 * k + rng.normal(0, 0.1, 200)
        x += list(xs)
        y += list(ys)
        g += [label] * 200
    x, y, g = np.array(x), np.array(y), np.array(g)
    result = stats.simpson(x, y, g)
    for label in np.unique(g):
        ref = scipy.stats.pearsonr(x[g == label], y[g == label])
        assert result.within[label].statistic == pytest.approx(ref.statistic, rel=1e-12)
        assert result.group_sizes[label] == 200
    means = [(x[g == lab].mean(), y[g == lab].mean()) for lab in np.unique(g)]
    ref = scipy.stats.pearsonr(*np.array(means).T)
    assert result.between.statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert result.pooled.statistic == pytest.approx(scipy.stats.pearsonr(x, y).statistic, rel=1e-12)
    # Positive within each configuration, negative across them: the paper's reversal.
    assert all(c.statistic > 0 for c in result.within.values())
    assert result.between.statistic < 0 and result.pooled.statistic < 0
    assert not result.reversal
    spear = stats.simpson(x, y, g, method="spearman")
    assert spear.pooled.statistic == pytest.approx(scipy.stats.spearmanr(x, y).statistic, rel=1e-12)


def test_tradeoff_line_and_implied_beta():
    rng = np.random.default_rng(9)
    beta = 0.8
    mean_log_prior = rng.normal(-150, 10, 400)
    mean_reward = -beta * mean_log_prior + rng.normal(0, 0.5, 400)
    line = stats.tradeoff_line(mean_log_prior, mean_reward, n_resamples=1000, seed=1)
    ref = scipy.stats.linregress(mean_log_prior, mean_reward)
    assert line.regression.slope == pytest.approx(ref.slope, rel=1e-10)
    assert line.slope.low < ref.slope < line.slope.high
    # The bootstrap standard error of the slope is close to the analytic one.
    assert line.slope.standard_error == pytest.approx(ref.stderr, rel=0.15)
    assert abs(ref.slope + beta) < 4 * ref.stderr
    # Per string: log pi = log p + r / beta - log Z(prompt).
    n = 1000
    prompt = rng.integers(0, 10, n)
    log_z = rng.normal(0, 2, 10)
    reward = rng.normal(0, 1, n)
    log_prior = rng.normal(-100, 10, n)
    log_aligned = log_prior + reward / beta - log_z[prompt]
    fit = stats.implied_beta(log_aligned, log_prior, reward, groups=prompt)
    assert fit.beta == pytest.approx(beta, rel=1e-10)
    assert fit.r_squared == pytest.approx(1.0, abs=1e-10)
    noise = rng.normal(0, 1, n)
    noisy = stats.implied_beta(log_aligned + noise, log_prior, reward)
    ref = scipy.stats.linregress(reward, log_aligned + noise - log_prior)
    assert noisy.inverse_beta == pytest.approx(ref.slope, rel=1e-10)
    assert noisy.intercept == pytest.approx(ref.intercept, rel=1e-10)
    assert noisy.r_squared == pytest.approx(ref.rvalue**2, rel=1e-10)
    assert noisy.stderr == pytest.approx(ref.stderr, rel=1e-10)
