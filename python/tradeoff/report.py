"""Figures (PNG) and a self-contained ``report.html`` for an analysed run directory.

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
import json
import re
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["family_and_temperature", "write_report"]


def family_and_temperature(config: str) -> tuple[str, float]:
    """``"temperature=1.5,top_p=0.9"`` -> ``("top_p=0.9", 1.5)``; no temperature is 1.0."""
    parts = [p for p in config.split(",") if p and p != "ancestral"]
    temperature = 1.0
    rest = []
    for part in parts:
        match = re.fullmatch(r"temperature=([0-9.eE+-]+)", part)
        if match:
            temperature = float(match[1])
        else:
            rest.append(part)
    return (",".join(rest) or "ancestral"), temperature


def _colours(configs: list[str]) -> dict[str, Any]:
    import matplotlib.colors as mcolors
    from matplotlib import colormaps

    families = sorted({family_and_temperature(c)[0] for c in configs})
    temperatures = sorted({family_and_temperature(c)[1] for c in configs})
    palette = colormaps["tab10"]
    colours = {}
    for c in configs:
        family, t = family_and_temperature(c)
        base = np.array(mcolors.to_rgb(palette(families.index(family) % 10)))
        share = temperatures.index(t) / max(len(temperatures) - 1, 1)
        colours[c] = tuple(base * (1 - 0.55 * share) + 0.55 * share)  # lighter when hotter
    return colours


def write_report(run_dir: str) -> Path:
    """Writes the figures and ``report.html`` from ``summary.json`` (and ``corpora.parquet``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pyarrow.parquet as pq

    run = Path(run_dir)
    summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    figures = run / "figures"
    figures.mkdir(exist_ok=True)
    configs = [c["config"] for c in summary["configs"]]
    colours = _colours(configs)

    fig, ax = plt.subplots(figsize=(8, 6))
    corpora_path = run / "corpora.parquet"
    if corpora_path.exists():
        corpora = pq.read_table(corpora_path).to_pydict()
        names = np.asarray(corpora["config"])
        for c in configs:
            rows = np.flatnonzero(names == c)[:300]
            ax.scatter(np.asarray(corpora["mean_logp_prior"])[rows],
                       np.asarray(corpora["mean_reward"])[rows], s=3, color=colours[c],
                       alpha=0.5, label=c)  # fmt: skip
    for c in summary["configs"]:
        if "exact" in c.get("imh", {}):
            e = c["imh"]["exact"]
            ax.scatter(e["mean_logp_prior"], e["mean_reward"], marker="x", color="black", s=30)
    ax.set(xlabel="corpus mean log p (prior)", ylabel="corpus mean reward",
           title="corpus level (IMH-corrected resampled corpora; x: exact)")  # fmt: skip
    ax.legend(fontsize=6, markerscale=3, ncol=2)
    fig.tight_layout()
    fig.savefig(figures / "corpus_level.png", dpi=110)
    plt.close(fig)

    samples_path = run / "samples.parquet"
    if samples_path.exists():
        table = pq.read_table(samples_path, columns=["config", "logp_prior", "reward"])
        data = table.to_pydict()
        names = np.asarray(data["config"])
        logp = np.asarray(data["logp_prior"], dtype=float)
        reward = np.asarray(data["reward"], dtype=float)
        fig, ax = plt.subplots(figsize=(8, 6))
        for c in configs:
            rows = np.flatnonzero((names == c) & np.isfinite(logp) & np.isfinite(reward))
            if len(rows) < 2:
                continue
            shown = rows[:300]
            ax.scatter(logp[shown], reward[shown], s=3, alpha=0.35, color=colours[c])
            if np.ptp(logp[rows]) > 0:
                slope, intercept = np.polyfit(logp[rows], reward[rows], 1)
                xs = np.array([logp[rows].min(), logp[rows].max()])
                ax.plot(xs, slope * xs + intercept, color=colours[c], lw=1, label=c)
        rho = summary["string_level"]["spearman"]["statistic"]
        title = f"string level, a least-squares line per configuration (rho = {rho:.2f})"
        ax.set(xlabel="log p(y) (prior)", ylabel="reward r(y)", title=title)
        ax.legend(fontsize=6, ncol=2)
        fig.tight_layout()
        fig.savefig(figures / "string_level.png", dpi=110)
        plt.close(fig)

    from .recommend import frontier

    usable = [c for c in summary["configs"] if c["mean_reward"]["value"] is not None]
    on_frontier = set(frontier(usable)[0]) if usable else set()
    fig, ax = plt.subplots(figsize=(8, 6))
    line = sorted((c["mean_logp_prior"]["value"], c["mean_reward"]["value"])
                  for c in usable if c["config"] in on_frontier)  # fmt: skip
    if line:
        ax.plot(*zip(*line, strict=True), color="0.3", lw=1, ls="--", label="Pareto frontier")
    for c in summary["configs"]:
        x, y = c["mean_logp_prior"], c["mean_reward"]
        xerr = [[x["value"] - x["low"]], [x["high"] - x["value"]]]
        yerr = [[y["value"] - y["low"]], [y["high"] - y["value"]]]
        ax.errorbar(x["value"], y["value"], xerr=xerr, yerr=yerr, fmt="o",
                    color=colours[c["config"]], ms=4, label=c["config"])  # fmt: skip
        if "exact" in c:
            ax.scatter(c["exact"]["mean_logp_prior"], c["exact"]["mean_reward"], marker="x",
                       color="black", s=30)  # fmt: skip
    ax.set(xlabel="mean log p (prior)", ylabel="mean reward",
           title="mean reward vs mean prior log-likelihood, 95% intervals (x: exact)")  # fmt: skip
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(figures / "frontier.png", dpi=110)
    plt.close(fig)

    def image(name: str) -> str:
        data = base64.b64encode((figures / name).read_bytes()).decode()
        return f'<img alt="{name}" src="data:image/png;base64,{data}" style="max-width:100%">'

    def cell(v: dict[str, Any] | None) -> str:
        if not v or v.get("value") is None:
            return "–"
        return f"{v['value']:.3f} [{v['low']:.3f}, {v['high']:.3f}]"

    rows = []
    for c in summary["configs"]:
        exact = c.get("exact", {})
        rows.append(
            "<tr>"
            + "".join(
                f"<td>{html.escape(str(x))}</td>"
                for x in (
                    c["config"],
                    c["n_strings"],
                    cell(c["mean_reward"]),
                    f"{exact['mean_reward']:.3f}" if exact else "–",
                    cell(c["mean_logp_prior"]),
                    f"{exact['mean_logp_prior']:.3f}" if exact else "–",
                    f"{c.get('imh', {}).get('acceptance_rate', float('nan')):.2f}",
                )
            )
            + "</tr>"  # fmt: skip
        )
    manifest = run / "manifest.json"
    manifest_text = manifest.read_text(encoding="utf-8") if manifest.exists() else "{}"
    string_level = ""
    if (figures / "string_level.png").exists():
        string_level = "<h2>String level</h2>" + image("string_level.png")
    corpus_rho = summary.get("corpus_level", {}).get("spearman", {}).get("statistic")
    corpus_rho = float("nan") if corpus_rho is None else corpus_rho
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tradeoff report: {html.escape(run.name)}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}
table{{border-collapse:collapse}} td,th{{border:1px solid #ccc;padding:3px 6px;font-size:13px}}
pre{{background:#f6f6f6;padding:1em;overflow:auto}}</style>
</head><body>
<h1>Probability–quality trade-off: {html.escape(run.name)}</h1>
<p>{summary["n_strings"]} strings in {len(summary["configs"])} configurations.
String level Spearman(log p, reward) = {summary["string_level"]["spearman"]["statistic"]:.3f};
corpus level = {corpus_rho:.3f}.</p>
<h2>Trade-off frontier</h2>{image("frontier.png")}
<h2>Corpus level</h2>{image("corpus_level.png")}
{string_level}
<h2>Per configuration</h2>
<table><tr><th>configuration</th><th>strings</th><th>mean reward [95%]</th><th>exact</th>
<th>mean log p [95%]</th><th>exact</th><th>IMH acceptance</th></tr>
{"".join(rows)}</table>
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
    from .store import atomic_write_bytes

    out = run / "report.html"
    atomic_write_bytes(out, page.encode("utf-8"))
    return out
