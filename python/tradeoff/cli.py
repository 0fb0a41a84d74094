"""``tradeoff-eval``: the command line.

The pipeline's commands (demo, toy, generate, score, analyze, report, run, recommend) arrive with
the issues that build them; this release ships the adaptor engine, usable from Python.
"""

from __future__ import annotations

import argparse
import sys

from . import __version__

DESCRIPTION = """\
Measure, explain and choose the probability-quality trade-off of aligned language models.

This release provides the Rust adaptor engine (temperature, top-k, top-p, min-p, typical,
epsilon, eta, top-a, top-n-sigma) through the Python API:

  import tradeoff
  chain = tradeoff.AdaptorChain.parse("temperature=0.7,top_p=0.9")
  chain.apply(logits); chain.log_probs(logits)
  tradeoff.sample(logits, chain, seed=0, streams=..., steps=...)
  tradeoff.score_tokens(logits, targets, chain)

See README.md and examples/adaptors_example.py.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tradeoff-eval",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"tradeoff {__version__}")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    parser.parse_args(argv)
    parser.print_help(sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
