"""Sampling adaptors: spec parsing, chains, and the numpy / torch entry points.

An adaptor maps a row of logits to a row with more ``-inf`` (temperature only rescales). The rules
are Hugging Face transformers' warpers, with two deliberate differences:

1. **Ties at a sorted cut.** Where a group of exactly equal logits straddles the cut of top-p or
   typical, transformers keeps the part of the group that torch's (unstable) sort happens to put
   last; we keep the whole group, so a token's fate never depends on its index. The same holds for
   the ``min_tokens_to_keep`` protection of every adaptor: ties with the protected token are
   protected too.
2. **Rounding at the cut.** float32 sums in a different order than torch; a token whose fate lies
   within float32 rounding of the cut may differ. Inputs whose float32 arithmetic is exact (dyadic
   probabilities) give identical sets.

``top_p=1`` and ``min_p=0`` and ``top_a=0`` are no-ops, and ``"ancestral"`` is the empty chain: no
hidden ``top_k=50`` as in ``transformers.generate``.

Everything is computed in float32 (float16 / bfloat16 inputs are widened); results come back in
the input's library (numpy or torch), as float32, or float64 for float64 input.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _core
from .errors import check_seed

__all__ = [
    "ADAPTOR_CLASSES",
    "Adaptor",
    "AdaptorChain",
    "Epsilon",
    "Eta",
    "LogitsProcessor",
    "MinP",
    "SampleResult",
    "ScoreResult",
    "Temperature",
    "TopA",
    "TopK",
    "TopNSigma",
    "TopP",
    "Typical",
    "sample",
    "score_tokens",
]


def _check_real(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a real number, got {type(value).__name__} {value!r}")
    return float(value)


def _check_min_keep(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"`min_tokens_to_keep` must be an integer >= 1, got {type(value).__name__} {value!r}"
        )
    if value < 1:
        raise ValueError(f"`min_tokens_to_keep` must be an integer >= 1, got {value}")
    return int(value)


class Adaptor:
    """One sampling adaptor. Subclasses fix ``name``; ``value`` is its parameter.

    Every adaptor takes ``min_tokens_to_keep`` (default 1) with Hugging Face's meaning.
    Parameters are checked on construction: a bad one raises ``ValueError`` naming it and its range.
    """

    name: str = ""
    integer: bool = False

    def __init__(self, value: Any, min_tokens_to_keep: int = 1) -> None:
        if self.integer:
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise TypeError(
                    f"`{self.name}` must be an integer >= 1, got {type(value).__name__} {value!r}"
                )
            self.value: float | int = int(value)
        else:
            self.value = _check_real(self.name, value)
        self.min_tokens_to_keep = _check_min_keep(min_tokens_to_keep)
        # validated by the core; raises ValueError naming the parameter and its range
        _core.Chain([self._triple()])

    def _triple(self) -> tuple[str, float, int]:
        return (self.name, float(self.value), self.min_tokens_to_keep)

    def __str__(self) -> str:
        text = f"{self.name}={self.value!r}"
        if self.min_tokens_to_keep != 1:
            text += f":min_tokens_to_keep={self.min_tokens_to_keep}"
        return text

    def __repr__(self) -> str:
        extra = (
            f", min_tokens_to_keep={self.min_tokens_to_keep}"
            if self.min_tokens_to_keep != 1
            else ""
        )
        return f"{type(self).__name__}({self.value!r}{extra})"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Adaptor)
            and type(other) is type(self)
            and other.value == self.value
            and other.min_tokens_to_keep == self.min_tokens_to_keep
        )

    def __hash__(self) -> int:
        return hash((self.name, self.value, self.min_tokens_to_keep))


class Temperature(Adaptor):
    """Divide the logits by ``t`` (finite, > 0). Removes nothing."""

    name = "temperature"


class TopK(Adaptor):
    """Keep the ``k`` largest logits (integer >= 1; every token tied with the k-th is kept)."""

    name = "top_k"
    integer = True


class TopP(Adaptor):
    """Nucleus: keep the most probable tokens up to mass ``p`` in (0, 1]; 1 is a no-op."""

    name = "top_p"


class MinP(Adaptor):
    """Remove tokens with ``p < min_p * max p``; ``min_p`` in [0, 1], 0 is a no-op."""

    name = "min_p"


class Typical(Adaptor):
    """Locally typical sampling with mass in (0, 1); ``min_tokens_to_keep`` protects the most
    *typical* tokens (smallest ``|-log p - H|``), not the most probable."""

    name = "typical"


class Epsilon(Adaptor):
    """Remove tokens with ``p < epsilon``, epsilon in (0, 1)."""

    name = "epsilon"


class Eta(Adaptor):
    """Remove tokens with ``p < min(eps, sqrt(eps) * exp(-H))``, eps in (0, 1).

    This is transformers' code; its class docstring states a different formula."""

    name = "eta"


