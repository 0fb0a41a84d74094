"""Deprecated: moved to :mod:`tradeoff.generation.prompts`."""

from ._moved import moved
from .generation.prompts import first_human_turn, load_hh_rlhf, load_prompts

moved("tradeoff.prompts", "tradeoff.generation.prompts")

__all__ = ["first_human_turn", "load_hh_rlhf", "load_prompts"]
