"""The report stage: figures (PNG) and a self-contained ``report.html`` for an analysed run
directory, read from ``summary.json`` through its schema. Quantities the analysis could not
compute are shown as n/a, with their reasons listed; a panel whose block is null (an older
summary, the authors' semantics, a setting not asked for) says why in its section instead of a
figure. The page opens with links to every section.

- ``figures/frontier.png``: each configuration's mean reward against mean prior log-likelihood
  with 95% intervals, the Pareto frontier, the exact values when known, and the best-of-n points
  (``summary.best_of_n``) beside them, each annotated with n and its cost (strings generated per
  output).
- ``figures/corpus_level.png``: the means of resampled corpora per configuration in the plane
  (mean prior log-likelihood, mean reward), coloured by adaptor family, lighter for higher
  temperature; exact expectations, where the world knows them, as black crosses.
- ``figures/string_level.png``: strings' reward against prior log-probability, with a
  least-squares line per configuration.
- ``figures/typical.png`` (``summary.typical``): the pooled configurations' resampled corpora in
  (mean log p, mean reward), grey, and the ones typical for pi (|mean log pi + H(pi)| <= epsilon)
  coloured by mean log pi + H(pi); the least-squares fit of mean reward on mean log p and mean
  log pi over the typical corpora, drawn at mean log pi = -H(pi), and a reference line of slope
  -beta (the implied beta) through the same point. The caption gives H, epsilon, the counts, the
  slope with its interval and how the interval was made.
- ``figures/local_global.png`` (``ConfigSummary.imh`` and ``imh_global``): per configuration the
  IMH-corrected means under the paper's target (pi restricted to q's support: "local") and under
  the globally normalised adaptor (pi^(1/tau) on the support: "global"), with 95% intervals,
  joined by a segment, exact values marked; a table beside it gives both targets' mean reward
  and mean log p with intervals, acceptance and ESS, or "not computed" with the reason.
- The best-of-n table: per n, the mean reward, log p and length with intervals over prompts (or
  one prompt's strings), the cost in strings per output, and the KL to the base.
- The per-prompt lines (``summary.per_prompt``): the distribution of the per-prompt trade-off
  slopes and implied betas, and a table of the first 50 prompts.
"""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path
from typing import Any

import numpy as np

from .. import stats
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
    # tight_layout leaves out a legend placed outside the axes; the saved box takes it in.
    outside = "bbox_to_anchor" in legend
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png", bbox_inches="tight" if outside else None)
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


def _error(e: Estimate) -> list[list[float]] | None:
    """An estimate's interval as matplotlib's asymmetric error (None without one)."""
    if not e.bounded:
        return None
    return [[e.value - e.low], [e.high - e.value]]  # type: ignore[operator]


def _frontier_figure(plt: Any, run: RunDir, summary: Summary, colours: dict[str, Any]) -> None:
    fig, ax = _frontier_axes(plt, summary, colours)
    # The legend beside the axes: inside, it would hide points (best-of-n's high on the left).
    _finish(plt, fig, ax, run.figures_dir / "frontier.png", "no configuration has kept strings",
            loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)  # fmt: skip