class TopA(Adaptor):
    """Remove tokens with ``p < a * (max p)^2`` (a >= 0; 0 is a no-op). Not in transformers."""

    name = "top_a"


class TopNSigma(Adaptor):
    """Keep logits ``>= max - n * sigma``, sigma the population standard deviation of the finite
    logits (n > 0; Tang et al. 2024). Not in transformers."""

    name = "top_nsigma"


ADAPTOR_CLASSES: dict[str, type[Adaptor]] = {
    cls.name: cls for cls in (Temperature, TopK, TopP, MinP, Typical, Epsilon, Eta, TopA, TopNSigma)
}
assert tuple(ADAPTOR_CLASSES) == tuple(_core.ADAPTOR_NAMES)

_SPEC_HELP = (
    "a spec is 'ancestral' or comma-separated name=value items, e.g. "
    "'temperature=0.7,top_p=0.9' (optionally 'top_p=0.9:min_tokens_to_keep=2'), with names "
    + ", ".join(ADAPTOR_CLASSES)
)


def _parse_item(item: str) -> Adaptor:
    name, sep, rest = item.partition("=")
    name = name.strip()
    if not sep or not name:
        raise ValueError(f"malformed adaptor {item!r} in spec: {_SPEC_HELP}")
    if name not in ADAPTOR_CLASSES:
        raise ValueError(f"unknown adaptor {name!r} in spec: {_SPEC_HELP}")
    value_text, _, option = rest.partition(":")
    min_keep = 1
    if option:
        key, sep, keep_text = option.partition("=")
        if key.strip() != "min_tokens_to_keep" or not sep:
            raise ValueError(f"malformed option {option!r} of {name!r} in spec: {_SPEC_HELP}")
        try:
            min_keep = int(keep_text.strip())
        except ValueError:
            raise ValueError(
                f"`min_tokens_to_keep` of {name!r} must be an integer >= 1, got {keep_text!r}"
            ) from None
    cls = ADAPTOR_CLASSES[name]
    value_text = value_text.strip()
    try:
        if cls.integer:
            value: float | int = int(value_text)
        else:
            value = float(value_text)
    except ValueError:
        kind = "an integer" if cls.integer else "a number"
        raise ValueError(f"`{name}` must be {kind}, got {value_text!r} in spec") from None
    return cls(value, min_tokens_to_keep=min_keep)


