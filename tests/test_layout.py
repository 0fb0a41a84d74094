"""The package's architecture, checked by tools: the import-linter contracts hold (and a wrong
arrow breaks them), the first version's import paths still work with a DeprecationWarning, and
`import tradeoff` (with the statistics and the exact worlds) never imports torch."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
LINT_IMPORTS = shutil.which("lint-imports", path=str(Path(sys.executable).parent))


def lint_imports(pythonpath: Path | None = None) -> subprocess.CompletedProcess:
    assert LINT_IMPORTS, "lint-imports (import-linter) is not installed; ./dev installs it"
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run(
        [LINT_IMPORTS, "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )


def test_the_import_contracts_hold():
    done = lint_imports()
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


@pytest.mark.parametrize(
    "module, line, message",
    [
        # An upward arrow: the statistics reaching into the command line.
        ("stats.py", "from .app import cli  # noqa", "tradeoff.stats is not allowed to import"),
        # A stage reading another stage instead of the run directory.
        ("stages/analyze.py", "from . import score  # noqa", "tradeoff.stages.analyze"),
        # The exact world loading models.
        ("worlds/toy.py", "import transformers  # noqa", "tradeoff.worlds.toy"),
    ],
)
def test_a_wrong_arrow_breaks_a_contract(tmp_path, module, line, message):
    copy = tmp_path / "tradeoff"
    shutil.copytree(ROOT / "python" / "tradeoff", copy,
                    ignore=shutil.ignore_patterns("*.so", "__pycache__"))  # fmt: skip
    path = copy / module
    path.write_text(path.read_text(encoding="utf-8") + f"\n{line}\n", encoding="utf-8")
    done = lint_imports(pythonpath=tmp_path)
    assert done.returncode != 0, done.stdout[-3000:]
    assert message in done.stdout and "BROKEN" in done.stdout


OLD_PATHS = {
    "tradeoff.generate": "Generator",
    "tradeoff.score": "score_continuations",
    "tradeoff.rewards": "load_reward",
    "tradeoff.prompts": "load_prompts",
    "tradeoff.store": "RunDir",
    "tradeoff.analysis": "analyze_run",
    "tradeoff.report": "write_report",
    "tradeoff.recommend": "recommend",
    "tradeoff.pipeline": "load_config",
    "tradeoff.demo": "run_demo",
    "tradeoff.tiny": "make_demo",
    "tradeoff.cli": "main",
}


@pytest.mark.parametrize("module, name", sorted(OLD_PATHS.items()))
def test_the_old_import_paths_work_and_warn(module, name):
    code = (
        "import warnings\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        f"    from {module} import {name}\n"
        "assert any(issubclass(w.category, DeprecationWarning) and 'moved to' in str(w.message)\n"
        "           for w in caught), [str(w.message) for w in caught]\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_import_tradeoff_does_not_import_torch():
    code = (
        "import sys, tradeoff, tradeoff.stats, tradeoff.rundir, tradeoff.errors, "
        "tradeoff.worlds.toy, tradeoff.worlds.automaton, tradeoff.stages, tradeoff.app.cli\n"
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_python_m_tradeoff_is_the_command_line():
    done = subprocess.run([sys.executable, "-m", "tradeoff", "--version"], capture_output=True,
                          text=True)  # fmt: skip
    assert done.returncode == 0 and done.stdout.startswith("tradeoff ")