def _frontier_axes(plt: Any, summary: Summary, colours: dict[str, Any]) -> tuple[Any, Any]:
    """The frontier figure, drawn but not saved (the tests read what it shows)."""
    usable = [c for c in summary.configs if c.mean_reward.known and c.mean_logp_prior.known]
    on_frontier = set(frontier(usable)[0]) if usable else set()
    fig, ax = plt.subplots(figsize=(10, 6))
    line = sorted(
        (c.mean_logp_prior.value, c.mean_reward.value) for c in usable if c.config in on_frontier
    )
    if line:
        ax.plot(*zip(*line, strict=True), color="0.3", lw=1, ls="--", label="Pareto frontier")
    for c in usable:
        x, y = c.mean_logp_prior, c.mean_reward
        ax.errorbar(
            x.value,
            y.value,
            xerr=_error(x),
            yerr=_error(y),
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
        ax.plot(xs, ys, "-", color="0.15", lw=1, zorder=3)
        for i, p in enumerate(points):
            ax.errorbar(
                p.mean_logp_prior.value,
                p.mean_reward.value,
                xerr=_error(p.mean_logp_prior),
                yerr=_error(p.mean_reward),
                fmt="s",
                color="0.15",
                ms=5,
                zorder=3,
                label=f"best-of-n from {block.base}" if i == 0 else None,
            )
            ax.annotate(
                f"n={p.n}, cost {p.cost}",
                (p.mean_logp_prior.value, p.mean_reward.value),
                textcoords="offset points",
                xytext=(6, 4),
                fontsize=8,
                color="0.15",
            )
    ax.set(
        xlabel="mean log p (prior)",
        ylabel="mean reward",
        title="mean reward vs mean prior log-likelihood, 95% intervals (x: exact; "
        "squares: best-of-n, cost = strings per output)"
        if points
        else "mean reward vs mean prior log-likelihood, 95% intervals (x: exact)",
    )
    ax.title.set_fontsize(9 if points else 12)
    return fig, ax


def _typical_figure(plt: Any, run: RunDir, summary: Summary) -> str | None:
    """``figures/typical.png``; None when drawn, else the reason it is not."""
    import pyarrow.parquet as pq

    (run.figures_dir / "typical.png").unlink(missing_ok=True)  # no stale panel from a rerun
    t = summary.typical
    if t is None:
        return summary.reasons.get("typical", "summary.json has no typical block")
    if not run.corpora_path.exists():
        return "corpora.parquet is missing: run analyze again"
    corpora = pq.read_table(run.corpora_path)
    if "mean_logp_aligned" not in corpora.column_names:
        return (
            "corpora.parquet has no mean_logp_aligned column (an older analysis): run analyze again"
        )
    data = corpora.to_pydict()
    names = np.asarray(data["config"], dtype=object)
    pooled = np.isin(names, list(t.per_config))
    x = np.asarray(data["mean_logp_prior"], dtype=float)[pooled]
    y = np.asarray(data["mean_reward"], dtype=float)[pooled]
    z = np.asarray(data["mean_logp_aligned"], dtype=float)[pooled] + t.entropy
    typical = np.abs(z) <= t.epsilon
    if not typical.any():
        return f"no corpus has a mean log pi within {t.epsilon:.3g} of -H(pi)"

    def every(mask: np.ndarray, most: int = 5000) -> np.ndarray:
        # An even thinning, so that the picture does not depend on a random draw.
        rows = np.flatnonzero(mask)
        return rows[np.linspace(0, len(rows) - 1, min(most, len(rows))).astype(int)]

    # Left: the plane itself, the lines through the typical corpora's centroid (where the fit
    # passes at their mean deviation). Right: their reward moved to mean log pi = -H(pi) along
    # the fit (y - c z), where the slope at fixed mean log pi is a line through the points.
    fig, (ax, right) = plt.subplots(1, 2, figsize=(12, 5.5), layout="constrained")
    other = every(~typical)
    if len(other):
        ax.scatter(x[other], y[other], s=2, color="0.75", alpha=0.4, lw=0,
                   label=f"other pooled corpora ({int((~typical).sum())})")  # fmt: skip
    shown = every(typical)
    # points over the lines: on the right they lie on them
    style = {"s": 5, "cmap": "coolwarm", "lw": 0, "vmin": -t.epsilon, "vmax": t.epsilon,
             "zorder": 3}  # fmt: skip
    points = ax.scatter(x[shown], y[shown], c=z[shown], label=f"typical for pi ({t.n_typical})",
                        **style)  # fmt: skip
    tx, ty, tz = x[typical], y[typical], z[typical]
    # The fit whose x coefficient is analyze's slope at fixed mean log pi.
    intercept, slope, along_z = stats.plane_fit(tx, ty, tz) if len(tx) >= 4 else (math.nan,) * 3
    if t.slope.known and math.isfinite(slope):
        adjusted = ty - along_z * tz
        some = every(np.ones(len(tx), dtype=bool))
        right.scatter(tx[some], adjusted[some], c=tz[some], **style)
        xs = np.array([tx.min(), tx.max()])
        anchor = float(tx.mean())
        for where, at in ((ax, float(ty.mean())), (right, intercept + slope * anchor)):
            label = f"slope at fixed mean log pi: {cell(t.slope)}"
            where.plot(xs, at + slope * (xs - anchor), color="black", lw=1, label=label)
            if t.minus_beta is not None:
                label = f"slope -beta = {t.minus_beta:.3f} (implied beta)"
                reference = at + t.minus_beta * (xs - anchor)
                where.plot(xs, reference, color="tab:green", lw=1.5, ls=(0, (4, 4)), label=label)
    else:
        right.text(0.5, 0.5, f"no slope: {t.slope.reason}", ha="center", va="center",
                   transform=right.transAxes, wrap=True)  # fmt: skip
    fig.colorbar(points, ax=[ax, right], label="mean log pi + H(pi) (nats)", shrink=0.9)
    ax.set(
        xlabel="corpus mean log p (prior)",
        ylabel="corpus mean reward",
        title=f"pooled corpora; typical for pi: |mean log pi + H(pi)| <= {t.epsilon:.3g} "
        f"(H = {t.entropy:.3f})",
    )
    right.set(
        xlabel="corpus mean log p (prior)",
        ylabel="mean reward at mean log pi = -H(pi) (fitted)",
        title="the typical corpora moved to mean log pi = -H(pi)",
    )
    for where in (ax, right):
        where.title.set_fontsize(10)
    if right.get_legend_handles_labels()[0]:
        right.legend(fontsize=7, loc="best")
    ax.legend(fontsize=7, markerscale=3, loc="best")
    from ..rundir import atomic_path

    with atomic_path(run.figures_dir / "typical.png") as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return None


def _global_reason(c: ConfigSummary) -> str:
    """Why a configuration has no globally normalised chain."""
    if "imh_global" in c.reasons:
        return c.reasons["imh_global"]
    if c.imh is None and "imh" in c.reasons:
        return c.reasons["imh"]
    return "not in summary.json (the analysis that wrote it does not compute it)"


def _local_global_figure(
    plt: Any, run: RunDir, summary: Summary, colours: dict[str, Any]
) -> str | None:
    """``figures/local_global.png``; None when drawn, else the reason it is not."""
    from matplotlib.lines import Line2D

    (run.figures_dir / "local_global.png").unlink(missing_ok=True)
    pairs = [
        c
        for c in summary.configs
        if c.imh is not None
        and c.imh_global is not None
        and all(e.known for e in (c.imh.mean_reward, c.imh.mean_logp_prior,
                                  c.imh_global.mean_reward, c.imh_global.mean_logp_prior))
    ]  # fmt: skip
    if not pairs:
        reasons = sorted({_global_reason(c) for c in summary.configs})
        return "; ".join(reasons) if reasons else "the run has no configurations"
    fig, ax = plt.subplots(figsize=(8, 6))
    for c in pairs:
        local, wide = c.imh, c.imh_global  # type: ignore[union-attr]
        ends = [(t.mean_logp_prior.value, t.mean_reward.value) for t in (local, wide)]
        ax.plot(*zip(*ends, strict=True), color=colours[c.config], lw=1, alpha=0.8)
        for target, marker, face in ((local, "o", colours[c.config]), (wide, "s", "white")):
            ax.errorbar(
                target.mean_logp_prior.value,
                target.mean_reward.value,
                xerr=_error(target.mean_logp_prior),
                yerr=_error(target.mean_reward),
                fmt=marker,
                ms=5,
                color=colours[c.config],
                mfc=face,
                elinewidth=0.7,
                label=c.config if target is local else None,
            )
        for target, marker in ((local, "x"), (wide, "+")):
            e = target.exact
            if e is not None and "mean_logp_prior" in e and "mean_reward" in e:
                ax.scatter(e["mean_logp_prior"], e["mean_reward"], marker=marker, color="black",
                           s=30, zorder=4)  # fmt: skip
    ax.set(
        xlabel="corrected mean log p (prior)",
        ylabel="corrected mean reward",
        title="IMH-corrected means, 95% intervals: local (pi on q's support) "
        "to global (pi^(1/tau))",
    )
    ax.title.set_fontsize(10)
    shapes = [
        Line2D([], [], marker="o", color="0.3", ls="", label="local: pi on q's support"),
        Line2D([], [], marker="s", color="0.3", mfc="white", ls="", label="global: pi^(1/tau)"),
        Line2D([], [], marker="x", color="black", ls="", label="exact, local"),
        Line2D([], [], marker="+", color="black", ls="", label="exact, global"),
    ]
    ax.add_artist(ax.legend(handles=shapes, fontsize=7, loc="upper right"))
    _finish(plt, fig, ax, run.figures_dir / "local_global.png", None, loc="best")
    return None


def _typical_text(summary: Summary) -> str:
    """The caption of the typical-corpora panel: the corpora typical for pi and the slope they
    lie on, against -beta; the reason when there is no block."""
    t = summary.typical
    if t is None:
        reason = summary.reasons.get("typical", "summary.json has no typical block")
        return f"<p>Not computed: {html.escape(reason)}.</p>"
    sources = ", ".join(f"{html.escape(c)} ({n})" for c, n in t.per_config.items() if n)
    against = f" against -beta = {_number(t.minus_beta)}" if t.minus_beta is not None else ""
    return (
        f"<p>H(pi) = {t.entropy:.3f} nats per "
        f"string ({html.escape(t.entropy_source)}; the chain's estimate "
        f"{_number(t.entropy_estimate)}). {t.n_typical} of {t.n_corpora} corpora have a mean "
        f"log pi within {t.epsilon:.3g} of -H(pi), from {sources or 'no configuration'}. Among "
        f"them, the slope of mean reward on mean log p at fixed mean log pi is "
        f"{html.escape(cell(t.slope))}{against} (interval: {html.escape(t.interval)}); the "
        f"plain slope is {_number(t.plain_slope)}. Left: the pooled configurations' corpora "
        "(grey) and the typical ones, coloured by mean log pi + H(pi), with the slope at fixed "
        "mean log pi (black) and slope -beta (dashed green) through their centroid. Right: the "
        "typical corpora's mean reward moved along the fit to mean log pi = -H(pi), where the "
        "slope at fixed mean log pi is the line they lie on.</p>"
    )


def _with_exact(e: Estimate, exact: dict[str, float] | None, key: str) -> str:
    text = cell(e)
    if exact is not None and exact.get(key) is not None:
        text += f"; exact {exact[key]:.3f}"
    return text


def _local_global_table(summary: Summary) -> str:
    """Per configuration: both chains' corrected mean reward and log p with intervals (and
    exact values), acceptance and ESS; "not computed" with the reason for a missing chain."""
    rows = []
    for c in summary.configs:
        cells = [f"<td>{html.escape(c.config)}</td>"]
        for target, reason in (
            (c.imh, c.reasons.get("imh", "not in summary.json")),
            (c.imh_global, _global_reason(c)),
        ):
            if target is None:
                cells.append(f'<td colspan="4">not computed: {html.escape(reason)}</td>')
                continue
            values = (
                _with_exact(target.mean_reward, target.exact, "mean_reward"),
                _with_exact(target.mean_logp_prior, target.exact, "mean_logp_prior"),
                _number(target.acceptance_rate, 3),
                f"{_number(target.ess, 0)} / {_number(target.importance_ess, 0)}",
            )
            cells += [f"<td>{html.escape(v)}</td>" for v in values]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (
        '<table><tr><th rowspan="2">configuration</th>'
        "<th colspan=\"4\">local: pi restricted to q's support (the paper's)</th>"
        '<th colspan="4">global: pi^(1/tau) on strings whose every token is in the support'
        "</th></tr><tr>"
        + (
            "<th>mean reward [95%]</th><th>mean log p [95%]</th><th>acceptance</th>"
            "<th>ESS: chain / strings</th>"
        )
        * 2
        + f"</tr>{''.join(rows)}</table>"
    )


def _best_of_n_table(summary: Summary) -> str:
    """Best-of-n beside the adaptors: its means with intervals (over prompts, or one prompt's
    strings), cost and KL; the reason when the block is null for anything but not being asked
    for."""
    block = summary.best_of_n
    if block is None:
        reason = summary.reasons.get("best_of_n", "")
        if not reason or reason.startswith("not asked for"):
            return ""
        return f'<h2 id="best-of-n">Best-of-n</h2><p>Not computed: {html.escape(reason)}.</p>'
    rows = []
    for p in block.points:
        cells = (f"best-of-{p.n}", p.cost, cell(p.mean_reward), cell(p.mean_logp_prior),
                 cell(p.mean_length), _number(p.kl_bound), _number(p.kl_estimate))  # fmt: skip
        rows.append("<tr>" + "".join(f"<td>{html.escape(str(x))}</td>" for x in cells) + "</tr>")
    return (
        f'<h2 id="best-of-n">Best-of-n from {html.escape(block.base)}</h2><p>{block.n_prompts} '
        f"prompts with at least {block.min_samples_per_prompt} kept strings "
        f"({block.n_prompts_dropped} left out); unbiased estimates from all subsets, intervals "
        f"by {html.escape(block.interval)}. Cost: strings generated per output; "
        "the points are the squares on the frontier figure.</p><table><tr><th>policy</th>"
        "<th>cost (strings per output)</th><th>mean reward [95%]</th>"
        "<th>mean log p [95%]</th><th>mean length [95%]</th><th>KL bound</th><th>KL estimate</th>"
        f"</tr>{''.join(rows)}</table>"
    )


def _per_prompt_text(summary: Summary) -> str:
    """The per-prompt trade-off lines: the distribution of their slopes against -beta."""
    block = summary.per_prompt
    if block is None:
        reason = summary.reasons.get("per_prompt", "not in summary.json")
        return (
            f'<h2 id="per-prompt">Per-prompt lines</h2><p>Not computed: {html.escape(reason)}.</p>'
        )
    low, high = block.slope_quartiles
    rows = "".join(
        "<tr>"
        + "".join(
            f"<td>{html.escape(str(x))}</td>"
            for x in (
                line.prompt_id,
                line.n_strings,
                _number(line.slope),
                _number(line.rvalue),
                _number(line.beta),
            )  # fmt: skip
        )
        + "</tr>"
        for line in block.prompts[:50]
    )
    more = f" (the first 50 of {len(block.prompts)})" if len(block.prompts) > 50 else ""
    return (
        f'<h2 id="per-prompt">Per-prompt lines</h2><p>{block.n_prompts} prompts with at least '
        f"{block.min_samples} kept strings in each of {block.n_configs} configurations "
        f"({block.n_prompts_dropped} left out). Per prompt, the line of mean reward on mean log p "
        f"through its configurations' means ({html.escape(block.means)}). Slope: median "
        f"{_number(block.slope_median)}, quartiles [{_number(low)}, {_number(high)}], "
        f"{_number(block.share_negative)} of them negative; each prompt's implied beta: median "
        f"{_number(block.beta_median)}; slope / (-beta): median "
        f"{_number(block.ratio_to_minus_beta_median)}.</p><table><tr><th>prompt</th>"
        f"<th>strings</th><th>slope</th><th>r</th><th>beta</th></tr>{rows}</table>{more}"
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
        f'<h2 id="paper">The paper\'s {setting} figures</h2>'
        "<table><tr><th>pooled correlation</th>"
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
    typical_missing = _typical_figure(plt, run, summary)
    global_missing = _local_global_figure(plt, run, summary, colours)

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
    string_level = (
        '<h2 id="string-level">String level</h2>' + image("string_level.png") if has_strings else ""
    )
    string_rho = _correlation_text(summary.string_level)
    corpus_rho = _correlation_text(summary.corpus_level)
    if summary.corpus_level is None and "corpus_level" in summary.reasons:
        corpus_rho = f"n/a ({summary.reasons['corpus_level']})"
    missing = _not_computed(summary)
    not_computed = (
        (
            '<h2 id="not-computed">Not computed</h2><ul>'
            + "".join(f"<li>{html.escape(m)}</li>" for m in missing)
            + "</ul>"
        )
        if missing
        else ""
    )
    typical = '<h2 id="typical">Corpora typical for the aligned model</h2>'
    if summary.typical is not None and typical_missing is not None:
        typical += f"<p>Figure not drawn: {html.escape(typical_missing)}.</p>"
    typical += (image("typical.png") if typical_missing is None else "") + _typical_text(summary)
    local_global = (
        '<h2 id="local-global">Local vs global normalisation</h2><p>Each configuration\'s '
        "strings reweighted by an IMH chain to two targets: local, the paper's (pi restricted "
        "to the adaptor's support, log-weights log pi - log q), and global (the globally "
        "normalised adaptor pi^(1/tau) on strings whose every token is in the support, "
        "log-weights log pi / tau - log q). "
        + (
            "Circles: local; squares: global; a segment joins a configuration's two; x and +: "
            "their exact values.</p>" + image("local_global.png")
            if global_missing is None
            else f"Figure not drawn: global chains not computed ({html.escape(global_missing)})."
            "</p>"
        )
        + _local_global_table(summary)
    )
    best_of_n = _best_of_n_table(summary)
    per_prompt = _per_prompt_text(summary)
    paper = _paper_comparison(run, summary)
    sections = [
        ("frontier", "Trade-off frontier"),
        ("corpus-level", "Corpus level"),
        ("string-level", "String level") if has_strings else None,
        ("per-configuration", "Per configuration"),
        ("typical", "Typical corpora"),
        ("local-global", "Local vs global"),
        ("best-of-n", "Best-of-n") if best_of_n else None,
        ("per-prompt", "Per-prompt lines"),
        ("paper", "The paper's figures") if paper else None,
        ("not-computed", "Not computed") if not_computed else None,
        ("manifest", "Manifest"),
    ]
    nav = " · ".join(f'<a href="#{key}">{title}</a>' for key, title in filter(None, sections))
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
<nav>{nav}</nav>
<h2 id="frontier">Trade-off frontier</h2>{image("frontier.png")}
<h2 id="corpus-level">Corpus level</h2>{image("corpus_level.png")}
{string_level}
<h2 id="per-configuration">Per configuration</h2>
<table><tr><th>configuration</th><th>strings</th><th>mean reward [95%]</th><th>exact</th>
<th>mean log p [95%]</th><th>exact</th><th>IMH acceptance</th></tr>
{"".join(rows)}</table>
{typical}
{local_global}
{best_of_n}
{per_prompt}
{paper}
{not_computed}
<h2 id="manifest">Manifest</h2><pre>{html.escape(manifest_text)}</pre>
<script>
// Lets a headless browser (and the tests) tell that every figure decoded.
window.addEventListener("load", () => {{
  const ok = [...document.images].every((i) => i.complete && i.naturalWidth > 0);
  document.body.dataset.imagesLoaded = String(ok);
  document.body.dataset.imageCount = String(document.images.length);
  document.body.dataset.imagesDecoded = [...document.images]
    .filter((i) => i.complete && i.naturalWidth > 0).map((i) => i.alt).join(" ");
}});
</script>
</body></html>
"""
    from ..rundir import atomic_write_bytes

    atomic_write_bytes(run.report_path, page.encode("utf-8"))
    return run.report_path
