"""Shards: a stage's work is cut into fixed batches, and batch k's result is one Parquet file,
``shards/STAGE/batch-%06d.parquet``, written atomically and stamped (in its schema metadata) with
the hash of the settings that made it and its batch number.

On resume a stage scans its shards (:meth:`ShardSet.scan`): a shard that cannot be read, or has
the wrong number of rows, is broken and computed again; a shard stamped with other settings is
foreign, and the stage refuses to mix it with its own; a file that is not named like a shard is
not the stage's and is left alone (and named). The merge concatenates the shards in batch order.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import RunDirError, SettingsMismatchError
from .atomic import atomic_path

__all__ = ["HASH_KEY", "ShardScan", "ShardSet", "read_stamp", "stamp"]

HASH_KEY = b"tradeoff.settings_hash"
BATCH_KEY = b"tradeoff.batch"
_NAME = re.compile(r"batch-(\d{6,})\.parquet")


def stamp(table: pa.Table, settings_hash: str, batch: int | None = None) -> pa.Table:
    """``table`` with the settings hash (and batch number) in its schema metadata."""
    metadata = dict(table.schema.metadata or {})
    metadata[HASH_KEY] = settings_hash.encode()
    if batch is not None:
        metadata[BATCH_KEY] = str(batch).encode()
    return table.replace_schema_metadata(metadata)


def read_stamp(path: Path) -> tuple[str | None, int]:
    """(settings hash, row count) of a Parquet file; raises OSError / ArrowInvalid when the file
    cannot be read."""
    metadata = pq.read_metadata(path)
    stamped = (metadata.schema.to_arrow_schema().metadata or {}).get(HASH_KEY)
    return (stamped.decode() if stamped is not None else None), metadata.num_rows


@dataclass
class ShardScan:
    """What a stage's shard directory holds, against the settings of the run now."""

    done: set[int] = field(default_factory=set)
    broken: list[tuple[Path, str]] = field(default_factory=list)
    foreign: list[Path] = field(default_factory=list)
    stray: list[Path] = field(default_factory=list)


class ShardSet:
    """The shards of one stage of a run directory."""

    def __init__(self, directory: Path, stage: str) -> None:
        self.directory = Path(directory)
        self.stage = stage

    def path(self, batch: int) -> Path:
        return self.directory / f"batch-{batch:06d}.parquet"

    def scan(
        self, settings_hash: str, expected_rows: Callable[[int], int], n_batches: int
    ) -> ShardScan:
        """Sorts the shard files into done, broken, foreign and stray (see the module)."""
        scan = ShardScan()
        if not self.directory.is_dir():
            return scan
        for path in sorted(self.directory.iterdir()):
            if path.name.startswith(".") and path.name.endswith(".tmp"):
                continue  # a writer's temporary (removed at the start of the stage)
            match = _NAME.fullmatch(path.name)
            if match is None or not path.is_file():
                scan.stray.append(path)
                continue
            batch = int(match[1])
            try:
                stamped, rows = read_stamp(path)
            except (OSError, pa.ArrowException) as error:
                scan.broken.append((path, f"unreadable ({str(error).splitlines()[0]})"))
                continue
            if stamped != settings_hash or batch >= n_batches:
                scan.foreign.append(path)
            elif rows != expected_rows(batch):
                scan.broken.append(
                    (path, f"{rows} rows where batch {batch} has {expected_rows(batch)}")
                )
            else:
                scan.done.add(batch)
        return scan

    def refuse_foreign(self, scan: ShardScan) -> None:
        """Foreign shards are never relabelled: the stage stops and says how to proceed."""
        if scan.foreign:
            names = ", ".join(p.name for p in scan.foreign[:3])
            more = f" and {len(scan.foreign) - 3} more" if len(scan.foreign) > 3 else ""
            raise SettingsMismatchError(
                f"{self.directory} holds {len(scan.foreign)} {self.stage} shard(s) made with other "
                f"settings or models ({names}{more}); they are not mixed with this run's. Run the "
                "command that made them to finish that run, delete them, or use a new run directory"
            )

    def write(self, batch: int, table: pa.Table, settings_hash: str) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        final = self.path(batch)
        with atomic_path(final) as tmp:
            pq.write_table(stamp(table, settings_hash, batch), tmp)
        return final

    def read(self, batches: Iterable[int], schema: pa.Schema) -> pa.Table:
        """The shards of ``batches``, in that order, as one table of ``schema``."""
        tables = []
        for batch in batches:
            path = self.path(batch)
            try:
                tables.append(pq.read_table(path).replace_schema_metadata(None).cast(schema))
            except (OSError, pa.ArrowException) as error:
                raise RunDirError(
                    f"{path} cannot be read ({str(error).splitlines()[0]}); run the {self.stage} "
                    "command again: it recomputes broken shards"
                ) from None
        if not tables:
            return schema.empty_table()
        return pa.concat_tables(tables)
