"""Deprecated: moved to :mod:`tradeoff.app.cli`; run ``python -m tradeoff`` (or
``tradeoff-eval``)."""

from ._moved import moved
from .app.cli import build_parser, main

moved("tradeoff.cli", "tradeoff.app.cli (python -m tradeoff)")

__all__ = ["build_parser", "main"]

if __name__ == "__main__":
    raise SystemExit(main())
