"""The schema of ``summary.json``, written by analyze and read through these classes by report,
recommend, the command line and the demo.

A quantity that cannot be computed is ``null`` with its reason beside it: an :class:`Estimate`
or :class:`Correlation` carries ``reason``; an optional block (``imh``, ``corpus_level``,
``simpson``, ...) that is ``null`` has its reason under ``reasons`` of the object that holds it.
NaN never reaches the file.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import RunDirError
from .atomic import atomic_write_json

__all__ = [
    "SCHEMA_VERSION",
    "Typical",
    "BestOfN",
    "BestOfNPoint",
    "ConfigSummary",
    "CorporaSummary",
    "Correlation",
    "Correlations",
    "Dropped",
    "Estimate",
    "IMHSummary",
    "ImpliedBeta",
    "MEAN_KEYS",
    "PerPromptLines",
    "PromptLine",
    "Simpson",
    "Summary",
    "TradeoffLine",
    "read_summary",
    "write_summary",
]

SCHEMA_VERSION = 1

# The per-configuration means and the column each is the mean of.
MEAN_KEYS = {
    "mean_reward": "reward",
    "mean_logp_prior": "logp_prior",
    "mean_logp_aligned": "logp_aligned",
    "mean_logp_adapted": "logp_adapted",
    "mean_length": "n_tokens",
}


def _finite(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


@dataclass
class Estimate:
    """A value with its interval; all three null (and ``reason`` set) when it cannot be had."""

    value: float | None
    low: float | None
    high: float | None
    reason: str | None = None

    @classmethod
    def missing(cls, reason: str) -> Estimate:
        return cls(None, None, None, reason)

    @classmethod
    def of(cls, value: float, low: float, high: float, reason: str | None = None) -> Estimate:
        return cls(_finite(value), _finite(low), _finite(high), reason)

    @property
    def known(self) -> bool:
        return self.value is not None

    @property
    def bounded(self) -> bool:
        return self.value is not None and self.low is not None and self.high is not None


@dataclass
class Correlation:
    """A correlation coefficient with its p-value and bootstrap interval."""

    statistic: float | None
    pvalue: float | None
    low: float | None
    high: float | None
    reason: str | None = None

    @classmethod
    def missing(cls, reason: str) -> Correlation:
        return cls(None, None, None, None, reason)


@dataclass
class Correlations:
    """Spearman, Pearson and Kendall (tau-b) of the same pairs. ``interval`` says how their
    intervals (and, at corpus level, p-values) were had: "percentile bootstrap over strings"
    (string level), "Fisher z: ..." (one configuration's corpora: the strings', chain's and
    corpora's errors), "percentile bootstrap over configurations ..." (pooled corpora: each
    configuration one unit); null in summaries written before it was recorded (those resampled
    pairs: strings, or corpora as if independent)."""

    n: int
    spearman: Correlation
    pearson: Correlation
    kendall: Correlation
    n_corpora: int | None = None
    interval: str | None = None


@dataclass
class Dropped:
    """Strings left out of a configuration's statistics, by reason."""

    empty: int = 0
    unfinished: int = 0
    non_finite: int = 0
    # a repeat of an earlier string of the configuration (dropped under the authors' semantics)
    duplicate: int = 0


@dataclass
class CorporaSummary:
    """The spread of corpora resampled from the IMH chain (2.5 and 97.5 percentiles)."""

    n_corpora: int
    corpus_size: int
    mean_reward: Estimate
    mean_logp_prior: Estimate


@dataclass
class IMHSummary:
    """An IMH chain over one configuration's strings (proposal q): diagnostics, corrected means,
    its corpora. ``imh``: the paper's target, pi restricted to q's support (log-weights
    ``log pi - log q``); ``imh_global``: the globally normalised adaptor, pi^(1/tau) restricted
    to strings whose every token is in the support (log-weights ``log pi / tau - log q``)."""

    acceptance_rate: float | None
    # The chain's effective sample size (autocorrelation), of n_steps.
    ess: float | None
    cramers_v: float | None
    n_steps: int
    mean_reward: Estimate
    mean_logp_prior: Estimate
    mean_logp_aligned: Estimate
    mean_logp_adapted: Estimate
    mean_length: Estimate
    # The spread of corpora resampled from the chain (the paper's chain only).
    corpora: CorporaSummary | None = None
    # The target's exact means where the world knows them (keys as the means').
    exact: dict[str, float] | None = None
    # The strings' importance effective sample size (sum w)^2 / sum w^2, of n_strings: how many
    # strings the corrected means rest on.
    importance_ess: float | None = None
    # The importance weights' Pareto k-hat (PSIS): above min(1 - 1 / log10(n_strings), 0.7) the
    # means are given without intervals (null when the largest weights tie, as repeated strings
    # do, or there are too few strings).
    pareto_k: float | None = None
    interval: str = (
        "normal: the self-normalised importance-sampling variance over the strings plus the "
        "chain's Monte-Carlo variance"
    )