class AdaptorChain:
    """Adaptors applied in the written order; the empty chain is ancestral sampling.

    Build with ``AdaptorChain.parse("temperature=0.7,top_p=0.9")`` or from objects,
    ``AdaptorChain([Temperature(0.7), TopP(0.9)])``. ``str(chain)`` round-trips through ``parse``
    and is the configuration's name in a run.
    """

    def __init__(self, adaptors: Iterable[Adaptor] = ()) -> None:
        adaptors = tuple(adaptors)
        for a in adaptors:
            if not isinstance(a, Adaptor):
                raise TypeError(f"`adaptors` must hold Adaptor objects, got {type(a).__name__}")
        self.adaptors: tuple[Adaptor, ...] = adaptors
        self._core = _core.Chain([a._triple() for a in adaptors])

    @classmethod
    def parse(cls, spec: str) -> AdaptorChain:
        """Parse a spec string (see the class docstring); raises ``ValueError`` on a bad spec."""
        if not isinstance(spec, str):
            raise TypeError(f"`spec` must be a string, got {type(spec).__name__}")
        text = spec.strip()
        if text in ("", "ancestral"):
            return cls(())
        items = text.split(",")
        if any(not item.strip() for item in items):
            raise ValueError(f"empty adaptor in spec {spec!r}: {_SPEC_HELP}")
        return cls(_parse_item(item) for item in items)

    @classmethod
    def coerce(cls, chain: AdaptorChain | str | Adaptor) -> AdaptorChain:
        """A chain from a chain, a spec string, or a single adaptor."""
        if isinstance(chain, AdaptorChain):
            return chain
        if isinstance(chain, str):
            return cls.parse(chain)
        if isinstance(chain, Adaptor):
            return cls((chain,))
        raise TypeError(
            "`chains` entries must be AdaptorChain, Adaptor or spec strings, "
            f"got {type(chain).__name__}"
        )

    def __str__(self) -> str:
        return ",".join(str(a) for a in self.adaptors) if self.adaptors else "ancestral"

    def split_temperature(self) -> tuple[AdaptorChain, float]:
        """The chain without its temperature adaptors (its *family*) and their combined
        temperature (the product; 1.0 when there is none), e.g. for colouring a grid:

        >>> AdaptorChain.parse("temperature=1.5,top_p=0.9").split_temperature()
        (AdaptorChain.parse('top_p=0.9'), 1.5)
        """
        temperature = 1.0
        for a in self.adaptors:
            if isinstance(a, Temperature):
                temperature *= float(a.value)
        rest = [a for a in self.adaptors if not isinstance(a, Temperature)]
        return type(self)(rest), temperature

    def __repr__(self) -> str:
        return f"AdaptorChain.parse({str(self)!r})"

    def __iter__(self):
        return iter(self.adaptors)

    def __len__(self) -> int:
        return len(self.adaptors)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AdaptorChain) and other.adaptors == self.adaptors

    def __hash__(self) -> int:
        return hash(self.adaptors)

    def apply(self, logits: Any) -> Any:
        """The adapted logits: same values as the input (divided by any temperature) on the
        support, ``-inf`` elsewhere. ``[V]`` or ``[B, V]``, numpy or torch."""
        rows = _Rows.of(logits)
        out = _core.apply(rows.array, [self._core], False)
        return rows.wrap(out)

    def log_probs(self, logits: Any) -> Any:
        """Normalised log-probabilities of the adapted distribution (``-inf`` off the support)."""
        rows = _Rows.of(logits)
        out = _core.apply(rows.array, [self._core], True)
        return rows.wrap(out)


# ---------------------------------------------------------------------------------------------
# input conversion: numpy or torch, [V] or [B, V], float16/bfloat16/float32/float64 -> float32


def _is_torch(x: Any) -> bool:
    return type(x).__module__.split(".")[0] == "torch"


_FLOAT_HELP = "float32, float16, bfloat16 or float64"


