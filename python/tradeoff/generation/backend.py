"""The generation-backend seam: a backend owns only the model loop; the generate stage owns the
run directory, resume, shards and torchrun.

A backend is opened from a :class:`GenerationRequest` (the model, the prompts, the adaptor
chains, the sampling settings) and then asked for one shard of work items at a time (it decides
how many strings are in flight, ``settings.batch_size`` at most); it returns one record per item
with the columns of ``samples.parquet``. Backends are chosen by name
(``--backend hf``, ``[generate] backend = "hf"``; ``vllm``, the optional extra
``tradeoff[vllm]``) from :data:`BACKENDS`, imported only when chosen, so an optional engine's
dependency is needed only by those who use it.

To add a backend: a module with ``open_backend(request) -> GenerationBackend``, optionally
``check_request(request)`` (checks before the model is loaded: vocabulary, positions) and
``check_available()`` (an optional dependency installed?), registered in :data:`BACKENDS`.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..adaptors import AdaptorChain
from ..errors import ConfigError, check_int, check_seed
from .work import Prompt, WorkItem

__all__ = [
    "BACKENDS",
    "GenerationBackend",
    "GenerationRequest",
    "GenerationSettings",
    "check_backend",
    "check_request",
    "open_backend",
]

# name -> module providing open_backend(request)
BACKENDS: dict[str, str] = {
    "hf": "tradeoff.generation.hf",
    "vllm": "tradeoff.generation.vllm_backend",
}


@dataclass
class GenerationSettings:
    """How strings end and how they are drawn."""

    max_new_tokens: int
    seed: int
    template: str = "{prompt}"
    stop_strings: tuple[str, ...] = ()
    # None: the model's generation config, else the tokenizer's EOS.
    eos_token_ids: tuple[int, ...] | None = None
    # The most tokens a string and its context may hold together (transformers' max_length);
    # None: only max_new_tokens (and the model's positions) bound a string.
    max_total_tokens: int | None = None
    # Rows in flight (slots of the continuous batch); None: every item of a shard at once.
    batch_size: int | None = None
    # The most tokens the rows in flight may hold (contexts, drawn tokens, KV entries) when each
    # grows to its length cap; None: only batch_size bounds them.
    max_batch_tokens: int | None = None
    # Two groups of rows that alternate, so the sampler runs while the device computes; None:
    # on CUDA only.
    overlap: bool | None = None

    def __post_init__(self) -> None:
        check_int("max_new_tokens", self.max_new_tokens, minimum=1)
        check_seed(self.seed)
        self.stop_strings = tuple(self.stop_strings)
        for stop in self.stop_strings:
            if not isinstance(stop, str) or not stop:
                raise ConfigError(f"`stop` strings must be non-empty strings, got {stop!r}")
        if self.max_total_tokens is not None:
            check_int("max_total_tokens", self.max_total_tokens, minimum=2)
        if self.batch_size is not None:
            check_int("batch_size", self.batch_size, minimum=1)
        if self.max_batch_tokens is not None:
            check_int("max_batch_tokens", self.max_batch_tokens, minimum=1)
        if self.overlap is not None and not isinstance(self.overlap, bool):
            raise ConfigError(f"`overlap` must be true or false, got {self.overlap!r}")
        if self.eos_token_ids is not None:
            self.eos_token_ids = tuple(self.eos_token_ids)
            for token in self.eos_token_ids:
                check_int("eos_token_id", token, minimum=0)


@dataclass
class GenerationRequest:
    """What a backend needs to open: the aligned model and everything a string depends on."""

    aligned: str
    prompts: Sequence[Prompt]
    # The chains strings are drawn with, and the configurations' names (by default the chains').
    chains: Sequence[AdaptorChain]
    settings: GenerationSettings
    names: Sequence[str] | None = None
    dtype: str = "float32"
    device: str = "cpu"
    trust_remote_code: bool = False
    options: dict[str, Any] = field(default_factory=dict)


class GenerationBackend(Protocol):
    """A model loop: generates one shard of work items at a time."""

    name: str
    # The models' identities for the manifest ({"aligned": {...}}).
    identity: dict[str, Any]
    # The model's context for each prompt (the template applied), by prompt index.
    contexts: list[str]

    def run_batch(self, items: Sequence[WorkItem]) -> list[dict[str, Any]]:
        """Generates one shard: one record per item, in the items' order, with the columns of
        samples.parquet. The records must not depend on which other shards ran in this
        process (resume and torchrun rely on it)."""
        ...


def _module(name: Any) -> Any:
    if name not in BACKENDS:
        raise ConfigError(f"`backend` must be one of {', '.join(BACKENDS)}; got {name!r}")
    return importlib.import_module(BACKENDS[name])


def check_backend(name: Any) -> str:
    """The backend exists and its dependencies are installed (a ConfigError saying what to
    install otherwise)."""
    module = _module(name)
    check = getattr(module, "check_available", None)
    if check is not None:
        check()
    return name


def check_request(name: str, request: GenerationRequest) -> None:
    """The backend's checks of a request that need no loaded model (tokenizer, config)."""
    check = getattr(_module(name), "check_request", None)
    if check is not None:
        check(request)


def open_backend(name: str, request: GenerationRequest) -> GenerationBackend:
    """Opens backend ``name`` (loads its model) for ``request``."""
    return _module(name).open_backend(request)
