"""Deprecated: moved to :mod:`tradeoff.stages.analyze`."""

from typing import Any

from ._moved import moved
from .stages.analyze import AnalysisSettings

moved("tradeoff.analysis", "tradeoff.stages.analyze")

__all__ = ["AnalysisSettings", "analyze_run"]


def analyze_run(run_dir: str, **options: Any) -> dict[str, Any]:
    """The first version's form of :func:`tradeoff.stages.analyze.analyze` (a dict)."""
    from .stages.analyze import analyze

    return analyze(run_dir, **options).to_dict()
