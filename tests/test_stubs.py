"""The hand-kept stub python/tradeoff/_core.pyi matches the extension (mypy.stubtest)."""

import subprocess
import sys


def test_core_stub_matches_the_extension():
    result = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "tradeoff._core"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
