"""Corpus statistics, computed in the Rust core: correlations with p-values, bootstrap intervals,
the paper's IMH correction, resampled corpora, ragged reductions and trade-off diagnostics.

Results are small frozen dataclasses with named fields, in the manner of ``scipy.stats``; the
statistics and p-values match scipy's (scipy is not needed at run time). Every random result is a
pure function of its ``seed``: the thread count (``tradeoff.set_num_threads``) never changes it.

>>> import numpy as np
>>> from tradeoff import stats
>>> x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
>>> round(stats.spearman(x, x**2).statistic, 12)
1.0
>>> chain = stats.imh(np.log([1.0, 2.0, 3.0]), np.zeros(3), n_steps=1000, seed=0)
>>> chain.indices.shape
(1000,)
>>> stats.resample_means(x, n_corpora=4, corpus_size=10, seed=0).shape
(4,)
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Hashable
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

import numpy as np

from . import _core
from .errors import check_seed

__all__ = [
    "BestOfNResult",
    "BootstrapResult",
    "ConstantInputWarning",
    "CorpusIntervalResult",
    "CorrelationResult",
    "IMHResult",
    "ImpliedBetaResult",
    "LinregressResult",
    "SimpsonResult",
    "TradeoffLineResult",
    "TypicalityResult",
    "best_of_n",
    "best_of_n_weights",
    "bootstrap_ci",
    "cluster_bootstrap_correlations",
    "corpus_correlation_ci",
    "cramers_v",
    "effective_sample_size",
    "imh",
    "implied_beta",
    "kendall",
    "linregress",
    "pareto_k",
    "pareto_k_threshold",
    "pearson",
    "plane_fit",
    "grouped_plane_slopes",
    "resample_means",
    "segment_count",
    "segment_mean",
    "segment_sum",
    "simpson",
    "spearman",
    "tradeoff_line",
    "typicality",
]

_U32_MAX = np.iinfo(np.uint32).max


class ConstantInputWarning(RuntimeWarning):
    """A column is constant, so its correlation is undefined (the result is NaN, as in scipy)."""


# --- input conversion -------------------------------------------------------------------------


def _vector(name: str, values: Any) -> np.ndarray:
    """A contiguous 1-d float64 array, or a TypeError / ValueError naming the argument."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise TypeError(f"`{name}` must be an array of numbers: {error}") from None
    if array.ndim != 1:
        raise ValueError(f"`{name}` must be 1-dimensional, got shape {array.shape}")
    return np.ascontiguousarray(array)


def _integers(name: str, values: Any, dtype: type, upper: int) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"`{name}` must be 1-dimensional, got shape {array.shape}")
    if array.size and array.dtype.kind not in "iu":
        raise TypeError(f"`{name}` must hold integers, got dtype {array.dtype}")
    if array.size:
        low, high = int(array.min()), int(array.max())
        if low < 0 or high > upper:
            bad = low if low < 0 else high
            raise ValueError(f"`{name}` must hold integers in [0, {upper}], got {bad}")
    return np.ascontiguousarray(array, dtype=dtype)


def _size(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"`{name}` must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}, got {value}")
    return int(value)


def _warn_if_constant(x: np.ndarray, y: np.ndarray, statistic: float) -> None:
    if np.isnan(statistic) and (np.all(x == x[0]) or np.all(y == y[0])):
        warnings.warn(
            "An input array is constant; the correlation coefficient is not defined.",
            ConstantInputWarning,
            stacklevel=3,
        )


# --- correlations -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CorrelationResult:
    """A correlation coefficient and its two-sided p-value."""

    statistic: float
    pvalue: float


@dataclass(frozen=True)
class LinregressResult:
    """Least-squares line ``y = slope * x + intercept`` (as ``scipy.stats.linregress``)."""

    slope: float
    intercept: float
    rvalue: float
    pvalue: float
    stderr: float
    intercept_stderr: float


def _correlation(kind: str, x: Any, y: Any) -> CorrelationResult:
    xs, ys = _vector("x", x), _vector("y", y)
    statistic, pvalue = getattr(_core, kind)(xs, ys)
    if xs.size == ys.size and xs.size:
        _warn_if_constant(xs, ys, statistic)
    return CorrelationResult(statistic, pvalue)


def pearson(x: Any, y: Any) -> CorrelationResult:
    """Pearson's r; the p-value is exact for bivariate normal data (scipy's ``pearsonr``).

    Needs at least 2 finite pairs; n = 2 gives r = ±1 with p = 1. A constant column gives NaN and
    a :class:`ConstantInputWarning`.
    """
    return _correlation("pearson", x, y)


def spearman(x: Any, y: Any) -> CorrelationResult:
    """Spearman's rho on average ranks (ties share their mean rank), with scipy's t-based
    p-value (NaN for n = 2, as in scipy). A constant column gives NaN and a warning."""
    return _correlation("spearman", x, y)


