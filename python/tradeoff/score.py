"""Deprecated: moved to :mod:`tradeoff.models.scoring` (teacher-forced scoring) and
:mod:`tradeoff.stages.score` (the stage, which now writes scores.parquet)."""

from ._moved import moved
from .models.scoring import (
    Continuation,
    ScoredString,
    clamped_sum,
    continuation_ids,
    same_vocabulary,
    score_continuations,
)

moved("tradeoff.score", "tradeoff.models.scoring and tradeoff.stages.score")

__all__ = [
    "Continuation",
    "ScoredString",
    "clamped_sum",
    "continuation_ids",
    "same_vocabulary",
    "score_continuations",
]
