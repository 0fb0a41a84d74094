"""Running ``tradeoff-eval`` as a user does, in a subprocess, and reading what it left behind.

The helpers here check the command line's contract: a user error exits 2 with ONE line on stderr
(``tradeoff-eval COMMAND: error: ...``) that names the argument, file or key, and no traceback.
Progress bars printed by transformers while it loads or saves weights, and the tool's own
``tradeoff-eval: warning: ...`` lines, are not part of that line and are set aside.
"""

from __future__ import annotations

import html
import inspect
import json
import os
import shlex
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}
TOOL = [sys.executable, "-m", "tradeoff"]
# Progress bars of transformers (one physical line each, redrawn with carriage returns).
PROGRESS = ("Loading weights", "Writing model shards", "Loading checkpoint shards")
WARNING = "tradeoff-eval: warning:"
TEMPLATE = "Human: {prompt} Assistant:"
REWARD_TEMPLATE = "Human: {prompt} Assistant:{response}"


@dataclass
class Result:
    """A finished command: its arguments, exit status and output."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def messages(self) -> list[str]:
        """The stderr lines that are neither progress bars nor the tool's warnings."""
        lines = []
        for line in self.stderr.splitlines():
            shown = line.split("\r")[-1].strip()  # what a terminal shows of a redrawn line
            if not shown or any(p in line for p in PROGRESS) or shown.startswith(WARNING):
                continue
            lines.append(shown)
        return lines

    @property
    def warnings(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith(WARNING)]

    def json(self) -> Any:
        return json.loads(self.stdout.strip().splitlines()[-1])

    def describe(self) -> str:
        return (
            f"command: {shlex.join(self.args)}\nexit status: {self.returncode}\n"
            f"--- stdout ---\n{self.stdout[-4000:]}\n--- stderr ---\n{self.stderr[-4000:]}"
        )


def run_cli(
    *args: Any, cwd: Path | None = None, prefix: Sequence[str] = (), timeout: float = 600
) -> Result:
    """``python -m tradeoff ARGS`` (after ``prefix``, e.g. an ``unshare`` wrapper)."""
    argv = [*prefix, *TOOL, *(str(a) for a in args)]
    return run_argv(argv, cwd=cwd, timeout=timeout)


def run_argv(argv: Sequence[str], cwd: Path | None = None, timeout: float = 600) -> Result:
    with SLOTS:
        done = subprocess.run(
            list(argv), cwd=cwd, env=ENV, capture_output=True, text=True, timeout=timeout
        )
    return Result(list(argv), done.returncode, done.stdout, done.stderr)


def assert_ok(result: Result) -> Result:
    """The command completed (exit 0, no traceback)."""
    assert result.returncode == 0, result.describe()
    assert "Traceback" not in result.stderr, result.describe()
    return result


def assert_user_error(result: Result, *names: str | tuple[str, ...]) -> str:
    """Exit 2, one line on stderr, no traceback, and the line names each of ``names`` (a tuple
    is a choice of spellings, e.g. the option and the key). Returns the line."""
    assert "Traceback" not in result.stderr, result.describe()
    assert result.returncode == 2, result.describe()
    lines = result.messages
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}\n{result.describe()}"
    line = lines[0]
    assert line.startswith("tradeoff-eval") and "error:" in line, result.describe()
    for name in names:
        options = (name,) if isinstance(name, str) else name
        assert any(o in line for o in options), f"{options} not named in {line!r}"
    return line


# --- running a module's commands together ---------------------------------------------------------

# Commands run at most this many at a time (each takes a core to import torch).
SLOTS = threading.BoundedSemaphore(max(2, os.cpu_count() or 2))