@dataclass
class ConfigSummary:
    """One adaptor configuration: its strings' means with intervals, correlations, IMH."""

    config: str
    n_strings: int = 0
    dropped: Dropped = field(default_factory=Dropped)
    family: str | None = None
    temperature: float | None = None
    mean_reward: Estimate = field(default_factory=lambda: Estimate.missing("not computed"))
    mean_logp_prior: Estimate = field(default_factory=lambda: Estimate.missing("not computed"))
    mean_logp_aligned: Estimate = field(default_factory=lambda: Estimate.missing("not computed"))
    mean_logp_adapted: Estimate = field(default_factory=lambda: Estimate.missing("not computed"))
    mean_length: Estimate = field(default_factory=lambda: Estimate.missing("not computed"))
    string_level: Correlations | None = None
    corpus_level: Correlations | None = None
    imh: IMHSummary | None = None
    # The same strings reweighted to the globally normalised adaptor (see IMHSummary).
    imh_global: IMHSummary | None = None
    exact: dict[str, float] | None = None
    reasons: dict[str, str] = field(default_factory=dict)

    def mean(self, key: str) -> Estimate:
        """One of the MEAN_KEYS."""
        return getattr(self, key)


@dataclass
class TradeoffLine:
    """The line through the configurations' IMH-corrected means (slope with its interval)."""

    slope: Estimate
    intercept: float | None
    rvalue: float | None


@dataclass
class Simpson:
    """Pooled, between-configuration and median within-configuration correlation."""

    pooled: float | None
    between: float | None
    within_median: float | None
    reversal: bool


@dataclass
class ImpliedBeta:
    """1/beta from log pi - log p = r / beta - log Z (per-prompt intercepts), and R^2."""

    inverse_beta: float | None
    beta: float | None
    r_squared: float | None
    stderr: float | None


@dataclass
class Typical:
    """The corpora that are typical for the aligned model pi: of every pooled configuration's
    resampled corpora, those whose mean log pi lies within ``epsilon`` of ``-entropy`` (the
    paper's claim is about these). By the identity mean log p + mean r / beta = mean log pi +
    log Z they lie on a line of slope -beta in (mean log p, mean reward)."""

    # H(pi) = -E_pi[log pi] per string, and where it comes from: "exact (the world)" or "the
    # ancestral configuration's IMH chain"; the chain's estimate beside an exact value.
    entropy: float
    entropy_source: str
    entropy_estimate: float | None
    epsilon: float
    share: float
    n_corpora: int
    n_typical: int
    # Typical corpora per configuration (most configurations have none: their corpora are
    # typical for another distribution).
    per_config: dict[str, int]
    spearman: float | None
    # The slope of mean reward on mean log p at mean log pi = -H: the coefficient of mean log p
    # in the least-squares fit of mean reward on mean log p and (mean log pi + H) over the
    # typical corpora; and the plain slope (attenuated by what is left of mean log pi's spread).
    slope: Estimate
    plain_slope: float | None
    # -beta from the implied beta of the strings (log pi - log p = r / beta - log Z).
    minus_beta: float | None
    interval: str = "percentile bootstrap over configurations (each one unit)"


@dataclass
class BestOfNPoint:
    """Best-of-n for one n, estimated without bias from k >= n samples per prompt of the base
    configuration (the U-statistic over n-subsets), averaged over prompts; the intervals
    resample prompts, or the strings of the one prompt when there is one (``BestOfN.interval``
    says which)."""

    n: int
    # Strings generated per output string.
    cost: int
    mean_reward: Estimate
    mean_logp_prior: Estimate
    mean_length: Estimate
    # KL(best-of-n || base): log n - (n - 1) / n (exact for rewards without ties), and the
    # plug-in estimate from the samples (biased low for small k).
    kl_bound: float | None
    kl_estimate: float | None


