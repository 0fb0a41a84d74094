"""The run directory: ``manifest.json``, one Parquet shard per batch of work, and the merged
``samples.parquet``.

Every file is written to a temporary name and renamed into place, so a run interrupted at any
moment (SIGINT, SIGKILL) never leaves a half-written file that is read back. A batch's shard
exists only when the whole batch is done; starting the run again skips the batches that have
shards and computes the rest, which (batches being fixed by the settings) gives exactly the table
of an uninterrupted run. Several processes (torchrun) share a run directory: each writes the shards
of its own batches, and the merge reads them all.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["RunDir", "SAMPLES_SCHEMA", "SettingsMismatchError", "atomic_path", "atomic_write_bytes"]

SAMPLES_SCHEMA = pa.schema(
    [
        ("prompt_id", pa.string()),
        ("prompt", pa.string()),
        ("context", pa.string()),
        ("config", pa.string()),
        ("sample_index", pa.int64()),
        ("text", pa.string()),
        ("token_ids", pa.list_(pa.int64())),
        ("n_tokens", pa.int64()),
        ("finished", pa.bool_()),
        ("stop_reason", pa.string()),
        ("logp_aligned", pa.float64()),
        ("logp_adapted", pa.float64()),
        ("token_logp_aligned", pa.list_(pa.float64())),
        ("token_logp_adapted", pa.list_(pa.float64())),
    ]
)


class SettingsMismatchError(ValueError):
    """A run directory was started with other settings than the ones given now."""


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary name beside ``path`` to write to; renamed onto ``path`` when the block ends
    without an error, so a reader never sees a half-written file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def _versions() -> dict[str, str]:
    from . import __version__

    versions = {"tradeoff": __version__, "python": platform.python_version()}
    for name in ("torch", "transformers", "numpy", "pyarrow"):
        try:
            versions[name] = __import__(name).__version__
        except ImportError:
            pass
    return versions


class RunDir:
    """A run directory (created if needed)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.manifest_path = self.path / "manifest.json"
        self.samples_path = self.path / "samples.parquet"

    def shard_dir(self, stage: str) -> Path:
        return self.path / "shards" / stage

    def shard_path(self, stage: str, batch: int) -> Path:
        return self.shard_dir(stage) / f"batch-{batch:06d}.parquet"

    # --- manifest -------------------------------------------------------------------------------

    def read_manifest(self) -> dict[str, Any] | None:
        if not self.manifest_path.exists():
            return None
        return json.loads(self.manifest_path.read_text(encoding="utf-8"))

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        data = json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n"
        atomic_write_bytes(self.manifest_path, data.encode())

    def start(self, stage: str, settings: dict[str, Any], models: dict[str, Any]) -> dict[str, Any]:
        """Creates the manifest, or checks that a resumed run has the same settings."""
        manifest = self.read_manifest()
        if manifest is None:
            manifest = {
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "versions": _versions(),
                "settings": {},
                "models": {},
                "stages": {},
            }
        previous = manifest["settings"].get(stage)
        if previous is not None and previous != json.loads(json.dumps(settings, default=str)):
            changed = sorted(
                k for k in set(previous) | set(settings) if previous.get(k) != settings.get(k)
            )
            raise SettingsMismatchError(
                f"run directory {str(self.path)!r} was started with other {stage} settings "
                f"(different: {', '.join(changed)}); pass the same settings to resume it, or use "
                "a new `--out` directory"
            )
        manifest["settings"][stage] = settings
        manifest["models"].update(models)
        manifest["stages"].setdefault(stage, {"status": "running"})
        return manifest

    # --- shards ---------------------------------------------------------------------------------

    def clean_temporary(self, stage: str) -> None:
        """Removes temporary files that an interrupted writer left (never read)."""
        directory = self.shard_dir(stage)
        if directory.exists():
            for tmp in directory.glob(".*.tmp"):
                tmp.unlink(missing_ok=True)

    def done_batches(self, stage: str) -> set[int]:
        directory = self.shard_dir(stage)
        if not directory.exists():
            return set()
        return {int(p.stem.split("-")[1]) for p in directory.glob("batch-*.parquet")}

    def write_shard(self, stage: str, batch: int, records: list[dict[str, Any]]) -> Path:
        directory = self.shard_dir(stage)
        directory.mkdir(parents=True, exist_ok=True)
        final = self.shard_path(stage, batch)
        with atomic_path(final) as tmp:
            pq.write_table(pa.Table.from_pylist(records, schema=SAMPLES_SCHEMA), tmp)
        return final

    def merge(self, stage: str, n_batches: int) -> Path:
        """Concatenates the shards of batches 0..n_batches-1 (in order) into samples.parquet."""
        missing = sorted(set(range(n_batches)) - self.done_batches(stage))
        if missing:
            raise RuntimeError(
                f"cannot merge {stage}: {len(missing)} of {n_batches} batches have no shard "
                f"(first: {missing[0]}); run the stage again to finish them"
            )
        tables = [pq.read_table(self.shard_path(stage, b)) for b in range(n_batches)]
        table = pa.concat_tables(tables).cast(SAMPLES_SCHEMA)
        with atomic_path(self.samples_path) as tmp:
            pq.write_table(table, tmp)
        return self.samples_path