def kendall(x: Any, y: Any) -> CorrelationResult:
    """Kendall's tau-b in O(n log n), with scipy's p-value: exact without ties for n <= 33,
    otherwise the tie-corrected normal approximation. A constant column gives NaN."""
    return _correlation("kendall", x, y)


def plane_fit(x: Any, y: Any, z: Any) -> tuple[float, float, float]:
    """The least-squares fit ``y ~ intercept + b_x x + b_z z``: ``(intercept, b_x, b_z)``, all
    NaN when the design is degenerate (x or z constant, or one a linear function of the other).
    ``b_x`` is the slope of y on x at fixed z. A 3-column solve: numpy, not the core."""
    xs, ys, zs = _vector("x", x), _vector("y", y), _vector("z", z)
    if not xs.size == ys.size == zs.size:
        raise ValueError(f"`x`, `y` and `z` need one length, got {xs.size}, {ys.size}, {zs.size}")
    # Centred columns, against the cancellation of large means.
    design = np.column_stack([np.ones_like(xs), xs - xs.mean(), zs - zs.mean()])
    coef, _, rank, _ = np.linalg.lstsq(design, ys, rcond=None)
    if rank < 3:
        return float("nan"), float("nan"), float("nan")
    b_x, b_z = float(coef[1]), float(coef[2])
    return float(coef[0] - b_x * xs.mean() - b_z * zs.mean()), b_x, b_z


def grouped_plane_slopes(x: Any, y: Any, z: Any, groups: Any, group_counts: Any) -> np.ndarray:
    """The ``b_x`` of :func:`plane_fit` on every resample of a bootstrap over groups: point i
    belongs to group ``groups[i]`` (0 .. k - 1) and resample b holds group g
    ``group_counts[b, g]`` times (all its points, each time). From the groups' sums and cross
    products, O(k) per resample instead of a refit of its points; NaN where a resample's design
    is degenerate (fewer than 3 points, x or z constant, or one a linear function of the other).
    """
    xs, ys, zs = _vector("x", x), _vector("y", y), _vector("z", z)
    labels = np.asarray(groups)
    counts = np.asarray(group_counts, dtype=np.float64)
    if not xs.size == ys.size == zs.size == labels.size:
        raise ValueError(
            f"`x`, `y`, `z` and `groups` need one length, got {xs.size}, {ys.size}, {zs.size}, "
            f"{labels.size}"
        )
    if counts.ndim != 2:
        raise ValueError(f"`group_counts` must be [n_resamples, n_groups], got {counts.shape}")
    k = counts.shape[1]
    if labels.size and not (np.issubdtype(labels.dtype, np.integer) and 0 <= labels.min()
                            and labels.max() < k):  # fmt: skip
        raise ValueError(f"`groups` must hold integers in [0, {k}) (the columns of group_counts)")
    # Centred on the full data first, against the cancellation of large means.
    dx, dy, dz = xs - xs.mean(), ys - ys.mean(), zs - zs.mean()
    columns = (np.ones_like(dx), dx, dy, dz, dx * dx, dx * dz, dz * dz, dx * dy, dz * dy)
    n, sx, sy, sz, sxx, sxz, szz, sxy, szy = _resampled_sums(labels, counts, columns)
    with np.errstate(divide="ignore", invalid="ignore"):
        cxx, czz = sxx - sx * sx / n, szz - sz * sz / n
        cxz, cxy, czy = sxz - sx * sz / n, sxy - sx * sy / n, szy - sz * sy / n
        det = cxx * czz - cxz * cxz
        slopes = (cxy * czz - czy * cxz) / det
    # A rank-deficient design leaves det at rounding level against cxx * czz.
    slopes[~(det > 1e-12 * cxx * czz) | (n < 3)] = np.nan
    return slopes


def _resampled_sums(labels: np.ndarray, counts: np.ndarray, columns: Any) -> np.ndarray:
    """Each column's sum over each resample of a bootstrap over groups, [n_columns,
    n_resamples]: the groups' sums (point i in group ``labels[i]``) weighted by how many times
    the resample drew the group (``counts[b, g]``)."""
    k = counts.shape[1]
    sums = np.stack([np.bincount(labels, w, minlength=k) for w in columns], axis=1)
    return (counts @ sums).T


def linregress(x: Any, y: Any) -> LinregressResult:
    """Least-squares regression of ``y`` on ``x`` (``scipy.stats.linregress``); ``stderr`` is the
    slope's standard error. Raises ``ValueError`` when every ``x`` is the same."""
    return LinregressResult(*_core.linregress(_vector("x", x), _vector("y", y)))