class Background:
    """The commands of a module's tests, started together when the module's first test runs
    and run in the background (as many processes at a time as there are cores); each test
    then asserts on its own outcome. A job is ``fn(*args)`` under a key; ``background[key]`` waits
    for it and returns what it returned, or raises what it raised. Jobs may wait for other jobs
    (the pool has a thread per job, so they never block each other's start)."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=128)
        self._futures: dict[str, Future] = {}
        self._lock = threading.Lock()

    def submit(self, key: str, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> None:
        """Starts ``fn`` under ``key`` unless a job of that key was started."""
        with self._lock:
            if key not in self._futures:
                self._futures[key] = self._pool.submit(fn, *args, **kwargs)

    def need(self, key: str, fn: Callable[[], Any]) -> Any:
        """The outcome of the job ``key``, started (as ``fn()``) if it was not."""
        self.submit(key, fn)
        return self[key]

    def __contains__(self, key: str) -> bool:
        return key in self._futures

    def __getitem__(self, key: str) -> Any:
        return self._futures[key].result()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def job_key(job: Callable[..., Any], params: dict[str, Any]) -> str:
    return f"{job.__name__}[{'-'.join(str(v) for v in params.values())}]"


def node_params(node: Any, job: Callable[..., Any]) -> dict[str, Any]:
    """The test's parameters that the job takes (tests that differ only in the others share
    the job's outcome)."""
    taken = inspect.signature(job).parameters
    params = node.callspec.params if hasattr(node, "callspec") else {}
    return {k: v for k, v in params.items() if k in taken}


def start_selected(
    request: Any,
    background: Background,
    jobs: dict[str, Callable[..., Any]],
    context: Any,
    mktemp: Callable[[str], Path],
) -> None:
    """Submits, for every selected test of the requesting module whose function is a key of
    ``jobs``, ``jobs[name](context, directory, **params)`` with a fresh directory (made here, in
    the main thread) and the test's parameters that the job takes; tests of one job with the
    same such parameters share it. :func:`outcome_of` gives a test its job's outcome."""
    for item in request.session.items:
        # Doctest items (from python/tradeoff) have neither attribute.
        if getattr(item, "module", None) is not request.module:
            continue
        if getattr(item, "originalname", None) not in jobs:
            continue
        job = jobs[item.originalname]
        params = node_params(item, job)
        key = job_key(job, params)
        if key not in background:
            directory = mktemp("".join(c if c.isalnum() else "-" for c in key)[:60])
            background.submit(key, job, context, directory, **params)


def outcome_of(background: Background, jobs: dict[str, Callable[..., Any]], node: Any) -> Any:
    job = jobs[node.originalname]
    return background[job_key(job, node_params(node, job))]


# --- run directories --------------------------------------------------------------------------


def generate_args(
    tiny: dict[str, Path],
    out: Path,
    *extra: Any,
    adaptors: Sequence[str] = ("ancestral", "temperature=1.5"),
    max_prompts: int = 4,
    samples: int = 3,
    max_new_tokens: int = 32,
    batch_size: int = 1,
    seed: int = 0,
) -> list[str]:
    """A small generate command on the tiny models."""
    return [
        "generate",
        "--aligned", str(tiny["aligned"]),
        "--prompts", str(tiny["prompts"]),
        "--adaptors", *adaptors,
        "--samples-per-prompt", str(samples),
        "--max-prompts", str(max_prompts),
        "--max-new-tokens", str(max_new_tokens),
        "--batch-size", str(batch_size),
        "--seed", str(seed),
        "--template", TEMPLATE,
        "--no-progress",
        "--out", str(out),
        *(str(e) for e in extra),
    ]  # fmt: skip


def score_args(tiny: dict[str, Path], run: Path, *extra: Any) -> list[str]:
    """A score command (prior and reward) on the tiny models."""
    return [
        "score",
        "--run-dir", str(run),
        "--prior", str(tiny["prior"]),
        "--prior-context", "none",
        "--reward", str(tiny["reward"]),
        "--reward-template", REWARD_TEMPLATE,
        "--no-progress",
        *(str(e) for e in extra),
    ]  # fmt: skip