@dataclass
class _Rows:
    """A ``[B, V]`` C-contiguous float32 view of the input, and how to give results back."""

    array: np.ndarray
    one_row: bool
    torch_like: Any | None  # the input tensor when it was torch
    float64: bool

    @classmethod
    def of(cls, logits: Any, name: str = "logits") -> _Rows:
        torch_like = None
        if _is_torch(logits):
            import torch

            torch_like = logits
            t = logits.detach()
            if not t.is_floating_point():
                raise TypeError(f"`{name}` must be floating point ({_FLOAT_HELP}), got {t.dtype}")
            float64 = t.dtype == torch.float64
            if t.dtype != torch.float32:
                t = t.to(torch.float32)
            array = t.cpu().numpy()
        elif isinstance(logits, np.ndarray):
            if logits.dtype.kind != "f":
                raise TypeError(
                    f"`{name}` must be floating point ({_FLOAT_HELP}), got {logits.dtype}"
                )
            float64 = logits.dtype == np.float64
            array = logits
        else:
            raise TypeError(
                f"`{name}` must be a numpy array or a torch tensor, got {type(logits).__name__}"
            )
        if array.ndim not in (1, 2):
            raise ValueError(f"`{name}` must have shape [V] or [B, V], got shape {array.shape}")
        if array.size == 0:
            raise ValueError(f"`{name}` is empty (shape {array.shape}); B and V must be >= 1")
        one_row = array.ndim == 1
        array = np.ascontiguousarray(array.reshape(1, -1) if one_row else array, dtype=np.float32)
        return cls(array, one_row, torch_like, float64)

    def wrap(self, out: np.ndarray) -> Any:
        """Per-token output (``[B, V]``) back in the input's shape and library."""
        if self.float64:
            out = out.astype(np.float64)
        if self.one_row:
            out = out[0]
        return self._to_library(out)

    def wrap_rows(self, out: np.ndarray) -> Any:
        """Per-row output (``[B]``) in the input's library; a 0-d array for ``[V]`` input."""
        if self.one_row:
            out = out.reshape(())
        return self._to_library(out)

    def _to_library(self, out: np.ndarray) -> Any:
        if self.torch_like is None:
            return out
        import torch

        return torch.from_numpy(np.ascontiguousarray(out)).to(self.torch_like.device)

    @property
    def n(self) -> int:
        return self.array.shape[0]


def _core_chains(chains: Any) -> list:
    if isinstance(chains, (AdaptorChain, str, Adaptor)):
        return [AdaptorChain.coerce(chains)._core]
    if isinstance(chains, Sequence):
        # the core checks the count (one, or one per row)
        cache: dict[int, Any] = {}
        out = []
        for c in chains:
            key = id(c)
            if key not in cache:
                cache[key] = AdaptorChain.coerce(c)._core
            out.append(cache[key])
        return out
    raise TypeError(
        "`chains` must be an AdaptorChain, a spec string, or a sequence of them (one per row), "
        f"got {type(chains).__name__}"
    )


def _u64_per_row(name: str, values: Any, rows: int, *, broadcast: bool) -> np.ndarray:
    if _is_torch(values):
        values = values.detach().cpu().numpy()
    if isinstance(values, (bool, np.bool_)):
        raise TypeError(f"`{name}` must hold integers in [0, 2**64), got a bool")
    arr = np.asarray(values)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"`{name}` must hold integers in [0, 2**64), got dtype {arr.dtype}")
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1 or (len(arr) != rows and not (broadcast and len(arr) == 1)):
        expected = f"one, or one per row ({rows})" if broadcast else f"one per row ({rows})"
        raise ValueError(f"`{name}` must have {expected} entries, got shape {arr.shape}")
    if arr.dtype.kind == "i" and (arr < 0).any():
        raise ValueError(f"`{name}` must hold integers in [0, 2**64), got {int(arr.min())}")
    return np.ascontiguousarray(arr, dtype=np.uint64)


@dataclass(frozen=True)
class SampleResult:
    """One draw per row.

    tokens: sampled token ids (int64). logp_adapted: log-probability of the token under the
    adapted, renormalised distribution. logp_base: under the raw row (log-softmax at the token).
    support_size: number of tokens the adapted distribution keeps. float64 log-probabilities.
    """

    tokens: Any
    logp_adapted: Any
    logp_base: Any
    support_size: Any


@dataclass(frozen=True)
class ScoreResult:
    """Per position: logp_base (raw row), logp_adapted (``-inf`` outside the adapted support) and
    in_support."""

    logp_base: Any
    logp_adapted: Any
    in_support: Any


