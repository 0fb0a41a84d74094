"""Deprecated: moved to :mod:`tradeoff.models.rewards`."""

from ._moved import moved
from .models.rewards import implicit_reward, load_reward

moved("tradeoff.rewards", "tradeoff.models.rewards")

__all__ = ["implicit_reward", "load_reward"]
