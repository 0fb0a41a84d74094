"""The report's panels for typical corpora, local vs global normalisation and best-of-n on the
frontier, on a real analysed demo run; each says why when its block is null; all render in
headless Chromium."""

from __future__ import annotations

import copy
import html
import json
import re
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from tradeoff import stats
from tradeoff.app.demo import run_demo
from tradeoff.rundir.summary import read_summary, write_summary
from tradeoff.stages.analyze import analyze
from tradeoff.stages.report import _colours, _frontier_axes, cell, write_report
from tradeoff.stages.settings import AnalysisSettings
from tradeoff.worlds.automaton_hf import exact_for

# Small analysis settings for the re-analysed copies (the demo's own analysis keeps its own).
SMALL = {"n_steps": 20_000, "n_corpora": 200, "n_resamples": 300, "correlation_resamples": 200}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo at 100 strings per configuration: generated, scored, analysed and reported."""
    out = tmp_path_factory.mktemp("panels")
    run_demo(str(out), samples=100, progress=False)
    return out


def copy_run(demo, directory: Path) -> Path:
    return copy_run_dir(demo / "run", directory)


def copy_run_dir(source: Path, directory: Path) -> Path:
    run = directory / "run"
    shutil.copytree(source, run)
    return run


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def full(demo, tmp_path_factory):
    """A copy re-analysed with best-of-n (and its exact values), reported; one configuration's
    imh_global removed, with a reason, to show the missing case beside the others."""
    run = copy_run(demo, tmp_path_factory.mktemp("full"))
    settings = AnalysisSettings(**SMALL, best_of_n={"base": "ancestral", "n": [2, 4]})
    summary = analyze(run, settings=settings,
                      exact=lambda name: exact_for(demo / "world", name))  # fmt: skip
    last = summary.configs[-1]
    last.imh_global = None
    last.reasons["imh_global"] = "a stand-in reason: no strings in the global support"
    write_summary(run / "summary.json", summary)
    write_report(run)
    return run, read_summary(run / "summary.json")


def test_typical_panel_draws_the_summary_s_corpora_and_slope(demo):
    run = demo / "run"
    summary = read_summary(run / "summary.json")
    t = summary.typical
    assert t is not None and t.slope.bounded
    # The corpora the figure marks as typical are the ones analyze counted, and the fit it draws
    # has analyze's slope (close to -beta = -1 in the demo world).
    corpora = pq.read_table(run / "corpora.parquet").to_pydict()
    names = np.asarray(corpora["config"], dtype=object)
    pooled = np.isin(names, list(t.per_config))
    x = np.asarray(corpora["mean_logp_prior"])[pooled]
    y = np.asarray(corpora["mean_reward"])[pooled]
    z = np.asarray(corpora["mean_logp_aligned"])[pooled] + t.entropy
    typical = np.abs(z) <= t.epsilon
    assert typical.sum() == t.n_typical and pooled.sum() == t.n_corpora
    _, slope, _ = stats.plane_fit(x[typical], y[typical], z[typical])
    assert slope == pytest.approx(t.slope.value, abs=1e-6)
    assert slope == pytest.approx(t.minus_beta, abs=1e-3)
    width, height = png_size(run / "figures" / "typical.png")
    assert 1000 <= width <= 2000 and 400 <= height <= 1000
    page = (run / "report.html").read_text()
    section = page[page.index('<h2 id="typical">') : page.index('<h2 id="local-global">')]
    assert 'alt="typical.png"' in section
    shown = (
        f"{t.n_typical} of {t.n_corpora} corpora",
        html.escape(cell(t.slope)),
        f"-beta = {t.minus_beta:.3f}",
        f"within {t.epsilon:.3g}",
        t.interval,
    )
    for text in shown:
        assert text in section, text


def test_best_of_n_points_are_on_the_frontier_and_in_the_table(full, tmp_path):
    run, summary = full
    block = summary.best_of_n
    assert [p.n for p in block.points] == [1, 2, 4]
    page = (run / "report.html").read_text()
    section = page[page.index('<h2 id="best-of-n">') :]
    assert "Best-of-n from ancestral" in section and "cost (strings per output)" in section
    for p in block.points:
        row = f"<td>best-of-{p.n}</td><td>{p.cost}</td><td>{html.escape(cell(p.mean_reward))}</td>"
        assert row in section
    # The frontier figure has a marker at each point, annotated with n and cost, and a legend
    # entry; without the block it has none of them.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def drawn(summary):
        fig, ax = _frontier_axes(plt, summary, _colours(summary.configs))
        xy = [tuple(xy) for line in ax.lines for xy in line.get_xydata()]
        texts = [t.get_text() for t in ax.texts]
        labels = ax.get_legend_handles_labels()[1]
        plt.close(fig)
        return xy, texts, labels

    xy, texts, labels = drawn(summary)
    for p in block.points:
        assert (p.mean_logp_prior.value, p.mean_reward.value) in xy
        assert f"n={p.n}, cost {p.cost}" in texts
    assert "best-of-n from ancestral" in labels
    without = copy.deepcopy(summary)
    without.best_of_n = None
    xy, texts, labels = drawn(without)
    assert not texts and "best-of-n from ancestral" not in labels
    assert all((p.mean_logp_prior.value, p.mean_reward.value) not in xy for p in block.points)
    run = copy_run_dir(run, tmp_path)
    write_summary(run / "summary.json", without)
    write_report(run)
    assert 'id="best-of-n"' not in (run / "report.html").read_text()


def test_local_vs_global_table_and_figure(full):
    run, summary = full
    page = (run / "report.html").read_text()
    section = page[page.index('<h2 id="local-global">') : page.index('<h2 id="best-of-n">')]
    assert 'alt="local_global.png"' in section
    width, height = png_size(run / "figures" / "local_global.png")
    assert 600 <= width <= 2000 and 400 <= height <= 2000
    rows = re.findall(r"<tr><td>(.*?)</tr>", section)
    assert len(rows) == len(summary.configs)
    # The world has the global target's exact values wherever its normaliser converges.
    assert sum(c.imh_global is not None and c.imh_global.exact is not None
               for c in summary.configs) >= 15  # fmt: skip
    for c, row in zip(summary.configs, rows, strict=True):
        assert row.startswith(html.escape(c.config) + "</td>")
        local = f"{cell(c.imh.mean_reward)}; exact {c.imh.exact['mean_reward']:.3f}"
        assert html.escape(local) in row
        assert f"<td>{c.imh.acceptance_rate:.3f}</td>" in row
        g = c.imh_global
        if g is None:
            assert "not computed: a stand-in reason: no strings in the global support" in row
            continue
        for shown in (
            html.escape(
                f"{cell(g.mean_reward)}"
                + (f"; exact {g.exact['mean_reward']:.3f}" if g.exact else "")
            ),
            html.escape(
                f"{cell(g.mean_logp_prior)}"
                + (f"; exact {g.exact['mean_logp_prior']:.3f}" if g.exact else "")
            ),
            f"<td>{g.acceptance_rate:.3f}</td><td>{g.ess:.0f} / {g.importance_ess:.0f}</td>",
        ):
            assert shown in row, (shown, row)


def test_panels_say_why_when_their_blocks_are_null(demo, tmp_path):
    run = copy_run(demo, tmp_path)
    # A summary as an older analysis wrote it: no typical or imh_global keys at all, and
    # corpora without mean log pi.
    data = json.loads((run / "summary.json").read_text())
    del data["typical"]
    for c in data["configs"]:
        del c["imh_global"]
    data["best_of_n"] = None
    data["reasons"]["best_of_n"] = "the base configuration 'greedy' is not in the run"
    (run / "summary.json").write_text(json.dumps(data))
    table = pq.read_table(run / "corpora.parquet").drop_columns(["mean_logp_aligned"])
    pq.write_table(table, run / "corpora.parquet")
    (run / "figures" / "local_global.png").write_bytes(b"stale")  # from an earlier report
    write_report(run)
    page = (run / "report.html").read_text()
    assert "Corpora typical for the aligned model</h2><p>Not computed: summary.json has no " in page
    assert not (run / "figures" / "typical.png").exists()
    assert not (run / "figures" / "local_global.png").exists()
    assert page.count("not computed: not in summary.json") == len(data["configs"])
    assert "Figure not drawn: global chains not computed" in page
    assert "Not computed: the base configuration &#x27;greedy&#x27; is not in the run" in page
    # A typical block but corpora too old for the figure: the block's numbers, and why no figure.
    data = json.loads((demo / "run" / "summary.json").read_text())
    (run / "summary.json").write_text(json.dumps(data))
    write_report(run)
    page = (run / "report.html").read_text()
    assert "Figure not drawn: corpora.parquet has no mean_logp_aligned column" in page
    assert f"{data['typical']['n_typical']} of {data['typical']['n_corpora']}" in page
    # typical null with its reason, as analyze writes it for a run without an ancestral chain.
    summary = read_summary(run / "summary.json")
    summary.typical = None
    summary.reasons["typical"] = "the ancestral configuration's chain has no mean log pi"
    write_summary(run / "summary.json", summary)
    write_report(run)
    page = (run / "report.html").read_text()
    assert "Not computed: the ancestral configuration&#x27;s chain has no mean log pi." in page


def test_the_authors_semantics_report_keeps_every_section(demo, tmp_path):
    run = copy_run(demo, tmp_path)
    summary = analyze(run, settings=AnalysisSettings(**SMALL), semantics="authors")
    assert summary.semantics == "authors"
    write_report(run)
    page = (run / "report.html").read_text()
    for key in ("frontier", "corpus-level", "per-configuration", "typical", "local-global"):
        assert f'<h2 id="{key}">' in page and f'href="#{key}"' in page
    assert summary.typical is not None or summary.reasons["typical"] in page


def rendered_body(page: Path) -> tuple[str, str]:
    """The opening body tag and the DOM of ``page`` after headless Chromium loaded it."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    assert browser, "Chromium is needed to render the report (./dev test installs it)"
    done = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000",
         "--dump-dom", page.resolve().as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    body = re.search(r"<body[^>]*>", done.stdout)
    assert body, done.stderr[-2000:]
    return body[0], done.stdout


