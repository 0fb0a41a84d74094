"""Loading causal language models and tokenizers (local directory or Hugging Face hub id), and
telling which model a run used.

Models load through transformers' Auto classes with ``trust_remote_code=False`` unless asked for,
safetensors first (transformers' default when both formats are present). A model that is neither a
local directory nor in the local Hugging Face cache is fetched from the hub unless
``HF_HUB_OFFLINE=1``; when it cannot be had, :class:`ModelNotFoundError` says so and how to provide
it, without waiting on a network that is not there.

A model's identity (:func:`model_identity`) is computed from its files without loading it: a hash
of its configuration, of its tokenizer, and a fingerprint of its weights (each weight file's size
and a hash of three 1 MiB samples of its bytes: cheap for a 14 GB checkpoint, and it changes when
the weights are replaced), plus the hub revision when it came from the cache.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError, ModelError, ModelNotFoundError

__all__ = [
    "DEVICES_HELP",
    "DTYPES",
    "LoadedModel",
    "ModelNotFoundError",
    "check_causal_lm",
    "check_device",
    "check_dtype",
    "from_pretrained",
    "load_causal_lm",
    "load_tokenizer",
    "local_model_dir",
    "model_config",
    "model_identity",
    "position_limit",
    "resolve_device",
    "resolve_dtype",
]

DTYPES = ("float32", "float16", "bfloat16")
DEVICES_HELP = "cpu, cuda, cuda:N or auto"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".msgpack", ".h5")
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer.model",
    "vocab.json",
    "merges.txt",
    "vocab.txt",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
)
# Model types whose classes this package provides: imported only when such a model is loaded.
_PROVIDED_MODEL_TYPES = {"tradeoff-automaton"}
_SAMPLE = 1 << 20


def check_dtype(name: Any) -> str:
    """A dtype name (``float32``, ``float16``, ``bfloat16``); anything else is a ConfigError."""
    if name not in DTYPES:
        raise ConfigError(f"`dtype` must be one of {', '.join(DTYPES)}; got {name!r}")
    return name


def resolve_dtype(name: Any) -> Any:
    """``"float32"``, ``"float16"`` or ``"bfloat16"`` (or a torch dtype) as a torch dtype."""
    import torch

    table = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
    if isinstance(name, torch.dtype):
        if name not in table.values():
            raise ConfigError(f"`dtype` must be one of {', '.join(DTYPES)}; got {name}")
        return name
    return table[check_dtype(name)]


def check_device(name: Any) -> str:
    """Checks that a device exists here (without loading anything on it); returns its name."""
    resolve_device(name)
    return name


def resolve_device(name: Any) -> Any:
    """``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"`` (CUDA when available) as a device."""
    import torch

    if isinstance(name, torch.device):
        return name
    if not isinstance(name, str):
        raise ConfigError(f"`device` must be {DEVICES_HELP}; got {name!r}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ConfigError(f"`device` must be {DEVICES_HELP}; got {name!r}") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"`device` is {name!r} but CUDA is not available here; use cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(
                f"`device` is {name!r} but there are {torch.cuda.device_count()} CUDA devices"
            )
    elif device.type != "cpu":
        raise ConfigError(f"`device` must be {DEVICES_HELP}; got {name!r}")
    return device


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _looks_like_path(name: str) -> bool:
    """Hub ids are ``name`` or ``org/name``; anything else is meant as a path."""
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name


def local_model_dir(name: str) -> Path | None:
    """The directory holding a model's files: ``name`` itself when it is a directory, else its
    snapshot in the local Hugging Face cache, else None."""
    path = Path(name).expanduser()
    if path.is_dir():
        return path
    if path.exists() or _looks_like_path(name):
        return None
    try:
        from huggingface_hub import try_to_load_from_cache

        config = try_to_load_from_cache(name, "config.json")
    except Exception:  # noqa: BLE001  (a malformed repo id: not in the cache)
        return None
    return Path(config).parent if isinstance(config, str) else None


def _not_found(name: str, what: str) -> ModelNotFoundError:
    path = Path(name).expanduser()
    if path.exists():
        return ModelNotFoundError(
            f"{what} {name!r} is a file, not a model directory (one with config.json and weights)"
        )
    if _looks_like_path(name):
        return ModelNotFoundError(f"{what} directory {name!r} does not exist")
    return ModelNotFoundError(
        f"{what} {name!r} is not a local directory and is not in the Hugging Face cache, "
        "and HF_HUB_OFFLINE is set. Download it where there is a network "
        f"(`huggingface-cli download {name}`) and copy the cache or the model directory "
        "here, then pass the directory's path."
    )


def model_config(name: str, what: str = "model") -> dict[str, Any]:
    """A model's ``config.json`` as a dict, read without loading the model; errors name the
    model and say what is wrong. A hub id that is not cached gives {} unless offline (then it is
    a ModelNotFoundError): it may still be downloaded."""
    directory = local_model_dir(name)
    if directory is None:
        if _offline() or Path(name).expanduser().exists() or _looks_like_path(name):
            raise _not_found(name, what)
        return {}
    config_path = directory / "config.json"
    if not config_path.is_file():
        raise ModelError(f"{what} {name!r} has no config.json; is it a model directory?")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ModelError(f"{what} {name!r}: {config_path} is not valid JSON ({error})") from None
    if not isinstance(config, dict):
        raise ModelError(f"{what} {name!r}: {config_path} must hold a JSON object")
    return config


def _weight_files(directory: Path) -> list[Path]:
    return sorted(
        p
        for p in directory.iterdir()
        if p.is_file() and (p.name.endswith(WEIGHT_SUFFIXES) or p.name.endswith(".index.json"))
    )


def check_model_files(name: str, what: str = "model") -> None:
    """Before any work: the model is a directory (or cached) with a valid config.json and weight
    files. A hub id that is not cached passes when online (it can be downloaded)."""
    config = model_config(name, what)
    directory = local_model_dir(name)
    if directory is None or not config:
        return
    if not any(p.name.endswith(WEIGHT_SUFFIXES) for p in _weight_files(directory)):
        raise ModelError(
            f"{what} {name!r} has no weight files (*.safetensors or *.bin) in {directory}"
        )


def check_causal_lm(name: str, what: str = "model") -> dict[str, Any]:
    """Before loading: the checkpoint is a causal LM, not a classifier, score model or bare
    backbone (which would generate from a randomly initialised head). Returns its config."""
    check_model_files(name, what)
    config = model_config(name, what)
    architectures = config.get("architectures") or []
    causal = ("ForCausalLM", "LMHeadModel", "ForConditionalGeneration")
    if architectures and not any(a.endswith(causal) for a in architectures):
        raise ModelError(
            f"{what} {name!r} is a {', '.join(architectures)} checkpoint, not a causal language "
            "model (it has no language-model head); give a causal LM here (a reward model goes "
            "to --reward)"
        )
    return config


def position_limit(config: dict[str, Any]) -> int | None:
    """The longest sequence a model's positions allow, from its config (None if it says none)."""
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = config.get(key)
        if isinstance(value, int) and value > 0:
            return value
    return None


def _register_provided(name: str) -> None:
    """Models whose classes this package provides (the automaton world) are registered with the
    Auto classes when one is loaded, not on every load."""
    try:
        model_type = model_config(name).get("model_type")
    except (ModelError, ModelNotFoundError):
        return
    if model_type in _PROVIDED_MODEL_TYPES:
        from ..worlds import automaton_hf  # noqa: F401  (registers the world's classes)


def from_pretrained(auto_class: Any, name: str, what: str, **kwargs: Any) -> Any:
    """``auto_class.from_pretrained`` from a local directory, else the local cache, else the hub
    (unless offline), with an error that says how to provide the model."""
    _register_provided(name)
    path = Path(name).expanduser()
    if path.is_dir():
        return auto_class.from_pretrained(str(path), **kwargs)
    if path.exists() or _looks_like_path(name):
        raise _not_found(name, what)
    try:
        return auto_class.from_pretrained(name, local_files_only=True, **kwargs)
    except OSError as cached_error:
        if _offline():
            raise _not_found(name, what) from cached_error
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

    tokenizer = from_pretrained(
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
    def device(self) -> Any:
        return next(self.model.parameters()).device


def load_causal_lm(
    name: str,
    *,
    dtype: Any = "float32",
    device: Any = "cpu",
    trust_remote_code: bool = False,
    what: str = "model",
) -> LoadedModel:
    """A causal LM (``AutoModelForCausalLM``) and its tokenizer, in eval mode on ``device``.
    A checkpoint without a language-model head is refused (:func:`check_causal_lm`)."""
    from transformers import AutoModelForCausalLM

    torch_dtype = resolve_dtype(dtype)
    torch_device = resolve_device(device)
    check_causal_lm(name, what)
    model, info = from_pretrained(
        AutoModelForCausalLM,
        name,
        what,
        dtype=torch_dtype,
        trust_remote_code=trust_remote_code,
        output_loading_info=True,
    )
    missing = sorted(k for k in info.get("missing_keys", ()) if "lm_head" in k or "embed_out" in k)
    if missing:
        raise ModelError(
            f"{what} {name!r} has no language-model head in its weights (missing: "
            f"{', '.join(missing)}); it is not a causal LM checkpoint"
        )
    model.to(torch_device).eval()
    tokenizer = load_tokenizer(name, trust_remote_code=trust_remote_code)
    identity = {**model_identity(name), "dtype": str(torch_dtype).replace("torch.", "")}
    identity["architecture"] = (model.config.architectures or [type(model).__name__])[0]
    return LoadedModel(model, tokenizer, identity)


def _sampled_sha256(path: Path) -> str:
    """A hash of a file's size and three 1 MiB samples (start, middle, end) of its bytes."""
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with open(path, "rb") as f:
        for offset in sorted({0, max(size // 2 - _SAMPLE // 2, 0), max(size - _SAMPLE, 0)}):
            f.seek(offset)
            digest.update(f.read(_SAMPLE))
    return digest.hexdigest()


def _files_sha256(paths: list[Path], sampled: bool) -> str | None:
    if not paths:
        return None
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode() + b"\0")
        if sampled:
            digest.update(_sampled_sha256(path).encode())
        else:
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def model_identity(name: str) -> dict[str, Any]:
    """Where a model came from and what it is, from its files (it is not loaded): its path or
    hub id, the cache revision, hashes of its configuration and tokenizer, and a fingerprint of
    its weights."""
    directory = local_model_dir(name)
    identity: dict[str, Any] = {
        "name": name,
        "path": None,
        "revision": None,
        "config_sha256": None,
        "tokenizer_sha256": None,
        "weights_sha256": None,
    }
    if directory is None:
        return identity
    if Path(name).expanduser().is_dir():
        identity["path"] = str(directory.resolve())
    elif directory.parent.name == "snapshots":
        identity["revision"] = directory.name
    config: dict[str, Any] = {}
    for file in ("config.json", "generation_config.json"):
        if (directory / file).is_file():
            try:
                values = json.loads((directory / file).read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError):
                values = {"unreadable": (directory / file).read_bytes().hex()}
            if isinstance(values, dict):
                values.pop("transformers_version", None)
                values.pop("_name_or_path", None)
            config[file] = values
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    identity["config_sha256"] = digest.hexdigest()
    tokenizer = [directory / f for f in TOKENIZER_FILES if (directory / f).is_file()]
    identity["tokenizer_sha256"] = _files_sha256(tokenizer, sampled=False)
    identity["weights_sha256"] = _files_sha256(_weight_files(directory), sampled=True)
    return identity
