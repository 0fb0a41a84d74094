"""The demo end to end: generate, score, analyze and report on the exact automaton world, with at
least 90% of the estimated means holding the exact value in their 95% interval."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import struct
import subprocess

import pytest

from tradeoff.app import cli
from tradeoff.stages.report import family_and_temperature


def run(*args):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(list(args)) == 0
    return out.getvalue()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    summary = json.loads(run("demo", "--out", str(out), "--json"))
    return out, summary


def test_demo_estimates_meet_the_exact_answers(demo):
    out, summary = demo
    assert len(summary["configs"]) == 35
    assert summary["coverage"] >= 0.9
    for c in summary["configs"]:
        assert c["n_strings"] == 400
        assert c["dropped"] == {"empty": 0, "unfinished": 0, "non_finite": 0, "duplicate": 0}
        for key in ("mean_reward", "mean_logp_prior", "mean_logp_aligned"):
            assert set(c[key]) == {"value", "low", "high", "reason"} and c[key]["reason"] is None
            assert c[key]["low"] <= c[key]["value"] <= c[key]["high"]
            assert isinstance(c["exact"][key], float)
        assert 0 < c["imh"]["acceptance_rate"] <= 1 and c["imh"]["ess"] > 0
        assert set(c["imh"]["exact"]) == set(c["exact"])
    assert summary["implied_beta"]["beta"] == pytest.approx(1.0, rel=1e-4)
    assert summary["implied_beta"]["r_squared"] == pytest.approx(1.0, abs=1e-6)
    # The corpora typical for pi lie on the line of slope -beta (beta = 1 in the demo world): at
    # fixed mean log pi, within the interval (which resamples configurations), up to float noise.
    typical = summary["typical"]
    assert typical["entropy_source"] == "exact (the world)" and typical["entropy"] > 0
    assert typical["slope"]["low"] - 1e-6 <= -1.0 <= typical["slope"]["high"] + 1e-6
    assert typical["minus_beta"] == pytest.approx(-1.0, rel=1e-4)
    assert typical["n_typical"] >= 0.1 * typical["n_corpora"]
    assert typical["per_config"]["ancestral"] > 0
    assert sum(typical["per_config"].values()) == typical["n_typical"]
    # The plain slope in the window is pulled towards 0 by what is left of mean log pi's spread.
    assert -1.0 < typical["plain_slope"] < 0
    # The globally normalised chains cover the world's exact values where it has them (not for
    # tau > 1 without truncation: pi^(1/tau) has no normaliser) and give an interval.
    hits = total = 0
    for c in summary["configs"]:
        g = c["imh_global"]
        if g["exact"] is None:
            assert "sum to infinity" in c["reasons"]["imh_global_exact"]
            continue
        for key in ("mean_reward", "mean_logp_prior", "mean_logp_aligned"):
            if g[key]["low"] is not None:
                total += 1
                hits += g[key]["low"] <= g["exact"][key] <= g[key]["high"]
            else:
                assert "Pareto k-hat" in g[key]["reason"]
    assert total >= 60 and hits >= 0.9 * total, (hits, total)
    for level in ("string_level", "corpus_level"):
        for method in ("spearman", "pearson", "kendall"):
            c = summary[level][method]
            assert -1 <= c["low"] <= c["statistic"] <= c["high"] <= 1
    # The paper's reversal: strings likelier under the prior score higher, while the corpora
    # trade prior likelihood for reward; Simpson flags it. The string level is clear of 0 by its
    # intervals; the corpus level's unit is the configuration (35 of them, the corpora of one
    # are resamples of its strings), which leaves only the Pearson interval clear of 0 in this
    # world (the rank correlations' exact limits are -0.50 and -0.34, their intervals reach 0).
    for method in ("spearman", "pearson", "kendall"):
        assert summary["string_level"][method]["low"] > 0
        assert summary["corpus_level"][method]["statistic"] < 0
        assert summary["corpus_level"]["interval"].startswith("percentile bootstrap over config")
    assert summary["corpus_level"]["pearson"]["high"] < 0
    simpson = summary["simpson"]
    assert simpson["reversal"] is True and simpson["pooled"] > 0 > simpson["between"]
    exact = summary["exact_correlations"]
    assert exact["string_level_pearson"] > 0 > exact["corpus_level_pearson"]
    # The exact pooled Pearson correlation lies in the estimate's interval; Simpson's
    # between-configuration one is the adapted models' means', estimated from 400 strings each.
    pearson = summary["string_level"]["pearson"]
    assert pearson["low"] <= exact["string_level_pearson"] <= pearson["high"]
    assert simpson["between"] == pytest.approx(exact["between_pearson"], abs=0.15)
    on_disk = json.loads((out / "run" / "summary.json").read_text())
    assert on_disk["configs"][0]["config"] == summary["configs"][0]["config"]


def test_the_demo_prints_the_reversal(demo):
    _, summary = demo
    # What `tradeoff-eval demo` prints after the table (the fixture ran it with --json).
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        cli._print_reversal(summary)
    text = printed.getvalue()
    string = re.search(r"string level \(14,000 strings\): Spearman \+(\S+) \[(\S+), (\S+)\]", text)
    corpus = re.search(r"corpus level \(70,000 corpora\): Spearman (-\S+) \[(\S+), (\S+)\], "
                       r"Pearson (-\S+) \[(\S+), (\S+)\]", text)  # fmt: skip
    assert string and corpus, text
    assert 0 < float(string[2]) <= float(string[1]) <= float(string[3])
    assert float(corpus[2]) <= float(corpus[1]) < 0 and float(corpus[2]) < 0
    assert float(corpus[5]) <= float(corpus[4]) <= float(corpus[6]) < 0
    assert "exact Pearson +0.192" in text and "limit Pearson -0.607" in text
    assert re.search(r"Simpson \(Pearson\): pooled \+\S+, between configurations -\S+ "
                     r"\(exact -0.410\).*reversal: yes", text)  # fmt: skip
    assert summary["string_level"]["spearman"]["statistic"] == pytest.approx(float(string[1]),
                                                                             abs=5e-4)  # fmt: skip


def test_the_independent_world_is_the_second_preset():
    parser = cli.build_parser()
    assert parser.parse_args(["demo"]).world == "reversal"
    assert parser.parse_args(["demo", "--world", "independent"]).world == "independent"
    with pytest.raises(SystemExit):
        parser.parse_args(["demo", "--world", "other"])


def test_analyze_and_report_commands_on_the_demo_run(demo, tmp_path):
    out, _ = demo
    summary = json.loads(run("analyze", "--run", str(out / "run"), "--n-steps", "5000",
                             "--n-corpora", "50", "--json"))  # fmt: skip
    assert summary["settings"]["n_steps"] == 5000
    report = json.loads(run("report", "--run", str(out / "run"), "--json"))["report"]
    page = open(report, encoding="utf-8").read()
    # Every figure the report drew is embedded: the frontier, corpus and string levels, the
    # typical corpora, local vs global.
    figures = sorted(p.name for p in (out / "run" / "figures").glob("*.png"))
    assert figures == ["corpus_level.png", "frontier.png", "local_global.png", "string_level.png",
                       "typical.png"]  # fmt: skip
    assert page.count("data:image/png;base64,") == len(figures) and "</html>" in page
    for figure in figures:
        data = (out / "run" / "figures" / figure).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = struct.unpack(">II", data[16:24])
        assert 600 <= width <= 2000 and 400 <= height <= 2000


def test_recommend_on_the_demo_run(demo):
    out, summary = demo
    result = json.loads(run("recommend", "--run", str(out / "run"), "--max-loglik-loss", "1",
                            "--json"))  # fmt: skip
    base = next(c for c in summary["configs"] if c["config"] == "ancestral")
    floor = base["mean_logp_prior"]["value"] - 1
    qualifying = [c for c in summary["configs"] if c["mean_logp_prior"]["value"] >= floor]
    best = max(qualifying, key=lambda c: c["mean_reward"]["value"])
    assert result["choice"]["config"] == best["config"]
    assert result["verdict"].startswith(best["config"])
    assert {f["config"] for f in result["frontier"]} <= set(result["frontier_within_noise"])


def test_report_renders_in_headless_chromium(demo):
    out, _ = demo
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    assert browser, "Chromium is needed to render the report (./dev test installs it)"
    done = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000",
         "--dump-dom", (out / "run" / "report.html").resolve().as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    body = re.search(r"<body[^>]*>", done.stdout)
    assert body, done.stderr[-2000:]
    assert 'data-images-loaded="true"' in body[0] and 'data-image-count="5"' in body[0]
    assert "Probability–quality trade-off" in done.stdout


def test_configuration_names_split_into_family_and_temperature():
    assert family_and_temperature("temperature=1.5,top_p=0.9") == ("top_p=0.9", 1.5)
    assert family_and_temperature("ancestral") == ("ancestral", 1.0)
    assert family_and_temperature("temperature=0.5") == ("ancestral", 0.5)


def test_the_demo_config_reruns_the_demo_through_the_config_path(demo, tmp_path):
    from pathlib import Path

    _, summary = demo
    text = (Path(__file__).parents[1] / "examples" / "demo.toml").read_text()
    config = tmp_path / "demo.toml"
    config.write_text(text.replace('out = "demo-run-toml"', f'out = "{tmp_path / "out"}"'))
    again = json.loads(run("run", str(config), "--json"))
    assert [c["config"] for c in again["configs"]] == [c["config"] for c in summary["configs"]]
    for a, b in zip(again["configs"], summary["configs"], strict=True):
        assert a["mean_reward"] == b["mean_reward"] and a["exact"] == b["exact"]
    assert again["best_of_n"] == summary["best_of_n"] and summary["best_of_n"]["points"]
    assert (tmp_path / "out" / "run" / "report.html").exists()
