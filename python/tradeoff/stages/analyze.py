"""The analyze stage: from a scored run directory to ``summary.json`` (and ``corpora.parquet``).

Four steps: :func:`load` reads the joined table and sorts strings into kept and dropped;
:func:`analyze_config` gives one configuration's plain means of reward, prior, aligned and adapted
log-probability and length (estimates of expectations under q_alpha), each with a 95% bootstrap
interval, its string-level correlations, the paper's IMH correction (target pi, proposal q_alpha:
log-weights ``logp_aligned - logp_adapted``) with its diagnostics, the IMH-corrected means and
corpora resampled from the chain, the same strings reweighted to the globally normalised adaptor
(``imh_global``: target pi^(1/tau) restricted to q's support, log-weights
``logp_aligned / tau - logp_adapted``), and ``exact`` values where the world knows them;
:func:`analyze_pooled` the string- and corpus-level correlations over all configurations, the
Simpson check, the implied beta and the corpus-level trade-off line; :func:`write` the files.

A quantity that cannot be computed (too few strings, constant input, ...) is null with its
reason, never an error: every run that has scores can be analysed.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np

from .. import stats
from ..adaptors import AdaptorChain
from ..errors import RunDirError
from ..rundir import RunDir
from ..rundir.summary import (
    MEAN_KEYS,
    BestOfN,
    BestOfNPoint,
    ConfigSummary,
    CorporaSummary,
    Correlation,
    Correlations,
    Dropped,
    Estimate,
    IMHSummary,
    ImpliedBeta,
    PerPromptLines,
    PromptLine,
    Simpson,
    Summary,
    TradeoffLine,
    Typical,
    write_summary,
)
from .semantics import CORRECTED, Semantics, in_pooled_correlation
from .semantics import semantics as resolve_semantics
from .settings import AnalysisSettings

__all__ = ["AnalysisSettings", "Loaded", "analyze", "analyze_config", "analyze_pooled", "load"]

# Above this many pairs, correlation intervals use a fifth of the resamples.
LARGE_SAMPLE = 20_000
# The pooled corpus-level Spearman and Kendall intervals resample configurations, each with a
# fixed subsample of this many of its corpora (Pearson uses them all): the between-configuration
# spread they measure dwarfs what the subsample adds, and it keeps analyze fast.
POOLED_CORPORA_PER_CONFIG = 200
STRINGS_BOOTSTRAP = "percentile bootstrap over strings"
BEST_OF_N_OVER_STRINGS = (
    "percentile bootstrap over the one prompt's strings (an interval over prompts needs 2)"
)
CONFIGS_BOOTSTRAP = (
    "percentile bootstrap over configurations (each one unit; Spearman and Kendall on a fixed "
    f"subsample of {POOLED_CORPORA_PER_CONFIG} corpora per configuration)"
)
CORPUS_FISHER = (
    "Fisher z: the strings' importance-sampling error, the chain's (its ESS) and the corpora's"
)
_EXACT_KEYS = {
    "mean_reward": "reward",
    "mean_logp_prior": "logp_prior",
    "mean_logp_aligned": "logp_aligned",
    "mean_logp_adapted": "logp_adapted",
    "mean_length": "length",
}
ExactFn = Callable[[str], dict[str, dict[str, float]] | None]


@dataclass
class Loaded:
    """The run's strings as arrays: the columns the analysis reads, and which strings it keeps
    (finished, not empty, every score finite)."""

    columns: dict[str, np.ndarray]
    config: np.ndarray
    prompt_id: np.ndarray
    finished: np.ndarray
    empty: np.ndarray
    finite: np.ndarray
    order: list[str]
    # A string that repeats an earlier one of its configuration (dropped only under the authors'
    # semantics, as their drop_duplicates did).
    duplicate: np.ndarray
    semantics: Semantics = CORRECTED

    @property
    def keep(self) -> np.ndarray:
        ended = self.finished if self.semantics.drop_unfinished else True
        return self.finite & ended & ~self.empty & ~self.duplicate

    @property
    def pooled(self) -> np.ndarray:
        """The strings of the configurations that enter the pooled statistics."""
        included = [c for c in self.order if in_pooled_correlation(c, self.semantics)]
        return self.keep & np.isin(self.config, np.asarray(included, dtype=object))


@dataclass
class ConfigResult:
    """A configuration's summary and the corpora resampled from its chain (if any)."""

    summary: ConfigSummary
    corpora: np.ndarray | None


