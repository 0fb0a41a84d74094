"""Reward sources behind one registry. A reward spec is a string:

- a model directory or hub id: a reward model, its format told apart by the checkpoint
  (:data:`MODEL_FORMATS`): (a) a sequence classifier with one label
  (``AutoModelForSequenceClassification``); (b) the safe-rlhf score model (the paper's RLHF reward
  model): a causal-LM backbone under ``model.`` plus a linear ``score_head``, the reward being the
  score at the last non-padding token (safe-rlhf's "end score");
- ``implicit:BETA``: the implicit DPO reward ``BETA * (log pi - log p)``, computed from the scores
  (:func:`implicit_reward`), so it needs the prior scored too;
- ``python:module:function``: ``module.function(prompts, texts)`` returning one float per text.
  This imports and runs that module's code; the module must be importable (``PYTHONPATH``).

:func:`parse_reward` is the one parser of these prefixes; :func:`check_reward` checks a spec
before any work; :func:`load_reward` gives a callable ``f(prompts, texts) -> array``. The text a
reward model reads is ``template`` with ``{prompt}`` and ``{response}`` filled in, or the
tokenizer's chat template (``template="chat"``: a user turn and an assistant turn).

To add a reward source: a new prefix is a :class:`RewardKind` in :data:`REWARD_KINDS`; a new
checkpoint format of reward models is a :class:`ModelFormat` in :data:`MODEL_FORMATS`.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, ModelError
from .loading import (
    check_model_files,
    from_pretrained,
    load_tokenizer,
    local_model_dir,
    model_identity,
    resolve_device,
    resolve_dtype,
)

__all__ = [
    "MODEL_FORMATS",
    "REWARD_KINDS",
    "ModelFormat",
    "RewardKind",
    "RewardSpec",
    "check_reward",
    "check_reward_template",
    "implicit_reward",
    "load_reward",
    "parse_reward",
]

RewardFn = Callable[[Sequence[str], Sequence[str]], np.ndarray]


@dataclass(frozen=True)
class RewardSpec:
    """A parsed reward spec: its kind (a key of :data:`REWARD_KINDS`) and its argument."""

    source: str
    kind: str
    argument: str

    @property
    def computed(self) -> bool:
        """Computed from other scores (no model of its own to run over the strings)."""
        return REWARD_KINDS[self.kind].computed

    @property
    def beta(self) -> float:
        """BETA of ``implicit:BETA``."""
        return float(self.argument)


class RewardKind:
    """A kind of reward spec, told by its prefix (``None``: the default, a model)."""

    prefix: str | None = None
    computed = False

    def parse(self, source: str) -> RewardSpec:
        raise NotImplementedError

    def check(self, spec: RewardSpec) -> None:
        """Everything that can be checked before work (files, imports, ranges)."""

    def identity(self, spec: RewardSpec) -> dict[str, Any]:
        return {"name": spec.source}


class _ModelKind(RewardKind):
    def parse(self, source: str) -> RewardSpec:
        return RewardSpec(source, "model", source)

    def check(self, spec: RewardSpec) -> None:
        check_model_files(spec.source, "reward model")

    def identity(self, spec: RewardSpec) -> dict[str, Any]:
        return model_identity(spec.source)


class _ImplicitKind(RewardKind):
    prefix = "implicit:"
    computed = True

    def parse(self, source: str) -> RewardSpec:
        text = source[len(self.prefix) :]
        try:
            beta = float(text)
        except ValueError:
            raise ConfigError(f"`reward` implicit:BETA needs a number, got {source!r}") from None
        if not (math.isfinite(beta) and beta > 0):
            raise ConfigError(f"`reward` implicit:BETA needs BETA > 0, got {text}")
        return RewardSpec(source, "implicit", text)


class _PythonKind(RewardKind):
    prefix = "python:"

    def parse(self, source: str) -> RewardSpec:
        module, _, function = source[len(self.prefix) :].partition(":")
        if not module or not function:
            raise ConfigError(f"`reward` must be python:module:function, got {source!r}")
        return RewardSpec(source, "python", source[len(self.prefix) :])

    def function(self, spec: RewardSpec) -> Callable[..., Any]:
        module_name, _, function_name = spec.argument.partition(":")
        try:
            function = getattr(importlib.import_module(module_name), function_name)
        except (ImportError, AttributeError) as error:
            raise ConfigError(
                f"`reward` {spec.source!r}: cannot import it ({error}); the module must be "
                "importable (on PYTHONPATH)"
            ) from None
        if not callable(function):
            raise ConfigError(f"`reward` {spec.source!r} is not a function")
        return function

    def check(self, spec: RewardSpec) -> None:
        self.function(spec)


REWARD_KINDS: dict[str, RewardKind] = {
    "model": _ModelKind(),
    "implicit": _ImplicitKind(),
    "python": _PythonKind(),
}


def parse_reward(source: Any) -> RewardSpec:
    """The one parser of reward specs (see the module); a bad spec is a ConfigError."""
    if not isinstance(source, str) or not source.strip():
        raise ConfigError(
            f"`reward` must be a model, implicit:BETA or python:module:function; got {source!r}"
        )
    for kind in REWARD_KINDS.values():
        if kind.prefix is not None and source.startswith(kind.prefix):
            return kind.parse(source)
    return REWARD_KINDS["model"].parse(source)


def check_reward_template(template: Any) -> str:
    if not isinstance(template, str) or ("{response}" not in template and template != "chat"):
        raise ConfigError(
            f"`reward_template` must contain '{{response}}' or be 'chat', got {template!r}"
        )
    return template


def check_reward(source: str, template: str = "{prompt}{response}") -> RewardSpec:
    """Parses and checks a reward spec and its template before any work."""
    spec = parse_reward(source)
    check_reward_template(template)
    REWARD_KINDS[spec.kind].check(spec)
    return spec


def implicit_reward(
    source: str | RewardSpec, log_aligned: Sequence[float], log_prior: Sequence[float]
) -> np.ndarray:
    """``beta * (log pi - log p)`` for ``source = "implicit:BETA"``."""
    spec = source if isinstance(source, RewardSpec) else parse_reward(source)
    if spec.kind != "implicit":
        raise ConfigError(f"`reward` {spec.source!r} is not implicit:BETA")
    return spec.beta * (
        np.asarray(log_aligned, dtype=np.float64) - np.asarray(log_prior, dtype=np.float64)
    )


def _python_reward(spec: RewardSpec) -> RewardFn:
    function = REWARD_KINDS["python"].function(spec)  # type: ignore[attr-defined]

    def reward(prompts: Sequence[str], texts: Sequence[str]) -> np.ndarray:
        values = np.asarray(function(list(prompts), list(texts)), dtype=np.float64)
        if values.shape != (len(texts),):
            raise ConfigError(
                f"`reward` {spec.source!r} returned shape {values.shape}; "
                "it must return one float per text"
            )
        if not np.isfinite(values).all():
            raise ConfigError(f"`reward` {spec.source!r} returned a non-finite value")
        return values

    reward.identity = {"name": spec.source}  # type: ignore[attr-defined]
    return reward


def _format(tokenizer: Any, template: str, prompt: str, response: str) -> str:
    if template == "chat":
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}],
            tokenize=False,
        )
    return template.replace("{prompt}", prompt).replace("{response}", response)


# --- reward-model checkpoint formats --------------------------------------------------------


class ModelFormat:
    """A checkpoint format of reward models: how to recognise it and how to score with it.
    ``load`` returns a function from tokenized inputs (right padding) to one score per row."""

    kind = ""

    def detect(self, directory: Path | None) -> bool:
        raise NotImplementedError

    def load(
        self,
        source: str,
        directory: Path | None,
        tokenizer: Any,
        dtype: Any,
        device: Any,
        trust_remote_code: bool,
    ) -> tuple[Callable[[dict[str, Any]], Any], Any]:
        raise NotImplementedError


def _head_tensors(directory: Path, prefix: str) -> dict[str, Any]:
    """The tensors under ``prefix`` in a checkpoint's weight files (safetensors, else .bin)."""
    import torch

    tensors: dict[str, Any] = {}
    for file in sorted(directory.glob("*.safetensors")):
        from safetensors import safe_open

        with safe_open(str(file), framework="pt") as f:
            for key in f.keys():
                if key.startswith(prefix):
                    tensors[key.removeprefix(prefix)] = f.get_tensor(key)
    if not tensors:
        for file in sorted(directory.glob("pytorch_model*.bin")):
            state = torch.load(file, map_location="cpu", weights_only=True)
            tensors.update(
                {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}
            )
    return tensors


