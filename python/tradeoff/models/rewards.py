"""Reward sources behind one registry. A reward spec is a string:

- a model directory or hub id (resolved to its cached snapshot): a reward model, its format told
  apart from its config and weight index without loading it (:data:`MODEL_FORMATS`): the
  safe-rlhf score model (the paper's RLHF reward model: a backbone plus ``score_head``, the score
  at the last unmasked position); the OpenRLHF value-head model (the paper's DPO reward model:
  a backbone plus ``value_head``, position ids from the mask, the value at the last unmasked
  position, normalised only when asked); else a sequence classifier with one label;
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
import json
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


@dataclass(frozen=True)
class Checkpoint:
    """What a reward checkpoint is, read without loading its weights: its directory, config and
    the file holding each weight (from the weight index when there is one)."""

    source: str
    directory: Path | None
    config: dict[str, Any]
    weight_files: dict[str, str]

    def keys_under(self, prefix: str) -> list[str]:
        return [k for k in self.weight_files if k.startswith(prefix)]

    def tensors(self, prefix: str) -> dict[str, Any]:
        """The tensors under ``prefix``, read from the files that hold them, and only those."""
        import torch

        assert self.directory is not None
        found: dict[str, Any] = {}
        for name in sorted({self.weight_files[k] for k in self.keys_under(prefix)}):
            path = self.directory / name
            if name.endswith(".safetensors"):
                from safetensors import safe_open

                with safe_open(str(path), framework="pt") as f:
                    for key in f.keys():
                        if key.startswith(prefix):
                            found[key.removeprefix(prefix)] = f.get_tensor(key)
            else:
                state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
                found.update(
                    {
                        k.removeprefix(prefix): v.clone()
                        for k, v in state.items()
                        if k.startswith(prefix)
                    }
                )
        return found


def _weight_files(directory: Path) -> dict[str, str]:
    """weight key -> file name: the index's ``weight_map`` when there is one, else the keys of
    the single weight file (safetensors: its header; .bin: a memory-mapped load)."""
    for index in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        if (directory / index).is_file():
            return dict(json.loads((directory / index).read_text())["weight_map"])
    if (directory / "model.safetensors").is_file():
        from safetensors import safe_open

        with safe_open(str(directory / "model.safetensors"), framework="pt") as f:
            return dict.fromkeys(f.keys(), "model.safetensors")
    if (directory / "pytorch_model.bin").is_file():
        import torch

        state = torch.load(
            directory / "pytorch_model.bin", map_location="cpu", weights_only=True, mmap=True
        )
        return dict.fromkeys(state, "pytorch_model.bin")
    return {}


def read_checkpoint(source: str) -> Checkpoint:
    directory = local_model_dir(source)
    if directory is None:
        return Checkpoint(source, None, {}, {})
    config_path = directory / "config.json"
    config = json.loads(config_path.read_text()) if config_path.is_file() else {}
    return Checkpoint(source, directory, config, _weight_files(directory))


class ModelFormat:
    """A checkpoint format of reward models: how to recognise it (from its config and weight
    names, without loading it) and how to score with it. ``load`` returns a function from
    tokenized inputs to one score per row, and the model (for its identity)."""

    kind = ""

    def detect(self, checkpoint: Checkpoint) -> bool:
        raise NotImplementedError

    def load(
        self,
        checkpoint: Checkpoint,
        tokenizer: Any,
        dtype: Any,
        device: Any,
        trust_remote_code: bool,
        normalize: bool,
    ) -> tuple[Callable[[dict[str, Any]], Any], Any]:
        raise NotImplementedError


def end_index(mask: Any) -> Any:
    """Each row's last position whose attention mask is 1 (right or left padding)."""
    return mask.shape[1] - 1 - mask.long().fliplr().argmax(dim=1)


def _backbone_and_head(
    checkpoint: Checkpoint, prefix: str, dtype: Any, device: Any, trust_remote_code: bool
) -> tuple[Any, Any]:
    """The backbone (``AutoModel``, the ``model.`` weights) and the linear head under
    ``prefix``, on ``device``."""
    import torch
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    state = checkpoint.tensors(prefix)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the head is an expected unused weight of the backbone
    try:
        backbone = from_pretrained(
            AutoModel,
            checkpoint.source,
            "reward model",
            dtype=dtype,
            trust_remote_code=trust_remote_code,
        )
    finally:
        hf_logging.set_verbosity(verbosity)
    weight = state["weight"]
    head = torch.nn.Linear(weight.shape[1], weight.shape[0], bias="bias" in state)
    head.load_state_dict(state)
    return backbone.to(device).eval(), head.to(device=device, dtype=dtype).eval()


