"""Deprecated: moved to :mod:`tradeoff.stages.recommend`."""

from ._moved import moved
from .stages.recommend import frontier, recommend

moved("tradeoff.recommend", "tradeoff.stages.recommend")

__all__ = ["frontier", "recommend"]
