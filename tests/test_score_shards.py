"""Scoring in shards: kill -9 at any moment and the same command finishes the missing shards with
the table of an uninterrupted run; torchrun with two processes (gloo, CPU) gives the table of one
process; other settings are refused (or replaced with --replace); samples.parquet is never
touched."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from processes import kill_after

from tradeoff.testing.tiny import make_demo

TESTS = Path(__file__).parent
# One torch thread everywhere, so that float sums inside the models are the same in every process.
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRADEOFF_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
       "PYTHONPATH": str(TESTS)}  # fmt: skip


def cli(*args, check=True, **kwargs):
    done = subprocess.run([sys.executable, "-m", "tradeoff", *map(str, args)], capture_output=True,
                          text=True, env=ENV, **kwargs)  # fmt: skip
    if check:
        assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_demo(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def generated(tiny, tmp_path_factory):
    out = tmp_path_factory.mktemp("gen") / "run"
    cli("generate", "--aligned", tiny["aligned"], "--prompts", tiny["prompts"],
        "--adaptors", "ancestral", "top_k=20", "--samples-per-prompt", "3",
        "--max-new-tokens", "10", "--seed", "5", "--template", "Human: {prompt} Assistant:",
        "--batch-size", "8", "--out", out)  # fmt: skip
    return out


def fresh_copy(generated, tmp_path, name):
    target = tmp_path / name
    shutil.copytree(generated, target)
    return target


def score_args(tiny, run, *extra):
    return ["score", "--run-dir", run, "--prior", tiny["prior"], "--prior-context", "none",
            "--reward", tiny["reward"], "--reward-template", "Human: {prompt} Assistant:{response}",
            "--shard-size", "5", "--batch-size", "2", *extra]  # fmt: skip


def table(path):
    return pq.read_table(path)


def test_kill_during_score_then_rerun_gives_the_uninterrupted_table(tiny, generated, tmp_path):
    reference = fresh_copy(generated, tmp_path, "reference")
    slow = ["--reward", "python:reward_fns:slow_length", "--shard-size", "2"]
    base = ["score", "--run-dir", None, "--prior", tiny["prior"], *slow]
    cli(*[reference if a is None else a for a in base])
    killed = fresh_copy(generated, tmp_path, "killed")
    samples_before = table(killed / "samples.parquet")
    args = [sys.executable, "-m", "tradeoff", *map(str, [killed if a is None else a for a in base])]
    kill_after(args, ENV, killed / "shards" / "score-reward")
    assert not (killed / "scores.parquet").exists(), "the scoring finished before it was killed"
    cli(*[killed if a is None else a for a in base])
    assert table(killed / "scores.parquet").equals(table(reference / "scores.parquet"))
    assert table(killed / "samples.parquet").equals(samples_before)  # generate's, untouched
    assert not list(killed.rglob(".*.tmp"))


def test_torchrun_two_processes_score_like_one(tiny, generated, tmp_path):
    one = fresh_copy(generated, tmp_path, "one")
    cli(*score_args(tiny, one))
    two = fresh_copy(generated, tmp_path, "two")
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
         "--master-port", "29531", "-m", "tradeoff", *map(str, score_args(tiny, two)), "--json"],
        capture_output=True, text=True, env=ENV, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["world_size"] == 2
    assert table(two / "scores.parquet").equals(table(one / "scores.parquet"))
    shards = sorted(p.name for p in (two / "shards" / "score-prior").iterdir())
    assert len(shards) == -(-table(one / "samples.parquet").num_rows // 5)


def test_torchrun_reads_its_run_dir_option(tiny, generated, tmp_path):
    # torchrun's own parser takes --run for its --run-path; --run-dir passes through.
    run = fresh_copy(generated, tmp_path, "analyzed")
    cli(*score_args(tiny, run))
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "1",
         "--master-port", "29533", "-m", "tradeoff", "analyze", "--run-dir", str(run),
         "--n-steps", "500", "--n-corpora", "20", "--corpus-size", "50", "--json"],
        capture_output=True, text=True, env=ENV, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert (run / "summary.json").exists()


def test_other_settings_are_refused_and_replace_scores_again(tiny, generated, tmp_path):
    run = fresh_copy(generated, tmp_path, "settings")
    cli(*score_args(tiny, run))
    first = table(run / "scores.parquet")
    refused = cli(*score_args(tiny, run)[:-4], "--prior-context", "raw", "--shard-size", "5",
                  "--batch-size", "2", check=False)  # fmt: skip
    assert refused.returncode == 2
    assert "other prior settings (different: prior_context)" in refused.stderr
    assert "--replace" in refused.stderr
    assert table(run / "scores.parquet").equals(first)  # nothing lost
    # The reward alone, another template: refused; with --replace scored again, the prior kept.
    again = ["score", "--run-dir", run, "--reward", tiny["reward"], "--reward-template",
             "{prompt} / {response}", "--shard-size", "5", "--batch-size", "2"]  # fmt: skip
    assert "other reward settings" in cli(*again, check=False).stderr
    cli(*again, "--replace")
    replaced = table(run / "scores.parquet")
    assert replaced.column("logp_prior").equals(first.column("logp_prior"))
    assert not replaced.column("reward").equals(first.column("reward"))
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["settings"]["score"]["reward"]["reward_template"] == "{prompt} / {response}"
    assert manifest["stages"]["score"]["status"] == "complete"


def test_rescored_log_probabilities_win_in_the_join(tiny, generated, tmp_path):
    from tradeoff.rundir import RunDir

    run = fresh_copy(generated, tmp_path, "rescored")
    # Re-scoring with another model: its log pi replaces generate's in what the analysis reads.
    cli("score", "--run-dir", run, "--aligned", tiny["prior"], "--shard-size", "7")
    joined = RunDir(run).analysis_table()
    scores = table(run / "scores.parquet")
    samples = table(run / "samples.parquet")
    assert joined.column("logp_aligned").equals(scores.column("logp_aligned"))
    assert not joined.column("logp_aligned").equals(samples.column("logp_aligned"))
    manifest = json.loads((run / "manifest.json").read_text())
    assert "logp_aligned" in manifest["stages"]["score"]["overrides"]
