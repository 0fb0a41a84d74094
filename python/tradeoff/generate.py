"""Deprecated: moved to :mod:`tradeoff.generation` (work items, prompts, the HF backend) and
:mod:`tradeoff.stages.generate` (the stage)."""

from typing import Any

from ._moved import moved
from .generation import (
    GenerationSettings,
    Prompt,
    WorkItem,
    format_prompt,
    make_batches,
    stream_id,
    work_items,
)
from .generation.hf import Generator

moved("tradeoff.generate", "tradeoff.generation and tradeoff.stages.generate")

__all__ = [
    "GenerationSettings",
    "Generator",
    "Prompt",
    "WorkItem",
    "format_prompt",
    "generate_run",
    "make_batches",
    "stream_id",
    "work_items",
]


def generate_run(out: str, **options: Any) -> dict[str, Any]:
    """The first version's keyword form of :func:`tradeoff.stages.generate.generate`."""
    from .stages.generate import generate
    from .stages.settings import GenerateSection, ModelsSection, PromptsSection

    def take(*keys: str) -> dict[str, Any]:
        return {k: options.pop(k) for k in keys if k in options}

    renamed = {"stop_strings": "stop", "prompts": "source"}
    for old, new in renamed.items():
        if old in options:
            options[new] = options.pop(old)
    models = ModelsSection.from_values(take("aligned", "dtype", "device", "trust_remote_code"))
    prompts = PromptsSection.from_values(take("source", "max_prompts", "template"))
    seed = options.pop("seed")
    progress = options.pop("progress", None)
    if options.get("stop") is not None:
        options["stop"] = list(options["stop"])
    if options.get("eos_token_ids") is not None:
        options["eos_token_ids"] = list(options["eos_token_ids"])
    section = GenerateSection.from_values(
        {**options, "adaptors": list(options.get("adaptors", []))}
    )
    return generate(
        out, models=models, prompts=prompts, generate=section, seed=seed, progress=progress
    )