class ScoreHeadFormat(ModelFormat):
    """safe-rlhf's score model: backbone under ``model.``, a linear ``score_head``; the end
    score at the last non-padding token."""

    kind = "score_head"

    def detect(self, directory: Path | None) -> bool:
        return directory is not None and bool(_head_tensors(directory, "score_head."))

    def load(self, source, directory, tokenizer, dtype, device, trust_remote_code):  # type: ignore[no-untyped-def]
        import torch
        from transformers import AutoModel
        from transformers.utils import logging as hf_logging

        assert directory is not None
        state = _head_tensors(directory, "score_head.")
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # the score head is an expected unused weight
        try:
            backbone = from_pretrained(
                AutoModel, source, "reward model", dtype=dtype, trust_remote_code=trust_remote_code
            )
        finally:
            hf_logging.set_verbosity(verbosity)
        weight = state["weight"]
        head = torch.nn.Linear(weight.shape[1], weight.shape[0], bias="bias" in state)
        head.load_state_dict(state)
        backbone.to(device).eval()
        head.to(device=device, dtype=dtype).eval()

        def scores(encoded: dict[str, Any]) -> Any:
            hidden = backbone(**encoded).last_hidden_state
            # The end score: the last non-padding token of each row (right padding).
            last = encoded["attention_mask"].sum(-1) - 1
            if tokenizer.padding_side == "left":
                last = torch.full_like(last, hidden.shape[1] - 1)
            return head(hidden[torch.arange(hidden.shape[0]), last])[:, 0]

        return scores, backbone