# --- bootstrap --------------------------------------------------------------------------------


@dataclass(frozen=True)
class BootstrapResult:
    """An estimate, its bootstrap interval ``[low, high]`` and standard error.

    ``bootstrap_distribution`` holds the statistic of every resample.
    """

    statistic: float
    low: float
    high: float
    standard_error: float
    bootstrap_distribution: np.ndarray = field(repr=False)

    @property
    def confidence_interval(self) -> tuple[float, float]:
        return (self.low, self.high)


_STATISTICS = ("mean", "mean_difference", "pearson", "spearman", "kendall", "slope")


def bootstrap_ci(
    x: Any,
    *,
    y: Any = None,
    statistic: str = "mean",
    n_resamples: int = 10_000,
    level: float = 0.95,
    seed: int = 0,
    method: str = "percentile",
) -> BootstrapResult:
    """Bootstrap confidence interval (percentile or BCa, as ``scipy.stats.bootstrap``).

    ``statistic`` is ``"mean"`` of ``x``, or a paired statistic of ``(x, y)`` resampled as pairs:
    ``"pearson"``, ``"spearman"``, ``"kendall"`` (tau-b), ``"mean_difference"`` (mean of
    ``x - y``) or ``"slope"`` (of the least-squares line of ``y`` on ``x``). ``method`` is
    ``"percentile"`` or ``"bca"`` (bias-corrected and accelerated; its jackknife costs O(n),
    except Spearman's O(n^2) and Kendall's O(n^2 log n)).
    Resamples run in parallel, each from its own stream of ``seed``, so the result does not
    depend on the thread count. A resample whose statistic is undefined (a constant resample for
    a correlation) makes the interval NaN.
    """
    if statistic not in _STATISTICS:
        raise ValueError(f"`statistic` must be one of {_STATISTICS}, got {statistic!r}")
    method_key = method.lower() if isinstance(method, str) else method
    if method_key not in ("percentile", "bca"):
        raise ValueError(f'`method` must be "percentile" or "bca", got {method!r}')
    n_resamples = _size("n_resamples", n_resamples)
    level = float(level)
    if not 0.0 < level < 1.0:
        raise ValueError(f"`level` must be in (0, 1), got {level}")
    xs = _vector("x", x)
    ys = None if y is None else _vector("y", y)
    result = _core.bootstrap_ci(xs, ys, statistic, n_resamples, level, check_seed(seed), method_key)
    return BootstrapResult(*result)


_CORRELATIONS = {"pearson": pearson, "spearman": spearman, "kendall": kendall}


def _check_level(level: Any) -> float:
    level = float(level)
    if not 0.0 < level < 1.0:
        raise ValueError(f"`level` must be in (0, 1), got {level}")
    return level


def cluster_bootstrap_correlations(
    x: Any,
    y: Any,
    groups: Any,
    *,
    n_resamples: int = 1_000,
    level: float = 0.95,
    seed: int = 0,
    per_group: int | None = None,
) -> dict[str, BootstrapResult]:
    """Percentile intervals of the pooled Pearson, Spearman and Kendall (tau-b) correlations of
    ``(x, y)`` from a bootstrap over groups: each resample draws as many groups as there are,
    with replacement, and recomputes the pooled statistic on their points (a group drawn twice
    enters twice). Use it when the points of a group are not independent draws, e.g. corpora
    resampled from one configuration's strings: the group is then the unit.

    Pearson is exact on all points (each resample sums the groups' sufficient statistics).
    Spearman and Kendall, which need the points themselves, use a fixed random subsample of at
    most ``per_group`` points of each group (all points when None): their bootstrap
    distribution is translated by (full-data statistic - subsample statistic), so it is centred
    where the full data's is. A resample with an undefined statistic makes that interval NaN.
    Draws come from (``seed``, purpose) only.
    """
    xs, ys = _vector("x", x), _vector("y", y)
    labels = np.asarray(groups)
    if labels.ndim != 1 or labels.size != xs.size or xs.size != ys.size:
        raise ValueError(
            f"`x`, `y` and `groups` must be 1-dimensional of one length, got {xs.size}, "
            f"{ys.size} and shape {labels.shape}"
        )
    n_resamples = _size("n_resamples", n_resamples)
    level = _check_level(level)
    if per_group is not None:
        per_group = _size("per_group", per_group)
    _, codes = np.unique(labels, return_inverse=True)
    k = int(codes.max()) + 1 if codes.size else 0
    if k < 2:
        raise ValueError(f"`groups` has {k} distinct value(s); a bootstrap over groups needs 2")
    seed = check_seed(seed)
    rng = np.random.default_rng([seed, 0xC1B0])
    picks = rng.integers(0, k, size=(n_resamples, k))
    counts = np.zeros((n_resamples, k))
    np.add.at(counts, (np.repeat(np.arange(n_resamples), k), picks.ravel()), 1.0)
    alpha = 100 * (1 - level) / 2
    results = {}

    # Pearson from the groups' sums (centred first, against cancellation).
    dx, dy = xs - xs.mean(), ys - ys.mean()
    columns = (np.ones_like(dx), dx, dy, dx * dx, dy * dy, dx * dy)
    n, sx, sy, sxx, syy, sxy = _resampled_sums(codes, counts, columns)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (sxy - sx * sy / n) / np.sqrt((sxx - sx * sx / n) * (syy - sy * sy / n))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConstantInputWarning)
        results["pearson"] = _percentile_result(pearson(xs, ys).statistic, np.clip(r, -1, 1), alpha)

        # Spearman and Kendall on a fixed subsample of each group.
        members = [np.flatnonzero(codes == g) for g in range(k)]
        sub_rng = np.random.default_rng([seed, 0x5AB5])
        if per_group is not None:
            members = [
                np.sort(sub_rng.choice(m, per_group, replace=False)) if len(m) > per_group else m
                for m in members
            ]
        sub = np.concatenate(members)
        # Each resample's Spearman and Kendall on its groups' subsampled points, from how many
        # times it drew each group (the points sorted once, in the core).
        replicates = dict(
            zip(
                ("spearman", "kendall"),
                _core.grouped_rank_replicates(
                    xs[sub],
                    ys[sub],
                    codes[sub].astype(np.uint32),
                    counts.astype(np.uint32).ravel(),
                    k,
                ),
                strict=True,
            )
        )
        for name in ("spearman", "kendall"):
            fn = _CORRELATIONS[name]
            full = fn(xs, ys).statistic
            shift = full - (fn(xs[sub], ys[sub]).statistic if per_group is not None else full)
            results[name] = _percentile_result(full, replicates[name] + shift, alpha)
    return results


