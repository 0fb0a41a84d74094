"""Work items and their random streams.

A run's work is every (prompt, configuration, sample) in one canonical order, cut into batches
of ``batch_size`` consecutive items. The plan is arithmetic (:class:`WorkPlan`): batch k is
computed when it is needed, never a list of every item, so a run of a billion strings plans as
fast as one of ten. Batch k is the same in every run with the same settings, which makes resumed
and multi-process runs reproduce a single uninterrupted run exactly.

Row r's token at step t is a pure function of ``(seed, stream, t)`` with the stream derived from
``(prompt id, sample index, configuration)`` (:func:`stream_id`), so a string does not depend on
the batch it was in, the batch size, the process that ran it, or a resume point.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import ConfigError, check_int

__all__ = ["Prompt", "WorkItem", "WorkPlan", "make_batches", "stream_id", "work_items"]


@dataclass(frozen=True)
class Prompt:
    """A prompt and its id (the id keys the random streams; keep it stable across runs)."""

    id: str
    text: str


@dataclass(frozen=True, order=True)
class WorkItem:
    """One string to generate: indices into the prompts, configurations and samples."""

    prompt_index: int
    config_index: int
    sample_index: int


@dataclass(frozen=True)
class WorkPlan:
    """Every (prompt, configuration, sample) in the canonical order — prompt, then
    configuration, then sample — cut into batches of ``batch_size``."""

    n_prompts: int
    n_configs: int
    samples_per_prompt: int
    batch_size: int

    def __post_init__(self) -> None:
        check_int("samples_per_prompt", self.samples_per_prompt, minimum=1)
        check_int("batch_size", self.batch_size, minimum=1)
        if self.n_prompts < 1 or self.n_configs < 1:
            raise ConfigError("a run needs at least one prompt and one configuration")

    @property
    def n_items(self) -> int:
        return self.n_prompts * self.n_configs * self.samples_per_prompt

    @property
    def n_batches(self) -> int:
        return -(-self.n_items // self.batch_size)

    def item(self, index: int) -> WorkItem:
        prompt, rest = divmod(index, self.n_configs * self.samples_per_prompt)
        config, sample = divmod(rest, self.samples_per_prompt)
        return WorkItem(prompt, config, sample)

    def batch_rows(self, batch: int) -> int:
        """How many items batch ``batch`` holds (the last may be short)."""
        return min(self.batch_size, self.n_items - batch * self.batch_size)

    def batch(self, batch: int) -> list[WorkItem]:
        if not 0 <= batch < self.n_batches:
            raise IndexError(f"batch {batch} of {self.n_batches}")
        start = batch * self.batch_size
        return [self.item(i) for i in range(start, start + self.batch_rows(batch))]


def work_items(n_prompts: int, samples_per_prompt: int, n_configs: int) -> list[WorkItem]:
    """Every (prompt, configuration, sample) in the canonical order, as a list (small runs and
    tests; the stage uses :class:`WorkPlan`)."""
    return [
        WorkItem(p, c, s)
        for p in range(n_prompts)
        for c in range(n_configs)
        for s in range(samples_per_prompt)
    ]


def make_batches(items: Sequence[WorkItem], batch_size: int) -> list[list[WorkItem]]:
    """Consecutive batches of ``batch_size`` items (the last may be shorter)."""
    check_int("batch_size", batch_size, minimum=1)
    return [list(items[i : i + batch_size]) for i in range(0, len(items), batch_size)]


def stream_id(prompt_id: str, sample_index: int, config: str) -> int:
    """The 64-bit random stream of one string, from its prompt id, sample index and configuration
    (a hash, so it does not depend on positions in any list)."""
    key = f"{prompt_id}\x1f{sample_index}\x1f{config}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little")
