"""``tradeoff-eval demo``: the whole pipeline on the exact automaton world, where every estimate
can be checked against the truth.

It builds (once, cached in the output directory) an automaton world saved as transformers models,
then runs the real stages on it: generate (the paper's adaptor families, scaled to the small
vocabulary, at temperatures 0.5 to 1.5), score (prior and reward models), analyze (bootstrap
intervals, IMH, resampled corpora, correlations) with the exact expectations next to the
estimates, and the report.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

__all__ = ["DEMO_FAMILIES", "DEMO_TEMPERATURES", "demo_configs", "run_demo"]

# The paper's families (top-k 50 and 30, top-p 0.90 and 0.95, typical 0.9, eta 0.0009), scaled
# to a 12-symbol vocabulary.
DEMO_FAMILIES = ["ancestral", "top_k=6", "top_k=4", "top_p=0.9", "top_p=0.95", "typical=0.9",
                 "eta=0.02"]  # fmt: skip
DEMO_TEMPERATURES = [0.5, 0.75, 1.0, 1.25, 1.5]


def demo_configs() -> list[str]:
    configs = []
    for family in DEMO_FAMILIES:
        for t in DEMO_TEMPERATURES:
            parts = ([] if t == 1.0 else [f"temperature={t}"]) + (
                [] if family == "ancestral" else [family]
            )
            configs.append(",".join(parts) or "ancestral")
    return configs


def run_demo(
    out: str = "demo-run",
    *,
    samples: int = 400,
    seed: int = 0,
    world_seed: int = 4,
    n_steps: int = 200_000,
    n_corpora: int = 2_000,
    corpus_size: int = 200_000,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Runs the demo into ``out`` (world/, run/) and returns the analysis summary."""
    from .analysis import AnalysisSettings, analyze_run
    from .generate import generate_run
    from .report import write_report
    from .score import score_run
    from .worlds.automaton import AutomatonSettings
    from .worlds.automaton_hf import exact_for, save_world

    start = time.perf_counter()
    root = Path(out)
    world = root / "world"
    # EOS at least 0.15 in every state: every demo configuration ends its strings.
    settings = AutomatonSettings(seed=world_seed, min_eos=0.15)
    info = world / "world.json"
    if not info.exists() or json.loads(info.read_text())["settings"] != settings.__dict__:
        save_world(world, settings)
    prompts = root / "prompts.jsonl"
    root.mkdir(parents=True, exist_ok=True)
    prompts.write_text(json.dumps({"id": "demo", "prompt": ""}) + "\n", encoding="utf-8")
    run = root / "run"
    generate_run(
        str(run),
        aligned=str(world / "aligned"),
        prompts=str(prompts),
        adaptors=demo_configs(),
        samples_per_prompt=samples,
        max_new_tokens=512,
        seed=seed,
        batch_size=512,
        progress=progress,
    )
    score_run(str(run), prior=str(world / "prior"), reward=str(world / "reward"),
              batch_size=256, progress=progress)  # fmt: skip

    def exact(config: str) -> dict[str, Any] | None:
        try:
            return exact_for(world, config)
        except ValueError:  # strings need not end under this configuration: no finite answer
            return None

    summary = analyze_run(
        str(run),
        settings=AnalysisSettings(
            n_steps=n_steps, n_corpora=n_corpora, corpus_size=corpus_size, seed=seed
        ),  # fmt: skip
        exact=exact,
    )
    summary["report"] = str(write_report(str(run)))
    summary["seconds"] = time.perf_counter() - start
    return summary


def coverage(summary: dict[str, Any]) -> float:
    """The share of (configuration, mean) pairs whose exact value lies in the estimate's 95%
    interval."""
    hits = total = 0
    for c in summary["configs"]:
        for key in ("mean_reward", "mean_logp_prior", "mean_logp_aligned"):
            if "exact" in c and c[key]["low"] is not None:
                total += 1
                hits += c[key]["low"] <= c["exact"][key] <= c[key]["high"]
    return hits / total if total else float("nan")