def _percentile_result(statistic: float, replicates: np.ndarray, alpha: float) -> BootstrapResult:
    if not np.all(np.isfinite(replicates)):
        low = high = se = float("nan")
    else:
        low, high = (float(v) for v in np.percentile(replicates, [alpha, 100 - alpha]))
        se = float(replicates.std(ddof=1))
    return BootstrapResult(float(statistic), low, high, se, replicates)


@dataclass(frozen=True)
class CorpusIntervalResult:
    """A corpus-level correlation with its Fisher-z interval (see :func:`corpus_correlation_ci`):
    ``standard_error`` is on the z = atanh scale, ``pvalue`` the two-sided normal p-value of
    z / standard_error, and ``parts`` the three variances (z scale) it adds up: ``strings``,
    ``chain`` and ``corpora``."""

    statistic: float
    low: float
    high: float
    standard_error: float
    pvalue: float
    parts: dict[str, float]


def corpus_correlation_ci(
    statistic: str,
    value: float,
    x: Any,
    y: Any,
    *,
    n_corpora: int,
    weights: Any = None,
    chain_ess: float | None = None,
    level: float = 0.95,
) -> CorpusIntervalResult:
    """The interval of a correlation across corpora resampled from one chain over N strings.

    ``value`` is the ``statistic`` (``"pearson"``, ``"spearman"`` or ``"kendall"``) of the
    corpora's mean ``x`` against mean ``y``; ``x``, ``y`` are the strings' values and
    ``weights`` their weights in the chain's target (e.g. ``exp(log pi - log q)``; uniform when
    None). Large corpora have bivariate normal means whose correlation is the strings' weighted
    Pearson rho, so the statistic estimates rho (Pearson), (6/pi) asin(rho/2) (Spearman) or
    (2/pi) asin(rho) (Kendall). Its error has three independent parts, added on the Fisher z
    scale:

    - the strings: the self-normalised importance-sampling variance of rho,
      sum_i w_i^2 psi_i^2 with w normalised and psi Pearson's influence function (it is
      (1 - rho^2)^2 / N for N equally weighted bivariate normal strings; uneven weights shrink N
      to their effective number), through the map from rho to the statistic (delta method);
    - the chain: E_w[psi^2] / ``chain_ess`` (none when None: e.g. independent draws as many as
      the corpora ever use);
    - the corpora: 1 / (n - 3) (Pearson), (1 + s^2 / 2) / (n - 3) (Spearman, Bonett and
      Wright) or 0.437 / (n - 4) (Kendall, Fieller et al.) with n = ``n_corpora``.

    The interval is tanh(atanh(value) +- z_crit * standard error). NaN when the value is
    +-1 or not finite, or a variance is undefined.
    """
    if statistic not in _CORRELATIONS:
        raise ValueError(f"`statistic` must be one of {tuple(_CORRELATIONS)}, got {statistic!r}")
    level = _check_level(level)
    n_corpora = _size("n_corpora", n_corpora, 5)
    xs, ys = _vector("x", x), _vector("y", y)
    if xs.size != ys.size or xs.size < 2:
        raise ValueError(f"`x` and `y` need one length >= 2, got {xs.size} and {ys.size}")
    w = np.ones_like(xs) if weights is None else _vector("weights", weights)
    if w.size != xs.size or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError("`weights` must be one finite non-negative weight per string, not all 0")
    if chain_ess is not None and not chain_ess > 0:
        raise ValueError(f"`chain_ess` must be > 0 or None, got {chain_ess!r}")
    p = w / w.sum()
    nan = float("nan")
    value = float(value)
    with np.errstate(divide="ignore", invalid="ignore"):
        mx, my = p @ xs, p @ ys
        sx, sy = np.sqrt(p @ (xs - mx) ** 2), np.sqrt(p @ (ys - my) ** 2)
        u, v = (xs - mx) / sx, (ys - my) / sy
        rho = float(p @ (u * v))
        psi = u * v - rho / 2 * (u * u + v * v)
        v_strings = float((p * p) @ (psi * psi))
        v_chain = 0.0 if chain_ess is None else float(p @ (psi * psi)) / float(chain_ess)
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = {
            "pearson": 1.0,
            "spearman": 3 / np.pi / np.sqrt(1 - rho * rho / 4),
            "kendall": 2 / np.pi / np.sqrt(np.float64(max(1 - rho * rho, 0.0))),
        }[statistic]
    corpora = {
        "pearson": 1 / max(n_corpora - 3, 1),
        "spearman": (1 + value * value / 2) / max(n_corpora - 3, 1),
        "kendall": 0.437 / max(n_corpora - 4, 1),
    }[statistic]
    if not (math.isfinite(value) and abs(value) < 1 and math.isfinite(rho)):
        return CorpusIntervalResult(value, nan, nan, nan, nan, {})
    jacobian = (slope / (1 - value * value)) ** 2
    parts = {"strings": jacobian * v_strings, "chain": jacobian * v_chain, "corpora": corpora}
    se = math.sqrt(sum(parts.values()))
    if not math.isfinite(se) or se <= 0:
        return CorpusIntervalResult(value, nan, nan, nan, nan, parts)
    z = math.atanh(value)
    half = -NormalDist().inv_cdf((1 - level) / 2) * se
    pvalue = 2 * NormalDist().cdf(-abs(z) / se)
    return CorpusIntervalResult(value, math.tanh(z - half), math.tanh(z + half), se, pvalue, parts)


