"""Deprecated: moved to :mod:`tradeoff.testing.tiny` (``python -m tradeoff.testing.tiny DIR``)."""

from ._moved import moved
from .testing.tiny import (
    main,
    make_demo,
    make_tokenizer,
    save_score_head_reward,
    save_sequence_classification_reward,
    save_tiny_model,
    tiny_llama_config,
)

moved("tradeoff.tiny", "tradeoff.testing.tiny")

__all__ = [
    "main",
    "make_demo",
    "make_tokenizer",
    "save_score_head_reward",
    "save_sequence_classification_reward",
    "save_tiny_model",
    "tiny_llama_config",
]

if __name__ == "__main__":
    raise SystemExit(main())
