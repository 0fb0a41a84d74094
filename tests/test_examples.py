"""The statistics example runs and shows what it claims: the implied beta and the trade-off line
over typical corpora recover beta = 0.5."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "stats_example.py"


def test_stats_example_recovers_beta():
    out = subprocess.run(
        [sys.executable, str(EXAMPLE)], capture_output=True, text=True, check=True
    ).stdout
    assert "implied beta per string: 0.5000 (true 0.5), R^2 1.0000" in out
    typical = float(
        re.search(r"typical ones: +Spearman\(mean log p, mean reward\) = ([-+.\d]+)", out)[1]
    )
    string_level = float(
        re.search(r"string level: +Spearman\(log p, reward\) = ([-+.\d]+)", out)[1]
    )
    assert typical < -0.9 < 0 < string_level
    low, high = map(
        float,
        re.search(r"slope [-+.\d]+ \[([-+.\d]+), ([-+.\d]+)\] \(95% BCa; -beta", out).groups(),
    )
    assert abs((low + high) / 2 + 0.5) < 0.03