# --- IMH and resampled corpora ----------------------------------------------------------------


@dataclass(frozen=True)
class IMHResult:
    """An independent Metropolis–Hastings chain over N items.

    ``indices[t]`` is the state (an index into the inputs) after step t; ``ess`` the effective
    sample size of the log importance weight along the chain (Geyer's initial monotone sequence);
    ``cramers_v`` Cramér's V of the table of consecutive states, the paper's autocorrelation check
    (0: consecutive states independent; 1: each state determines the next).
    """

    indices: np.ndarray = field(repr=False)
    acceptance_rate: float
    ess: float
    cramers_v: float


def imh(log_target: Any, log_proposal: Any, *, n_steps: int, seed: int) -> IMHResult:
    """The paper's IMH correction: proposals uniform with replacement over the N inputs; from
    state i a proposal j is accepted with probability
    ``min(1, exp((log_target[j] - log_proposal[j]) - (log_target[i] - log_proposal[i])))``,
    evaluated in log space (no overflow). The chain starts at a uniform draw. Its long-run
    frequency of item i is proportional to ``exp(log_target[i] - log_proposal[i])``.
    """
    target = _vector("log_target", log_target)
    proposal = _vector("log_proposal", log_proposal)
    n_steps = _size("n_steps", n_steps)
    indices, rate, ess, v = _core.imh(target, proposal, n_steps, check_seed(seed))
    return IMHResult(indices, rate, ess, v)