class ScoreHeadFormat(ModelFormat):
    """safe-rlhf's score model (the paper's RLHF reward, ``ethz-spylab/reward_model``): the
    backbone under ``model.`` and a linear ``score_head`` (architectures ``*ForScore``); the
    reward is the *end score*, the head's value at the last position whose attention mask is 1.
    safe-rlhf passes no position ids, so inputs are padded on the right, as it pads them."""

    kind = "score_head"

    def detect(self, checkpoint: Checkpoint) -> bool:
        architectures = checkpoint.config.get("architectures") or []
        return bool(checkpoint.keys_under("score_head.")) or any(
            a.endswith("ForScore") for a in architectures
        )

    def load(self, checkpoint, tokenizer, dtype, device, trust_remote_code, normalize):  # type: ignore[no-untyped-def]
        import torch

        backbone, head = _backbone_and_head(
            checkpoint, "score_head.", dtype, device, trust_remote_code
        )
        tokenizer.padding_side = "right"

        def scores(encoded: dict[str, Any]) -> Any:
            hidden = backbone(
                input_ids=encoded["input_ids"], attention_mask=encoded["attention_mask"]
            ).last_hidden_state
            rows = torch.arange(hidden.shape[0], device=hidden.device)
            return head(hidden[rows, end_index(encoded["attention_mask"])])[:, 0]

        return scores, backbone


class ValueHeadFormat(ModelFormat):
    """OpenRLHF's reward model (the paper's DPO reward, ``kaist-ai/janus-rm-7b``): the backbone
    under ``model.`` and a linear ``value_head``; position ids ``cumsum(mask) - 1`` (1 on
    padding), the reward the head's value at the last position whose mask is 1, and
    ``(r - mean) / std`` with the config's ``mean`` and ``std`` only when asked (the paper's
    rewards are unnormalised)."""

    kind = "value_head"

    def detect(self, checkpoint: Checkpoint) -> bool:
        architectures = checkpoint.config.get("architectures") or []
        return bool(checkpoint.keys_under("value_head.")) or "LLMForSequenceRegression" in (
            architectures
        )

    def load(self, checkpoint, tokenizer, dtype, device, trust_remote_code, normalize):  # type: ignore[no-untyped-def]
        import torch

        mean, std = checkpoint.config.get("mean"), checkpoint.config.get("std")
        if normalize and not (
            isinstance(mean, (int, float)) and isinstance(std, (int, float)) and std > 0
        ):
            raise ConfigError(
                f"`reward_normalize`: reward model {checkpoint.source!r} stores no mean and std "
                "(config keys 'mean', 'std' > 0) to normalise with"
            )
        backbone, head = _backbone_and_head(
            checkpoint, "value_head.", dtype, device, trust_remote_code
        )

        def scores(encoded: dict[str, Any]) -> Any:
            mask = encoded["attention_mask"]
            positions = (mask.long().cumsum(-1) - 1).masked_fill(mask == 0, 1)
            hidden = backbone(
                input_ids=encoded["input_ids"], attention_mask=mask, position_ids=positions
            ).last_hidden_state
            rows = torch.arange(hidden.shape[0], device=hidden.device)
            values = head(hidden[rows, end_index(mask)])[:, 0]
            return (values - mean) / std if normalize else values

        return scores, backbone


class SequenceClassifierFormat(ModelFormat):
    """A sequence classifier with one label (``AutoModelForSequenceClassification``)."""

    kind = "sequence_classification"

    def detect(self, checkpoint: Checkpoint) -> bool:
        return True  # the fallback

    def load(self, checkpoint, tokenizer, dtype, device, trust_remote_code, normalize):  # type: ignore[no-untyped-def]
        from transformers import AutoModelForSequenceClassification

        source = checkpoint.source
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
MODEL_FORMATS: list[ModelFormat] = [
    ScoreHeadFormat(),
    ValueHeadFormat(),
    SequenceClassifierFormat(),
]


def load_reward(
    source: str,
    *,
    template: str = "{prompt}{response}",
    max_length: int | None = None,
    dtype: str = "float32",
    device: str = "cpu",
    trust_remote_code: bool = False,
    batch_size: int = 8,
    normalize: bool = False,
) -> RewardFn:
    """A reward function ``f(prompts, texts) -> array`` from a spec (see the module);
    ``implicit:BETA`` is computed from the scores and cannot be loaded. ``normalize`` applies a
    value-head model's stored mean and std (refused for the other formats)."""
    spec = parse_reward(source)
    if spec.kind == "python":
        return _python_reward(spec)
    if spec.computed:
        raise ConfigError("`reward` implicit:BETA is computed from the scores, not loaded")
    import torch

    check_reward_template(template)
    torch_dtype, torch_device = resolve_dtype(dtype), resolve_device(device)
    tokenizer = load_tokenizer(source, trust_remote_code=trust_remote_code)
    checkpoint = read_checkpoint(source)
    form = next(f for f in MODEL_FORMATS if f.detect(checkpoint))
    if normalize and form.kind != "value_head":
        raise ConfigError(
            f"`reward_normalize` applies to value-head (OpenRLHF) reward models, which store a "
            f"mean and std; {source!r} is a {form.kind} model"
        )
    scores, model = form.load(
        checkpoint, tokenizer, torch_dtype, torch_device, trust_remote_code, normalize
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
    reward.identity = {
        **identity,
        "reward_kind": form.kind,  # type: ignore[attr-defined]
        "reward_normalized": normalize,
    }
    return reward
