"""The README's walkthrough of generate, score, analyze and report runs exactly as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).parents[1] / "README.md"


def walkthrough() -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Generating and scoring corpora") :]
    return re.search(r"```bash\n(.*?)```", section, re.S)[1]


def test_the_walkthrough_runs_as_written(tmp_path):
    script = walkthrough()
    assert "tradeoff-eval analyze" in script and "tradeoff-eval report" in script
    # The block starts from the repository, where ./dev made .venv.
    (tmp_path / ".venv").symlink_to(Path(sys.prefix))
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path,
                          capture_output=True, text=True, timeout=900,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert "128 strings" in done.stdout
    assert "string level Spearman(log p, reward)" in done.stdout
    run = tmp_path / "runs" / "tiny"
    for name in ("samples.parquet", "scores.parquet", "summary.json", "report.html"):
        assert (run / name).is_file(), name
    assert "n/a" in done.stdout  # one string in most configurations: intervals are n/a