def pareto_k(log_weights: Any) -> float:
    """The Pareto k-hat of importance weights ``exp(log_weights)`` (Vehtari, Simpson, Gelman,
    Yao and Gabry, "Pareto smoothed importance sampling", JMLR 2024): the shape of a generalised
    Pareto distribution fitted to the largest ``min(N / 5, 3 sqrt(N))`` weights by Zhang and
    Stephens' (2009) estimator, with PSIS's weak prior towards 0.5. Above
    :func:`pareto_k_threshold` the weights' tail is too heavy for a self-normalised estimate to
    be trusted (its variance may be infinite); ``-inf`` when the largest weights are all equal
    (a bounded tail); NaN for fewer than 25 weights, or when fewer than half of the largest
    weights are distinct (repeated strings: no tail shape to fit). A few dozen numbers: numpy,
    not the core.
    """
    log_w = np.sort(_vector("log_weights", log_weights))
    n = len(log_w)
    m = int(min(0.2 * n, 3 * np.sqrt(n)))
    if m < 5:
        return float("nan")
    weights = np.exp(log_w - log_w[-1])
    x = weights[-m:] - weights[-m - 1]
    if x[-1] <= 0:
        return float("-inf")
    # Repeated strings repeat their weights: a tail of a few distinct values has no shape to fit.
    if len(np.unique(x)) < m / 2:
        return float("nan")
    x_star = x[int(m / 4 + 0.5) - 1]
    if x_star <= 0:  # ties at the threshold: the smallest exceedance instead
        x_star = x[x > 0][0]
    n_theta = 30 + int(np.sqrt(m))
    theta = 1 / x[-1] + (1 - np.sqrt(n_theta / (np.arange(1, n_theta + 1) - 0.5))) / (3 * x_star)
    k = np.log1p(-theta[:, None] * x).mean(axis=1)
    log_likelihood = m * (np.log(-theta / k) - k - 1)
    posterior = 1 / np.exp(log_likelihood - log_likelihood[:, None]).sum(axis=1)
    k_hat = float(np.log1p(-np.sum(theta * posterior) * x).mean())
    return (m * k_hat + 10 * 0.5) / (m + 10)


def pareto_k_threshold(n: int) -> float:
    """PSIS's reliability threshold for k-hat with ``n`` weights: ``min(1 - 1 / log10(n), 0.7)``."""
    return min(1 - 1 / np.log10(max(n, 11)), 0.7)


def cramers_v(a: Any, b: Any) -> float:
    """Cramér's V of the contingency table of two category sequences (non-negative integer codes),
    without continuity correction, as ``scipy.stats.contingency.association(method="cramer")`` on
    the table of the categories that occur. NaN when either side has a single category."""
    return _core.cramers_v(
        _integers("a", a, np.uint32, _U32_MAX), _integers("b", b, np.uint32, _U32_MAX)
    )


def effective_sample_size(trace: Any) -> float:
    """Effective sample size of a numeric chain trace (Geyer's initial monotone sequence); NaN for
    a constant trace."""
    ess = _core.effective_sample_size(_vector("trace", trace))
    return float("nan") if ess is None else ess


def resample_means(
    values: Any,
    *,
    n_corpora: int,
    corpus_size: int,
    seed: int,
    indices: Any = None,
    weights: Any = None,
) -> np.ndarray:
    """Means of ``values`` over ``n_corpora`` corpora of ``corpus_size`` draws with replacement.

    ``values`` is ``[N]`` or ``[N, m]`` (m value columns resampled together); the result is
    ``[n_corpora]`` or ``[n_corpora, m]``. Draws are uniform over the N rows, or over the entries
    of ``indices`` (e.g. an IMH chain's states) when given, or row i with probability
    ``weights[i] / sum(weights)`` (e.g. a distribution over outcomes). Exact: for large corpora the
    item counts are drawn as a multinomial (conditional binomials), which has the distribution of
    the one-by-one draws at a cost independent of ``corpus_size``; small corpora are drawn one by
    one (weights through an alias table).
    """
    try:
        table = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise TypeError(f"`values` must be an array of numbers: {error}") from None
    if table.ndim not in (1, 2):
        raise ValueError(f"`values` must be [N] or [N, m], got shape {table.shape}")
    if table.size == 0:
        raise ValueError("`values` is empty; it needs at least one row and column")
    one_column = table.ndim == 1
    table = np.ascontiguousarray(table.reshape(len(table), -1) if one_column else table)
    if indices is not None and weights is not None:
        raise ValueError("`indices` and `weights` cannot both be given; pick one pool")
    pool = None if indices is None else _integers("indices", indices, np.uint32, _U32_MAX)
    probabilities = None if weights is None else _vector("weights", weights)
    means = _core.resample_means(
        table,
        _size("n_corpora", n_corpora),
        _size("corpus_size", corpus_size),
        check_seed(seed),
        pool,
        probabilities,
    )
    return means[:, 0] if one_column else means


# --- ragged reductions ------------------------------------------------------------------------


def _offsets(offsets: Any) -> np.ndarray:
    return _integers("offsets", offsets, np.uint64, np.iinfo(np.int64).max)


def segment_sum(values: Any, offsets: Any) -> np.ndarray:
    """Per-segment sums of a ragged array: segment s is ``values[offsets[s]:offsets[s + 1]]``.

    ``offsets`` starts at 0, never decreases and ends at ``len(values)`` (n_segments + 1 entries),
    e.g. ``np.concatenate([[0], np.cumsum(n_tokens)])``. ±inf propagate (a -inf token
    log-probability makes its string's -inf); NaN is an error.

    >>> segment_sum([1.0, 2.0, 3.0, 4.0], [0, 1, 1, 4])
    array([1., 0., 9.])
    """
    return _core.segment_sum(_vector("values", values), _offsets(offsets))


