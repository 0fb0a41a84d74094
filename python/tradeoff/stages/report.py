"""The report stage: figures (PNG) and a self-contained ``report.html`` for an analysed run
directory, read from ``summary.json`` through its schema. Quantities the analysis could not
compute are shown as n/a, with their reasons listed.

- ``figures/corpus_level.png``: the means of resampled corpora per configuration in the plane
  (mean prior log-likelihood, mean reward), coloured by adaptor family, lighter for higher
  temperature; exact expectations, where the world knows them, as black crosses.
- ``figures/frontier.png``: each configuration's mean reward against mean prior log-likelihood
  with 95% intervals, the Pareto frontier, and the exact values when known.
- ``figures/string_level.png``: strings' reward against prior log-probability, with a
  least-squares line per configuration.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

import numpy as np

from ..adaptors import AdaptorChain
from ..errors import TradeoffError
from ..rundir import RunDir
from ..rundir.summary import ConfigSummary, Correlations, Estimate, Summary, read_summary
from .recommend import frontier

__all__ = ["family_and_temperature", "write_report"]


def family_and_temperature(config: str) -> tuple[str, float]:
    """``"temperature=1.5,top_p=0.9"`` -> ``("top_p=0.9", 1.5)``; no temperature is 1.0 (from
    the parsed chain, so options such as ``:min_tokens_to_keep=2`` stay in the family)."""
    family, temperature = AdaptorChain.parse(config).split_temperature()
    return str(family), temperature


def _colours(configs: list[ConfigSummary]) -> dict[str, Any]:
    import matplotlib.colors as mcolors
    from matplotlib import colormaps

    split = {c.config: family_and_temperature(c.config) for c in configs}
    families = sorted({f for f, _ in split.values()})
    temperatures = sorted({t for _, t in split.values()})
    palette = colormaps["tab10"]
    colours = {}
    for name, (family, t) in split.items():
        base = np.array(mcolors.to_rgb(palette(families.index(family) % 10)))
        share = temperatures.index(t) / max(len(temperatures) - 1, 1)
        colours[name] = tuple(base * (1 - 0.55 * share) + 0.55 * share)  # lighter when hotter
    return colours


def cell(v: Estimate | None) -> str:
    """An estimate as text: ``value [low, high]``, or n/a with its reason."""
    if v is None:
        return "n/a"
    if v.value is None:
        return f"n/a ({v.reason})" if v.reason else "n/a"
    if v.low is None or v.high is None:
        return f"{v.value:.3f} (no interval: {v.reason})" if v.reason else f"{v.value:.3f}"
    return f"{v.value:.3f} [{v.low:.3f}, {v.high:.3f}]"


def _number(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _finish(plt: Any, fig: Any, ax: Any, path: Path, empty: str | None, **legend: Any) -> None:
    """The legend (or, when nothing was drawn, a note saying why), then the PNG, atomically."""
    from ..rundir import atomic_path

    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=6, ncol=2, **legend)
    elif empty is not None:
        ax.text(0.5, 0.5, empty, ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def _corpus_figure(plt: Any, run: RunDir, summary: Summary, colours: dict[str, Any]) -> None:
    import pyarrow.parquet as pq

    fig, ax = plt.subplots(figsize=(8, 6))
    if run.corpora_path.exists():
        corpora = pq.read_table(run.corpora_path).to_pydict()
        names = np.asarray(corpora["config"], dtype=object)
        for c in summary.configs:
            rows = np.flatnonzero(names == c.config)[:300]
            if len(rows):
                ax.scatter(
                    np.asarray(corpora["mean_logp_prior"])[rows],
                    np.asarray(corpora["mean_reward"])[rows],
                    s=3,
                    color=colours[c.config],
                    alpha=0.5,
                    label=c.config,
                )
    for c in summary.configs:
        if c.imh is not None and c.imh.exact is not None:
            e = c.imh.exact
            ax.scatter(e["mean_logp_prior"], e["mean_reward"], marker="x", color="black", s=30)
    ax.set(
        xlabel="corpus mean log p (prior)",
        ylabel="corpus mean reward",
        title="corpus level (IMH-corrected resampled corpora; x: exact)",
    )
    _finish(
        plt,
        fig,
        ax,
        run.figures_dir / "corpus_level.png",
        "no configuration has the 2 strings an IMH chain needs",
        markerscale=3,
    )


def _string_figure(plt: Any, run: RunDir, summary: Summary, colours: dict[str, Any]) -> bool:
    try:
        table = run.analysis_table()
    except TradeoffError:  # no scored samples here: the panel is left out
        return False
    if "logp_prior" not in table.column_names or "reward" not in table.column_names:
        return False
    names = np.asarray(table.column("config").to_pylist(), dtype=object)
    logp = np.asarray(table.column("logp_prior").to_pylist(), dtype=float)
    reward = np.asarray(table.column("reward").to_pylist(), dtype=float)
    fig, ax = plt.subplots(figsize=(8, 6))
    for c in summary.configs:
        rows = np.flatnonzero((names == c.config) & np.isfinite(logp) & np.isfinite(reward))
        if len(rows) < 2:
            continue
        shown = rows[:300]
        ax.scatter(logp[shown], reward[shown], s=3, alpha=0.35, color=colours[c.config])
        if np.ptp(logp[rows]) > 0:
            slope, intercept = np.polyfit(logp[rows], reward[rows], 1)
            xs = np.array([logp[rows].min(), logp[rows].max()])
            ax.plot(xs, slope * xs + intercept, color=colours[c.config], lw=1, label=c.config)
    spearman = summary.string_level.spearman if summary.string_level else None
    rho = "n/a" if spearman is None or spearman.statistic is None else f"{spearman.statistic:.2f}"
    title = f"string level, a least-squares line per configuration (rho = {rho})"
    ax.set(xlabel="log p(y) (prior)", ylabel="reward r(y)", title=title)
    _finish(plt, fig, ax, run.figures_dir / "string_level.png", None)
    return True


def _frontier_figure(plt: Any, run: RunDir, summary: Summary, colours: dict[str, Any]) -> None:
    usable = [c for c in summary.configs if c.mean_reward.known and c.mean_logp_prior.known]
    on_frontier = set(frontier(usable)[0]) if usable else set()
    fig, ax = plt.subplots(figsize=(8, 6))
    line = sorted(
        (c.mean_logp_prior.value, c.mean_reward.value) for c in usable if c.config in on_frontier
    )
    if line:
        ax.plot(*zip(*line, strict=True), color="0.3", lw=1, ls="--", label="Pareto frontier")
    for c in usable:
        x, y = c.mean_logp_prior, c.mean_reward
        xerr = [[x.value - x.low], [x.high - x.value]] if x.bounded else None  # type: ignore[operator]
        yerr = [[y.value - y.low], [y.high - y.value]] if y.bounded else None  # type: ignore[operator]
        ax.errorbar(
            x.value,
            y.value,
            xerr=xerr,
            yerr=yerr,
            fmt="o",
            color=colours[c.config],
            ms=4,
            label=c.config,
        )
        if c.exact is not None:
            ax.scatter(
                c.exact["mean_logp_prior"], c.exact["mean_reward"], marker="x", color="black", s=30
            )
    block = summary.best_of_n
    points = [
        p
        for p in (block.points if block else [])
        if p.mean_reward.known and p.mean_logp_prior.known
    ]
    if block is not None and points:
        xs = [p.mean_logp_prior.value for p in points]
        ys = [p.mean_reward.value for p in points]
        ax.plot(xs, ys, "s-", color="0.15", ms=5, lw=1, label=f"best-of-n ({block.base})")
        for p, x, y in zip(points, xs, ys, strict=True):
            ax.annotate(f"n={p.n}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set(
        xlabel="mean log p (prior)",
        ylabel="mean reward",
        title="mean reward vs mean prior log-likelihood, 95% intervals (x: exact)",
    )
    _finish(plt, fig, ax, run.figures_dir / "frontier.png", "no configuration has kept strings")


def _typical_text(summary: Summary) -> str:
    """The corpora typical for pi and the slope they lie on, against -beta."""
    t = summary.typical
    if t is None:
        return ""
    sources = ", ".join(f"{html.escape(c)} ({n})" for c, n in t.per_config.items() if n)
    against = f" against -beta = {_number(t.minus_beta)}" if t.minus_beta is not None else ""
    return (
        f"<h2>Corpora typical for the aligned model</h2><p>H(pi) = {t.entropy:.3f} nats per "
        f"string ({html.escape(t.entropy_source)}; the chain's estimate "
        f"{_number(t.entropy_estimate)}). {t.n_typical} of {t.n_corpora} corpora have a mean "
        f"log pi within {t.epsilon:.3g} of -H(pi), from {sources or 'no configuration'}. Among "
        f"them, the slope of mean reward on mean log p at fixed mean log pi is "
        f"{html.escape(cell(t.slope))}{against} (interval: {html.escape(t.interval)}); the "
        f"plain slope is {_number(t.plain_slope)}.</p>"
    )


def _best_of_n_table(summary: Summary) -> str:
    """Best-of-n beside the adaptors: its means with intervals over prompts, cost and KL."""
    block = summary.best_of_n
    if block is None:
        return ""
    rows = []
    for p in block.points:
        cells = (f"best-of-{p.n}", p.cost, cell(p.mean_reward), cell(p.mean_logp_prior),
                 cell(p.mean_length), _number(p.kl_bound), _number(p.kl_estimate))  # fmt: skip
        rows.append("<tr>" + "".join(f"<td>{html.escape(str(x))}</td>" for x in cells) + "</tr>")
    return (
        f"<h2>Best-of-n from {html.escape(block.base)}</h2><p>{block.n_prompts} prompts with at "
        f"least {block.min_samples_per_prompt} kept strings ({block.n_prompts_dropped} left out); "
        "unbiased estimates from all subsets, intervals over prompts. Cost: strings generated per "
        "output.</p><table><tr><th>policy</th><th>cost</th><th>mean reward [95%]</th>"
        "<th>mean log p [95%]</th><th>mean length [95%]</th><th>KL bound</th><th>KL estimate</th>"
        f"</tr>{''.join(rows)}</table>"
    )


def _correlation_text(level: Correlations | None) -> str:
    """A pooled Spearman correlation as text, with its interval and how it resamples (strings,
    or configurations as units); n/a with its reason when there is none."""
    spearman = level.spearman if level is not None else None
    if spearman is None:
        return "n/a"
    if spearman.statistic is None:
        return f"n/a ({spearman.reason})" if spearman.reason else "n/a"
    if spearman.low is None or spearman.high is None:
        return f"{spearman.statistic:.3f}"
    how = f"; {level.interval}" if level.interval else ""  # type: ignore[union-attr]
    return f"{spearman.statistic:.3f} (interval {spearman.low:.3f} to {spearman.high:.3f}{how})"


def _not_computed(summary: Summary) -> list[str]:
    """Every quantity the summary could not compute, with its reason."""
    lines = [
        f"{key.replace('_', ' ')}: {reason}"
        for key, reason in summary.reasons.items()
        if not reason.startswith("not asked for")
    ]
    for name, level in (
        ("string level", summary.string_level),
        ("corpus level", summary.corpus_level),
    ):
        for method in ("spearman", "pearson", "kendall"):
            c = getattr(level, method) if level is not None else None
            if c is not None and c.statistic is None and c.reason:
                lines.append(f"{name} {method.capitalize()}: {c.reason}")
    for c in summary.configs:
        reasons = dict(c.reasons)
        for key in ("mean_reward", "mean_logp_prior"):
            estimate = c.mean(key)
            if estimate.reason and not estimate.bounded:
                reasons.setdefault(key.replace("_", " "), estimate.reason)
        lines += [f"{c.config}: {key.replace('_', ' ')}: {r}" for key, r in reasons.items()]
    return lines


# The paper's published pooled correlations of mean prior log-likelihood and reward, read off
# its figures (../shared/PAPER.md), by the aligned model of the setting.
PUBLISHED = {
    "ethz-spylab/rlhf-7b-harmless": (
        "RLHF",
        {"string_level": (0.38, 0.23), "corpus_level": (-0.83, -0.93)},
    ),
    "kaist-ai/janus-dpo-7b": (
        "DPO",
        {"string_level": (0.41, 0.45), "corpus_level": (-0.97, -0.97)},
    ),
}


def _statistic(summary: Summary | None, level: str, method: str) -> str:
    correlations = getattr(summary, level) if summary is not None else None
    value = getattr(correlations, method).statistic if correlations is not None else None
    return "–" if summary is None else _number(value, 2)


def _paper_comparison(run: RunDir, summary: Summary) -> str:
    """For the paper's settings: the published correlations beside this run's and, when the
    run under the other semantics was analysed too (OUT/run and OUT/run-authors), beside its."""
    manifest = run.read_manifest() or {}
    aligned = manifest.get("models", {}).get("aligned", {}).get("name")
    if aligned not in PUBLISHED:
        return ""
    setting, published = PUBLISHED[aligned]
    other_dir = run.path.parent / ("run" if summary.semantics == "authors" else "run-authors")
    other = None
    if (other_dir / "summary.json").is_file():
        try:
            other = read_summary(other_dir / "summary.json")
        except TradeoffError:
            other = None
    by_semantics = {summary.semantics: summary}
    if other is not None and other.semantics != summary.semantics:
        by_semantics[other.semantics] = other
    rows = []
    for level in ("string_level", "corpus_level"):
        for k, method in enumerate(("spearman", "pearson")):
            cells = (
                f"{level.replace('_', ' ')} {method.capitalize()}",
                f"{published[level][k]:.2f}",
                _statistic(by_semantics.get("authors"), level, method),
                _statistic(by_semantics.get("corrected"), level, method),
            )
            rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    authors, corrected = by_semantics.get("authors"), by_semantics.get("corrected")
    if authors is not None and corrected is not None:
        sentence = (
            "The correction (a working IMH step instead of one that accepts every proposal, EOS "
            "scored, no hidden top-k 50, a length cap on new tokens only, repeated strings kept "
            "and unfinished ones left out"
            + (
                ", and a reward model's reward instead of log p - log pi"
                if setting == "DPO"
                else ""
            )
            + ") moves the pooled corpus-level Spearman correlation from "
            f"{_statistic(authors, 'corpus_level', 'spearman')} to "
            f"{_statistic(corrected, 'corpus_level', 'spearman')}."
        )
    else:
        missing = "authors" if authors is None else "corrected"
        sentence = f"Run the preset with --semantics {missing} to see the other semantics here."
    return (
        f"<h2>The paper's {setting} figures</h2><table><tr><th>pooled correlation</th>"
        "<th>published</th><th>authors' semantics</th><th>corrected</th></tr>"
        f"{''.join(rows)}</table><p>{html.escape(sentence)}</p>"
    )


def write_report(run_dir: str | Path) -> Path:
    """Writes the figures and ``report.html`` from ``summary.json`` (and ``corpora.parquet``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run = RunDir(run_dir)
    summary = read_summary(run.summary_path)
    run.check_writable()
    run.remove_temporaries()
    run.figures_dir.mkdir(exist_ok=True)
    colours = _colours(summary.configs)
    _corpus_figure(plt, run, summary, colours)
    has_strings = _string_figure(plt, run, summary, colours)
    _frontier_figure(plt, run, summary, colours)

    def image(name: str) -> str:
        data = base64.b64encode((run.figures_dir / name).read_bytes()).decode()
        return f'<img alt="{name}" src="data:image/png;base64,{data}" style="max-width:100%">'

    def exact(c: ConfigSummary, key: str) -> str:
        return f"{c.exact[key]:.3f}" if c.exact else "–"

    rows = []
    for c in summary.configs:
        acceptance = _number(c.imh.acceptance_rate, 2) if c.imh else "n/a"
        cells = (
            c.config,
            c.n_strings,
            cell(c.mean_reward),
            exact(c, "mean_reward"),
            cell(c.mean_logp_prior),
            exact(c, "mean_logp_prior"),
            acceptance,
        )
        rows.append("<tr>" + "".join(f"<td>{html.escape(str(x))}</td>" for x in cells) + "</tr>")
    manifest = run.manifest_path
    manifest_text = manifest.read_text(encoding="utf-8") if manifest.exists() else "{}"
    string_level = "<h2>String level</h2>" + image("string_level.png") if has_strings else ""
    string_rho = _correlation_text(summary.string_level)
    corpus_rho = _correlation_text(summary.corpus_level)
    if summary.corpus_level is None and "corpus_level" in summary.reasons:
        corpus_rho = f"n/a ({summary.reasons['corpus_level']})"
    missing = _not_computed(summary)
    not_computed = (
        (
            "<h2>Not computed</h2><ul>"
            + "".join(f"<li>{html.escape(m)}</li>" for m in missing)
            + "</ul>"
        )
        if missing
        else ""
    )
    name = html.escape(run.path.name)
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tradeoff report: {name}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}
table{{border-collapse:collapse}} td,th{{border:1px solid #ccc;padding:3px 6px;font-size:13px}}
pre{{background:#f6f6f6;padding:1em;overflow:auto}}</style>
</head><body>
<h1>Probability–quality trade-off: {name}</h1>
<p>{summary.n_strings} strings in {len(summary.configs)} configurations ({summary.semantics}
semantics).
String level Spearman(log p, reward) = {html.escape(string_rho)};
corpus level = {html.escape(corpus_rho)}.</p>
<h2>Trade-off frontier</h2>{image("frontier.png")}
<h2>Corpus level</h2>{image("corpus_level.png")}
{string_level}
<h2>Per configuration</h2>
<table><tr><th>configuration</th><th>strings</th><th>mean reward [95%]</th><th>exact</th>
<th>mean log p [95%]</th><th>exact</th><th>IMH acceptance</th></tr>
{"".join(rows)}</table>
{_typical_text(summary)}
{_best_of_n_table(summary)}
{_paper_comparison(run, summary)}
{not_computed}
<h2>Manifest</h2><pre>{html.escape(manifest_text)}</pre>
<script>
// Lets a headless browser (and the tests) tell that every figure decoded.
window.addEventListener("load", () => {{
  const ok = [...document.images].every((i) => i.complete && i.naturalWidth > 0);
  document.body.dataset.imagesLoaded = String(ok);
  document.body.dataset.imageCount = String(document.images.length);
}});
</script>
</body></html>
"""
    from ..rundir import atomic_write_bytes

    atomic_write_bytes(run.report_path, page.encode("utf-8"))
    return run.report_path
