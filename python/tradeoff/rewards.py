"""Reward sources, each a callable ``f(prompts, texts) -> array of floats``:

(a) a sequence-classification model with a scalar head (``AutoModelForSequenceClassification``,
    one label);
(b) a score-head model in the safe-rlhf format (the paper's RLHF reward model): a causal-LM
    backbone plus a linear ``score_head``; the reward is the score at the last non-padding token
    (safe-rlhf's "end score");
(c) the implicit DPO reward ``beta * (log pi - log p)`` (``implicit:BETA``; computed from the
    scores, see :func:`implicit_reward`);
(d) any Python function, ``python:module:function``, called with the prompts and texts.

The text a reward model reads is ``template`` with ``{prompt}`` and ``{response}`` filled in, or the
tokenizer's chat template (``template="chat"``: a user turn and an assistant turn).
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["implicit_reward", "load_reward"]

RewardFn = Callable[[Sequence[str], Sequence[str]], np.ndarray]


def implicit_reward(
    source: str, log_aligned: Sequence[float], log_prior: Sequence[float]
) -> np.ndarray:
    """``beta * (log pi - log p)`` for ``source = "implicit:BETA"``."""
    try:
        beta = float(source.split(":", 1)[1])
    except (IndexError, ValueError):
        raise ValueError(f"`reward` implicit:BETA needs a number, got {source!r}") from None
    if not beta > 0:
        raise ValueError(f"`reward` implicit:BETA needs BETA > 0, got {beta}")
    return beta * (
        np.asarray(log_aligned, dtype=np.float64) - np.asarray(log_prior, dtype=np.float64)
    )


def _python_reward(spec: str) -> RewardFn:
    target = spec.split(":", 1)[1]
    module_name, _, function_name = target.partition(":")
    if not module_name or not function_name:
        raise ValueError(f"`reward` must be python:module:function, got {spec!r}")
    try:
        function = getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError) as error:
        raise ValueError(f"`reward` {spec!r}: cannot import it ({error})") from None

    def reward(prompts: Sequence[str], texts: Sequence[str]) -> np.ndarray:
        values = np.asarray(function(list(prompts), list(texts)), dtype=np.float64)
        if values.shape != (len(texts),):
            raise ValueError(
                f"`reward` {spec!r} returned shape {values.shape}; "
                "it must return one float per text"
            )
        if not np.isfinite(values).all():
            raise ValueError(f"`reward` {spec!r} returned a non-finite value")
        return values

    reward.identity = {"name": spec}  # type: ignore[attr-defined]
    return reward


def _format(tokenizer: Any, template: str, prompt: str, response: str) -> str:
    if template == "chat":
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}],
            tokenize=False,
        )
    return template.replace("{prompt}", prompt).replace("{response}", response)


def _architectures(path: Path) -> list[str]:
    config = path / "config.json"
    if not config.exists():
        return []
    return json.loads(config.read_text()).get("architectures") or []


def _score_head_state(path: Path) -> dict[str, torch.Tensor] | None:
    """The ``score_head.*`` tensors of a safe-rlhf score model, or None if it has none."""
    tensors: dict[str, torch.Tensor] = {}
    for file in sorted(path.glob("*.safetensors")):
        from safetensors import safe_open

        with safe_open(str(file), framework="pt") as f:
            for key in f.keys():
                if key.startswith("score_head."):
                    tensors[key.removeprefix("score_head.")] = f.get_tensor(key)
    if not tensors:
        for file in sorted(path.glob("pytorch_model*.bin")):
            state = torch.load(file, map_location="cpu", weights_only=True)
            tensors.update(
                {
                    k.removeprefix("score_head."): v
                    for k, v in state.items()
                    if k.startswith("score_head.")
                }
            )
    return tensors or None


def load_reward(
    source: str,
    *,
    template: str = "{prompt}{response}",
    max_length: int | None = None,
    dtype: str = "float32",
    device: str = "cpu",
    trust_remote_code: bool = False,
    batch_size: int = 8,
) -> RewardFn:
    """A reward function from a source: a model directory or hub id ((a) or (b), told apart by
    the checkpoint: a ``score_head`` makes it (b)), or ``python:module:function``."""
    if source.startswith("python:"):
        return _python_reward(source)
    if source.startswith("implicit:"):
        raise ValueError("`reward` implicit:BETA is computed from the scores, not loaded")
    from transformers import AutoModel, AutoModelForSequenceClassification

    from .models import (
        _from_pretrained,
        load_tokenizer,
        model_identity,
        resolve_device,
        resolve_dtype,
    )

    if "{response}" not in template and template != "chat":
        raise ValueError(
            f"`reward_template` must contain '{{response}}' or be 'chat', got {template!r}"
        )
    torch_dtype, torch_device = resolve_dtype(dtype), resolve_device(device)
    path = Path(source)
    tokenizer = load_tokenizer(source, trust_remote_code=trust_remote_code)
    score_head = _score_head_state(path) if path.is_dir() else None
    if score_head is not None:
        backbone = _from_pretrained(
            AutoModel,
            source,
            "reward model",
            dtype=torch_dtype,
            trust_remote_code=trust_remote_code,
        )
        weight = score_head["weight"]
        head = torch.nn.Linear(weight.shape[1], weight.shape[0], bias="bias" in score_head)
        head.load_state_dict(score_head)
        backbone.to(torch_device).eval()
        head.to(device=torch_device, dtype=torch_dtype).eval()
        kind = "score_head"
        model = backbone
    else:
        model = _from_pretrained(
            AutoModelForSequenceClassification,
            source,
            "reward model",
            dtype=torch_dtype,
            trust_remote_code=trust_remote_code,
        )
        if model.config.num_labels != 1:
            raise ValueError(
                f"reward model {source!r} has {model.config.num_labels} labels; a reward model "
                "needs a scalar head (num_labels = 1)"
            )
        if model.config.pad_token_id is None:
            model.config.pad_token_id = tokenizer.pad_token_id
        model.to(torch_device).eval()
        head = None
        kind = "sequence_classification"

    @torch.inference_mode()
    def reward(prompts: Sequence[str], texts: Sequence[str]) -> np.ndarray:
        inputs = [_format(tokenizer, template, p, t) for p, t in zip(prompts, texts, strict=True)]
        out = np.empty(len(inputs))
        order = sorted(range(len(inputs)), key=lambda i: len(inputs[i]))
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            encoded = tokenizer(
                [inputs[i] for i in batch],
                return_tensors="pt",
                padding=True,
                truncation=max_length is not None,
                max_length=max_length,
            ).to(torch_device)
            if head is None:
                scores = model(**encoded).logits[:, 0]
            else:
                hidden = model(**encoded).last_hidden_state
                # The end score: the last non-padding token of each row (right padding).
                last = encoded["attention_mask"].sum(-1) - 1
                if tokenizer.padding_side == "left":
                    last = torch.full_like(last, hidden.shape[1] - 1)
                scores = head(hidden[torch.arange(hidden.shape[0]), last])[:, 0]
            out[batch] = scores.float().cpu().numpy()
        return out

    reward.identity = {**model_identity(source, model, torch_dtype), "reward_kind": kind}  # type: ignore[attr-defined]
    return reward
