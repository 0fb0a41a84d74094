"""Timing shared by the benchmark scripts."""

from __future__ import annotations

import statistics
import time


def median_seconds(fn, repeats: int, warmup: int = 1) -> float:
    """The median wall time of ``fn()`` over ``repeats`` calls, after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)
