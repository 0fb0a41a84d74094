"""One source of settings: generate and score on the command line and `run CONFIG.toml` build
the same sections and call the same stage functions, so they make identical run directories;
`--set` overrides a file or a preset and is checked like the file; a TradeoffError from the CLI
is one line with exit status 2, and anything else keeps its traceback."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from tradeoff.app import cli
from tradeoff.app.config import load_config
from tradeoff.errors import TradeoffError
from tradeoff.stages.settings import GenerateSection, ScoreSection
from tradeoff.testing.tiny import make_demo

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRADEOFF_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
TEMPLATE = "Human: {prompt} Assistant:"


def run_cli(*args, expect=0):
    done = subprocess.run([sys.executable, "-m", "tradeoff", *map(str, args)], capture_output=True,
                          text=True, env=ENV)  # fmt: skip
    assert done.returncode == expect, done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_demo(tmp_path_factory.mktemp("tiny"))


def config_text(tiny, out):
    return f"""
out = "{out}"
seed = 3
[models]
aligned = "{tiny["aligned"]}"
prior = "{tiny["prior"]}"
reward = "{tiny["reward"]}"
[prompts]
source = "{tiny["prompts"]}"
max_prompts = 3
template = "{TEMPLATE}"
[generate]
adaptors = ["ancestral", "temperature=1.5,top_k=20"]
samples_per_prompt = 2
max_new_tokens = 8
batch_size = 4
[score]
prior_context = "raw"
reward_template = "Human: {{prompt}} Assistant:{{response}}"
clamp_token_nll = 25.0
shard_size = 5
[analysis]
n_steps = 500
n_corpora = 20
corpus_size = 50
n_resamples = 100
"""


def test_cli_and_run_make_identical_run_directories(tiny, tmp_path):
    config = tmp_path / "run.toml"
    config.write_text(config_text(tiny, tmp_path / "by-run"))
    run_cli("run", config, "--json")
    by_run = tmp_path / "by-run" / "run"
    by_cli = tmp_path / "by-cli"
    run_cli("generate", "--aligned", tiny["aligned"], "--prompts", tiny["prompts"],
            "--max-prompts", "3", "--template", TEMPLATE, "--adaptors", "ancestral",
            "temperature=1.5,top_k=20", "--samples-per-prompt", "2", "--max-new-tokens", "8",
            "--batch-size", "4", "--seed", "3", "--out", by_cli)  # fmt: skip
    run_cli("score", "--run-dir", by_cli, "--prior", tiny["prior"], "--prior-context", "raw",
            "--reward", tiny["reward"], "--reward-template", "Human: {prompt} Assistant:{response}",
            "--clamp-token-nll", "25", "--shard-size", "5")  # fmt: skip
    for name in ("samples.parquet", "scores.parquet"):
        # Equal with their stamps: the same settings hashes.
        assert pq.read_table(by_cli / name).equals(pq.read_table(by_run / name)), name
    a = json.loads((by_run / "manifest.json").read_text())
    b = json.loads((by_cli / "manifest.json").read_text())
    assert a["settings"] == b["settings"] and a["models"] == b["models"]
    for stage in ("generate", "score"):
        assert a["stages"][stage]["settings_hash"] == b["stages"][stage]["settings_hash"]
    for name in ("generate", "score-prior", "score-reward"):
        assert sorted(p.name for p in (by_cli / "shards" / name).iterdir()) == sorted(
            p.name for p in (by_run / "shards" / name).iterdir())  # fmt: skip


def test_set_overrides_a_file_and_a_preset(tiny, tmp_path):
    config = tmp_path / "run.toml"
    config.write_text(config_text(tiny, tmp_path / "out"))
    loaded = load_config(
        config,
        [
            "generate.samples_per_prompt=5",
            "seed=9",
            "generate.families=['ancestral', 'top_p=0.9']",
            "generate.temperatures=[0.5]",
            "score.prior_context=none",
        ],
    )
    assert loaded.generate.samples_per_prompt == 5 and loaded.seed == 9
    assert loaded.analysis.seed == 9
    assert loaded.adaptors == ["temperature=0.5", "temperature=0.5,top_p=0.9"]
    assert loaded.score.prior_context == "none"
    # A bare word is a string.
    assert load_config(config, ["models.aligned=org/model"]).models.aligned == "org/model"
    plan = json.loads(
        run_cli(
            "run",
            "--preset",
            "paper-rlhf",
            "--set",
            "generate.samples_per_prompt=1",
            "--dry-run",
            "--json",
        ).stdout
    )
    assert plan["strings"] == 35_000


@pytest.mark.parametrize(
    "override, message",
    [
        ("generate.samples=3", "unknown key [generate] 'samples'"),
        ("fancy.key=1", "unknown section 'fancy'"),
        ("generate.batch_size=0", "[generate] 'batch_size' must be >= 1"),
        ("score.clamp_token_nll=-1", "[score] 'clamp_token_nll' must be > 0"),
        ("generate.max_new_tokens=long", "[generate] 'max_new_tokens' must be int"),
        ("models.dtype=float64", "[models] 'dtype' must be one of float32, float16, bfloat16"),
        ("nonsense", "`--set` must be section.key=value"),
    ],
)
def test_a_bad_set_is_refused_naming_the_key(override, message):
    done = run_cli("run", "--preset", "paper-dpo", "--set", override, "--dry-run", expect=2)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], done.stderr
    assert "Traceback" not in done.stderr


def test_argparse_defaults_come_from_the_sections():
    parser = cli.build_parser()
    gen = parser.parse_args(["generate", "--aligned", "a", "--prompts", "p", "--adaptors",
                             "ancestral", "--out", "o"])  # fmt: skip
    for key in ("samples_per_prompt", "max_new_tokens", "batch_size", "backend"):
        assert getattr(gen, key) == GenerateSection.default(key)
    score = parser.parse_args(["score", "--run", "r"])
    for key in ("prior_context", "reward_template", "batch_size", "shard_size"):
        assert getattr(score, key) == ScoreSection.default(key)
    assert score.run_dir == "r"  # --run is an alias of --run-dir


def test_a_tradeoff_error_is_one_line_with_exit_2(tmp_path):
    done = run_cli("generate", "--aligned", tmp_path / "missing", "--prompts", tmp_path / "p.txt",
                   "--adaptors", "ancestral", "--out", tmp_path / "out", expect=2)  # fmt: skip
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tradeoff-eval generate: error: "), done.stderr
    assert not (tmp_path / "out").exists()  # nothing was written


def test_a_multi_line_message_is_printed_on_one_line(monkeypatch, capsys):
    def fail(args):
        raise TradeoffError("first line\nsecond line")

    monkeypatch.setitem(cli.COMMANDS, "toy", fail)
    assert cli.main(["toy"]) == 2
    assert capsys.readouterr().err == "tradeoff-eval toy: error: first line second line\n"


def test_a_bug_keeps_its_traceback(monkeypatch):
    def bug(args):
        raise RuntimeError("a bug, not a user error")

    monkeypatch.setitem(cli.COMMANDS, "toy", bug)
    with pytest.raises(RuntimeError, match="a bug"), contextlib.redirect_stderr(io.StringIO()):
        cli.main(["toy"])
