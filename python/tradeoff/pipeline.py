"""Deprecated: moved to :mod:`tradeoff.app` (config, presets, run)."""

from ._moved import moved
from .app.config import ConfigError, RunConfig, config_from_dict, load_config, to_toml
from .app.presets import PRESETS, preset
from .app.run import plan, run_config
from .stages.settings import grid

moved("tradeoff.pipeline", "tradeoff.app.config, tradeoff.app.presets and tradeoff.app.run")

__all__ = [
    "ConfigError",
    "PRESETS",
    "RunConfig",
    "config_from_dict",
    "grid",
    "load_config",
    "plan",
    "preset",
    "run_config",
    "to_toml",
]
