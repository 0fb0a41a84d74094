"""Small, degenerate and damaged run directories, through the command line as a user runs it.

1. analyze, report and recommend complete on the README walkthrough (about one finished string per
   configuration) and on runs built to be degenerate: a configuration with no kept strings (all
   empty, all unfinished, all non-finite), with one, all rewards equal, all rewards NaN, no rows.
   What cannot be computed is n/a with its reason in the printed table, in summary.json (null
   and a reason) and in report.html; recommend names the configurations it could not compare.
2. A run directory never mixes or misdescribes data: shards of other settings or other weights are
   refused, a failed command leaves nothing behind, truncated and stray files are detected,
   temporaries are cleaned up, and a killed run resumes to the table of an uninterrupted one.

The commands of the module's tests run in the background, one per core (``outcomes``, see
cli_harness.Background); each test asserts on the outcome of its own commands.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import pyarrow.parquet as pq
import pytest
from cli_harness import (
    ENV,
    SLOTS,
    TEMPLATE,
    TOOL,
    Background,
    assert_nulls_have_reasons,
    assert_ok,
    assert_same_table,
    assert_user_error,
    config_of,
    copy_run,
    generate_args,
    in_html,
    missing_quantities,
    outcome_of,
    read_summary,
    rewrite_table,
    run_argv,
    run_cli,
    score_args,
    start_selected,
    temporaries,
)

from tradeoff.testing.tiny import make_demo, save_tiny_model

CONFIGS = ("ancestral", "temperature=1.5")
TARGET = "ancestral"  # the configuration a degenerate case breaks
PER_CONFIG = 4 * 3  # prompts x samples per prompt in generate_args' defaults


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_demo(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def outcomes(request, tiny, tmp_path_factory):
    """Starts the commands of every selected test of this module (see cli_harness)."""
    background = Background()
    base = tmp_path_factory.mktemp("base")

    def generated() -> Path:
        """An uninterrupted generate run: 4 prompts x 2 configurations x 3 samples, one string
        per shard."""
        assert_ok(run_cli(*generate_args(tiny, base / "generated")))
        return base / "generated"

    def scored() -> Path:
        run = copy_run(context.generated(), base / "scored")
        assert_ok(run_cli(*score_args(tiny, run)))
        return run

    context = SimpleNamespace(
        tiny=tiny,
        generated=lambda: background.need("generated", generated),
        scored=lambda: background.need("scored", scored),
    )
    background.context = context
    start_selected(request, background, JOBS, context, tmp_path_factory.mktemp)
    yield background
    background.close()


@pytest.fixture
def outcome(outcomes, request):
    return outcome_of(outcomes, JOBS, request.node)


@pytest.fixture
def generated(outcomes):
    """The uninterrupted generate run the others are compared with."""
    return outcomes.context.generated()


# --- 1. analysis, report and recommend on small and degenerate runs -----------------------------


def _kept_everywhere(samples: dict, scores: dict) -> None:
    """Every string finished with EOS: the cases below then break only what they name."""
    n = len(samples["config"])
    samples["finished"] = [True] * n
    samples["stop_reason"] = ["eos"] * n


def _rows_of(samples: dict, config: str) -> list[int]:
    return [i for i, c in enumerate(samples["config"]) if c == config]


def _all_empty(samples: dict, scores: dict) -> None:
    for i in _rows_of(samples, TARGET):
        samples["text"][i] = ""
        samples["n_tokens"][i] = 0
        samples["token_ids"][i] = []
        samples["token_logp_aligned"][i] = []
        samples["token_logp_adapted"][i] = []


def _all_unfinished(samples: dict, scores: dict) -> None:
    for i in _rows_of(samples, TARGET):
        samples["finished"][i] = False
        samples["stop_reason"][i] = "length"


def _all_non_finite(samples: dict, scores: dict) -> None:
    for i in _rows_of(samples, TARGET):
        scores["logp_prior"][i] = -math.inf


def _one_string(samples: dict, scores: dict) -> None:
    for i in _rows_of(samples, TARGET)[1:]:
        samples["finished"][i] = False
        samples["stop_reason"][i] = "length"


def _rewards_equal(samples: dict, scores: dict) -> None:
    scores["reward"] = [0.5] * len(scores["reward"])


def _rewards_nan(samples: dict, scores: dict) -> None:
    scores["reward"] = [math.nan] * len(scores["reward"])


def _no_rows(samples: dict, scores: dict) -> None:
    for table in (samples, scores):
        for key in table:
            table[key] = []


# name: (rewrite, the configurations recommend cannot compare, TARGET's dropped counter)
CASES = {
    "all-empty": (_all_empty, {TARGET}, "empty"),
    "all-unfinished": (_all_unfinished, {TARGET}, "unfinished"),
    "all-non-finite": (_all_non_finite, {TARGET}, "non_finite"),
    "one-string": (_one_string, set(), None),
    "rewards-equal": (_rewards_equal, set(), None),
    "rewards-nan": (_rewards_nan, set(CONFIGS), "non_finite"),
    "no-rows": (_no_rows, set(), None),
}

# What report.html shows: per configuration the mean reward, the mean log p and the IMH chain's
# acceptance; pooled, the string- and corpus-level Spearman and the blocks summary.reasons names.
SHOWN = re.compile(
    r"summary\.configs\[\d+\]\.(mean_reward|mean_logp_prior|imh)$"
    r"|summary\.(string_level|corpus_level)(\.spearman)?$"
    r"|summary\.(tradeoff_line|simpson|implied_beta)$"
)


def _shown_in_report(missing: list[tuple[str, str | None]]) -> list[tuple[str, str]]:
    return [(where, reason or "") for where, reason in missing if SHOWN.match(where)]


def _degenerate(context, directory, case):
    """A copy of the scored run with its samples and scores rewritten (schemas kept, keys in the
    same order, the manifest's string count updated), then analyze, report and recommend."""
    run = copy_run(context.scored(), directory / "run")
    samples = pq.read_table(run / "samples.parquet").to_pydict()
    scores = pq.read_table(run / "scores.parquet").to_pydict()
    _kept_everywhere(samples, scores)
    CASES[case][0](samples, scores)
    rewrite_table(run / "samples.parquet", samples)
    rewrite_table(run / "scores.parquet", scores)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["stages"]["generate"]["n_strings"] = len(samples["config"])
    (run / "manifest.json").write_text(json.dumps(manifest, indent=2))
    for stale in ("summary.json", "corpora.parquet", "report.html"):
        (run / stale).unlink(missing_ok=True)
    return SimpleNamespace(
        run=run,
        analyzed=run_cli("analyze", "--run-dir", run),
        reported=run_cli("report", "--run-dir", run),
        recommended=run_cli("recommend", "--run-dir", run),
    )


@pytest.mark.parametrize("case", list(CASES))
def test_analyze_completes_on_a_degenerate_run(case, outcome):
    _, not_compared, dropped = CASES[case]
    printed = assert_ok(outcome.analyzed).stdout
    summary = read_summary(outcome.run)
    assert_nulls_have_reasons(summary)
    assert missing_quantities(summary), "a degenerate run leaves something that is n/a"
    assert "n/a" in printed, outcome.analyzed.describe()
    if case == "no-rows":
        assert summary["configs"] == [] and summary["n_strings"] == 0
    else:
        assert [c["config"] for c in summary["configs"]] == list(CONFIGS)
    for name in not_compared:
        broken = config_of(summary, name)
        assert broken["n_strings"] == 0
        assert broken["dropped"][dropped] == PER_CONFIG
        for key in ("mean_reward", "mean_logp_prior", "mean_length"):
            assert broken[key]["value"] is None and broken[key]["reason"]
        assert broken["mean_reward"]["reason"] in printed, printed  # beside its n/a
    if case == "one-string":
        one = config_of(summary, TARGET)
        assert one["n_strings"] == 1
        assert one["mean_reward"]["value"] is not None
        assert one["mean_reward"]["low"] is None and one["mean_reward"]["reason"]
        assert one["imh"] is None and one["reasons"].get("imh")
        assert one["mean_reward"]["reason"] in printed, printed
    if case == "rewards-equal":
        for c in summary["configs"]:
            reward = c["mean_reward"]
            assert reward["value"] == reward["low"] == reward["high"] == 0.5
    if case in ("rewards-equal", "rewards-nan", "no-rows"):
        spearman = summary["string_level"]["spearman"]
        assert spearman["statistic"] is None and spearman["reason"]
        assert spearman["reason"] in printed, printed


@pytest.mark.parametrize("case", list(CASES))
def test_report_completes_on_a_degenerate_run(case, outcome):
    assert_ok(outcome.reported)
    summary = read_summary(outcome.run)
    page = (outcome.run / "report.html").read_text()
    assert "n/a" in page
    assert "Not computed" in page
    for figure in ("frontier.png", "corpus_level.png"):
        assert (outcome.run / "figures" / figure).stat().st_size > 0
    # Every quantity the report shows that could not be computed has its reason there.
    for where, reason in _shown_in_report(missing_quantities(summary)):
        assert in_html(reason, page), f"report.html does not say why {where} is n/a ({reason})"


@pytest.mark.parametrize("case", list(CASES))
def test_recommend_completes_on_a_degenerate_run(case, outcome):
    _, not_compared, _ = CASES[case]
    summary = read_summary(outcome.run)
    recommended = outcome.recommended
    comparable = [
        c
        for c in summary["configs"]
        if c["mean_reward"]["value"] is not None and c["mean_logp_prior"]["value"] is not None
    ]
    if not comparable and recommended.returncode == 2:
        # Nothing at all to compare: one line that says why.
        line = assert_user_error(recommended)
        reasons = [config_of(summary, n)["mean_reward"]["reason"] for n in sorted(not_compared)]
        for reason in reasons:
            assert reason in line, line
        if not reasons:
            assert "no configuration" in line or "no strings" in line, line
        return
    out = assert_ok(recommended).stdout
    for name in [c["config"] for c in summary["configs"]]:
        marker = f"not compared: {name} ("
        if name in not_compared:
            reason = config_of(summary, name)["mean_reward"]["reason"]
            assert f"{marker}{reason})" in out, out
        else:
            assert marker not in out, out
    for c in comparable:
        assert c["config"] in out


# --- 2. a run directory never mixes or misdescribes data -----------------------------------------


def _manifest_deleted(context, directory):
    run = copy_run(context.generated(), directory / "r")
    (run / "manifest.json").unlink()
    refused = run_cli(*generate_args(context.tiny, run, seed=1))
    described = (run / "manifest.json").exists()
    resumed = run_cli(*generate_args(context.tiny, run, "--json"))
    return SimpleNamespace(run=run, refused=refused, described=described, resumed=resumed)


def test_deleted_manifest_and_other_settings_are_refused_then_the_same_settings_resume(
    outcome, generated
):
    run = outcome.run
    line = assert_user_error(outcome.refused, "shard", "other settings")
    assert str(run / "shards" / "generate") in line
    assert not outcome.described, "the refused run wrote a manifest over seed-0 shards"
    resumed = assert_ok(outcome.resumed)
    assert resumed.json()["batches_run_here"] == 0, "the shards were not reused"
    assert_same_table(run / "samples.parquet", generated / "samples.parquet")
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["settings"]["generate"]["seed"] == 0


def _own_model(context, directory):
    """With an aligned model of its own (random weights, seed 0): generate with a typo in the
    template (refused), the corrected command, then the model's weights replaced in its
    directory (seed 7: the same config, other weights) and the command again."""
    model = save_tiny_model(directory / "aligned", "llama", seed=0)
    run = directory / "r"
    args = generate_args(
        {**context.tiny, "aligned": model}, run, max_prompts=1, samples=2, max_new_tokens=4
    )
    failed = run_cli(*[a if a != TEMPLATE else "Human: {promt}" for a in args])
    described = (run / "manifest.json").exists()
    corrected = run_cli(*args)
    save_tiny_model(model, "llama", seed=7)
    return SimpleNamespace(
        model=model,
        run=run,
        failed=failed,
        described=described,
        corrected=corrected,
        replaced=run_cli(*args),
    )


def test_a_failed_command_does_not_lock_its_out_directory(outcome):
    assert_user_error(outcome.failed, ("--template", "template"))
    assert not outcome.described, "the failed command wrote manifest.json"
    assert_ok(outcome.corrected)
    assert pq.read_table(outcome.run / "samples.parquet").num_rows == 1 * 2 * 2


def test_replaced_model_weights_are_refused_on_resume(outcome):
    assert_ok(outcome.corrected)
    assert_user_error(outcome.replaced, str(outcome.model))


SHARDS = Path("shards") / "generate"
# Damage to a copy of the generated run, and the file a warning must name (or None). Damage of
# one group is done to one copy, repaired by one rerun of generate (the "stray" group's copy also
# holds the temporaries of killed writers, for the test of generate removing them).
DAMAGE = {
    "truncated-samples": ("samples", None),
    "truncated-shard": ("truncated", "batch-000001.parquet"),
    "empty-shard": ("stray", "batch-000001.parquet"),
    "stray-shard": ("stray", "batch-copy.parquet"),
}
# Writers killed mid-write leave these behind; the next run of the stage removes them.
TEMPORARIES = {
    "generate": [".samples.parquet.12345.tmp", "shards/generate/.batch-000000.parquet.12345.tmp"],
    "analyze": [".corpora.parquet.12345.tmp"],
}


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _damaged(context, directory, group):
    run = copy_run(context.generated(), directory / "r")
    if group == "samples":
        _truncate(run / "samples.parquet")
    elif group == "truncated":
        _truncate(run / SHARDS / "batch-000001.parquet")
    else:  # an empty shard, a stray file, and the temporaries of killed writers
        (run / SHARDS / "batch-000001.parquet").write_bytes(b"")
        shutil.copy(run / SHARDS / "batch-000000.parquet", run / SHARDS / "batch-copy.parquet")
        for name in TEMPORARIES["generate"]:
            (run / name).write_bytes(b"half a file")
    return SimpleNamespace(run=run, rerun=run_cli(*generate_args(context.tiny, run)))


@pytest.mark.parametrize(
    "damage, group", [(damage, group) for damage, (group, _) in DAMAGE.items()]
)
def test_damaged_files_are_detected_on_rerun(damage, group, outcome, generated):
    result = assert_ok(outcome.rerun)
    assert_same_table(outcome.run / "samples.parquet", generated / "samples.parquet")
    warned = DAMAGE[damage][1]
    if warned is not None:
        assert any(warned in w for w in result.warnings), result.describe()
    for path in (outcome.run / SHARDS).glob("batch-0*.parquet"):
        pq.read_metadata(path)  # every shard reads again


@pytest.mark.parametrize("group", ["stray"])
def test_generate_removes_the_temporaries_of_killed_writers(group, outcome):
    assert_ok(outcome.rerun)
    left = [name for name in TEMPORARIES["generate"] if (outcome.run / name).exists()]
    assert not left, f"generate left {left}"


def _analyze_temporaries(context, directory):
    run = copy_run(context.scored(), directory / "r")
    for name in TEMPORARIES["analyze"]:
        (run / name).write_bytes(b"half a file")
    return SimpleNamespace(run=run, result=run_cli("analyze", "--run-dir", run))


def test_analyze_removes_the_temporaries_of_killed_writers(outcome):
    assert_ok(outcome.result)
    left = [name for name in TEMPORARIES["analyze"] if (outcome.run / name).exists()]
    assert not left, f"analyze left {left}"


def _killed(context, directory):
    """generate SIGKILLed once a shard exists, then the same command again."""
    run = directory / "r"
    argv = [*TOOL, *generate_args(context.tiny, run, "--json")]
    log = directory / "killed.log"
    shards = run / SHARDS
    with SLOTS, open(log, "w") as stderr:
        process = subprocess.Popen(argv, env=ENV, stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and process.poll() is None:
                if shards.is_dir() and any(shards.glob("batch-*.parquet")):
                    break
                time.sleep(0.005)
            running = process.poll() is None
            if running:
                os.kill(process.pid, signal.SIGKILL)
        finally:
            if process.poll() is None:
                process.kill()
            process.wait()
    finished = (run / "samples.parquet").exists()
    return SimpleNamespace(
        run=run, running=running, finished=finished, log=log.read_text(), resumed=run_argv(argv)
    )


def test_a_killed_generate_resumes_to_the_uninterrupted_table(outcome, generated):
    assert outcome.running, f"generate ended before it could be killed:\n{outcome.log[-3000:]}"
    assert not outcome.finished, "the run finished before it was killed"
    resumed = assert_ok(outcome.resumed)
    assert resumed.json()["batches_resumed"] >= 1
    assert temporaries(outcome.run) == []
    assert_same_table(outcome.run / "samples.parquet", generated / "samples.parquet")


JOBS = {
    "test_analyze_completes_on_a_degenerate_run": _degenerate,
    "test_report_completes_on_a_degenerate_run": _degenerate,
    "test_recommend_completes_on_a_degenerate_run": _degenerate,
    "test_deleted_manifest_and_other_settings_are_refused_then_the_same_settings_resume": (
        _manifest_deleted
    ),
    "test_replaced_model_weights_are_refused_on_resume": _own_model,
    "test_a_failed_command_does_not_lock_its_out_directory": _own_model,
    "test_damaged_files_are_detected_on_rerun": _damaged,
    "test_generate_removes_the_temporaries_of_killed_writers": _damaged,
    "test_analyze_removes_the_temporaries_of_killed_writers": _analyze_temporaries,
    "test_a_killed_generate_resumes_to_the_uninterrupted_table": _killed,
}
