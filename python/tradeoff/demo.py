"""Deprecated: moved to :mod:`tradeoff.app.demo`."""

from ._moved import moved
from .app.demo import (
    DEMO_FAMILIES,
    DEMO_TEMPERATURES,
    coverage,
    demo_config,
    demo_configs,
    run_demo,
)

moved("tradeoff.demo", "tradeoff.app.demo")

__all__ = [
    "DEMO_FAMILIES",
    "DEMO_TEMPERATURES",
    "coverage",
    "demo_config",
    "demo_configs",
    "run_demo",
]
