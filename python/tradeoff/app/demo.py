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
from ..worlds.automaton import PRESETS

__all__ = [
    "DEMO_FAMILIES",
    "DEMO_TEMPERATURES",
    "DEMO_WORLDS",
    "demo_config",
    "demo_configs",
    "run_demo",
]

# The paper's families (top-k 50 and 30, top-p 0.90 and 0.95, typical 0.9, eta 0.0009), scaled
# to a 12-symbol vocabulary. Typical's mass is 0.85, not 0.9: at temperature 0.5 the reversal
# world's next-token distributions are so sharp that typical=0.9 keeps exactly top_p=0.9's tokens
# in every state (two families would be one); 0.85 keeps a different set from every other family
# at every temperature (tests/test_automaton_reversal.py checks it against transformers too).
DEMO_FAMILIES = [
    "ancestral",
    "top_k=6",
    "top_k=4",
    "top_p=0.9",
    "top_p=0.95",
    "typical=0.85",
    "eta=0.02",
]
DEMO_TEMPERATURES = [0.5, 0.75, 1.0, 1.25, 1.5]
# The worlds the demo runs on (tradeoff.worlds.automaton.PRESETS): "reversal" (the default) shows
# the paper's reversal, a positive string-level and a negative corpus-level correlation;
# "independent" (the first demo world) has a reward drawn independently of the prior.
DEMO_WORLDS = tuple(PRESETS)
DEMO_BEST_OF_N = [2, 4, 8]


def demo_configs() -> list[str]:
    from ..stages.settings import grid

    return grid(DEMO_FAMILIES, DEMO_TEMPERATURES)


def demo_config(
    out: str = "demo-run", *, samples: int = 400, seed: int = 0, world: str = "reversal"
) -> dict[str, Any]:
    """The demo as a run configuration (examples/demo.toml is this, written out); ``world`` is
    one of :data:`DEMO_WORLDS`."""
    from ..errors import ConfigError
    from ..stages.settings import AnalysisSettings

    if world not in DEMO_WORLDS:
        raise ConfigError(f"`world` must be one of {', '.join(DEMO_WORLDS)}; got {world!r}")
    return {
        "out": out,
        "seed": seed,
        # The preset holds the world's seed and shape; its least EOS probability per state
        # (0.2 and 0.15) makes every demo configuration end its strings.
        "world": {"kind": "automaton", "preset": world},
        "generate": {
            "families": DEMO_FAMILIES,
            "temperatures": DEMO_TEMPERATURES,
            "samples_per_prompt": samples,
            "max_new_tokens": 512,
            "batch_size": 512,
        },
        "score": {"batch_size": 256},
        "analysis": {
            **{
                key: AnalysisSettings.default(key)
                for key in ("n_steps", "n_corpora", "corpus_size", "n_resamples")
            },
            # Best-of-n from the ancestral strings, on the same axes as the adaptors.
            "best_of_n": {"base": "ancestral", "n": DEMO_BEST_OF_N},
        },
    }


def run_demo(
    out: str = "demo-run",
    *,
    samples: int = 400,
    seed: int = 0,
    world: str = "reversal",
    progress: bool | None = None,
) -> dict[str, Any]:
    """Runs the demo into ``out`` (world/, run/) on ``world`` (one of :data:`DEMO_WORLDS`) and
    returns the analysis summary."""
    from .config import config_from_dict
    from .run import run_config

    config = config_from_dict(demo_config(out, samples=samples, seed=seed, world=world), "the demo")
    summary = run_config(config, progress=progress)
    summary["exact_correlations"] = exact_correlations(config.out / "world", summary)
    return summary


def exact_correlations(world: Any, summary: dict[str, Any]) -> dict[str, Any]:
    """The exact counterparts of the summary's pooled correlations, for the world saved in
    ``world``: the pooled string-level Pearson correlation of (log p, reward) (configurations
    weighted by their kept strings, as pooling does), Simpson's between-configuration one (of
    the adapted models' means) and the corpus-level one's limit (of the IMH targets' means, each
    configuration's corpora in equal numbers), over the summary's configurations."""
    from ..worlds.automaton_hf import load_world
    from ..worlds.automaton_moments import exact_correlations as exact

    settings, prior, reward = load_world(world)
    configs = summary["configs"]
    return exact(
        prior,
        reward,
        settings.beta,
        [c["config"] for c in configs],
        weights=[c["n_strings"] for c in configs],
    )


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
