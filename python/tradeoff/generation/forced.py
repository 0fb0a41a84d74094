"""The draw inside another engine's sampler: each request's row is adapted with its own
:class:`~tradeoff.AdaptorChain` and its token drawn by :func:`tradeoff.sample` from the stream
``(seed, stream, step)`` — the Hugging Face backend's streams, ``step`` the tokens the request has
drawn so far — and then forced (every other logit -inf), so that the engine's own sampler, at
temperature 1 and no truncation, can only take it. log pi (raw row) and log q (adapted row) of
each drawn token go to a *sink*, a file of fixed-size records that the backend reads when the
engine returns.

This module knows nothing of vLLM: :class:`ForcedDraws` follows a persistent batch through the
duck-typed updates of vLLM's V1 ``BatchUpdate`` (``removed`` indices, ``added`` ``(index,
params, ..., output_token_ids)`` tuples, ``moved`` ``(a, b, directionality)``, applied in that
order), and :mod:`tradeoff.generation.vllm_backend` wraps it in vLLM's ``LogitsProcessor``.

A request's settings travel in ``SamplingParams.extra_args["tradeoff"]``:
``{"key", "chain", "seed", "stream", "sink"}`` (:func:`request_args`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..adaptors import AdaptorChain
from ..adaptors import sample as sample_tokens
from ..errors import check_seed

__all__ = [
    "EXTRA_KEY",
    "RECORD",
    "ForcedDraws",
    "check_sampling_params",
    "read_sink",
    "request_args",
]

# The key of a request's settings in SamplingParams.extra_args.
EXTRA_KEY = "tradeoff"

# One drawn token: which request (the backend's key), its step, the token, log pi, log q.
RECORD = np.dtype(
    [
        ("key", "<u8"),
        ("step", "<u8"),
        ("token", "<i8"),
        ("logp_aligned", "<f8"),
        ("logp_adapted", "<f8"),
    ]
)


def request_args(*, key: int, chain: AdaptorChain | str, seed: int, stream: int, sink: str) -> dict:
    """The ``extra_args`` entry of one request."""
    return {
        EXTRA_KEY: {
            "key": int(key),
            "chain": str(AdaptorChain.coerce(chain)),
            "seed": check_seed(seed),
            "stream": int(stream),
            "sink": str(sink),
        }
    }


def _settings(params: Any) -> dict | None:
    extra = getattr(params, "extra_args", None) or {}
    return extra.get(EXTRA_KEY)


# What must hold of the engine's own sampling for its sampler to take the forced token as it
# is (nothing may compose after ours): (attribute, accepted values).
_NEUTRAL = (
    ("temperature", (1.0,)),
    ("top_p", (1.0,)),
    ("top_k", (0, -1, None)),
    ("min_p", (0.0,)),
    ("repetition_penalty", (1.0,)),
    ("presence_penalty", (0.0,)),
    ("frequency_penalty", (0.0,)),
    ("logit_bias", (None, {})),
    ("allowed_token_ids", (None, [])),
    ("bad_words", (None, [])),
)


def check_sampling_params(params: Any) -> None:
    """For a request carrying tradeoff's settings: the engine's temperature 1, its truncation,
    penalties and biases off (ValueError naming the setting otherwise)."""
    settings = _settings(params)
    if settings is None:
        return
    missing = {"key", "chain", "seed", "stream", "sink"} - set(settings)
    if missing:
        raise ValueError(f"extra_args[{EXTRA_KEY!r}] lacks {', '.join(sorted(missing))}")
    AdaptorChain.parse(settings["chain"])
    check_seed(settings["seed"])
    for name, accepted in _NEUTRAL:
        if hasattr(params, name) and getattr(params, name) not in accepted:
            raise ValueError(
                f"a request drawn by tradeoff's adaptors needs the engine's {name} in "
                f"{accepted}, got {getattr(params, name)!r} (the adaptors are tradeoff's; "
                "nothing may compose after them)"
            )


@dataclass
class _Request:
    key: int
    chain: AdaptorChain
    seed: int
    stream: int
    sink: str
    # The engine's running list of the request's drawn tokens (a reference: it grows as the
    # engine appends), so its length is the step of the next draw.
    output: list[int]


class ForcedDraws:
    """The per-row state of a persistent batch and the forced draw of its rows.

    ``record``: write the sink (False on all but one of several workers that draw the same
    tokens, e.g. the ranks of a tensor-parallel group).
    """

    def __init__(
        self, record: bool = True, transfer_dtype: Any = None, pin_memory: bool = False
    ) -> None:
        self.record = record
        # The rows travel to the host in this dtype (the model's, e.g. bfloat16, half the bytes
        # of the engine's float32) when that loses nothing: checked on the first draw, since
        # the engine widened the model's logits; None: as given.
        self.transfer_dtype = transfer_dtype
        self._lossless: bool | None = None
        self.pin_memory = pin_memory
        self._buffer: Any = None
        self.rows: dict[int, _Request] = {}
        # Seconds spent in apply: the copy to the host, the draw, the forcing (on the device);
        # written as JSON every 50 draws to $TRADEOFF_PROCESSOR_TIMING when it is set (the
        # processor runs in vLLM's engine process: benches/vllm_vs_hf.py reads it there).
        self.timing = {"calls": 0, "rows": 0, "copy_s": 0.0, "draw_s": 0.0, "force_s": 0.0}
        self._timing_path = os.environ.get("TRADEOFF_PROCESSOR_TIMING")
        self._chains: dict[str, AdaptorChain] = {}
        self._sinks: dict[str, Any] = {}

    # --- the batch ----------------------------------------------------------------------------

    def update(self, batch_update: Any) -> None:
        """Follows one ``BatchUpdate`` (None: the batch did not change): removals, then
        additions (which may replace a row), then moves (one-way or swaps)."""
        if batch_update is None:
            return
        for index in batch_update.removed:
            self.rows.pop(index, None)
        for added in batch_update.added:
            index, params, output = added[0], added[1], added[-1]
            settings = _settings(params)
            if settings is None:
                self.rows.pop(index, None)  # not ours: the engine samples it as it would
                continue
            self.rows[index] = _Request(
                key=int(settings["key"]),
                chain=self._chain(settings["chain"]),
                seed=int(settings["seed"]),
                stream=int(settings["stream"]),
                sink=str(settings["sink"]),
                output=output,
            )
        for a, b, direction in batch_update.moved:
            if getattr(direction, "name", str(direction)).upper().endswith("SWAP"):
                first, second = self.rows.pop(a, None), self.rows.pop(b, None)
                if first is not None:
                    self.rows[b] = first
                if second is not None:
                    self.rows[a] = second
            else:
                moved = self.rows.pop(a, None)
                self.rows.pop(b, None)
                if moved is not None:
                    self.rows[b] = moved

    def _chain(self, spec: str) -> AdaptorChain:
        if spec not in self._chains:
            self._chains[spec] = AdaptorChain.parse(spec)
        return self._chains[spec]

    # --- the draw -----------------------------------------------------------------------------

    def apply(self, logits: Any) -> Any:
        """Draws the token of each of our rows of ``logits`` ([rows, V], a torch tensor on any
        device), records it, and forces it: the row becomes -inf but 0 at the token. Other rows
        are left as they are. Returns ``logits`` (changed in place)."""
        if not self.rows:
            return logits
        import torch

        index = sorted(self.rows)
        if index[-1] >= logits.shape[0]:
            raise RuntimeError(
                f"batch row {index[-1]} is beyond the {logits.shape[0]} rows of logits: the "
                "batch updates were not followed"
            )
        requests = [self.rows[i] for i in index]
        rows = torch.tensor(index, dtype=torch.long, device=logits.device)
        start = time.perf_counter()
        host = self._to_host(logits.index_select(0, rows))
        copied = time.perf_counter()
        seeds = {r.seed for r in requests}
        tokens = np.empty(len(requests), dtype=np.int64)
        logp_base = np.empty(len(requests))
        logp_adapted = np.empty(len(requests))
        steps = np.fromiter((len(r.output) for r in requests), np.uint64, len(requests))
        for seed in seeds:  # one seed per run in practice; one call per seed otherwise
            part = [j for j, r in enumerate(requests) if r.seed == seed]
            draw = sample_tokens(
                host[part] if len(part) < len(requests) else host,
                [requests[j].chain for j in part],
                seed=seed,
                streams=np.fromiter((requests[j].stream for j in part), np.uint64, len(part)),
                steps=steps[part],
            )
            tokens[part] = np.asarray(draw.tokens, dtype=np.int64)
            logp_base[part] = np.asarray(draw.logp_base, dtype=np.float64)
            logp_adapted[part] = np.asarray(draw.logp_adapted, dtype=np.float64)
        if self.record:
            self._write(requests, steps, tokens, logp_base, logp_adapted)
        drawn = time.perf_counter()
        chosen = torch.as_tensor(tokens, device=logits.device)
        logits.index_fill_(0, rows, float("-inf"))
        logits[rows, chosen] = 0.0
        self._time(len(requests), start, copied, drawn)
        return logits

    def _time(self, n: int, start: float, copied: float, drawn: float) -> None:
        t = self.timing
        t["calls"] += 1
        t["rows"] += n
        t["copy_s"] += copied - start
        t["draw_s"] += drawn - copied
        t["force_s"] += time.perf_counter() - drawn
        if self._timing_path and t["calls"] % 50 == 0:
            Path(self._timing_path).write_text(json.dumps(t))

    def _to_host(self, rows: Any) -> Any:
        """One copy of the rows to the host, where the Rust sampler reads them."""
        import torch

        if self.transfer_dtype is not None and self._lossless is not False:
            narrow = rows.to(self.transfer_dtype)
            if self._lossless is None:
                self._lossless = bool(torch.equal(narrow.to(rows.dtype), rows))
            if self._lossless:
                rows = narrow
        if rows.device.type == "cpu":
            return rows
        if not self.pin_memory:
            return rows.to("cpu")
        n, v = rows.shape
        buffer = self._buffer
        if (
            buffer is None
            or buffer.shape[0] < n
            or buffer.shape[1] != v
            or buffer.dtype != rows.dtype
        ):
            buffer = self._buffer = torch.empty(
                (max(n, 2 * (buffer.shape[0] if buffer is not None else 0)), v),
                dtype=rows.dtype,
                pin_memory=True,
            )
        host = buffer[:n]
        host.copy_(rows, non_blocking=True)
        torch.cuda.current_stream(rows.device).synchronize()
        return host

    def _write(
        self,
        requests: list[_Request],
        steps: np.ndarray,
        tokens: np.ndarray,
        logp_base: np.ndarray,
        logp_adapted: np.ndarray,
    ) -> None:
        out = np.empty(len(requests), dtype=RECORD)
        out["key"] = [r.key for r in requests]
        out["step"] = steps
        out["token"] = tokens
        out["logp_aligned"] = logp_base
        out["logp_adapted"] = logp_adapted
        sinks = [r.sink for r in requests]
        for sink in set(sinks):
            if sink not in self._sinks:
                # Unbuffered: each write reaches the file before the engine returns its token.
                self._sinks[sink] = open(sink, "ab", buffering=0)  # noqa: SIM115
            part = out if len(set(sinks)) == 1 else out[np.array([s == sink for s in sinks])]
            self._sinks[sink].write(part.tobytes())

    def close(self) -> None:
        for handle in self._sinks.values():
            handle.close()
        self._sinks = {}


def read_sink(path: str | os.PathLike, keys: Iterable[int]) -> dict[int, dict[int, np.void]]:
    """The records of a sink by key and step, the last written winning (a draw the engine
    discarded — a partial prefill's — is drawn again at the same step, later). Keys not in
    ``keys`` are left out."""
    wanted = set(int(k) for k in keys)
    path = Path(path)
    data = np.fromfile(path, dtype=RECORD) if path.exists() else np.empty(0, dtype=RECORD)
    out: dict[int, dict[int, np.void]] = {k: {} for k in wanted}
    for record in data:
        key = int(record["key"])
        if key in wanted:
            out[key][int(record["step"])] = record
    return out