def segment_mean(values: Any, offsets: Any) -> np.ndarray:
    """Per-segment means (NaN for an empty segment); see :func:`segment_sum`."""
    return _core.segment_mean(_vector("values", values), _offsets(offsets))


def segment_count(offsets: Any, n_values: int) -> np.ndarray:
    """Per-segment lengths, after checking ``offsets`` against ``n_values``."""
    return _core.segment_count(_offsets(offsets), _size("n_values", n_values, 0)).astype(np.int64)


# --- trade-off diagnostics --------------------------------------------------------------------


@dataclass(frozen=True)
class TypicalityResult:
    """Per corpus: its sample entropy ``-mean log p``, the deviation from the reference entropy,
    and whether it is typical (deviation < tolerance)."""

    entropy: float
    tolerance: float
    sample_entropy: np.ndarray = field(repr=False)
    deviation: np.ndarray = field(repr=False)
    typical: np.ndarray = field(repr=False)

    @property
    def fraction_typical(self) -> float:
        return float(self.typical.mean()) if self.typical.size else float("nan")


def typicality(mean_log_probs: Any, entropy: float, *, tolerance: float = 1e-3) -> TypicalityResult:
    """Split corpora into typical and atypical for a distribution of entropy ``entropy`` (nats):
    corpus i is typical when ``|entropy + mean_log_probs[i]| < tolerance`` (the paper's toy
    experiment uses 0.001)."""
    means = _vector("mean_log_probs", mean_log_probs)
    h, dev, typical = _core.typicality(means, float(entropy), float(tolerance))
    return TypicalityResult(float(entropy), float(tolerance), h, dev, typical)


def best_of_n_weights(rewards: Any, offsets: Any, n: int) -> np.ndarray:
    """Each sample's weight in the unbiased best-of-``n`` estimate of its prompt.

    Prompt p's samples are ``rewards[offsets[p]:offsets[p + 1]]`` (k_p >= n samples of a base
    policy). Sample j's weight is the probability that it is the output of best-of-n over a
    uniformly random n-subset of its prompt's samples, ties at the top shared equally:
    ``sum_j w_j f_j`` is the U-statistic, the unbiased estimate of ``E[f(best of n)]``. Within a
    prompt the weights sum to 1; O(k log k) per prompt.

    >>> best_of_n_weights([0.1, 0.7, 0.3], [0, 3], 2)
    array([0.        , 0.66666667, 0.33333333])
    """
    return _core.best_of_n_weights(_vector("rewards", rewards), _offsets(offsets), _size("n", n))


@dataclass(frozen=True)
class BestOfNResult:
    """Best-of-``n`` estimated from k samples per prompt.

    ``per_prompt[name]``: the unbiased estimate of the picked string's value for each prompt;
    ``mean[name]``: their mean over prompts. ``kl_bound``: ``log n - (n - 1) / n``, the KL of
    best-of-n to the base policy (exact for continuous rewards without ties, an upper bound
    otherwise). ``kl_estimate``: the mean over prompts of the plug-in KL between the weights and
    the uniform distribution over the k samples (biased low for small k). ``cost``: strings per
    output (n)."""

    n: int
    per_prompt: dict[str, np.ndarray] = field(repr=False)
    mean: dict[str, float]
    kl_bound: float
    kl_estimate: float

    @property
    def cost(self) -> int:
        return self.n


def best_of_n(
    rewards: Any, offsets: Any, n: int, values: dict[str, Any] | None = None
) -> BestOfNResult:
    """Best-of-``n`` from k samples per prompt (see :func:`best_of_n_weights`): the unbiased
    per-prompt estimates of the reward and of every column in ``values`` (one entry per sample,
    e.g. the prior log-likelihood and the length), their means over prompts, and the KL to the
    base policy."""
    reward = _vector("rewards", rewards)
    bounds = _offsets(offsets)
    weights = best_of_n_weights(reward, bounds, n)
    columns = {"reward": reward}
    for name, column in (values or {}).items():
        column = _vector(name, column)
        if len(column) != len(reward):
            raise ValueError(
                f"`values[{name!r}]` has {len(column)} entries; it needs one per reward "
                f"({len(reward)})"
            )
        columns[name] = column
    per_prompt = {name: _core.segment_sum(weights * c, bounds) for name, c in columns.items()}
    sizes = np.diff(bounds).astype(np.float64)
    k = np.repeat(sizes, np.diff(bounds).astype(np.int64))
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(weights > 0, weights * np.log(weights * k), 0.0)
    kl = _core.segment_sum(terms, bounds)
    return BestOfNResult(
        n=int(n),
        per_prompt=per_prompt,
        mean={name: float(np.mean(v)) for name, v in per_prompt.items()},
        kl_bound=float(np.log(n) - (n - 1) / n),
        kl_estimate=float(np.mean(kl)),
    )