class SequenceClassifierFormat(ModelFormat):
    """A sequence classifier with one label (``AutoModelForSequenceClassification``)."""

    kind = "sequence_classification"

    def detect(self, directory: Path | None) -> bool:
        return True  # the fallback

    def load(self, source, directory, tokenizer, dtype, device, trust_remote_code):  # type: ignore[no-untyped-def]
        from transformers import AutoModelForSequenceClassification

        model = from_pretrained(
            AutoModelForSequenceClassification,
            source,
            "reward model",
            dtype=dtype,
            trust_remote_code=trust_remote_code,
        )
        if model.config.num_labels != 1:
            raise ModelError(
                f"reward model {source!r} has {model.config.num_labels} labels; a reward model "
                "needs a scalar head (num_labels = 1)"
            )
        if model.config.pad_token_id is None:
            model.config.pad_token_id = tokenizer.pad_token_id
        model.to(device).eval()
        return (lambda encoded: model(**encoded).logits[:, 0]), model


# Tried in order; the first that recognises the checkpoint loads it.
MODEL_FORMATS: list[ModelFormat] = [ScoreHeadFormat(), SequenceClassifierFormat()]


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
    """A reward function ``f(prompts, texts) -> array`` from a spec (see the module);
    ``implicit:BETA`` is computed from the scores and cannot be loaded."""
    spec = parse_reward(source)
    if spec.kind == "python":
        return _python_reward(spec)
    if spec.computed:
        raise ConfigError("`reward` implicit:BETA is computed from the scores, not loaded")
    import torch

    check_reward_template(template)
    torch_dtype, torch_device = resolve_dtype(dtype), resolve_device(device)
    tokenizer = load_tokenizer(source, trust_remote_code=trust_remote_code)
    directory = local_model_dir(source)
    form = next(f for f in MODEL_FORMATS if f.detect(directory))
    scores, model = form.load(
        source, directory, tokenizer, torch_dtype, torch_device, trust_remote_code
    )

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
            out[batch] = scores(dict(encoded)).float().cpu().numpy()
        return out

    identity = {**model_identity(source), "dtype": str(torch_dtype).replace("torch.", "")}
    identity["architecture"] = (model.config.architectures or [type(model).__name__])[0]
    reward.identity = {**identity, "reward_kind": form.kind}  # type: ignore[attr-defined]
    return reward
