"""User errors through the command line, as a user meets them: every one exits 2 with one line on
stderr that names the argument, file or key, and no traceback; and settings are checked before
any work, so a refused command leaves nothing behind.

3. Settings checked before work: bad values in a configuration file or through ``--set`` (dry run
   and real run), a read-only run directory for score, limits (a billion strings planned lazily,
   a prompt or ``--max-new-tokens`` beyond the model's positions, EOS ids, empty stop strings,
   NaN targets, a classifier given as the aligned model).
4. Every user error is one line with exit 2: bad output directories, model directories, prompt
   files, manifests and configuration keys; negative numbers in scientific notation are numbers;
   the README states what ``python:module:function`` rewards do.

The commands of the module's tests run in the background, one per core (``outcomes``, see
cli_harness.Background); each test asserts on the outcome of its own commands.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from cli_harness import (
    ENV,
    REWARD_TEMPLATE,
    SLOTS,
    TEMPLATE,
    TOOL,
    Background,
    assert_ok,
    assert_user_error,
    check_read_only_works,
    copy_run,
    generate_args,
    outcome_of,
    read_only_prefix,
    run_cli,
    score_args,
    start_selected,
    to_toml,
)

from tradeoff.testing.tiny import make_demo, save_sequence_classification_reward

README = Path(__file__).resolve().parent.parent / "README.md"
ANALYSIS = ["--n-steps", "500", "--n-corpora", "50", "--corpus-size", "100", "--n-resamples", "100"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_demo(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def outcomes(request, tiny, tmp_path_factory):
    """Starts the commands of every selected test of this module (see cli_harness)."""
    background = Background()
    base = tmp_path_factory.mktemp("base")

    def generated() -> Path:
        assert_ok(run_cli(*small_generate(tiny, base / "generated")))
        return base / "generated"

    def analysed() -> Path:
        run = copy_run(context.generated(), base / "analysed")
        assert_ok(run_cli(*score_args(tiny, run)))
        assert_ok(run_cli("analyze", "--run-dir", run, *ANALYSIS))
        return run

    context = SimpleNamespace(
        tiny=tiny,
        generated=lambda: background.need("generated", generated),
        analysed=lambda: background.need("analysed", analysed),
    )
    background.context = context
    start_selected(request, background, JOBS, context, tmp_path_factory.mktemp)
    yield background
    background.close()


@pytest.fixture
def outcome(outcomes, request):
    return outcome_of(outcomes, JOBS, request.node)


def small_generate(tiny, out, *extra, **changes):
    """A quick generate command: 2 prompts x 2 configurations x 2 samples of 8 tokens."""
    settings = dict(max_prompts=2, samples=2, max_new_tokens=8, batch_size=4)
    return generate_args(tiny, out, *extra, **{**settings, **changes})


def nothing_written(run: Path) -> list[str]:
    """What a refused command must not have left in its run directory."""
    return [
        name for name in ("manifest.json", "samples.parquet", "shards") if (run / name).exists()
    ]


# --- 3. settings checked before work ----------------------------------------------------------


def base_config(tiny, out: Path) -> dict:
    """A valid configuration on the tiny models (as tests/test_pipeline.py's)."""
    return {
        "out": str(out),
        "seed": 0,
        "models": {
            "aligned": str(tiny["aligned"]),
            "prior": str(tiny["prior"]),
            "reward": str(tiny["reward"]),
            "dtype": "float32",
            "device": "cpu",
        },
        "prompts": {"source": str(tiny["prompts"]), "max_prompts": 2, "template": TEMPLATE},
        "generate": {
            "adaptors": ["ancestral"],
            "samples_per_prompt": 2,
            "max_new_tokens": 4,
            "batch_size": 4,
        },
        "score": {"prior_context": "none", "reward_template": REWARD_TEMPLATE},
        "analysis": {"n_steps": 500, "n_corpora": 50, "corpus_size": 100, "n_resamples": 100},
    }


# name: (section, key, value in the file, value as --set writes it)
BAD_SETTINGS = {
    "clamp_token_nll": ("score", "clamp_token_nll", -1, "-1"),
    "reward_template": ("score", "reward_template", "{prompt}", '"{prompt}"'),
    "implicit-reward": ("models", "reward", "implicit:-1", '"implicit:-1"'),
    "stop": ("generate", "stop", [1, 2], "[1, 2]"),
    "seed": ("", "seed", -1, "-1"),
    "dtype": ("models", "dtype", "float64", '"float64"'),
    "device": ("models", "device", "cuda", '"cuda"'),
    "adaptors": ("generate", "adaptors", [], "[]"),
}


def _bad_setting(context, directory, setting, via):
    section, key, value, text = BAD_SETTINGS[setting]
    out = directory / "out"
    raw = base_config(context.tiny, out)
    overrides = []
    if via == "file":
        (raw[section] if section else raw)[key] = value
    else:
        overrides = ["--set", f"{section + '.' if section else ''}{key}={text}"]
    config = directory / "config.toml"
    config.write_text(to_toml(raw))
    return SimpleNamespace(
        run=out / "run",
        dry=run_cli("run", config, *overrides, "--dry-run"),
        real=run_cli("run", config, *overrides),
    )


@pytest.mark.parametrize("via", ["file", "set"])
@pytest.mark.parametrize("setting", list(BAD_SETTINGS))
def test_a_bad_setting_is_refused_before_any_work(setting, via, outcome):
    if setting == "device":
        import torch

        if torch.cuda.is_available():
            pytest.fail("this test needs a machine without CUDA: `device = cuda` must be refused")
    key = BAD_SETTINGS[setting][1]
    assert_user_error(outcome.dry, key)
    assert_user_error(outcome.real, key)
    assert nothing_written(outcome.run) == [], "the refused run wrote files"


def _valid_config(context, directory):
    config = directory / "config.toml"
    config.write_text(to_toml(base_config(context.tiny, directory / "out")))
    return run_cli("run", config, "--dry-run")


def test_the_valid_configuration_plans(outcome):
    """The control of the cases above: without the bad value the same file is accepted."""
    assert "plan for" in assert_ok(outcome).stdout


def _unknown_set_key(context, directory):
    config = directory / "config.toml"
    config.write_text(to_toml(base_config(context.tiny, directory / "out")))
    return run_cli("run", config, "--set", "generate.samples=3")


def test_an_unknown_set_key_is_refused_naming_it(outcome):
    assert_user_error(outcome, "samples")


def _score_read_only(context, directory):
    run = copy_run(context.generated(), directory / "run")
    check_read_only_works(run)
    result = run_cli(*score_args(context.tiny, run), prefix=read_only_prefix(run))
    return SimpleNamespace(run=run, result=result)


def test_score_into_a_read_only_run_directory_fails_before_scoring(outcome):
    assert_user_error(outcome.result, str(outcome.run))
    assert "Loading weights" not in outcome.result.stderr, "a model was loaded first"
    assert not (outcome.run / "scores.parquet").exists()


def _billion_strings(context, directory):
    """generate with 10^9 strings per prompt: the first shard must come, the process alive."""
    run = directory / "r"
    argv = [
        *TOOL,
        *small_generate(context.tiny, run, max_prompts=1, samples=1_000_000_000, max_new_tokens=4,
                        batch_size=2, adaptors=["ancestral"]),
    ]  # fmt: skip
    log = directory / "stderr.log"
    shards = run / "shards" / "generate"
    with SLOTS, open(log, "w") as stderr:
        process = subprocess.Popen(argv, env=ENV, stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and process.poll() is None:
                if shards.is_dir() and any(shards.glob("batch-*.parquet")):
                    break
                time.sleep(0.02)
            shard = shards.is_dir() and any(shards.glob("batch-*.parquet"))
            running = process.poll() is None
        finally:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)
            process.wait()
    return SimpleNamespace(shard=shard, running=running, log=log.read_text())


def test_a_billion_strings_are_planned_without_a_work_list(outcome):
    assert "MemoryError" not in outcome.log, outcome.log[-3000:]
    assert outcome.shard, f"no shard within 120 s:\n{outcome.log[-3000:]}"
    assert outcome.running, f"generate stopped:\n{outcome.log[-3000:]}"


def _long_prompt(context, directory):
    prompts = directory / "long.jsonl"
    prompts.write_text(json.dumps({"id": "the-long-one", "prompt": "tell me " * 12_500}) + "\n")
    tiny = {**context.tiny, "prompts": prompts}
    return ["the-long-one", "256"], small_generate(tiny, directory / "r")


def _classifier_as_aligned(context, directory):
    model = save_sequence_classification_reward(directory / "classifier")
    tiny = {**context.tiny, "aligned": model}
    return [str(model), "causal"], small_generate(tiny, directory / "r")


LIMITS = {
    "long-prompt": _long_prompt,
    "max-new-tokens-300": lambda c, d: (
        [("max_new_tokens", "--max-new-tokens"), "256"],
        small_generate(c.tiny, d / "r", max_new_tokens=300),
    ),
    "eos-token-id-negative": lambda c, d: (
        [("eos_token_id", "--eos-token-id")],
        small_generate(c.tiny, d / "r", "--eos-token-id", "-1"),
    ),
    "eos-token-id-too-large": lambda c, d: (
        [("eos_token_id", "--eos-token-id"), "100000"],
        small_generate(c.tiny, d / "r", "--eos-token-id", "100000"),
    ),
    "empty-stop-string": lambda c, d: (
        [("--stop", "stop")],
        small_generate(c.tiny, d / "r", "--stop", ""),
    ),
    "classifier-as-aligned": _classifier_as_aligned,
}


def _limit(context, directory, limit):
    names, args = LIMITS[limit](context, directory)
    return SimpleNamespace(names=names, run=directory / "r", result=run_cli(*args))


@pytest.mark.parametrize("limit", list(LIMITS))
def test_generate_refuses_what_the_model_cannot_do_before_any_work(limit, outcome):
    assert_user_error(outcome.result, *outcome.names)
    assert nothing_written(outcome.run) == [], "the refused run wrote files"


def _recommend_target(context, directory, value):
    return run_cli("recommend", "--run-dir", context.analysed(), "--min-reward", value)


def _recommend_nan(context, directory):
    return run_cli("recommend", "--run-dir", context.analysed(), "--min-reward", "nan")


def test_recommend_refuses_a_nan_target(outcome):
    assert_user_error(outcome, ("min_reward", "--min-reward"), "nan")


@pytest.mark.parametrize("value", ["-1e9", "-1.5E+3"])
def test_recommend_reads_a_negative_number_in_scientific_notation(value, outcome):
    out = assert_ok(outcome).stdout
    assert "meets mean reward >=" in out, out


# --- 4. every user error is one line with exit 2 -------------------------------------------------


def _out_read_only(context, directory):
    out = directory / "ro"
    out.mkdir()
    check_read_only_works(out)
    return [str(out)], small_generate(context.tiny, out), read_only_prefix(out)


def _out_is_a_file(context, directory):
    out = directory / "a-file"
    out.write_text("not a directory\n")
    return [str(out)], small_generate(context.tiny, out), ()


def _invalid_config_json(context, directory):
    model = shutil.copytree(context.tiny["aligned"], directory / "model")
    (model / "config.json").write_text("{not json")
    return [str(model), "config.json"], small_generate({**context.tiny, "aligned": model},
                                                       directory / "r"), ()  # fmt: skip


def _no_weights(context, directory):
    model = directory / "model"
    model.mkdir()
    for path in Path(context.tiny["aligned"]).iterdir():
        if path.name == "config.json" or path.name.startswith(("tokenizer", "special_tokens")):
            shutil.copy(path, model / path.name)
    return [str(model), "weight"], small_generate({**context.tiny, "aligned": model},
                                                  directory / "r"), ()  # fmt: skip


def _parquet_prompts(values):
    def make(context, directory):
        prompts = directory / "prompts.parquet"
        pq.write_table(pa.table({"id": ["a", "b"], "prompt": values}), prompts)
        return [str(prompts), "prompt"], small_generate({**context.tiny, "prompts": prompts},
                                                        directory / "r"), ()  # fmt: skip

    return make


def _non_utf8_prompts(context, directory):
    prompts = directory / "prompts.jsonl"
    prompts.write_bytes(b"\xff\xfe bad\n")
    return [str(prompts), "UTF-8"], small_generate({**context.tiny, "prompts": prompts},
                                                   directory / "r"), ()  # fmt: skip


def _directory_prompts(context, directory):
    prompts = directory / "prompts"
    prompts.mkdir()
    return [str(prompts), "directory"], small_generate({**context.tiny, "prompts": prompts},
                                                       directory / "r"), ()  # fmt: skip


INPUTS = {
    "out-read-only": _out_read_only,
    "out-is-a-file": _out_is_a_file,
    "model-invalid-config-json": _invalid_config_json,
    "model-without-weights": _no_weights,
    "parquet-int-prompts": _parquet_prompts([1, 2]),
    "parquet-null-prompts": _parquet_prompts(pa.array([None, None], pa.string())),
    "non-utf8-prompts": _non_utf8_prompts,
    "directory-as-prompts": _directory_prompts,
}


def _bad_input(context, directory, case):
    names, args, prefix = INPUTS[case](context, directory)
    return SimpleNamespace(names=names, result=run_cli(*args, prefix=prefix))


@pytest.mark.parametrize("case", list(INPUTS))
def test_generate_refuses_a_bad_input_in_one_line(case, outcome):
    assert_user_error(outcome.result, *outcome.names)


MANIFESTS = {"list": "[]", "empty-object": "{}", "invalid-json": "{oops"}


def _bad_manifest(context, directory, manifest, command):
    run = copy_run(context.generated(), directory / "run")
    (run / "manifest.json").write_text(MANIFESTS[manifest])
    if command == "generate":
        args = small_generate(context.tiny, run)
    else:
        args = score_args(context.tiny, run)
    return SimpleNamespace(path=run / "manifest.json", result=run_cli(*args))


@pytest.mark.parametrize(
    "manifest, command",
    [("list", "generate"), ("empty-object", "generate"), ("invalid-json", "generate"),
     ("invalid-json", "score")],
)  # fmt: skip
def test_a_bad_manifest_is_refused_naming_the_file(manifest, command, outcome):
    assert_user_error(outcome.result, str(outcome.path))


def _score_without_manifest(context, directory):
    run = copy_run(context.generated(), directory / "run")
    (run / "manifest.json").unlink()
    return run_cli(*score_args(context.tiny, run))


def test_score_says_the_manifest_is_missing(outcome):
    line = assert_user_error(outcome, "manifest.json")
    assert re.search(r"no manifest|missing|lacks", line), line


def _write_config_to_directory(context, directory, slash):
    target = directory / "existing"
    target.mkdir()
    given = f"{target}/" if slash == "slash" else str(target)
    return SimpleNamespace(
        target=target,
        result=run_cli("run", "--preset", "paper-dpo", "--write-config", given),
    )


@pytest.mark.parametrize("slash", ["slash", "no-slash"])
def test_write_config_refuses_an_existing_directory(slash, outcome):
    assert_user_error(outcome.result, str(outcome.target))
    assert list(outcome.target.iterdir()) == []


GRID = {"families": ("families", [1]), "temperatures": ("temperatures", ["hot"])}


def _bad_grid(context, directory, key):
    raw = base_config(context.tiny, directory / "out")
    del raw["generate"]["adaptors"]
    name, value = GRID[key]
    raw["generate"][name] = value
    config = directory / "config.toml"
    config.write_text(to_toml(raw))
    return run_cli("run", config)


@pytest.mark.parametrize("key", list(GRID))
def test_a_bad_grid_key_is_refused_naming_it(key, outcome):
    assert_user_error(outcome, key)


def test_readme_says_python_rewards_run_module_code_that_must_be_importable():
    text = README.read_text(encoding="utf-8")
    paragraphs = [p for p in re.split(r"\n\s*\n|\n- ", text) if "python:module:function" in p]
    assert paragraphs, "README.md does not mention python:module:function rewards"
    runs_code = [p for p in paragraphs if re.search(r"\b(runs?|executes?|imports?)\b", p)
                 and re.search(r"\bcode\b", p)]  # fmt: skip
    assert runs_code, "README.md does not say that python:module:function runs the module's code"
    importable = [p for p in paragraphs if "PYTHONPATH" in p]
    assert importable, "README.md does not say that the module must be importable (PYTHONPATH)"


JOBS = {
    "test_a_bad_setting_is_refused_before_any_work": _bad_setting,
    "test_the_valid_configuration_plans": _valid_config,
    "test_an_unknown_set_key_is_refused_naming_it": _unknown_set_key,
    "test_score_into_a_read_only_run_directory_fails_before_scoring": _score_read_only,
    "test_a_billion_strings_are_planned_without_a_work_list": _billion_strings,
    "test_generate_refuses_what_the_model_cannot_do_before_any_work": _limit,
    "test_recommend_refuses_a_nan_target": _recommend_nan,
    "test_recommend_reads_a_negative_number_in_scientific_notation": _recommend_target,
    "test_generate_refuses_a_bad_input_in_one_line": _bad_input,
    "test_a_bad_manifest_is_refused_naming_the_file": _bad_manifest,
    "test_score_says_the_manifest_is_missing": _score_without_manifest,
    "test_write_config_refuses_an_existing_directory": _write_config_to_directory,
    "test_a_bad_grid_key_is_refused_naming_it": _bad_grid,
}