def load(run: RunDir, semantics: Semantics = CORRECTED) -> Loaded:
    """The joined samples and scores (:meth:`RunDir.analysis_table`) as arrays. A string is
    empty when it has no token (under the authors' semantics also when its text is empty)."""
    table = run.analysis_table()
    missing = [c for c in ("reward", "logp_prior") if c not in table.column_names]
    if missing:
        raise RunDirError(
            f"run {str(run.path)!r} has no {', '.join(missing)} column; run `tradeoff-eval score` "
            "with `--prior` and `--reward` first"
        )
    columns = {
        name: np.asarray(table.column(name).to_pylist(), dtype=float) for name in MEAN_KEYS.values()
    }
    config = np.asarray(table.column("config").to_pylist(), dtype=object)
    finite = np.ones(table.num_rows, dtype=bool)
    for values in columns.values():
        finite &= np.isfinite(values)
    prompt_id = np.asarray(table.column("prompt_id").to_pylist(), dtype=object)
    texts = table.column("text").to_pylist()
    empty = columns["n_tokens"] == 0
    if semantics.drop_empty_text:
        empty |= np.array([not t for t in texts], dtype=bool)
    duplicate = np.zeros(table.num_rows, dtype=bool)
    if semantics.drop_duplicates:
        seen: set[tuple[str, str, str]] = set()
        for i, key in enumerate(zip(config.tolist(), prompt_id.tolist(), texts, strict=True)):
            duplicate[i] = key in seen
            seen.add(key)
    return Loaded(
        columns=columns,
        config=config,
        prompt_id=prompt_id,
        finished=np.asarray(table.column("finished").to_pylist(), dtype=bool),
        empty=empty,
        finite=finite,
        order=list(dict.fromkeys(config.tolist())),
        duplicate=duplicate,
        semantics=semantics,
    )


def _interval(values: np.ndarray, settings: AnalysisSettings, seed: int) -> Estimate:
    """The mean with a percentile bootstrap interval."""
    if len(values) == 0:
        return Estimate.missing("no strings kept")
    if len(values) < 2:
        return Estimate.of(values[0], math.nan, math.nan, "one string: no interval")
    if np.all(values == values[0]):
        return Estimate.of(values[0], values[0], values[0])
    ci = stats.bootstrap_ci(
        values, n_resamples=settings.n_resamples, level=settings.level, seed=seed
    )
    return Estimate.of(ci.statistic, ci.low, ci.high)