def test_new_panels_render_in_headless_chromium(full):
    run, _ = full
    body, dom = rendered_body(run / "report.html")
    assert 'data-images-loaded="true"' in body and 'data-image-count="5"' in body
    decoded = re.search(r'data-images-decoded="([^"]*)"', body)[1].split()
    assert {"typical.png", "local_global.png", "frontier.png"} <= set(decoded)
    for key in ("typical", "local-global", "best-of-n"):
        assert f'<h2 id="{key}">' in dom and f'<a href="#{key}">' in dom


def test_per_prompt_section_gives_the_summary_s_lines(demo, tmp_path):
    run = demo / "run"
    block = read_summary(run / "summary.json").per_prompt
    assert block is not None and block.n_prompts == 1
    page = (run / "report.html").read_text()
    section = page[page.index('<h2 id="per-prompt">') :]
    assert f"Slope: median {block.slope_median:.3f}" in section
    assert f"<td>{block.prompts[0].slope:.3f}</td>" in section
    # Without the block, its reason.
    other = copy_run(demo, tmp_path)
    summary = read_summary(other / "summary.json")
    summary.per_prompt = None
    summary.reasons["per_prompt"] = "no prompt has 10 kept strings in each configuration"
    write_summary(other / "summary.json", summary)
    write_report(other)
    page = (other / "report.html").read_text()
    assert "Not computed: no prompt has 10 kept strings in each configuration." in page