@dataclass(frozen=True)
class SimpsonResult:
    """String-level correlations pooled, within each group and between group means.

    ``reversal`` is true when the pooled and between-group correlations have opposite signs (the
    paper's string-level vs corpus-level reversal).
    """

    pooled: CorrelationResult
    within: dict[Hashable, CorrelationResult]
    group_sizes: dict[Hashable, int]
    group_means: dict[Hashable, tuple[float, float]]
    between: CorrelationResult
    reversal: bool


def simpson(x: Any, y: Any, groups: Any, *, method: str = "pearson") -> SimpsonResult:
    """Simpson check of ``x`` against ``y`` with a grouping (e.g. the configuration of each
    string); ``method`` is ``"pearson"`` or ``"spearman"``. Groups with fewer than two strings or a
    constant column have a NaN within-group correlation."""
    xs, ys = _vector("x", x), _vector("y", y)
    labels = np.asarray(groups)
    if labels.ndim != 1:
        raise ValueError(f"`groups` must be 1-dimensional, got shape {labels.shape}")
    if labels.size != xs.size:
        raise ValueError(
            f"`groups` has {labels.size} values but `x` has {xs.size}; "
            "they must have the same length"
        )
    names, codes = np.unique(labels, return_inverse=True)
    pooled, w_stat, w_p, sizes, mx, my, between, reversal = _core.simpson(
        xs, ys, np.ascontiguousarray(codes, dtype=np.uint32), method
    )
    keys = [n.item() if hasattr(n, "item") else n for n in names]
    return SimpsonResult(
        pooled=CorrelationResult(*pooled),
        within={k: CorrelationResult(s, p) for k, s, p in zip(keys, w_stat, w_p, strict=True)},
        group_sizes={k: int(n) for k, n in zip(keys, sizes, strict=True)},
        group_means={k: (a, b) for k, a, b in zip(keys, mx.tolist(), my.tolist(), strict=True)},
        between=CorrelationResult(*between),
        reversal=bool(reversal),
    )


@dataclass(frozen=True)
class TradeoffLineResult:
    """The corpus-level trade-off line: mean reward regressed on mean prior log-likelihood, with a
    BCa bootstrap interval of the slope over corpora. For typical corpora of the tilted prior the
    slope is -beta."""

    regression: LinregressResult
    slope: BootstrapResult


def tradeoff_line(
    mean_log_prior: Any,
    mean_reward: Any,
    *,
    n_resamples: int = 2_000,
    level: float = 0.95,
    seed: int = 0,
) -> TradeoffLineResult:
    """Fit the trade-off line across corpora (one point per corpus)."""
    level = float(level)
    if not 0.0 < level < 1.0:
        raise ValueError(f"`level` must be in (0, 1), got {level}")
    reg, interval = _core.tradeoff_line(
        _vector("mean_log_prior", mean_log_prior),
        _vector("mean_reward", mean_reward),
        _size("n_resamples", n_resamples),
        level,
        check_seed(seed),
    )
    return TradeoffLineResult(LinregressResult(*reg), BootstrapResult(*interval))


@dataclass(frozen=True)
class ImpliedBetaResult:
    """The slope of ``log_aligned - log_prior`` on reward (1/beta), with its fit quality."""

    inverse_beta: float
    beta: float
    intercept: float
    r_squared: float
    stderr: float
    n: int


def implied_beta(
    log_aligned: Any, log_prior: Any, reward: Any, *, groups: Any = None
) -> ImpliedBetaResult:
    """Per string, regress ``log_aligned - log_prior`` on ``reward``: if the aligned model is the
    prior tilted by the reward, ``log pi = log p + r / beta - log Z``, the slope is 1/beta and
    R^2 is 1. ``groups`` (e.g. prompt ids; Z depends on the prompt) gives each group its own
    intercept; then ``intercept`` is NaN."""
    codes = None
    if groups is not None:
        labels = np.asarray(groups)
        if labels.ndim != 1:
            raise ValueError(f"`groups` must be 1-dimensional, got shape {labels.shape}")
        codes = np.ascontiguousarray(np.unique(labels, return_inverse=True)[1], dtype=np.uint32)
    return ImpliedBetaResult(
        *_core.implied_beta(
            _vector("log_aligned", log_aligned),
            _vector("log_prior", log_prior),
            _vector("reward", reward),
            codes,
        )
    )
