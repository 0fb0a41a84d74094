"""Atomic writes: every file of a run directory is written to a temporary name beside it and
renamed into place, so a reader never sees a half-written file, whenever the writer is killed.

Temporaries are named ``.NAME.PID.tmp``; a killed writer leaves one behind, and the next stage
that starts in the run directory removes them (:func:`remove_temporaries`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_json", "remove_temporaries"]


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary name beside ``path`` to write to; renamed onto ``path`` when the block ends
    without an error, and removed when it raises."""
    path = Path(path)
    tmp = _temporary(path)
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_path(Path(path)) as tmp:
        tmp.write_bytes(data)


def atomic_write_json(path: Path, value: Any) -> None:
    """``value`` as indented JSON (NaN refused: the run directory's JSON is strict)."""
    text = json.dumps(value, indent=2, sort_keys=False, allow_nan=False, default=str) + "\n"
    atomic_write_bytes(path, text.encode("utf-8"))


def remove_temporaries(directory: Path) -> list[Path]:
    """Removes the temporaries (``.*.tmp``) that killed writers left anywhere under
    ``directory``; returns what it removed. Call it only where no other writer is running (at
    the start of a stage, on rank 0, before the other ranks start)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    removed = []
    for tmp in directory.rglob(".*.tmp"):
        if tmp.is_file():
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed
