"""Run configurations: errors name the offending key, presets plan the paper offline, and the
plan's arithmetic."""

from __future__ import annotations

import contextlib
import io
import json

import pytest

from tradeoff.app import cli
from tradeoff.app.config import ConfigError, load_config, to_toml
from tradeoff.app.presets import preset
from tradeoff.app.run import plan

BASE = """
out = "runs/x"
[models]
aligned = "some/model"
[prompts]
source = "prompts.jsonl"
"""


def write(tmp_path, text):
    path = tmp_path / "run.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "extra, message",
    [
        ("colour = 3\n", "unknown key 'colour'"),
        ("[generate]\nsamples = 3\n", r"unknown key \[generate\] 'samples'"),
        ("[fancy]\nx = 1\n", r"unknown section \[fancy\]"),
        ("[generate]\nmax_new_tokens = 'long'\n", r"\[generate\] 'max_new_tokens' must be int"),
        ("[generate]\nbatch_size = 0\n", r"\[generate\] 'batch_size' must be >= 1"),
        ("[generate]\nadaptors = ['top_p=2']\n", r"\[generate\] adaptors: `top_p` must be"),
        ("[generate]\nadaptors = ['ancestral']\nfamilies = ['top_k=5']\n", "not both"),
        ("[score]\nprior_context = 'all'\n", "'prior_context' must be formatted, raw or none"),
        ("[world]\nkind = 'automaton'\n", r"\[models\] comes from \[world\]"),
    ],
)
def test_errors_name_the_key(tmp_path, extra, message):
    # A top-level key must come before the first section (TOML).
    text = extra + BASE if not extra.startswith("[") else BASE + extra
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, text))


def test_missing_keys_and_files(tmp_path):
    with pytest.raises(ConfigError, match="'out'"):
        load_config(write(tmp_path, "[models]\naligned = 'a'\n"))
    with pytest.raises(ConfigError, match=r"\[prompts\] 'source' is missing"):
        load_config(write(tmp_path, "out = 'x'\n[models]\naligned = 'a'\n"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_config(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "out = \n"))


def test_grid_and_plan(tmp_path):
    prompts = tmp_path / "p.txt"
    prompts.write_text("a\nb\nc\n")
    config = load_config(
        write(
            tmp_path,
            f"""
out = "runs/x"
[models]
aligned = "{tmp_path}"
prior = "python:mod:f"
reward = "implicit:0.1"
[prompts]
source = "{prompts}"
[generate]
families = ["ancestral", "top_k=5"]
temperatures = [0.5, 1.0]
samples_per_prompt = 2
max_new_tokens = 10
batch_size = 4
""",
        )
    )
    assert config.adaptors == ["temperature=0.5", "ancestral", "temperature=0.5,top_k=5", "top_k=5"]
    p = plan(config)
    assert p["strings"] == 3 * 2 * 4 and p["generated_tokens_at_most"] == 240
    assert p["forward_passes"]["aligned (generation, at most)"] == 6 * 10
    assert "reward model" not in p["forward_passes"]
    assert p["models"]["aligned"] == "local directory"


def test_paper_presets_plan_offline(tmp_path):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["run", "--preset", "paper-rlhf", "--dry-run", "--json"]) == 0
    result = json.loads(out.getvalue())
    assert result["configurations"] == 35 and result["strings"] == 70_000
    assert result["generated_tokens_at_most"] == 70_000 * 256
    assert result["imh_steps"] == 35 * 200_000
    dpo = preset("paper-dpo")
    assert dpo["prompts"]["template"] == "[INST] Human: {prompt} Assistant:[/INST]"
    assert dpo["models"]["prior"] == "mistral-community/Mistral-7B-v0.2"
    # The preset written out reads back the same.
    path = tmp_path / "rlhf.toml"
    with contextlib.redirect_stdout(io.StringIO()):
        assert cli.main(["run", "--preset", "paper-rlhf", "--write-config", str(path)]) == 0
    assert load_config(path).sections == preset("paper-rlhf").sections
    assert "[generate]" in to_toml({"out": "x", "generate": {"families": ["a"]}})


def test_a_config_on_tiny_transformers_models_runs_every_stage(tmp_path):
    from tradeoff.testing.tiny import make_demo

    paths = make_demo(tmp_path / "tiny")
    config = write(
        tmp_path,
        f"""
out = "{tmp_path / "out"}"
seed = 1
[models]
aligned = "{paths["aligned"]}"
prior = "{paths["prior"]}"
reward = "{paths["reward"]}"
[prompts]
source = "{paths["prompts"]}"
max_prompts = 4
template = "Human: {{prompt}} Assistant:"
[generate]
families = ["ancestral", "top_k=20"]
temperatures = [0.75, 1.5]
samples_per_prompt = 5
max_new_tokens = 12
batch_size = 8
stop = ["e"]
[score]
prior_context = "none"
reward_template = "Human: {{prompt}} Assistant:{{response}}"
clamp_token_nll = 25.0
[analysis]
n_steps = 3000
n_corpora = 200
corpus_size = 1000
n_resamples = 300
best_of_n = {{base = "temperature=0.75", n = [2]}}
""",
    )

    def run(*args):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert cli.main(list(args)) == 0
        return json.loads(out.getvalue())

    summary = run("run", str(config), "--json")
    assert len(summary["configs"]) == 4
    for c in summary["configs"]:
        # Strings cut at 12 tokens are unfinished and left out of the means; they are counted.
        assert c["n_strings"] + c["dropped"]["unfinished"] == 20
        assert c["n_strings"] >= 5
        for key in ("mean_reward", "mean_logp_prior", "mean_logp_aligned", "mean_length"):
            v = c[key]
            if c["n_strings"] >= 2:
                assert v["low"] <= v["value"] <= v["high"]
    manifest = json.loads((tmp_path / "out" / "run" / "manifest.json").read_text())
    assert manifest["stages"]["score"]["status"] == "complete"
    before = (tmp_path / "out" / "run" / "samples.parquet").stat().st_mtime_ns
    run("run", str(config), "--json")  # everything complete: nothing is regenerated or rescored
    assert (tmp_path / "out" / "run" / "samples.parquet").stat().st_mtime_ns == before
    # No ancestral configuration at temperature 1 here: the reward target needs no baseline.
    chosen = run("recommend", "--run", str(tmp_path / "out" / "run"), "--min-reward=-1e9",
                 "--json")  # fmt: skip
    best = max(summary["configs"], key=lambda c: c["mean_logp_prior"]["value"])
    assert chosen["choice"]["config"] == best["config"] and chosen["frontier"]
    # Best-of-n from the base's strings: best-of-2 never has less reward than best-of-1 (the
    # base itself) on a prompt, so neither on average; recommend and the report show it.
    block = summary["best_of_n"]
    assert block["base"] == "temperature=0.75" and block["n_prompts"] >= 1
    one, two = block["points"]
    assert (one["n"], two["n"], two["cost"]) == (1, 2, 2)
    assert two["mean_reward"]["value"] >= one["mean_reward"]["value"]
    assert [p["policy"] for p in chosen["best_of_n"]] == [
        "best-of-1 (temperature=0.75)",
        "best-of-2 (temperature=0.75)",
    ]
    assert "Best-of-n" in chosen["verdict"]
    report = (tmp_path / "out" / "run" / "report.html").read_text()
    assert "Best-of-n from temperature=0.75" in report