@dataclass
class BestOfN:
    """Best-of-n points from one base configuration's samples, beside the adaptors."""

    base: str
    # Prompts used (each with at least the largest n kept samples), and prompts left out.
    n_prompts: int
    n_prompts_dropped: int
    # The fewest kept samples a used prompt has (k).
    min_samples_per_prompt: int
    points: list[BestOfNPoint] = field(default_factory=list)
    interval: str = "percentile bootstrap over prompts"


@dataclass
class PromptLine:
    """One prompt's trade-off line through the configurations' means for that prompt."""

    prompt_id: str
    n_strings: int
    slope: float | None
    intercept: float | None
    rvalue: float | None
    # beta implied by this prompt's strings (log pi - log p = r / beta - log Z_prompt).
    beta: float | None


@dataclass
class PerPromptLines:
    """Per-prompt trade-off lines: for each prompt with at least ``min_samples`` kept strings in
    every pooled configuration, the least-squares line of mean reward on mean log p through the
    configurations' means for that prompt (IMH-corrected: the chain's long-run limit, weights
    pi / q within the prompt), and that prompt's implied beta. Their distribution, against
    -beta, says whether one exchange rate holds across prompts."""

    min_samples: int
    n_configs: int
    n_prompts: int
    n_prompts_dropped: int
    slope_median: float | None
    slope_quartiles: list[float | None]
    share_negative: float | None
    beta_median: float | None
    # The median over prompts of slope / (-beta of the prompt): 1 when every line has slope -beta.
    ratio_to_minus_beta_median: float | None
    prompts: list[PromptLine] = field(default_factory=list)
    means: str = "self-normalised importance weights pi / q within each (prompt, configuration)"


@dataclass
class Summary:
    """Everything analyze found, per configuration and pooled."""

    run: str = ""
    n_strings: int = 0
    configs: list[ConfigSummary] = field(default_factory=list)
    string_level: Correlations | None = None
    corpus_level: Correlations | None = None
    tradeoff_line: TradeoffLine | None = None
    simpson: Simpson | None = None
    implied_beta: ImpliedBeta | None = None
    typical: Typical | None = None
    best_of_n: BestOfN | None = None
    per_prompt: PerPromptLines | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    # "corrected" or "authors" (tradeoff.stages.semantics)
    semantics: str = "corrected"
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return _clean(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Summary:
        """Reads a summary (or a partial one, as tests and other tools write them: missing
        fields take their defaults)."""
        return _decode(cls, data, "summary")


def _clean(value: Any) -> Any:
    """JSON-safe: NaN and infinities become null, numpy scalars Python numbers."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if hasattr(value, "item") and not isinstance(value, (int, float)):
        value = value.item()  # numpy scalar
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return value


def _decode(kind: Any, data: Any, where: str) -> Any:
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(kind) if a is not type(None)]
        if data is None:
            return None
        return _decode(options[0], data, where)
    if dataclasses.is_dataclass(kind):
        if not isinstance(data, dict):
            raise RunDirError(f"summary.json: {where} must be an object, got {data!r}")
        hints = typing.get_type_hints(kind)
        values = {}
        for f in dataclasses.fields(kind):
            if f.name in data:
                values[f.name] = _decode(hints[f.name], data[f.name], f"{where}.{f.name}")
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise RunDirError(f"summary.json: {where} lacks the field {f.name!r}")
        return kind(**values)
    if origin is list:
        (item,) = typing.get_args(kind)
        return [_decode(item, v, f"{where}[{i}]") for i, v in enumerate(data)]
    return data


def write_summary(path: Path, summary: Summary) -> None:
    atomic_write_json(path, summary.to_dict())


def read_summary(path: Path) -> Summary:
    """The summary at ``path``; a missing or malformed file is a :class:`RunDirError` that says
    what to run."""
    path = Path(path)
    if not path.is_file():
        raise RunDirError(
            f"{path} does not exist; run `tradeoff-eval analyze --run-dir {path.parent}` first"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RunDirError(f"{path} is not valid JSON ({error}); run analyze again") from None
    version = data.get("schema_version", SCHEMA_VERSION) if isinstance(data, dict) else None
    if version != SCHEMA_VERSION:
        raise RunDirError(
            f"{path} has summary schema version {version!r}; this tradeoff reads "
            f"version {SCHEMA_VERSION}: run analyze again"
        )
    return Summary.from_dict(data)
