"""The stages of a run: generate, score, analyze, report, recommend. Each reads the run
directory and writes only its own files; resume, shards and torchrun live here. Their settings
are the sections of :mod:`.settings`. Importing this package imports no stage (a stage may need
torch); import the stage's module."""

from .settings import (
    SECTIONS,
    AnalysisSettings,
    GenerateSection,
    ModelsSection,
    PromptsSection,
    RunSection,
    ScoreSection,
    Section,
    WorldSection,
    grid,
)

__all__ = [
    "AnalysisSettings",
    "GenerateSection",
    "ModelsSection",
    "PromptsSection",
    "RunSection",
    "SECTIONS",
    "ScoreSection",
    "Section",
    "WorldSection",
    "grid",
]
