"""The authors' semantics, difference by difference: each test shows the difference under
`authors` and its absence under `corrected` (../shared/PAPER.md, "What the authors' code actually
does"). The runs are small synthetic run directories written through the rundir API."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from tradeoff.adaptors import AdaptorChain
from tradeoff.rundir import SAMPLES_SCHEMA, RunDir, scores_schema
from tradeoff.rundir.manifest import new_manifest
from tradeoff.stages.analyze import analyze
from tradeoff.stages.semantics import AUTHORS, CORRECTED, generation_chain, semantics
from tradeoff.stages.settings import AnalysisSettings

SMALL = AnalysisSettings(n_steps=2000, n_corpora=50, corpus_size=200, n_resamples=200,
                         correlation_resamples=100)  # fmt: skip


def write_run(path, rows):
    """A scored run directory from rows of (config, prompt_id, text, n_tokens, logp_aligned,
    logp_adapted, logp_prior, reward)."""
    run = RunDir(path)
    samples = [
        {"prompt_id": p, "prompt": "q", "context": "q", "config": c, "sample_index": i,
         "text": t, "token_ids": [1] * n, "n_tokens": n, "finished": f, "stop_reason": "eos",
         "logp_aligned": la, "logp_adapted": lq, "token_logp_aligned": [la],
         "token_logp_adapted": [lq]}
        for i, (c, p, t, n, la, lq, _, _, *rest) in enumerate(rows)
        for f in [rest[0] if rest else True]
    ]  # fmt: skip
    scores = [
        {
            "prompt_id": s["prompt_id"],
            "config": s["config"],
            "sample_index": i,
            "logp_prior": r[6],
            "n_tokens_prior": s["n_tokens"],
            "token_logp_prior": [r[6]],
            "reward": r[7],
        }
        for i, (s, r) in enumerate(zip(samples, rows, strict=True))
    ]
    manifest = new_manifest()
    manifest["stages"]["generate"] = {"status": "complete", "n_strings": len(rows),
                                      "settings_hash": "synthetic"}  # fmt: skip
    run.write_manifest(manifest)
    run.write_table(run.samples_path, pa.Table.from_pylist(samples, schema=SAMPLES_SCHEMA), "s")
    schema = scores_schema(["prior", "reward"])
    run.write_table(run.scores_path, pa.Table.from_pylist(scores, schema=schema), "s")
    return run.path


def spread_rows(config, n=40, seed=0, prompt="p0"):
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(n):
        logq = -float(rng.uniform(1, 6))
        rows.append((config, prompt, f"text {k}", 3, logq + float(rng.normal(0, 2)), logq,
                     -float(rng.uniform(2, 9)), float(rng.normal())))  # fmt: skip
    return rows


def config_summary(summary, name):
    return next(c for c in summary.configs if c.config == name)


def test_every_imh_proposal_is_accepted_only_under_the_authors_semantics(tmp_path):
    run = write_run(tmp_path / "run", spread_rows("top_p=0.9"))
    corrected = config_summary(analyze(run, settings=SMALL), "top_p=0.9")
    authors = config_summary(analyze(run, settings=SMALL, semantics="authors"), "top_p=0.9")
    assert corrected.imh.acceptance_rate < 0.9
    assert authors.imh.acceptance_rate == 1.0
    # Their corpora are resamples of q's own strings: the mean reward of q, not of pi.
    assert authors.imh.mean_reward.value == pytest.approx(authors.mean_reward.value, abs=0.15)


def test_duplicates_are_dropped_only_under_the_authors_semantics(tmp_path):
    rows = spread_rows("top_k=5", n=10)
    rows += [rows[0], rows[0], rows[1]]  # the same prompt and text again
    run = write_run(tmp_path / "run", rows)
    corrected = config_summary(analyze(run, settings=SMALL), "top_k=5")
    authors = config_summary(analyze(run, settings=SMALL, semantics="authors"), "top_k=5")
    assert corrected.n_strings == 13 and corrected.dropped.duplicate == 0
    assert authors.n_strings == 10 and authors.dropped.duplicate == 3


def test_an_eos_only_string_is_dropped_only_under_the_authors_semantics(tmp_path):
    rows = spread_rows("ancestral", n=10)
    rows.append(("ancestral", "p0", "", 1, -0.5, -0.5, -0.1, 0.3))  # EOS alone: empty text
    run = write_run(tmp_path / "run", rows)
    corrected = config_summary(analyze(run, settings=SMALL), "ancestral")
    authors = config_summary(analyze(run, settings=SMALL, semantics="authors"), "ancestral")
    assert corrected.n_strings == 11 and corrected.dropped.empty == 0
    assert authors.n_strings == 10 and authors.dropped.empty == 1


def test_the_pooled_correlations_leave_out_hot_and_cold_strict_ancestral(tmp_path):
    rows = spread_rows("ancestral", seed=1) + spread_rows("temperature=1.5", seed=2)
    rows += spread_rows("temperature=1.5,top_k=5", seed=3)
    run = write_run(tmp_path / "run", rows)
    corrected = analyze(run, settings=SMALL)
    authors = analyze(run, settings=SMALL, semantics="authors")
    assert corrected.string_level.n == 120 and authors.string_level.n == 80
    assert corrected.corpus_level.n_corpora == 150 and authors.corpus_level.n_corpora == 100
    assert authors.semantics == "authors" and corrected.semantics == "corrected"
    # Per configuration, nothing is left out.
    assert config_summary(authors, "temperature=1.5").n_strings == 40


@pytest.mark.parametrize(
    "config, drawn_with",
    [
        ("top_p=0.9", "top_k=50,top_p=0.9"),
        ("temperature=0.5,typical=0.9", "temperature=0.5,top_k=50,typical=0.9"),
        ("temperature=1.5,eta=0.0009", "temperature=1.5,top_k=50,eta=0.0009"),
        ("ancestral", "ancestral"),  # the strict ancestral run set top_k = 0
        ("temperature=0.5", "temperature=0.5"),
        ("top_k=30", "top_k=30"),
    ],
)
def test_the_hidden_top_k_only_under_the_authors_semantics(config, drawn_with):
    assert str(generation_chain(config, AUTHORS)) == drawn_with
    assert generation_chain(config, CORRECTED) == AdaptorChain.parse(config)


def test_semantics_are_named():
    assert semantics("authors") is AUTHORS and semantics(CORRECTED) is CORRECTED
    with pytest.raises(ValueError, match="`semantics` must be one of corrected, authors"):
        semantics("published")


def test_strings_cut_at_the_cap_are_kept_only_under_the_authors_semantics(tmp_path):
    rows = spread_rows("top_k=5", n=10)
    rows += [(*row[:8], False) for row in spread_rows("top_k=5", n=4, seed=9, prompt="p1")]
    run = write_run(tmp_path / "run", rows)
    corrected = config_summary(analyze(run, settings=SMALL), "top_k=5")
    authors = config_summary(analyze(run, settings=SMALL, semantics="authors"), "top_k=5")
    assert corrected.n_strings == 10 and corrected.dropped.unfinished == 4
    assert authors.n_strings == 14 and authors.dropped.unfinished == 0


def test_the_run_s_own_semantics_is_the_default(tmp_path):
    run = write_run(tmp_path / "run", spread_rows("top_p=0.9"))
    manifest = RunDir(run).read_manifest()
    manifest["semantics"] = "authors"
    RunDir(run).write_manifest(manifest)
    assert analyze(run, settings=SMALL).semantics == "authors"


def test_each_correlation_interval_says_what_it_resamples(tmp_path):
    """String level resamples strings; a configuration's corpus level is the Fisher-z interval
    with the strings' error; pooled corpus level resamples configurations, so from three
    configurations it is much wider than a bootstrap over their 150 corpora as if independent."""
    import pyarrow.parquet as pq

    from tradeoff import stats

    rows = spread_rows("ancestral", seed=1) + spread_rows("top_p=0.9", seed=2)
    rows += spread_rows("temperature=1.5,top_k=5", seed=3)
    run = write_run(tmp_path / "run", rows)
    summary = analyze(run, settings=SMALL)
    assert summary.string_level.interval == "percentile bootstrap over strings"
    assert summary.corpus_level.interval.startswith("percentile bootstrap over configurations")
    for config in summary.configs:
        assert config.string_level.interval == "percentile bootstrap over strings"
        assert config.corpus_level.interval.startswith("Fisher z")
        pearson = config.corpus_level.pearson
        assert pearson.low < pearson.statistic < pearson.high
    corpora = pq.read_table(RunDir(run).corpora_path)
    x = np.asarray(corpora.column("mean_logp_prior"))
    y = np.asarray(corpora.column("mean_reward"))
    naive = stats.bootstrap_ci(x, y=y, statistic="pearson", n_resamples=200, seed=0)
    pooled = summary.corpus_level.pearson
    assert pooled.high - pooled.low > 3 * (naive.high - naive.low)
    # From one configuration there is nothing to resample.
    alone = analyze(write_run(tmp_path / "alone", spread_rows("top_p=0.9")), settings=SMALL)
    assert alone.corpus_level.pearson.low is None
    assert "needs 2" in alone.corpus_level.pearson.reason
