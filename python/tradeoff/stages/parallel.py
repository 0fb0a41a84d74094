"""What every sharded stage shares: the process group under torchrun, progress bars, and the
loop that computes a stage's missing shards.

Under torchrun (``WORLD_SIZE > 1``) batch k belongs to rank k mod N; every rank writes the shards
of its own batches, and rank 0 merges. Because batches are fixed by the settings, a resumed run
and a multi-process run compute exactly the batches of one uninterrupted process.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from ..errors import TradeoffWarning
from ..rundir import ShardSet

__all__ = ["Ranks", "ShardRun", "progress_bar", "ranks", "run_shards"]


@dataclass(frozen=True)
class Ranks:
    """This process's place in the process group."""

    rank: int
    world: int
    local_rank: int

    def barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()

    def device(self, device: str) -> str:
        """Under torchrun each rank takes its own GPU (``cuda`` -> ``cuda:LOCAL_RANK``)."""
        if self.world > 1 and device in ("cuda", "auto"):
            import torch

            if device == "cuda" or torch.cuda.is_available():
                return f"cuda:{self.local_rank}"
        return device


def ranks() -> Ranks:
    """(rank, world size) from torch.distributed under torchrun (initialised here, gloo on CPU
    and NCCL on CUDA), else a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Ranks(0, 1, 0)
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    local = int(os.environ.get("LOCAL_RANK", dist.get_rank()))
    return Ranks(dist.get_rank(), dist.get_world_size(), local)


def progress_bar(total: int, description: str, unit: str, show: bool | None) -> Any:
    """A tqdm bar on stderr, shown when stderr is a terminal (or when ``show`` says so)."""
    from tqdm import tqdm

    visible = sys.stderr.isatty() if show is None else show
    return tqdm(total=total, desc=description, unit=unit, disable=not visible, file=sys.stderr)


@dataclass
class ShardRun:
    """What :func:`run_shards` did on this rank."""

    n_batches: int
    resumed: int
    run_here: int
    rows_here: int
    seconds: float


def _rows_of_rank(
    group: Ranks, n_batches: int, expected_rows: Callable[[int], int], done: set[int]
) -> int:
    """Rows of this rank's missing batches, without listing them (a run may have 10^8)."""
    if n_batches == 0:
        return 0
    owned = len(range(group.rank, n_batches, group.world))
    last = n_batches - 1
    last_owned = last % group.world == group.rank
    total = (owned - last_owned) * expected_rows(0) + last_owned * expected_rows(last)
    return total - sum(expected_rows(k) for k in done if k % group.world == group.rank)


def run_shards(
    shards: ShardSet,
    *,
    settings_hash: str,
    n_batches: int,
    expected_rows: Callable[[int], int],
    compute: Callable[[int], pa.Table],
    group: Ranks,
    description: str,
    unit: str = "str",
    show: bool | None = None,
    postfix: Callable[[pa.Table, float], dict[str, Any]] | None = None,
) -> ShardRun:
    """Computes this rank's missing shards. Every rank scans the shards (refusing foreign ones,
    see :meth:`ShardSet.scan`); rank 0 removes the broken ones and names the stray files; then
    each rank computes its own missing batches, in order, with a progress bar. Ends with a
    barrier, so that rank 0 can merge."""
    scan = shards.scan(settings_hash, expected_rows, n_batches)
    shards.refuse_foreign(scan)
    if group.rank == 0:
        for path, reason in scan.broken:
            warnings.warn(
                f"{path} is broken ({reason}); computing it again", TradeoffWarning, stacklevel=2
            )
            path.unlink(missing_ok=True)
        for path in scan.stray:
            warnings.warn(
                f"ignoring {path}: not a {shards.stage} shard (batch-NNNNNN.parquet)",
                TradeoffWarning,
                stacklevel=2,
            )
    group.barrier()
    label = f"{description} (rank {group.rank})" if group.world > 1 else description
    bar = progress_bar(_rows_of_rank(group, n_batches, expected_rows, scan.done), label, unit, show)
    start = time.perf_counter()
    run_here = rows = 0
    for k in range(group.rank, n_batches, group.world):
        if k in scan.done:
            continue
        table = compute(k)
        shards.write(k, table, settings_hash)
        run_here += 1
        rows += table.num_rows
        bar.update(table.num_rows)
        if postfix is not None:
            bar.set_postfix(postfix(table, time.perf_counter() - start))
    bar.close()
    seconds = time.perf_counter() - start
    group.barrier()
    return ShardRun(n_batches, len(scan.done), run_here, rows, seconds)
