"""The analysis stage: from a scored run directory to ``summary.json``.

Per configuration: the plain means of reward, prior, aligned and adapted log-probability and
length over its strings (estimates of expectations under q_alpha), each with a 95% bootstrap
interval; the paper's IMH correction (target pi, proposal q_alpha: log-weights
``logp_aligned - logp_adapted``) with its diagnostics, the IMH-corrected means, and corpora
resampled from the chain; ``exact`` values where the world knows them. Pooled: string-level and
corpus-level correlations of prior log-probability and reward, the Simpson check across
configurations, the implied beta, and the corpus-level trade-off line.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import stats

__all__ = ["AnalysisSettings", "analyze_run"]

MEANS = {
    "mean_reward": "reward",
    "mean_logp_prior": "logp_prior",
    "mean_logp_aligned": "logp_aligned",
    "mean_logp_adapted": "logp_adapted",
    "mean_length": "n_tokens",
}


@dataclass(frozen=True)
class AnalysisSettings:
    """IMH and resampling sizes (the paper's by default) and the bootstrap's."""

    n_steps: int = 200_000
    n_corpora: int = 2_000
    corpus_size: int = 200_000
    n_resamples: int = 2_000
    # Correlation intervals resample pairs; above LARGE_SAMPLE pairs, fewer resamples.
    correlation_resamples: int = 1_000
    level: float = 0.95
    seed: int = 0


LARGE_SAMPLE = 20_000


def _interval(values: np.ndarray, settings: AnalysisSettings, seed: int) -> dict[str, float]:
    if len(values) < 2:
        value = float(values[0]) if len(values) else math.nan
        return {"value": value, "low": math.nan, "high": math.nan}
    if np.all(values == values[0]):
        return {"value": float(values[0]), "low": float(values[0]), "high": float(values[0])}
    ci = stats.bootstrap_ci(
        values, n_resamples=settings.n_resamples, level=settings.level, seed=seed
    )
    return {"value": ci.statistic, "low": ci.low, "high": ci.high}


def _correlations(
    x: np.ndarray, y: np.ndarray, settings: AnalysisSettings | None = None, seed: int = 0
) -> dict[str, Any]:
    """Spearman, Pearson and Kendall with p-values and, given settings, percentile bootstrap
    intervals over the pairs."""
    import warnings

    functions = (("spearman", stats.spearman), ("pearson", stats.pearson),
                 ("kendall", stats.kendall))  # fmt: skip
    result: dict[str, Any] = {"n": int(len(x))}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        for name, fn in functions:
            entry = {"statistic": math.nan, "pvalue": math.nan, "low": math.nan, "high": math.nan}
            if len(x) >= 3:
                c = fn(x, y)
                entry.update(statistic=c.statistic, pvalue=c.pvalue)
                if settings is not None and math.isfinite(c.statistic):
                    resamples = settings.correlation_resamples
                    if len(x) > LARGE_SAMPLE:
                        resamples = max(resamples // 5, 100)
                    ci = stats.bootstrap_ci(x, y=y, statistic=name, n_resamples=resamples,
                                            level=settings.level, seed=seed)  # fmt: skip
                    entry.update(low=ci.low, high=ci.high)
            result[name] = entry
    return result


def _clean(value: Any) -> Any:
    """JSON-safe: NaN and infinities become null."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def analyze_run(
    run_dir: str,
    *,
    settings: AnalysisSettings | None = None,
    exact: Callable[[str], dict[str, dict[str, float]] | None] | None = None,
) -> dict[str, Any]:
    """Analyses a scored run and writes ``summary.json``. ``exact(config)``, when given, returns
    ``{"adapted": {...}, "imh_target": {...}}`` expectations keyed like the columns (a world
    with known answers)."""
    import pyarrow.parquet as pq

    from .store import RunDir, atomic_path, atomic_write_bytes

    settings = settings or AnalysisSettings()
    run = RunDir(run_dir)
    if not run.samples_path.exists():
        raise FileNotFoundError(f"run directory {run_dir!r} has no samples.parquet")
    table = pq.read_table(run.samples_path)
    missing = [c for c in ("reward", "logp_prior") if c not in table.column_names]
    if missing:
        raise ValueError(
            f"run {run_dir!r} has no {', '.join(missing)} column; run `tradeoff-eval score` with "
            "`--prior` and `--reward` first"
        )
    names = ("reward", "logp_prior", "logp_aligned", "logp_adapted", "n_tokens")
    columns = {name: np.asarray(table.column(name).to_pylist(), dtype=float) for name in names}
    config = np.asarray(table.column("config").to_pylist())
    finished = np.asarray(table.column("finished").to_pylist(), dtype=bool)
    prompt_ids = np.asarray(table.column("prompt_id").to_pylist())
    finite = np.all([np.isfinite(v) for v in columns.values()], axis=0)
    empty = columns["n_tokens"] == 0
    keep = finite & finished & ~empty
    order = list(dict.fromkeys(config.tolist()))
    configs = []
    corpus_points: list[np.ndarray] = []
    corpus_configs: list[str] = []
    for index, name in enumerate(order):
        rows = (config == name) & keep
        entry: dict[str, Any] = {
            "config": name,
            "n_strings": int(rows.sum()),
            "dropped": {
                "empty": int(((config == name) & empty).sum()),
                "unfinished": int(((config == name) & ~empty & ~finished).sum()),
                "non_finite": int(((config == name) & ~empty & finished & ~finite).sum()),
            },
        }
        for key, column in MEANS.items():
            entry[key] = _interval(columns[column][rows], settings, settings.seed + 7 * index)
        entry["string_level"] = _correlations(
            columns["logp_prior"][rows], columns["reward"][rows], settings, settings.seed + index
        )
        if rows.sum() >= 2:
            chain = stats.imh(columns["logp_aligned"][rows], columns["logp_adapted"][rows],
                              n_steps=settings.n_steps, seed=settings.seed + index)  # fmt: skip
            values = np.column_stack([columns[c][rows] for c in MEANS.values()])
            on_chain = values[chain.indices]
            # The chain's estimate, with a normal interval from its effective sample size (at
            # most the number of distinct strings it can visit).
            n_eff = max(min(chain.ess, float(rows.sum())), 1.0)
            z = -stats_normal_ppf((1 - settings.level) / 2)
            imh: dict[str, Any] = {
                "acceptance_rate": chain.acceptance_rate,
                "ess": chain.ess,
                "cramers_v": chain.cramers_v,
                "n_steps": settings.n_steps,
            }
            for (key, _), column in zip(MEANS.items(), on_chain.T, strict=True):
                half = z * column.std() / math.sqrt(n_eff)
                imh[key] = {"value": column.mean(), "low": column.mean() - half,
                            "high": column.mean() + half}  # fmt: skip
            corpora = stats.resample_means(
                values[:, :2],
                n_corpora=settings.n_corpora,
                corpus_size=settings.corpus_size,
                seed=settings.seed + index,
                indices=chain.indices,
            )
            corpus_points.append(corpora)
            corpus_configs.extend([name] * len(corpora))
            imh["corpora"] = {"n_corpora": settings.n_corpora, "corpus_size": settings.corpus_size}
            alpha = 100 * (1 - settings.level) / 2
            for key, column in (("mean_reward", corpora[:, 0]), ("mean_logp_prior", corpora[:, 1])):
                low, high = np.percentile(column, [alpha, 100 - alpha])
                imh["corpora"][key] = {"value": column.mean(), "low": low, "high": high}
            entry["corpus_level"] = _correlations(
                corpora[:, 1], corpora[:, 0], settings, settings.seed + index
            )
            entry["imh"] = imh
        known = exact(name) if exact is not None else None
        if known is not None:
            entry["exact"] = {key: known["adapted"][col] for key, col in _EXACT_KEYS.items()}
            if "imh" in entry:
                entry["imh"]["exact"] = {
                    key: known["imh_target"][col] for key, col in _EXACT_KEYS.items()
                }
        configs.append(entry)
    x, y = columns["logp_prior"][keep], columns["reward"][keep]
    summary: dict[str, Any] = {
        "run": str(run.path),
        "n_strings": int(keep.sum()),
        "configs": configs,
        "string_level": _correlations(x, y, settings, settings.seed),
        "settings": settings.__dict__,
    }
    if corpus_points:
        import pyarrow as pa

        pooled = np.concatenate(corpus_points)
        corpora_table = pa.table({"config": corpus_configs, "mean_reward": pooled[:, 0],
                                  "mean_logp_prior": pooled[:, 1]})  # fmt: skip
        with atomic_path(run.path / "corpora.parquet") as tmp:
            pq.write_table(corpora_table, tmp)
        summary["corpus_level"] = {
            **_correlations(pooled[:, 1], pooled[:, 0], settings, settings.seed),
            "n_corpora": int(len(pooled)),
        }
        line = stats.tradeoff_line(
            np.array([c["imh"]["mean_logp_prior"]["value"] for c in configs if "imh" in c]),
            np.array([c["imh"]["mean_reward"]["value"] for c in configs if "imh" in c]),
            n_resamples=settings.n_resamples,
            seed=settings.seed,
        ) if sum("imh" in c for c in configs) >= 3 else None  # fmt: skip
        if line is not None:
            summary["tradeoff_line"] = {
                "slope": {
                    "value": line.regression.slope,
                    "low": line.slope.low,
                    "high": line.slope.high,
                },  # fmt: skip
                "intercept": line.regression.intercept,
                "rvalue": line.regression.rvalue,
            }
    if keep.sum() >= 3 and len(order) >= 2:
        try:
            simpson = stats.simpson(x, y, config[keep])
            summary["simpson"] = {
                "pooled": simpson.pooled.statistic,
                "between": simpson.between.statistic,
                "within_median": float(
                    np.nanmedian([c.statistic for c in simpson.within.values()])
                ),
                "reversal": simpson.reversal,
            }
        except ValueError as error:
            summary["simpson"] = {"error": str(error)}
    if keep.sum() >= 3:
        try:
            implied = stats.implied_beta(
                columns["logp_aligned"][keep], x, y, groups=prompt_ids[keep]
            )
            summary["implied_beta"] = {
                "inverse_beta": implied.inverse_beta,
                "beta": implied.beta,
                "r_squared": implied.r_squared,
                "stderr": implied.stderr,
            }
        except ValueError as error:  # e.g. one string per prompt: no within-prompt variation
            summary["implied_beta"] = {"error": str(error)}
    summary = _clean(summary)
    atomic_write_bytes(run.path / "summary.json", (json.dumps(summary, indent=2) + "\n").encode())
    return summary


_EXACT_KEYS = {
    "mean_reward": "reward",
    "mean_logp_prior": "logp_prior",
    "mean_logp_aligned": "logp_aligned",
    "mean_logp_adapted": "logp_adapted",
    "mean_length": "length",
}


def stats_normal_ppf(p: float) -> float:
    """The standard normal quantile (for the IMH intervals), without scipy."""
    from statistics import NormalDist

    return NormalDist().inv_cdf(p)
