"""Deprecated: moved to :mod:`tradeoff.stages.report`."""

from ._moved import moved
from .stages.report import family_and_temperature, write_report

moved("tradeoff.report", "tradeoff.stages.report")

__all__ = ["family_and_temperature", "write_report"]
