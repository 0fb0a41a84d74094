"""Deprecated: moved to :mod:`tradeoff.rundir`."""

from ._moved import moved
from .errors import SettingsMismatchError
from .rundir import SAMPLES_SCHEMA, RunDir, atomic_path, atomic_write_bytes

moved("tradeoff.store", "tradeoff.rundir")

__all__ = ["RunDir", "SAMPLES_SCHEMA", "SettingsMismatchError", "atomic_path", "atomic_write_bytes"]
