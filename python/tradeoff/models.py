"""Loading causal language models and tokenizers (local directory or Hugging Face hub id).

Models load through transformers' Auto classes with ``trust_remote_code=False`` unless asked for,
safetensors first (transformers' default when both formats are present). A model that is neither a
local directory nor in the local Hugging Face cache is fetched from the hub unless
``HF_HUB_OFFLINE=1``; when it cannot be had, :class:`ModelNotFoundError` says so and how to provide
it, without waiting on a network that is not there.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "DTYPES",
    "LoadedModel",
    "ModelNotFoundError",
    "load_causal_lm",
    "load_tokenizer",
    "model_identity",
    "resolve_device",
    "resolve_dtype",
]

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


class ModelNotFoundError(FileNotFoundError):
    """A model or tokenizer could not be found locally (and could not be downloaded)."""


def resolve_dtype(name: str | torch.dtype) -> torch.dtype:
    """``"float32"``, ``"float16"`` or ``"bfloat16"`` (or a torch dtype) as a torch dtype."""
    if isinstance(name, torch.dtype):
        if name not in DTYPES.values():
            raise ValueError(f"`dtype` must be one of {sorted(DTYPES)}, got {name}")
        return name
    if name not in DTYPES:
        raise ValueError(f"`dtype` must be one of {sorted(DTYPES)}, got {name!r}")
    return DTYPES[name]


def resolve_device(name: str | torch.device) -> torch.device:
    """``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"`` (CUDA when available) as a device."""
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ValueError(f"`device` must be cpu, cuda, cuda:N or auto, got {name!r}") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"`device` is {name!r} but CUDA is not available here; use cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(
                f"`device` is {name!r} but there are {torch.cuda.device_count()} CUDA devices"
            )
    elif device.type != "cpu":
        raise ValueError(f"`device` must be cpu, cuda, cuda:N or auto, got {name!r}")
    return device


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _from_pretrained(auto_class: Any, name: str, what: str, **kwargs: Any) -> Any:
    """``auto_class.from_pretrained`` from a local directory, else the local cache, else the hub
    (unless offline), with an error that says how to provide the model."""
    from .worlds import automaton_hf  # noqa: F401  (registers the automaton world's classes)

    if Path(name).is_dir():
        return auto_class.from_pretrained(name, **kwargs)
    if Path(name).exists():
        raise ModelNotFoundError(
            f"{what} {name!r} is a file, not a model directory (one with config.json and weights)"
        )
    if name.startswith((".", "/", "~")):
        raise ModelNotFoundError(f"{what} directory {name!r} does not exist")
    try:
        return auto_class.from_pretrained(name, local_files_only=True, **kwargs)
    except OSError as cached_error:
        if _offline():
            raise ModelNotFoundError(
                f"{what} {name!r} is not a local directory and is not in the Hugging Face cache, "
                "and HF_HUB_OFFLINE is set. Download it where there is a network "
                f"(`huggingface-cli download {name}`) and copy the cache or the model directory "
                "here, then pass the directory's path."
            ) from cached_error
    try:
        return auto_class.from_pretrained(name, **kwargs)
    except OSError as error:
        raise ModelNotFoundError(
            f"{what} {name!r} is not a local directory, not in the Hugging Face cache, and could "
            f"not be downloaded ({error.__class__.__name__}: {str(error).splitlines()[0]}). "
            "Pass the path of a local model directory, or download it first "
            f"(`huggingface-cli download {name}`)."
        ) from error


def load_tokenizer(name: str, *, trust_remote_code: bool = False) -> Any:
    """The tokenizer of a model directory or hub id, with a padding token (EOS when it has none)."""
    from transformers import AutoTokenizer

    tokenizer = _from_pretrained(
        AutoTokenizer, name, "tokenizer", trust_remote_code=trust_remote_code
    )
    if tokenizer.pad_token_id is None and tokenizer.eos_token_id is not None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


@dataclass
class LoadedModel:
    """A model in eval mode on its device, its tokenizer and its identity (for the manifest)."""

    model: Any
    tokenizer: Any
    identity: dict[str, Any]

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device


def load_causal_lm(
    name: str,
    *,
    dtype: str | torch.dtype = "float32",
    device: str | torch.device = "cpu",
    trust_remote_code: bool = False,
) -> LoadedModel:
    """A causal LM (``AutoModelForCausalLM``) and its tokenizer, in eval mode on ``device``."""
    from transformers import AutoModelForCausalLM

    torch_dtype = resolve_dtype(dtype)
    torch_device = resolve_device(device)
    model = _from_pretrained(
        AutoModelForCausalLM, name, "model", dtype=torch_dtype, trust_remote_code=trust_remote_code
    )
    model.to(torch_device).eval()
    tokenizer = load_tokenizer(name, trust_remote_code=trust_remote_code)
    return LoadedModel(model, tokenizer, model_identity(name, model, torch_dtype))


def model_identity(name: str, model: Any, dtype: torch.dtype | None = None) -> dict[str, Any]:
    """Where a model came from and a hash of its configuration, for the run manifest."""
    config = model.config.to_dict()
    config.pop("transformers_version", None)
    config.pop("_name_or_path", None)
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()
    path = Path(name)
    return {
        "name": name,
        "path": str(path.resolve()) if path.is_dir() else None,
        "revision": getattr(model.config, "_commit_hash", None),
        "config_sha256": digest,
        "architecture": (config.get("architectures") or [type(model).__name__])[0],
        "dtype": str(dtype or next(model.parameters()).dtype).replace("torch.", ""),
    }