def _correlations(
    x: np.ndarray, y: np.ndarray, settings: AnalysisSettings, seed: int
) -> Correlations:
    """Spearman, Pearson and Kendall with p-values and percentile bootstrap intervals over the
    pairs."""
    functions = (
        ("spearman", stats.spearman),
        ("pearson", stats.pearson),
        ("kendall", stats.kendall),
    )
    entries: dict[str, Correlation] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        for name, fn in functions:
            if len(x) < 3:
                entries[name] = Correlation.missing(f"{len(x)} pairs: a correlation needs 3")
                continue
            c = fn(x, y)
            if not math.isfinite(c.statistic):
                entries[name] = Correlation.missing("constant input: no correlation")
                continue
            resamples = settings.correlation_resamples
            if len(x) > LARGE_SAMPLE:
                resamples = max(resamples // 5, 100)
            ci = stats.bootstrap_ci(
                x, y=y, statistic=name, n_resamples=resamples, level=settings.level, seed=seed
            )
            entries[name] = Correlation(
                *(_finite(v) for v in (c.statistic, c.pvalue, ci.low, ci.high))
            )
    return Correlations(n=int(len(x)), **entries, interval=STRINGS_BOOTSTRAP)


def _corpus_correlations(
    corpora: np.ndarray,
    values: np.ndarray,
    log_weights: np.ndarray,
    chain_ess: float | None,
    level: float,
) -> Correlations:
    """One configuration's corpus-level correlations (mean log p against mean reward over its
    corpora) with intervals for the large-corpus, many-strings value: its corpora resample one
    chain over finite strings, so the spread of the corpora alone would say nothing of the
    strings' error (:func:`tradeoff.stats.corpus_correlation_ci`). ``values`` holds the strings'
    reward and log p, ``log_weights`` their log weights in the chain's target."""
    x, y = corpora[:, 1], corpora[:, 0]
    entries: dict[str, Correlation] = {}
    weights = np.exp(log_weights - log_weights.max())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        for name in ("spearman", "pearson", "kendall"):
            value = getattr(stats, name)(x, y).statistic
            if not math.isfinite(value):
                entries[name] = Correlation.missing("constant input: no correlation")
                continue
            if len(corpora) < 5 or np.ptp(values[:, 0]) == 0 or np.ptp(values[:, 1]) == 0:
                reason = "an interval needs 5 corpora and unequal strings"
                entries[name] = Correlation(_finite(value), None, None, None, reason)
                continue
            ci = stats.corpus_correlation_ci(
                name, value, values[:, 1], values[:, 0], n_corpora=len(corpora),
                weights=weights, chain_ess=chain_ess, level=level,
            )  # fmt: skip
            entries[name] = Correlation(
                *(_finite(v) for v in (value, ci.pvalue, ci.low, ci.high)),
                None if math.isfinite(ci.low) else "the interval's variance is undefined",
            )
    return Correlations(n=int(len(corpora)), **entries, interval=CORPUS_FISHER)


def _pooled_corpus_correlations(
    pooled: np.ndarray, groups: np.ndarray, settings: AnalysisSettings
) -> Correlations:
    """The pooled corpus-level correlations; their intervals resample configurations (each one
    unit: its corpora are resamples of the same strings), never the corpora as if independent.
    The p-value is the normal one of atanh(statistic) over the bootstrap standard error of
    atanh."""
    x, y = pooled[:, 1], pooled[:, 0]
    n_configs = len(np.unique(groups))
    entries: dict[str, Correlation] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        values = {name: getattr(stats, name)(x, y).statistic for name in ("spearman", "pearson",
                                                                          "kendall")}  # fmt: skip
        intervals = None
        if n_configs >= 2 and all(math.isfinite(v) for v in values.values()):
            intervals = stats.cluster_bootstrap_correlations(
                x, y, groups, n_resamples=settings.correlation_resamples, level=settings.level,
                seed=settings.seed, per_group=POOLED_CORPORA_PER_CONFIG,
            )  # fmt: skip
    for name, value in values.items():
        if not math.isfinite(value):
            entries[name] = Correlation.missing("constant input: no correlation")
        elif intervals is None:
            entries[name] = Correlation(_finite(value), None, None, None,
                                        f"corpora of {n_configs} configuration(s): an interval "
                                        "resamples configurations and needs 2")  # fmt: skip
        else:
            ci = intervals[name]
            with np.errstate(divide="ignore", invalid="ignore"):
                se = float(np.std(np.arctanh(ci.bootstrap_distribution), ddof=1))
            defined = se > 0 and abs(value) < 1  # (NaN fails it too)
            pvalue = 2 * NormalDist().cdf(-abs(math.atanh(value)) / se) if defined else math.nan
            entries[name] = Correlation(
                *(_finite(v) for v in (value, pvalue, ci.low, ci.high)),
                None if math.isfinite(ci.low) else "a resample's correlation is undefined",
            )
    return Correlations(
        n=int(len(pooled)), **entries, n_corpora=int(len(pooled)), interval=CONFIGS_BOOTSTRAP
    )


def _finite(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _chain(
    values: np.ndarray,
    log_target: np.ndarray,
    log_proposal: np.ndarray,
    settings: AnalysisSettings,
    seed: int,
) -> tuple[Any, dict[str, Estimate], dict[str, float]]:
    """An IMH chain over one configuration's strings, its corrected means and the strings'
    importance diagnostics. A mean's normal interval adds two variances: the strings' (the
    chain's long run is the self-normalised importance-sampling estimate over these strings,
    whose delta-method variance is ``sum w_i^2 (f_i - mean)^2`` with normalised weights w) and the
    chain's Monte-Carlo variance (``var / ESS`` of the chain). When the weights' Pareto k-hat is
    above PSIS's threshold their tail is too heavy for that (the variance may be infinite): the
    mean is given without an interval, and the reason says so."""
    chain = stats.imh(log_target, log_proposal, n_steps=settings.n_steps, seed=seed)
    on_chain = values[chain.indices]
    log_weights = log_target - log_proposal
    weights = np.exp(log_weights - log_weights.max())
    weights /= weights.sum()
    importance = {
        "importance_ess": float(1.0 / np.sum(weights**2)),
        "pareto_k": stats.pareto_k(log_weights),
    }
    threshold = stats.pareto_k_threshold(len(values))
    heavy = importance["pareto_k"] > threshold
    z = -NormalDist().inv_cdf((1 - settings.level) / 2)
    means = {}
    for key, column, strings in zip(MEAN_KEYS, on_chain.T, values.T, strict=True):
        centre = column.mean()
        if heavy:
            means[key] = Estimate.of(centre, math.nan, math.nan, (
                f"the importance weights' Pareto k-hat {importance['pareto_k']:.2f} is above "
                f"{threshold:.2f} (PSIS): their tail is too heavy for a normal interval"
            ))  # fmt: skip
            continue
        spread = np.sum(weights**2 * (strings - weights @ strings) ** 2)
        half = z * math.sqrt(spread + column.var() / max(chain.ess, 1.0))
        reason = None if math.isfinite(half) else "the chain's effective sample size is undefined"
        means[key] = Estimate.of(centre, centre - half, centre + half, reason)
    return chain, means, importance


def _diagnostics(
    chain: Any, importance: dict[str, float], settings: AnalysisSettings
) -> dict[str, Any]:
    return {
        "acceptance_rate": _finite(chain.acceptance_rate),
        "ess": _finite(chain.ess),
        "importance_ess": _finite(importance["importance_ess"]),
        "pareto_k": _finite(importance["pareto_k"]),
        "cramers_v": _finite(chain.cramers_v),
        "n_steps": settings.n_steps,
    }


def _paper_log_weights(data: Loaded, rows: np.ndarray) -> np.ndarray:
    """The log-weights of strings ``rows`` in the paper's chain: ``logp_aligned - logp_adapted``
    (target pi restricted to q's support, proposal q); 0 under the authors' semantics, whose
    chain accepts every proposal (uniform draws with replacement)."""
    if data.semantics.imh_accepts_every_proposal:
        return np.zeros(int(np.count_nonzero(rows)))
    return data.columns["logp_aligned"][rows] - data.columns["logp_adapted"][rows]


def _imh(
    values: np.ndarray, log_weights: np.ndarray, settings: AnalysisSettings, seed: int
) -> tuple[IMHSummary, np.ndarray]:
    """The paper's IMH chain over one configuration's strings (:func:`_paper_log_weights`), its
    corrected means and corpora."""
    chain, means, importance = _chain(values, log_weights, np.zeros(len(values)), settings, seed)
    # reward, log p, and log pi (which says whether a corpus is typical for pi)
    corpora = stats.resample_means(
        values[:, :3],
        n_corpora=settings.n_corpora,
        corpus_size=settings.corpus_size,
        seed=seed,
        indices=chain.indices,
    )
    alpha = 100 * (1 - settings.level) / 2
    spread = {}
    for key, column in (("mean_reward", corpora[:, 0]), ("mean_logp_prior", corpora[:, 1])):
        low, high = np.percentile(column, [alpha, 100 - alpha])
        spread[key] = Estimate.of(column.mean(), low, high)
    summary = IMHSummary(
        **_diagnostics(chain, importance, settings),
        **means,
        corpora=CorporaSummary(settings.n_corpora, settings.corpus_size, **spread),
    )
    return summary, corpora


# Added to a configuration's seed for its globally normalised chain, so that its draws are not
# the paper's chain's.
_GLOBAL_SEED_OFFSET = 0x61_6C_6F_62


def _imh_global(
    values: np.ndarray,
    log_aligned: np.ndarray,
    log_adapted: np.ndarray,
    temperature: float,
    settings: AnalysisSettings,
    seed: int,
) -> IMHSummary:
    """The chain to the globally normalised adaptor pi^(1/tau) restricted to q's support, with
    proposal q: log-weights ``log pi / tau - log q``. Every string of q is in the support."""
    chain, means, importance = _chain(
        values, log_aligned / temperature, log_adapted, settings, seed + _GLOBAL_SEED_OFFSET
    )
    return IMHSummary(**_diagnostics(chain, importance, settings), **means)


def analyze_config(
    data: Loaded, index: int, name: str, settings: AnalysisSettings, exact: ExactFn | None = None
) -> ConfigResult:
    """One configuration (see the module)."""
    of_config = data.config == name
    rows = of_config & data.keep
    # Strings cut at the length cap are dropped (corrected) or kept (the authors').
    ended = data.finished if data.semantics.drop_unfinished else np.ones_like(data.finished)
    n = int(rows.sum())
    family, temperature = AdaptorChain.parse(name).split_temperature()
    entry = ConfigSummary(
        config=name,
        n_strings=n,
        family=str(family),
        temperature=temperature,
        dropped=Dropped(
            empty=int((of_config & data.empty).sum()),
            unfinished=int((of_config & ~data.empty & ~ended).sum()),
            non_finite=int((of_config & ~data.empty & ended & ~data.finite).sum()),
            duplicate=int((of_config & ~data.empty & ended & data.finite & data.duplicate).sum()),
        ),
    )
    for key, column in MEAN_KEYS.items():
        setattr(
            entry, key, _interval(data.columns[column][rows], settings, settings.seed + 7 * index)
        )
    entry.string_level = _correlations(
        data.columns["logp_prior"][rows],
        data.columns["reward"][rows],
        settings,
        settings.seed + index,
    )
    corpora = None
    if n >= 2:
        values = np.column_stack([data.columns[c][rows] for c in MEAN_KEYS.values()])
        log_weights = _paper_log_weights(data, rows)
        entry.imh, corpora = _imh(values, log_weights, settings, settings.seed + index)
        entry.corpus_level = _corpus_correlations(
            corpora,
            values[:, :2],
            log_weights,
            # Accepting every proposal, the chain's states are independent draws.
            settings.n_steps if entry.imh.ess is None or data.semantics.imh_accepts_every_proposal
            else entry.imh.ess,
            settings.level,
        )  # fmt: skip
        if data.semantics.imh_accepts_every_proposal:
            entry.reasons["imh_global"] = (
                "the authors' semantics have no globally normalised chain (their IMH accepts "
                "every proposal)"
            )
        else:
            entry.imh_global = _imh_global(
                values,
                data.columns["logp_aligned"][rows],
                data.columns["logp_adapted"][rows],
                temperature,
                settings,
                settings.seed + index,
            )
    else:
        reason = f"{n} string(s) kept: the IMH chain needs 2"
        entry.reasons.update(imh=reason, corpus_level=reason, imh_global=reason)
    known = exact(name) if exact is not None else None
    if known is not None:
        entry.exact = {key: known["adapted"][col] for key, col in _EXACT_KEYS.items()}
        if entry.imh is not None:
            entry.imh.exact = {key: known["imh_target"][col] for key, col in _EXACT_KEYS.items()}
        if entry.imh_global is not None and known.get("global_target") is not None:
            entry.imh_global.exact = {
                key: known["global_target"][col] for key, col in _EXACT_KEYS.items()
            }
        elif entry.imh_global is not None:
            entry.reasons["imh_global_exact"] = known.get("global_reason") or (
                "the world has no exact globally normalised answer for this configuration"
            )
    elif exact is not None:
        entry.reasons["exact"] = "the world has no exact answer for this configuration"
    return ConfigResult(entry, corpora)


def analyze_pooled(
    data: Loaded, results: list[ConfigResult], settings: AnalysisSettings, run: str
) -> tuple[Summary, np.ndarray | None]:
    """Everything pooled over the configurations (under the authors' semantics, the strict
    ancestral configuration only at temperature 1); returns the summary and the pooled corpora."""
    keep = data.pooled
    included = {c for c in data.order if in_pooled_correlation(c, data.semantics)}
    x, y = data.columns["logp_prior"][keep], data.columns["reward"][keep]
    configs = [r.summary for r in results]
    summary = Summary(
        run=run,
        n_strings=int(data.keep.sum()),
        configs=configs,
        string_level=_correlations(x, y, settings, settings.seed),
        settings=settings.to_dict(),
        semantics=data.semantics.name,
    )
    reasons = summary.reasons
    with_chain = [r for r in results if r.corpora is not None and r.summary.config in included]
    pooled = np.concatenate([r.corpora for r in with_chain]) if with_chain else None
    if pooled is not None:
        groups = np.repeat(np.arange(len(with_chain)), [len(r.corpora) for r in with_chain])
        summary.corpus_level = _pooled_corpus_correlations(pooled, groups, settings)
    else:
        reasons["corpus_level"] = "no configuration has the 2 strings an IMH chain needs"
    chained = [c for c in configs if c.imh is not None and c.config in included]
    if len(chained) >= 3:
        xs = np.array([c.imh.mean_logp_prior.value for c in chained], dtype=float)  # type: ignore[union-attr]
        ys = np.array([c.imh.mean_reward.value for c in chained], dtype=float)  # type: ignore[union-attr]
        try:
            line = stats.tradeoff_line(xs, ys, n_resamples=settings.n_resamples, seed=settings.seed)
            summary.tradeoff_line = TradeoffLine(
                slope=Estimate.of(line.regression.slope, line.slope.low, line.slope.high),
                intercept=_finite(line.regression.intercept),
                rvalue=_finite(line.regression.rvalue),
            )
        except ValueError as error:
            reasons["tradeoff_line"] = str(error)
    else:
        reasons["tradeoff_line"] = (
            f"{len(chained)} configuration(s) with an IMH chain: the trade-off line needs 3"
        )
    n = int(keep.sum())
    if n >= 3 and len(included) >= 2:
        try:
            simpson = stats.simpson(x, y, data.config[keep].astype(str))
            within = [c.statistic for c in simpson.within.values()]
            summary.simpson = Simpson(
                pooled=_finite(simpson.pooled.statistic),
                between=_finite(simpson.between.statistic),
                within_median=_finite(float(np.nanmedian(within)))
                if np.isfinite(within).any()
                else None,
                reversal=bool(simpson.reversal),
            )
        except ValueError as error:
            reasons["simpson"] = str(error)
    else:
        reasons["simpson"] = (
            f"{n} string(s) in {len(data.order)} configuration(s): the Simpson "
            "check needs 3 strings in 2 configurations"
        )
    if n >= 3:
        try:
            implied = stats.implied_beta(
                data.columns["logp_aligned"][keep], x, y, groups=data.prompt_id[keep].astype(str)
            )
            summary.implied_beta = ImpliedBeta(
                *(
                    _finite(v)
                    for v in (implied.inverse_beta, implied.beta, implied.r_squared, implied.stderr)
                )
            )
        except ValueError as error:  # e.g. one string per prompt: no within-prompt variation
            reasons["implied_beta"] = str(error)
    else:
        reasons["implied_beta"] = f"{n} string(s) kept: the implied beta needs 3"
    beta = summary.implied_beta.beta if summary.implied_beta is not None else None
    if with_chain:
        summary.typical, reason = analyze_typical(
            results, included, -beta if beta is not None else None, settings
        )
    else:
        reason = "no configuration has the IMH chain typical corpora come from"
    if reason is not None:
        reasons["typical"] = reason
    summary.best_of_n, reason = analyze_best_of_n(data, settings)
    if reason is not None:
        reasons["best_of_n"] = reason
    summary.per_prompt, reason = analyze_per_prompt(data, settings)
    if reason is not None:
        reasons["per_prompt"] = reason
    return summary, pooled


def _line(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Least-squares slope, intercept and r of y on x: slope and intercept NaN when x is
    constant, r NaN when x or y is."""
    dx, dy = x - x.mean(), y - y.mean()
    sxx, syy, sxy = float(dx @ dx), float(dy @ dy), float(dx @ dy)
    if sxx == 0:
        return math.nan, math.nan, math.nan
    slope = sxy / sxx
    rvalue = sxy / math.sqrt(sxx * syy) if syy > 0 else math.nan
    return slope, float(y.mean() - slope * x.mean()), rvalue


def analyze_typical(
    results: list[ConfigResult],
    included: set[str],
    minus_beta: float | None,
    settings: AnalysisSettings,
) -> tuple[Typical | None, str | None]:
    """The corpora typical for pi (see :class:`Typical`): H(pi) from the ancestral
    configuration (exact in a world, else its IMH chain), the typical corpora of every pooled
    configuration, and the slope at fixed mean log pi with an interval that resamples
    configurations."""
    ancestral = next((r for r in results if r.summary.config == "ancestral"), None)
    if ancestral is None or ancestral.summary.imh is None:
        return None, (
            "H(pi) comes from the ancestral configuration's IMH chain (its strings are pi's "
            "own samples); the run has none with a chain"
        )
    chain = ancestral.summary.imh.mean_logp_aligned
    estimate = -chain.value if chain.known else None  # type: ignore[operator]
    exact = ancestral.summary.imh.exact
    if exact is not None and exact.get("mean_logp_aligned") is not None:
        entropy, source = -float(exact["mean_logp_aligned"]), "exact (the world)"
    elif estimate is not None:
        entropy, source = estimate, "the ancestral configuration's IMH chain"
    else:
        return None, "the ancestral configuration's chain has no mean log pi"
    groups = [r for r in results if r.corpora is not None and r.summary.config in included]
    corpora = np.concatenate([r.corpora for r in groups])
    deviation = np.abs(corpora[:, 2] + entropy)
    epsilon = settings.typical_epsilon
    if epsilon is None:
        epsilon = float(np.quantile(deviation, settings.typical_share))
    parts = []
    for r in groups:
        mask = np.abs(r.corpora[:, 2] + entropy) <= epsilon
        parts.append(r.corpora[mask])
    typical = np.concatenate(parts)
    per_config = {r.summary.config: int(len(p)) for r, p in zip(groups, parts, strict=True)}
    block = Typical(
        entropy=entropy,
        entropy_source=source,
        entropy_estimate=estimate,
        epsilon=epsilon,
        share=float(len(typical) / len(corpora)),
        n_corpora=int(len(corpora)),
        n_typical=int(len(typical)),
        per_config=per_config,
        spearman=None,
        slope=Estimate.missing("fewer than 4 typical corpora"),
        plain_slope=None,
        minus_beta=minus_beta,
    )
    if len(typical) < 4:
        return block, None
    x, y, z = typical[:, 1], typical[:, 0], typical[:, 2] + entropy
    block.spearman = _finite(stats.spearman(x, y).statistic) if np.ptp(x) > 0 else None
    block.plain_slope = _finite(_line(x, y)[0])
    value = stats.plane_fit(x, y, z)[1]
    if not math.isfinite(value):
        block.slope = Estimate.missing("the typical corpora's mean log p or log pi is constant")
        return block, None
    # Each configuration is one unit: its corpora are resamples of the same strings.
    units = [p for p in parts if len(p)]
    rng = np.random.default_rng([settings.seed, 0x7E1C])
    n_resamples = settings.n_resamples if len(units) >= 2 else 0
    picks = rng.integers(0, len(units), size=(n_resamples, len(units)))
    counts = np.zeros((n_resamples, len(units)))
    np.add.at(counts, (np.repeat(np.arange(n_resamples), len(units)), picks.ravel()), 1.0)
    points = np.concatenate(units)
    labels = np.repeat(np.arange(len(units)), [len(u) for u in units])
    replicates = stats.grouped_plane_slopes(
        points[:, 1], points[:, 0], points[:, 2] + entropy, labels, counts
    )
    finite = replicates[np.isfinite(replicates)]
    if len(finite) < 2:
        block.slope = Estimate.of(value, math.nan, math.nan,
                                  f"typical corpora from {len(units)} configuration(s): an "
                                  "interval resamples configurations and needs 2")  # fmt: skip
    else:
        alpha = 100 * (1 - settings.level) / 2
        low, high = np.percentile(finite, [alpha, 100 - alpha])
        block.slope = Estimate.of(value, low, high)
    return block, None


def analyze_best_of_n(
    data: Loaded, settings: AnalysisSettings
) -> tuple[BestOfN | None, str | None]:
    """Best-of-n for n = 1 and each asked n from the base configuration's kept strings, prompt
    by prompt (:func:`tradeoff.stats.best_of_n`): the block, or None and the reason."""
    asked = settings.best_of_n
    if asked is None:
        return None, 'not asked for: set [analysis] best_of_n = {base = "ancestral", n = [2, 4]}'
    base, sizes = asked["base"], [1, *[n for n in asked["n"] if n != 1]]
    if base not in data.order:
        return None, (
            f"the base configuration {base!r} is not in the run (it has {', '.join(data.order)})"
        )
    rows = np.flatnonzero(data.keep & (data.config == base))
    prompts = data.prompt_id[rows].astype(str)
    order = np.argsort(prompts, kind="stable")
    rows, prompts = rows[order], prompts[order]
    names, starts, counts = np.unique(prompts, return_index=True, return_counts=True)
    largest = max(sizes)
    usable = counts >= largest
    if not usable.any():
        most = int(counts.max()) if counts.size else 0
        return None, (
            f"no prompt has {largest} kept strings of {base!r} (the most: {most}); generate "
            f"with samples_per_prompt >= {largest}"
        )
    chosen = np.concatenate(
        [rows[a : a + k] for a, k, ok in zip(starts, counts, usable, strict=True) if ok]
    )
    offsets = np.concatenate([[0], np.cumsum(counts[usable])]).astype(np.uint64)
    reward = data.columns["reward"][chosen]
    values = {"logp_prior": data.columns["logp_prior"][chosen],
              "n_tokens": data.columns["n_tokens"][chosen]}  # fmt: skip
    block = BestOfN(
        base=base,
        n_prompts=int(usable.sum()),
        n_prompts_dropped=int((~usable).sum()),
        min_samples_per_prompt=int(counts[usable].min()),
    )
    one_prompt = block.n_prompts == 1
    if one_prompt:
        block.interval = BEST_OF_N_OVER_STRINGS
        resampled_reward, resampled_offsets, resampled_values = _resampled_prompt(
            reward, values, settings
        )
    for i, n in enumerate(sizes):
        result = stats.best_of_n(reward, offsets, n, values)
        seed = settings.seed + 7919 * (i + 1)
        if one_prompt:
            # Only the resamples' per-prompt means are needed, not their KL: from the weights.
            weights = stats.best_of_n_weights(resampled_reward, resampled_offsets, n)
            replicates = {
                key: stats.segment_sum(weights * column, resampled_offsets)
                for key, column in (("reward", resampled_reward), *resampled_values.items())
            }
            means = _over_strings(result, replicates, settings.level)
        else:
            means = {
                key: _interval(result.per_prompt[key], settings, seed + j)
                for j, key in enumerate(("reward", "logp_prior", "n_tokens"))
            }
        block.points.append(
            BestOfNPoint(
                n=n,
                cost=n,
                mean_reward=means["reward"],
                mean_logp_prior=means["logp_prior"],
                mean_length=means["n_tokens"],
                kl_bound=_finite(result.kl_bound),
                kl_estimate=_finite(result.kl_estimate),
            )
        )
    return block, None


def _resampled_prompt(
    reward: np.ndarray, values: dict[str, np.ndarray], settings: AnalysisSettings
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """``settings.n_resamples`` bootstrap resamples of one prompt's k strings, each laid out as
    a prompt of its own: (rewards, offsets, values), so that one call of
    :func:`tradeoff.stats.best_of_n_weights` per n gives every resample's estimates. Each n
    uses the same resamples."""
    k = len(reward)
    rng = np.random.default_rng([settings.seed, 0xB0F5])
    picks = rng.integers(0, k, size=(settings.n_resamples, k)).ravel()
    offsets = np.arange(0, (settings.n_resamples + 1) * k, k, dtype=np.uint64)
    return reward[picks], offsets, {name: v[picks] for name, v in values.items()}


def _over_strings(
    result: stats.BestOfNResult, replicates: dict[str, np.ndarray], level: float
) -> dict[str, Estimate]:
    """One prompt's best-of-n means with percentile intervals from the resamples of its
    strings (``replicates[key]``: each resample's estimate)."""
    alpha = 100 * (1 - level) / 2
    means = {}
    for key, value in result.mean.items():
        low, high = np.percentile(replicates[key], [alpha, 100 - alpha])
        means[key] = Estimate.of(value, low, high)
    return means


def _weighted_means(
    values: np.ndarray, log_weights: np.ndarray, groups: np.ndarray, n_groups: int
) -> np.ndarray:
    """Per group, the self-normalised weighted means of ``values``' columns."""
    peak = np.full(n_groups, -np.inf)
    np.maximum.at(peak, groups, log_weights)
    weights = np.exp(log_weights - peak[groups])
    total = np.bincount(groups, weights, n_groups)
    return np.column_stack(
        [np.bincount(groups, weights * column, n_groups) / total for column in values.T]
    )


def analyze_per_prompt(
    data: Loaded, settings: AnalysisSettings
) -> tuple[PerPromptLines | None, str | None]:
    """Per-prompt trade-off lines (:class:`PerPromptLines`): the block, or None and the reason."""
    m = settings.per_prompt_min_samples
    configs = [c for c in data.order if in_pooled_correlation(c, data.semantics)]
    if len(configs) < 3:
        return None, f"{len(configs)} pooled configuration(s): a per-prompt line needs 3"
    keep = data.pooled
    prompts, prompt_index = np.unique(data.prompt_id[keep].astype(str), return_inverse=True)
    config_index = np.searchsorted(
        np.asarray(sorted(configs), dtype=object), data.config[keep].astype(object)
    )
    n_cells = len(prompts) * len(configs)
    cell = prompt_index * len(configs) + config_index
    counts = np.bincount(cell, minlength=n_cells).reshape(len(prompts), len(configs))
    usable = (counts >= m).all(axis=1)
    if not usable.any():
        return None, (
            f"no prompt has {m} kept strings in each of the {len(configs)} pooled configurations "
            f"(the most in every one: {int(counts.min(axis=1).max())}); generate more samples "
            "per prompt or lower [analysis] per_prompt_min_samples"
        )
    columns = data.columns
    reward, logp = columns["reward"][keep], columns["logp_prior"][keep]
    # The chain's long-run weights (plain means under the authors' semantics).
    log_weights = _paper_log_weights(data, keep)
    means = _weighted_means(np.column_stack([logp, reward]), log_weights, cell, n_cells)
    means = means.reshape(len(prompts), len(configs), 2)
    tilt = columns["logp_aligned"][keep] - logp  # = r / beta - log Z_prompt, string by string
    lines = []
    for p in np.flatnonzero(usable):
        slope, intercept, rvalue = _line(means[p, :, 0], means[p, :, 1])
        of_prompt = prompt_index == p
        inverse_beta = _line(reward[of_prompt], tilt[of_prompt])[0]
        beta = 1.0 / inverse_beta if math.isfinite(inverse_beta) and inverse_beta != 0 else None
        lines.append(
            PromptLine(
                prompt_id=str(prompts[p]),
                n_strings=int(counts[p].sum()),
                slope=_finite(slope),
                intercept=_finite(intercept),
                rvalue=_finite(rvalue),
                beta=_finite(beta) if beta is not None else None,
            )
        )
    slopes = np.array([x.slope for x in lines if x.slope is not None], dtype=float)
    betas = np.array([x.beta for x in lines if x.beta is not None], dtype=float)
    ratios = np.array(
        [x.slope / -x.beta for x in lines if x.slope is not None and x.beta], dtype=float
    )

    def median(values: np.ndarray) -> float | None:
        return _finite(float(np.median(values))) if values.size else None

    return PerPromptLines(
        min_samples=m,
        n_configs=len(configs),
        n_prompts=len(lines),
        n_prompts_dropped=int((~usable).sum()),
        slope_median=median(slopes),
        slope_quartiles=[_finite(v) for v in np.percentile(slopes, [25, 75])]
        if slopes.size
        else [None, None],
        share_negative=_finite(float((slopes < 0).mean())) if slopes.size else None,
        beta_median=median(betas),
        ratio_to_minus_beta_median=median(ratios),
        prompts=lines,
    ), None


def write(run: RunDir, summary: Summary, results: list[ConfigResult]) -> None:
    """``summary.json`` and ``corpora.parquet`` (the resampled corpora, per configuration)."""
    import pyarrow as pa

    with_chain = [r for r in results if r.corpora is not None]
    if with_chain:
        pooled = np.concatenate([r.corpora for r in with_chain])
        names = [r.summary.config for r in with_chain for _ in range(len(r.corpora))]
        table = pa.table(
            {
                "config": names,
                "mean_reward": pooled[:, 0],
                "mean_logp_prior": pooled[:, 1],
                "mean_logp_aligned": pooled[:, 2],
            }
        )
        run.write_table(run.corpora_path, table, "analyze")
    else:
        run.corpora_path.unlink(missing_ok=True)
    write_summary(run.summary_path, summary)


def analyze(
    run_dir: str | Path,
    *,
    settings: AnalysisSettings | None = None,
    exact: ExactFn | None = None,
    semantics: str | Semantics | None = None,
) -> Summary:
    """Analyses a scored run and writes ``summary.json``. ``exact(config)``, when given, returns
    ``{"adapted": {...}, "imh_target": {...}, "global_target": {...} or None}`` expectations
    keyed like the columns (a world with known answers; ``global_reason`` says why
    ``global_target`` is None). ``semantics`` (:mod:`.semantics`; by default the run's) says whose
    analysis it is: the corrected one, or the authors' (every IMH proposal accepted, duplicates
    and empty texts dropped, the strict ancestral configuration pooled only at temperature
    1)."""
    settings = settings or AnalysisSettings()
    run = RunDir(run_dir)
    run.require_samples()
    if semantics is None:  # the run's own, recorded when it was generated
        semantics = (run.read_manifest() or {}).get("semantics", CORRECTED.name)
    data = load(run, resolve_semantics(semantics))
    run.check_writable()
    run.remove_temporaries()
    results = [
        analyze_config(data, index, name, settings, exact) for index, name in enumerate(data.order)
    ]
    summary, _ = analyze_pooled(data, results, settings, str(run.path))
    write(run, summary, results)
    return summary
