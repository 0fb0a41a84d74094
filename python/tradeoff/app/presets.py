"""The paper's two settings as presets: data over the configuration sections (a preset is the
dict a TOML file would hold; ``run --preset NAME --write-config FILE`` writes it out to edit)."""

from __future__ import annotations

import copy
from typing import Any

from ..errors import ConfigError
from ..stages.settings import AnalysisSettings
from .config import RunConfig, apply_overrides, config_from_dict

__all__ = ["PAPER_FAMILIES", "PAPER_TEMPERATURES", "PRESETS", "preset", "preset_dict"]

PAPER_FAMILIES = [
    "ancestral",
    "top_k=50",
    "top_k=30",
    "top_p=0.9",
    "top_p=0.95",
    "typical=0.9",
    "eta=0.0009",
]
PAPER_TEMPERATURES = [0.5, 0.75, 1.0, 1.25, 1.5]


def _paper(aligned: str, prior: str, reward: str, template: str, out: str) -> dict[str, Any]:
    return {
        "out": out,
        "seed": 0,
        "models": {
            "aligned": aligned,
            "prior": prior,
            "reward": reward,
            "dtype": "float16",
            "device": "auto",
            "trust_remote_code": False,
        },
        "prompts": {
            # The dataset's directory: the four subsets' test files, as load_dataset reads them.
            "source": "hh-rlhf:data/hh-rlhf",
            "max_prompts": 1000,
            "template": template,
        },
        "generate": {
            "families": PAPER_FAMILIES,
            "temperatures": PAPER_TEMPERATURES,
            "samples_per_prompt": 2,
            "max_new_tokens": 256,
            # 64 strings in flight, within 16,384 tokens of KV cache (8 GiB for a 7B model in
            # float16): fits a 40 GB GPU beside the weights; raise both on larger ones.
            "batch_size": 64,
            "max_batch_tokens": 16384,
            "shard_size": 256,
        },
        "score": {
            "prior_context": "none",
            "reward_template": "Human: {prompt} Assistant: {response}",
            "reward_max_length": 256,
            "clamp_token_nll": 25.0,
            "batch_size": 32,
            "max_batch_tokens": 4096,
        },
        # Written out in full, so that the TOML a preset writes shows every size.
        "analysis": {
            key: AnalysisSettings.default(key)
            for key in ("n_steps", "n_corpora", "corpus_size", "n_resamples")
        },
    }


PRESETS: dict[str, dict[str, Any]] = {
    # The paper's RLHF setting (PAPER.md): Llama-2-7b prior, the safe-rlhf harmless model, the
    # safe-rlhf reward model (score head, end score). The paper caps 256 tokens including the
    # prompt; here 256 new tokens bound it.
    "paper-rlhf": _paper(
        "ethz-spylab/rlhf-7b-harmless",
        "meta-llama/Llama-2-7b-hf",
        "ethz-spylab/reward_model",
        "Human: {prompt} Assistant:",
        "runs/paper-rlhf",
    ),
    # The paper's DPO setting: Mistral-7B-v0.2 prior, Janus DPO, the Janus reward model (the
    # implicit reward, implicit:BETA, is the alternative).
    "paper-dpo": _paper(
        "kaist-ai/janus-dpo-7b",
        "mistral-community/Mistral-7B-v0.2",
        "kaist-ai/janus-rm-7b",
        "[INST] Human: {prompt} Assistant:[/INST]",
        "runs/paper-dpo",
    ),
}


# What the authors' semantics change in the presets (before the user's --set overrides): the
# DPO figure's reward is log p - log pi (implicit:1 with the authors' sign).
AUTHORS_CHANGES: dict[str, dict[str, Any]] = {
    "paper-rlhf": {},
    "paper-dpo": {"models": {"reward": "implicit:1"}},
}


def preset_dict(name: str, overrides: list[str] = ()) -> dict[str, Any]:  # type: ignore[assignment]
    """A preset's dict, with the authors' changes when its semantics (or an override's) is
    ``authors``, then the ``--set`` overrides."""
    if name not in PRESETS:
        raise ConfigError(f"`preset` must be one of {', '.join(sorted(PRESETS))}; got {name!r}")
    raw = copy.deepcopy(PRESETS[name])
    if apply_overrides(raw, list(overrides)).get("semantics") == "authors":
        for section, values in AUTHORS_CHANGES[name].items():
            raw.setdefault(section, {}).update(values)
    return apply_overrides(raw, list(overrides))


def preset(name: str, overrides: list[str] = ()) -> RunConfig:  # type: ignore[assignment]
    """A preset as a validated configuration."""
    return config_from_dict(preset_dict(name, overrides), f"preset {name}")
