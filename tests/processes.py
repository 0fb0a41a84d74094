"""Starting a command and killing it with SIGKILL half-way, as a crash or an OOM killer would."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path


def kill_after(args: list[str], env: dict[str, str], shards: Path, count: int = 2) -> None:
    """Runs ``args`` and SIGKILLs it once ``shards`` holds ``count`` shards (or after 120 s)."""
    process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None:
        if shards.exists() and len(list(shards.glob("batch-*.parquet"))) >= count:
            break
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