def copy_run(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def read_table(path: Path) -> pa.Table:
    """A Parquet table without its schema metadata (the settings hash), for comparisons."""
    return pq.read_table(path).replace_schema_metadata(None)


def assert_same_table(path: Path, reference: Path) -> None:
    a, b = read_table(path), read_table(reference)
    assert a.equals(b), f"{path} differs from {reference} ({a.num_rows} vs {b.num_rows} rows)"


def rewrite_table(path: Path, columns: dict[str, list[Any]]) -> None:
    """Writes ``columns`` over a run directory's table, keeping its schema and metadata."""
    schema = pq.read_schema(path)
    pq.write_table(pa.Table.from_pydict(columns, schema=schema), path)


def temporaries(directory: Path) -> list[Path]:
    return sorted(p for p in Path(directory).rglob("*.tmp"))


def read_only_prefix(directory: Path) -> list[str]:
    """Runs a command with ``directory`` bind-mounted read-only in a private mount namespace
    (root ignores permission bits, so chmod cannot make a directory read-only for the tests)."""
    d = shlex.quote(str(directory))
    script = f'mount --bind {d} {d} && mount -o remount,ro,bind {d} {d} && exec "$@"'
    return ["unshare", "-rm", "sh", "-c", script, "sh"]


def check_read_only_works(directory: Path) -> None:
    """Fails (never skips) when the read-only wrapper does not work here."""
    import pytest

    probe = directory / ".probe"
    try:
        done = subprocess.run(
            [*read_only_prefix(directory), "touch", str(probe)], capture_output=True, text=True
        )
    except FileNotFoundError as error:
        pytest.fail(f"`unshare` is needed to make a read-only directory: {error}")
    if probe.exists() or "Read-only file system" not in done.stderr:
        pytest.fail(
            "the `unshare -rm` read-only bind mount does not work here "
            f"(exit {done.returncode}: {done.stderr.strip()!r}); the test needs it"
        )


# --- TOML ---------------------------------------------------------------------------------------


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(value)


def to_toml(raw: dict[str, Any]) -> str:
    lines = [f"{k} = {toml_value(v)}" for k, v in raw.items() if not isinstance(v, dict)]
    for section, values in raw.items():
        if isinstance(values, dict):
            lines += ["", f"[{section}]"] + [f"{k} = {toml_value(v)}" for k, v in values.items()]
    return "\n".join(lines) + "\n"


# --- summary.json --------------------------------------------------------------------------------

OPTIONAL_BLOCKS = ("string_level", "corpus_level", "tradeoff_line", "simpson", "implied_beta")


def read_summary(run: Path) -> dict[str, Any]:
    """summary.json, read strictly (NaN and infinities are not JSON)."""

    def refuse(name: str) -> Any:
        raise AssertionError(f"summary.json holds {name}")

    return json.loads((run / "summary.json").read_text(), parse_constant=refuse)


def missing_quantities(summary: dict[str, Any]) -> list[tuple[str, str | None]]:
    """Every null quantity of a summary with the reason given for it (None when none is):
    estimates (value, low, high), correlations, and optional blocks (reasons beside them)."""
    found: list[tuple[str, str | None]] = []

    def walk(value: Any, where: str, reasons: dict[str, str]) -> None:
        if isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, f"{where}[{i}]", reasons)
            return
        if not isinstance(value, dict):
            return
        if {"value", "low", "high"} <= value.keys():
            if any(value[k] is None for k in ("value", "low", "high")):
                found.append((where, value.get("reason")))
            return
        if "statistic" in value:
            if value["statistic"] is None:
                found.append((where, value.get("reason")))
            return
        own = value.get("reasons") if isinstance(value.get("reasons"), dict) else {}
        for key, v in value.items():
            if key == "reasons":
                continue
            if v is None and key in (*OPTIONAL_BLOCKS, "imh"):
                found.append((f"{where}.{key}", own.get(key)))
            else:
                walk(v, f"{where}.{key}", own)

    walk(summary, "summary", {})
    return found


def assert_nulls_have_reasons(summary: dict[str, Any]) -> None:
    unexplained = [where for where, reason in missing_quantities(summary) if not reason]
    assert not unexplained, f"null without a reason: {unexplained}"


def config_of(summary: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in summary["configs"] if c["config"] == name)


def in_html(text: str, page: str) -> bool:
    return html.escape(text) in page or text in page
