"""``tradeoff-eval demo``: the whole pipeline on the exact automaton world, where every estimate
can be checked against the truth.

It builds (once, cached in the output directory) an automaton world saved as transformers models,
then runs the real stages on it: generate (the paper's adaptor families, scaled to the small
vocabulary, at temperatures 0.5 to 1.5), score (prior and reward models), analyze (bootstrap
intervals, IMH, resampled corpora, correlations) with the exact expectations next to the
estimates, and the report.
"""

from __future__ import annotations

from typing import Any

from ..rundir.summary import Summary

__all__ = ["DEMO_FAMILIES", "DEMO_TEMPERATURES", "demo_config", "demo_configs", "run_demo"]

# The paper's families (top-k 50 and 30, top-p 0.90 and 0.95, typical 0.9, eta 0.0009), scaled
# to a 12-symbol vocabulary.
DEMO_FAMILIES = [
    "ancestral",
    "top_k=6",
    "top_k=4",
    "top_p=0.9",
    "top_p=0.95",
    "typical=0.9",
    "eta=0.02",
]
DEMO_TEMPERATURES = [0.5, 0.75, 1.0, 1.25, 1.5]


def demo_configs() -> list[str]:
    from ..stages.settings import grid

    return grid(DEMO_FAMILIES, DEMO_TEMPERATURES)


def demo_config(out: str = "demo-run", *, samples: int = 400, seed: int = 0) -> dict[str, Any]:
    """The demo as a run configuration (examples/demo.toml is this, written out)."""
    from ..stages.settings import AnalysisSettings

    return {
        "out": out,
        "seed": seed,
        # EOS at least 0.15 in every state: every demo configuration ends its strings.
        "world": {"kind": "automaton", "seed": 4, "min_eos": 0.15},
        "generate": {
            "families": DEMO_FAMILIES,
            "temperatures": DEMO_TEMPERATURES,
            "samples_per_prompt": samples,
            "max_new_tokens": 512,
            "batch_size": 512,
        },
        "score": {"batch_size": 256},
        "analysis": {
            key: AnalysisSettings.default(key)
            for key in ("n_steps", "n_corpora", "corpus_size", "n_resamples")
        },
    }


def run_demo(
    out: str = "demo-run", *, samples: int = 400, seed: int = 0, progress: bool | None = None
) -> dict[str, Any]:
    """Runs the demo into ``out`` (world/, run/) and returns the analysis summary."""
    from .config import config_from_dict
    from .run import run_config

    config = config_from_dict(demo_config(out, samples=samples, seed=seed), "the demo")
    return run_config(config, progress=progress)


def coverage(summary: dict[str, Any] | Summary) -> float:
    """The share of (configuration, mean) pairs whose exact value lies in the estimate's 95%
    interval."""
    if not isinstance(summary, Summary):
        summary = Summary.from_dict(summary)
    hits = total = 0
    for c in summary.configs:
        for key in ("mean_reward", "mean_logp_prior", "mean_logp_aligned"):
            estimate = c.mean(key)
            if c.exact is not None and estimate.bounded:
                total += 1
                hits += estimate.low <= c.exact[key] <= estimate.high  # type: ignore[operator]
    return hits / total if total else float("nan")