def sample(
    logits: Any,
    chains: Any,
    *,
    seed: int,
    streams: Any = None,
    steps: Any = 0,
) -> SampleResult:
    """Adapt each row with its chain and draw one token, in one fused pass per row.

    Row ``i``'s draw is a pure function of ``(seed, streams[i], steps[i])`` (Philox4x32-10), so the
    same seed gives the same token whatever the batch size, row order or thread count.

    Args:
        logits: ``[V]`` or ``[B, V]`` numpy array or torch tensor (float16, bfloat16, float32,
            float64).
        chains: one chain (AdaptorChain, Adaptor or spec string) for all rows, or one per row.
        seed: integer in [0, 2**64).
        streams: one integer per row (e.g. derived from prompt, sample and configuration);
            defaults to the row index, which makes draws depend on row position.
        steps: one integer for all rows or one per row (e.g. the decoding step).
    """
    rows = _Rows.of(logits)
    core_chains = _core_chains(chains)
    seed = check_seed(seed)
    if streams is None:
        streams = np.arange(rows.n, dtype=np.uint64)
    streams_arr = _u64_per_row("streams", streams, rows.n, broadcast=False)
    steps_arr = _u64_per_row("steps", steps, rows.n, broadcast=True)
    tokens, logp_adapted, logp_base, support = _core.sample(
        rows.array, core_chains, seed, streams_arr, steps_arr
    )
    return SampleResult(
        tokens=rows.wrap_rows(tokens),
        logp_adapted=rows.wrap_rows(logp_adapted),
        logp_base=rows.wrap_rows(logp_base),
        support_size=rows.wrap_rows(support),
    )


def score_tokens(logits: Any, targets: Any, chains: Any) -> ScoreResult:
    """Teacher-forced scores of ``targets[i]`` under row ``i``, raw and adapted.

    The fused counterpart of :func:`sample`: ``[N, V]`` logits (one row per position) and ``[N]``
    target ids; returns ``logp_base``, ``logp_adapted`` (``-inf`` when the target is outside the
    adapted support) and ``in_support``. Agrees with ``chain.log_probs(logits)`` at the targets.
    """
    rows = _Rows.of(logits)
    core_chains = _core_chains(chains)
    if _is_torch(targets):
        targets = targets.detach().cpu().numpy()
    tarr = np.asarray(targets)
    if tarr.dtype.kind not in "iu":
        raise TypeError(f"`targets` must hold integer token ids, got dtype {tarr.dtype}")
    tarr = tarr.reshape(-1) if tarr.ndim == 0 else tarr
    if tarr.ndim != 1 or len(tarr) != rows.n:
        raise ValueError(
            f"`targets` must have one entry per row of `logits` ({rows.n}), got shape {tarr.shape}"
        )
    if tarr.dtype == np.uint64 and (tarr > np.iinfo(np.int64).max).any():
        raise ValueError(f"`targets` must lie in [0, {rows.array.shape[1]})")
    tarr = np.ascontiguousarray(tarr, dtype=np.int64)
    logp_base, logp_adapted, in_support = _core.score_tokens(rows.array, tarr, core_chains)
    return ScoreResult(
        logp_base=rows.wrap_rows(logp_base),
        logp_adapted=rows.wrap_rows(logp_adapted),
        in_support=rows.wrap_rows(in_support),
    )


class LogitsProcessor:
    """Plug an adaptor chain into ``transformers``' ``generate()``.

    >>> from transformers import LogitsProcessorList
    >>> model.generate(**inputs, do_sample=True, top_k=0, top_p=1.0,  # doctest: +SKIP
    ...                logits_processor=LogitsProcessorList([LogitsProcessor("top_p=0.9")]))

    Pass ``top_k=0`` (and no temperature / top_p of generate's own): ``generate`` otherwise adds
    its default ``top_k=50``. Scores come back on their device and in their dtype.
    """

    def __init__(self, chain: AdaptorChain | str | Adaptor) -> None:
        self.chain = AdaptorChain.coerce(chain)

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        out = self.chain.apply(scores)
        return out.to(device=scores.device, dtype=scores.dtype)

    def __repr__(self) -> str:
        return f"LogitsProcessor({str(self.chain)!r})"
