"""Bad input to every statistic gives a ValueError (or TypeError) that names the argument, never a
panic or a silent result."""

from __future__ import annotations

import numpy as np
import pytest

from tradeoff import stats

X = np.array([1.0, 2.0, 3.0, 4.0])
Y = np.array([2.0, 1.0, 4.0, 3.0])

CASES = [
    # (call, exception, message)
    (
        lambda: stats.pearson([1.0, np.nan, 2.0], [1.0, 2.0, 3.0]),
        ValueError,
        r"`x` has NaN at index 1",
    ),
    (lambda: stats.spearman(X, [1.0, 2.0, np.inf, 0.0]), ValueError, r"`y` has inf at index 2"),
    (lambda: stats.kendall(X, Y[:3]), ValueError, r"`y` has 3 values but `x` has 4"),
    (lambda: stats.linregress([], []), ValueError, r"`x` is empty"),
    (lambda: stats.pearson([1.0], [2.0]), ValueError, r"`x` has 1 values; it needs at least 2"),
    (lambda: stats.pearson(np.ones((2, 2)), X), ValueError, r"`x` must be 1-dimensional"),
    (lambda: stats.pearson(["a", "b"], X[:2]), TypeError, r"`x` must be an array of numbers"),
    (
        lambda: stats.bootstrap_ci(X, n_resamples=0),
        ValueError,
        r"`n_resamples` must be an integer >= 1, got 0",
    ),
    (
        lambda: stats.bootstrap_ci(X, n_resamples=-5),
        ValueError,
        r"`n_resamples` must be an integer >= 1",
    ),
    (lambda: stats.bootstrap_ci(X, level=1.0), ValueError, r"`level` must be in \(0, 1\), got 1.0"),
    (lambda: stats.bootstrap_ci(X, level=0.0), ValueError, r"`level` must be in \(0, 1\)"),
    (lambda: stats.bootstrap_ci(X, level=float("nan")), ValueError, r"`level` must be in \(0, 1\)"),
    (lambda: stats.bootstrap_ci([np.nan, 1.0]), ValueError, r"`x` has NaN at index 0"),
    (lambda: stats.bootstrap_ci([]), ValueError, r"`x` is empty"),
    (lambda: stats.bootstrap_ci(X, statistic="median"), ValueError, r"`statistic` must be one of"),
    (
        lambda: stats.bootstrap_ci(X, method="bc"),
        ValueError,
        r"`method` must be \"percentile\" or \"bca\"",
    ),
    (lambda: stats.bootstrap_ci(X, statistic="pearson"), ValueError, r"`y` is required"),
    (lambda: stats.bootstrap_ci(X, y=Y, statistic="mean"), ValueError, r"`y` must not be given"),
    (lambda: stats.bootstrap_ci(X, y=Y[:2], statistic="pearson"), ValueError, r"`y` has 2 values"),
    (
        lambda: stats.bootstrap_ci(X, seed=-1),
        ValueError,
        r"`seed` must be an integer in \[0, 2\*\*64\)",
    ),
    (lambda: stats.imh(X, Y[:3], n_steps=10, seed=0), ValueError, r"`log_proposal` has 3 values"),
    (lambda: stats.imh([], [], n_steps=10, seed=0), ValueError, r"`log_target` is empty"),
    (
        lambda: stats.imh([0.0, np.nan], [0.0, 0.0], n_steps=10, seed=0),
        ValueError,
        r"`log_target` has NaN",
    ),
    (
        lambda: stats.imh([0.0, 1.0], [0.0, -np.inf], n_steps=10, seed=0),
        ValueError,
        r"`log_proposal` has -inf",
    ),
    (
        lambda: stats.imh(X, Y, n_steps=0, seed=0),
        ValueError,
        r"`n_steps` must be an integer >= 1, got 0",
    ),
    (lambda: stats.imh(X, Y, n_steps=2.5, seed=0), TypeError, r"`n_steps` must be an integer"),
    (
        lambda: stats.resample_means(X, n_corpora=3, corpus_size=0, seed=0),
        ValueError,
        r"`corpus_size` must be an integer >= 1, got 0",
    ),
    (
        lambda: stats.resample_means(X, n_corpora=0, corpus_size=5, seed=0),
        ValueError,
        r"`n_corpora` must be an integer >= 1, got 0",
    ),
    (
        lambda: stats.resample_means(X, n_corpora=3, corpus_size=5, seed=0, indices=[0, 4]),
        ValueError,
        r"`indices` has 4 at position 1; indices must be in \[0, 4\)",
    ),
    (
        lambda: stats.resample_means(X, n_corpora=3, corpus_size=5, seed=0, indices=[0, -1]),
        ValueError,
        r"`indices` must hold integers in \[0, ",
    ),
    (
        lambda: stats.resample_means(X, n_corpora=3, corpus_size=5, seed=0, indices=[0.5]),
        TypeError,
        r"`indices` must hold integers",
    ),
    (
        lambda: stats.resample_means(X, n_corpora=3, corpus_size=5, seed=0, indices=[]),
        ValueError,
        r"`indices` is empty",
    ),
    (
        lambda: stats.resample_means([np.inf, 1.0], n_corpora=3, corpus_size=5, seed=0),
        ValueError,
        r"`values` has inf at index 0",
    ),
    (
        lambda: stats.resample_means([], n_corpora=3, corpus_size=5, seed=0),
        ValueError,
        r"`values` is empty",
    ),
    (
        lambda: stats.resample_means(np.ones((2, 2, 2)), n_corpora=3, corpus_size=5, seed=0),
        ValueError,
        r"`values` must be \[N\] or \[N, m\]",
    ),
    (
        lambda: stats.segment_sum(X, [0, 2, 3]),
        ValueError,
        r"`offsets` must end at len\(values\) = 4, got 3",
    ),
    (lambda: stats.segment_sum(X, [0, 3, 2, 4]), ValueError, r"`offsets` must not decrease"),
    (lambda: stats.segment_sum(X, [1, 4]), ValueError, r"`offsets` must start at 0, got 1"),
    (lambda: stats.segment_sum(X, []), ValueError, r"`offsets` is empty"),
    (
        lambda: stats.segment_sum(X, [0, -1, 4]),
        ValueError,
        r"`offsets` must hold integers in \[0, ",
    ),
    (lambda: stats.segment_sum([np.nan], [0, 1]), ValueError, r"`values` has NaN at index 0"),
    (
        lambda: stats.typicality(X, 1.0, tolerance=0.0),
        ValueError,
        r"`tolerance` must be a finite number > 0",
    ),
    (lambda: stats.typicality(X, -1.0), ValueError, r"`entropy` must be a finite number >= 0"),
    (lambda: stats.simpson(X, Y, [0, 1]), ValueError, r"`groups` has 2 values but `x` has 4"),
    (
        lambda: stats.simpson(X, Y, [0, 0, 1, 1], method="kendall"),
        ValueError,
        r"`method` must be \"pearson\" or \"spearman\"",
    ),
    (lambda: stats.tradeoff_line(X, Y, level=2.0), ValueError, r"`level` must be in \(0, 1\)"),
    (lambda: stats.implied_beta(X, Y, X[:3]), ValueError, r"`reward` has 3 values"),
    (lambda: stats.cramers_v([0, 1], [0]), ValueError, r"`b` has 1 values but `a` has 2"),
]


@pytest.mark.parametrize("call, exception, message", CASES, ids=[c[2][:40] for c in CASES])
def test_bad_input_names_the_argument(call, exception, message):
    with pytest.raises(exception, match=message):
        call()
