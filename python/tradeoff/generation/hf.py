"""The Hugging Face backend: a decode engine with the model's forward pass and KV cache in torch,
and the adaptors and the draw in Rust (:func:`tradeoff.sample`).

**Continuous batching with fixed slots.** A shard's work items are admitted into at most
``batch_size`` rows in flight (longest context first); when rows finish (EOS, a stop string,
the length cap, the model's positions), the next items take their slots: their prompts are
prefilled together and their KV entries merged into the running cache, left-padded, with each
row's own ``position_ids`` and attention mask; the leading columns no active row uses are
trimmed. A row's token at step t is drawn from the stream ``(seed, stream, t)``, so the order of
admission and the rows beside it never change a string (up to the float noise of different
batch shapes, as for any batch size). A shard is processed alone, so its batches — and its
floats — are the same in a resumed or multi-process run.

**The sampler beside the forward pass.** On CUDA the slots are split into two groups that
alternate: while one group's forward pass runs on the device (torch launches it asynchronously),
the other group's logits — copied into pinned host memory with a non-blocking copy and an event —
are adapted and sampled on the CPU. Logits travel in the model's dtype (bfloat16 / float16 are
not widened on the device).

**Memory.** ``max_batch_tokens`` bounds the rows' tokens in flight: a row is admitted only when
every row in flight could still grow to its length cap within the budget.
"""

from __future__ import annotations

import inspect
import time
import warnings
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..adaptors import AdaptorChain
from ..adaptors import sample as sample_tokens
from ..errors import ConfigError, TradeoffWarning
from ..models import load_causal_lm, load_tokenizer, model_config, position_limit
from ..models.scoring import logits_to_keep_argument
from .backend import GenerationRequest, GenerationSettings
from .strings import StringPlan, end_reason, string_record, total_cap
from .templates import format_prompt
from .work import Prompt, WorkItem

__all__ = ["Generator", "check_contexts", "check_request", "open_backend"]


def _new_cache(model: Any) -> Any:
    """An empty dynamic KV cache that the forward passes fill in place."""
    from transformers import DynamicCache

    try:
        return DynamicCache(config=model.config)
    except TypeError:  # transformers 4.x
        return DynamicCache()


@dataclass
class _Row:
    item: WorkItem
    stream: int
    context_ids: list[int]
    # The most tokens this row may draw (max_new_tokens, or fewer when the model's positions or
    # the authors' length cap, which counts the prompt, end it first).
    budget: int
    # The tokens a row holds at most, context included (what its KV entries can grow to).
    reach: int
    tokens: list[int] = field(default_factory=list)
    logp_aligned: list[float] = field(default_factory=list)
    logp_adapted: list[float] = field(default_factory=list)
    stop_reason: str = "length"


@dataclass
class EngineStats:
    """What the engine spent its time on (seconds, summed over the run) and how full it was."""

    steps: int = 0
    forwards: int = 0
    prefills: int = 0
    row_steps: int = 0  # rows sampled, summed over steps (tokens drawn)
    slot_steps: int = 0  # slots available, summed over steps
    sample_seconds: float = 0.0  # the Rust sampler and the rows' bookkeeping (CPU)
    wait_seconds: float = 0.0  # the host waiting for the device's logits
    forward_seconds: float = 0.0  # launching (CUDA) or running (CPU) the forward passes
    device_idle_seconds: float | None = None  # CUDA: gaps between the device's forward passes
    device_busy_seconds: float | None = None
    peak_rows: int = 0  # the most rows in flight at once
    # The most tokens reserved at once: rows x the longest a row in its group may grow to (what
    # max_batch_tokens bounds).
    peak_reserved_tokens: int = 0

    @property
    def occupancy(self) -> float:
        return self.row_steps / self.slot_steps if self.slot_steps else 0.0

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items()}
        out["occupancy"] = self.occupancy
        return out


class _Group:
    """Rows in flight that share one KV cache, with their pending logits."""

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self.rows: list[_Row] = []
        self.cache: Any = None
        self.mask: torch.Tensor | None = None  # [B, T] on the device
        self.last_position: torch.Tensor | None = None  # [B] on the device
        self.logits: torch.Tensor | None = None  # [B, V] on the host once ready
        self.ready: Any = None  # CUDA event: the host copy of `logits` is complete
        self.buffer: torch.Tensor | None = None  # pinned host memory for the copies


def _layers(cache: Any) -> list[Any] | None:
    """The cache's layers when every one is a plain growing layer that can be padded and
    merged (not a sliding window, not quantised), else None."""
    try:
        from transformers.cache_utils import DynamicLayer
    except ImportError:  # pragma: no cover - transformers 4.x
        return None
    layers = getattr(cache, "layers", None)
    if not layers or any(type(layer) is not DynamicLayer for layer in layers):
        return None
    return list(layers)


class _DeviceTiming:
    """CUDA events around the device's work (forward passes and logits copies), read once at
    the end of a shard: the device is idle in the gaps between them (it waits for the host)."""

    def __init__(self, cuda: bool) -> None:
        self.cuda = cuda
        self.events: list[tuple[Any, Any]] = []
        self._start: Any = None

    def before(self) -> None:
        if self.cuda:
            self._start = torch.cuda.Event(enable_timing=True)
            self._start.record()

    def after(self) -> None:
        if self.cuda:
            end = torch.cuda.Event(enable_timing=True)
            end.record()
            self.events.append((self._start, end))

    def finish(self, stats: EngineStats) -> None:
        if not self.events:
            return
        self.events[-1][1].synchronize()
        busy = sum(a.elapsed_time(b) for a, b in self.events) / 1e3
        span = self.events[0][0].elapsed_time(self.events[-1][1]) / 1e3
        stats.device_busy_seconds = (stats.device_busy_seconds or 0.0) + busy
        stats.device_idle_seconds = (stats.device_idle_seconds or 0.0) + max(span - busy, 0.0)
        self.events = []


def _reserved(group: _Group) -> int:
    """Tokens a group reserves: its rows x the longest any of them may grow to."""
    return len(group.rows) * max((r.reach for r in group.rows), default=0)


def _pad_left(x: torch.Tensor, width: int) -> torch.Tensor:
    """``x`` [B, H, T, D] with ``width - T`` zero columns in front of T."""
    extra = width - x.shape[-2]
    if extra == 0:
        return x
    pad = x.new_zeros((*x.shape[:-2], extra, x.shape[-1]))
    return torch.cat([pad, x], dim=-2)


class Generator(StringPlan):
    """Generates shards of work items with one model and a list of adaptor configurations."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        prompts: Sequence[Prompt],
        chains: Sequence[AdaptorChain | str],
        settings: GenerationSettings,
        names: Sequence[str] | None = None,
    ) -> None:
        super().__init__(
            tokenizer,
            prompts,
            chains,
            settings,
            names,
            model_eos=getattr(getattr(model, "generation_config", None), "eos_token_id", None),
            max_positions=position_limit(model.config.to_dict()),
        )
        self.model = model
        # transformers 5 names the forward argument `cache`; 4.x named it `past_key_values`.
        parameters = inspect.signature(model.forward).parameters
        self._cache_argument = "cache" if "cache" in parameters else "past_key_values"
        # Only the last position's logits are needed after the prompt (older names, or none).
        keep = logits_to_keep_argument(model)
        self._last_logits_only = {keep: 1} if keep else {}
        self.pad_id = tokenizer.pad_token_id
        if self.pad_id is None:
            self.pad_id = self.eos_ids[0] if self.eos_ids else 0
        self.device = next(model.parameters()).device
        self.cuda = self.device.type == "cuda"
        self.name = "hf"
        self.identity: dict[str, Any] = {}
        self.stats = EngineStats()
        self._merge_ok: bool | None = None

    # --- the engine ---------------------------------------------------------------------------

    def _new_row(self, item: WorkItem) -> _Row:
        context = self.context_ids(item.prompt_index)
        budget = self.budget(len(context))
        stream = self.stream(item)
        return _Row(item, stream, context, budget, len(context) + budget)

    def _groups(self, n_items: int) -> list[_Group]:
        slots = min(self.settings.batch_size or n_items, n_items)
        overlap = self.settings.overlap
        if overlap is None:
            overlap = self.cuda
        if overlap and slots >= 2:
            return [_Group(slots - slots // 2), _Group(slots // 2)]
        return [_Group(slots)]

    @torch.inference_mode()
    def run_batch(self, items: Sequence[WorkItem]) -> list[dict[str, Any]]:
        """Generates one shard of work items (at most ``batch_size`` in flight at a time) and
        returns one record per item, in the items' order."""
        rows = [self._new_row(i) for i in items]
        # Longest context first: the long prompts start early, and later admissions are shorter
        # than the cache they join.
        queue = deque(sorted(range(len(rows)), key=lambda r: -len(rows[r].context_ids)))
        groups = self._groups(len(rows))
        timing = _DeviceTiming(self.cuda)
        try:
            while queue or any(g.rows for g in groups):
                for group in groups:
                    self._advance(group, groups, rows, queue, timing)
        except torch.cuda.OutOfMemoryError:
            slots = sum(g.slots for g in groups)
            budget = self.settings.max_batch_tokens
            within = f" and max_batch_tokens {budget}" if budget else ""
            raise ConfigError(
                f"out of device memory with {slots} strings in flight{within}: lower batch_size "
                "(--batch-size) or set a smaller max_batch_tokens (--max-batch-tokens)"
            ) from None
        timing.finish(self.stats)
        return [self._record(r) for r in rows]

    def _advance(
        self,
        group: _Group,
        groups: list[_Group],
        rows: list[_Row],
        queue: deque[int],
        timing: Any,
    ) -> None:
        """One step of one group: sample its pending logits, drop its finished rows, launch the
        decode step of the others, admit new rows into the free slots, and start the copy of the
        next logits to the host."""
        decoded = None
        if group.rows:
            start = time.perf_counter()
            if group.ready is not None:
                group.ready.synchronize()
            self.stats.wait_seconds += time.perf_counter() - start
            start = time.perf_counter()
            keep = self._sample(group)
            self.stats.sample_seconds += time.perf_counter() - start
            self.stats.steps += 1
            self.stats.slot_steps += group.slots
            start = time.perf_counter()
            if len(keep) < len(group.rows):
                self._select(group, keep)
            if group.rows:
                decoded = self._decode(group, timing)
            self.stats.forward_seconds += time.perf_counter() - start
        start = time.perf_counter()
        admitted = self._admit(group, groups, rows, queue, timing)
        self.stats.forward_seconds += time.perf_counter() - start
        parts = [x for x in (decoded, admitted) if x is not None]
        if not parts:
            group.logits = group.ready = None
            return
        logits = parts[0] if len(parts) == 1 else torch.cat(parts, dim=0)
        self._to_host(group, logits, timing)

    def _sample(self, group: _Group) -> list[int]:
        """Draws one token for each row of the group; returns the indices of the rows that go
        on."""
        assert group.logits is not None
        active = group.rows
        draw = sample_tokens(
            group.logits,
            [self.chains[r.item.config_index] for r in active],
            seed=self.settings.seed,
            streams=np.fromiter((r.stream for r in active), dtype=np.uint64, count=len(active)),
            steps=np.fromiter((len(r.tokens) for r in active), dtype=np.uint64, count=len(active)),
        )
        tokens = draw.tokens.tolist()
        logp_base = draw.logp_base.tolist()
        logp_adapted = draw.logp_adapted.tolist()
        self.stats.row_steps += len(active)
        keep: list[int] = []
        for j, row in enumerate(active):
            row.tokens.append(tokens[j])
            row.logp_aligned.append(float(logp_base[j]))
            row.logp_adapted.append(float(logp_adapted[j]))
            # length: max_new_tokens, the length cap or the model's positions (unfinished)
            reason = end_reason(
                row.tokens,
                eos=self.eos_ids,
                stop_strings=self.settings.stop_strings,
                budget=row.budget,
                tokenizer=self.tokenizer,
            )
            if reason is None:
                keep.append(j)
            else:
                row.stop_reason = reason
        return keep

    def _select(self, group: _Group, keep: list[int]) -> None:
        """Keeps rows ``keep`` of the group (its cache, mask and positions too)."""
        group.rows = [group.rows[j] for j in keep]
        if not keep:
            group.cache = group.mask = group.last_position = None
            return
        index = torch.tensor(keep, device=self.device)
        group.cache.batch_select_indices(index)
        assert group.mask is not None and group.last_position is not None
        group.mask = group.mask[index]
        group.last_position = group.last_position[index]
        self._trim(group)

    def _trim(self, group: _Group) -> None:
        """Drops the leading cache columns that no row in flight attends to."""
        assert group.mask is not None
        layers = _layers(group.cache)
        if layers is None:
            return
        # Row r's cache holds its context and its tokens but the last (the next input): counted
        # on the host, so that CUDA need not be synchronised.
        used = max(len(r.context_ids) + len(r.tokens) - 1 for r in group.rows)
        first = group.mask.shape[1] - used
        if first <= 0:
            return
        for layer in layers:
            layer.keys = layer.keys[..., first:, :]
            layer.values = layer.values[..., first:, :]
        group.mask = group.mask[:, first:]

    def _decode(self, group: _Group, timing: Any) -> torch.Tensor:
        """Launches the decode step of the group's rows (each with its last token); returns
        the logits (on the device)."""
        assert group.mask is not None and group.last_position is not None
        next_ids = torch.tensor([[r.tokens[-1]] for r in group.rows]).to(
            self.device, non_blocking=True
        )
        group.mask = torch.cat([group.mask, torch.ones_like(group.mask[:, :1])], dim=1)
        group.last_position = group.last_position + 1
        timing.before()
        out = self.model(
            input_ids=next_ids,
            attention_mask=group.mask,
            position_ids=group.last_position[:, None],
            use_cache=True,
            **{self._cache_argument: group.cache},
        )
        timing.after()
        self.stats.forwards += 1
        return out.logits[:, -1, :]

    def _admit(
        self,
        group: _Group,
        groups: list[_Group],
        rows: list[_Row],
        queue: deque[int],
        timing: Any,
    ) -> torch.Tensor | None:
        """Takes work items into the group's free slots (within the token budget), prefills
        them and merges their KV entries into the group's cache; returns their first logits."""
        free = group.slots - len(group.rows)
        if not queue or free <= 0:
            return None
        # Each merge copies the group's cache: admit in bunches of a sixteenth of the slots (the
        # slots stay at least 94% full), one prefill for several rows.
        if group.rows and free < min(len(queue), max(1, group.slots // 16)):
            return None
        if group.rows and not self._can_merge(group.cache):
            return None  # refill only when the group is empty
        chosen: list[_Row] = []
        budget = self.settings.max_batch_tokens
        reach = max((r.reach for r in group.rows), default=0)
        # Tokens the other groups reserve: the budget is shared.
        others = sum(_reserved(g) for g in groups if g is not group)
        while queue and len(group.rows) + len(chosen) < group.slots:
            row = rows[queue[0]]
            wider = max(reach, row.reach)
            reserved = others + (len(group.rows) + len(chosen) + 1) * wider
            if budget is not None and reserved > budget and (others or group.rows or chosen):
                break
            reach = wider
            chosen.append(row)
            queue.popleft()
        if not chosen:
            return None
        width = max(len(r.context_ids) for r in chosen)
        input_ids = torch.full((len(chosen), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(chosen), width), dtype=torch.long)
        for b, r in enumerate(chosen):
            input_ids[b, width - len(r.context_ids) :] = torch.tensor(r.context_ids)
            mask[b, width - len(r.context_ids) :] = 1
        input_ids = input_ids.to(self.device, non_blocking=True)
        mask = mask.to(self.device, non_blocking=True)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = _new_cache(self.model)
        timing.before()
        out = self.model(
            input_ids=input_ids,
            attention_mask=mask,
            position_ids=positions,
            use_cache=True,
            **self._last_logits_only,
            **{self._cache_argument: cache},
        )
        timing.after()
        self.stats.prefills += 1
        logits = out.logits[:, -1, :]
        if not group.rows:
            group.cache, group.mask, group.last_position = cache, mask, positions[:, -1]
        else:
            self._merge(group, cache, mask, positions[:, -1])
        group.rows = group.rows + chosen
        self.stats.peak_rows = max(self.stats.peak_rows, sum(len(g.rows) for g in groups))
        self.stats.peak_reserved_tokens = max(
            self.stats.peak_reserved_tokens, sum(_reserved(g) for g in groups)
        )
        return logits

    def _can_merge(self, cache: Any) -> bool:
        if self._merge_ok is None:
            self._merge_ok = _layers(cache) is not None
            if not self._merge_ok:
                warnings.warn(
                    f"the KV cache of {type(self.model).__name__} cannot be merged (not every "
                    "layer is a plain DynamicLayer); rows are refilled only when a batch empties",
                    TradeoffWarning,
                    stacklevel=4,
                )
        return self._merge_ok

    def _merge(
        self, group: _Group, cache: Any, mask: torch.Tensor, last_position: torch.Tensor
    ) -> None:
        """Appends new rows' cache to the group's, both left-padded to the wider of the two."""
        assert group.mask is not None and group.last_position is not None
        running, joining = _layers(group.cache), _layers(cache)
        assert running is not None and joining is not None
        width = max(group.mask.shape[1], mask.shape[1])
        for a, b in zip(running, joining, strict=True):
            a.keys = torch.cat([_pad_left(a.keys, width), _pad_left(b.keys, width)], dim=0)
            a.values = torch.cat([_pad_left(a.values, width), _pad_left(b.values, width)], dim=0)

        def pad_mask(m: torch.Tensor) -> torch.Tensor:
            extra = width - m.shape[1]
            return m if extra == 0 else torch.cat([m.new_zeros((m.shape[0], extra)), m], dim=1)

        group.mask = torch.cat([pad_mask(group.mask), pad_mask(mask)], dim=0)
        group.last_position = torch.cat([group.last_position, last_position], dim=0)

    def _to_host(self, group: _Group, logits: torch.Tensor, timing: Any) -> None:
        """The group's next logits on the host, in the model's dtype: on CUDA a non-blocking
        copy into pinned memory and an event to wait on."""
        if not self.cuda:
            group.logits, group.ready = logits, None
            return
        n, v = logits.shape
        if group.buffer is None or group.buffer.shape[1] != v or group.buffer.dtype != logits.dtype:
            group.buffer = torch.empty((group.slots, v), dtype=logits.dtype, pin_memory=True)
        host = group.buffer[:n]
        timing.before()
        host.copy_(logits, non_blocking=True)
        timing.after()
        event = torch.cuda.Event()
        event.record()
        group.logits, group.ready = host, event

    def _record(self, row: _Row) -> dict[str, Any]:
        item = row.item
        return string_record(
            prompt=self.prompts[item.prompt_index],
            context=self.contexts[item.prompt_index],
            config=self.configs[item.config_index],
            sample_index=item.sample_index,
            text=self.tokenizer.decode(row.tokens, skip_special_tokens=True),
            tokens=row.tokens,
            stop_reason=row.stop_reason,
            logp_aligned=row.logp_aligned,
            logp_adapted=row.logp_adapted,
        )

    def run(self, batches: Iterable[Sequence[WorkItem]]) -> Iterable[list[dict[str, Any]]]:
        for batch in batches:
            yield self.run_batch(batch)


def check_contexts(
    tokenizer: Any, config: dict[str, Any], prompts: Sequence[Prompt], settings: GenerationSettings
) -> None:
    """EOS ids inside the vocabulary, and every context shorter than the model's positions
    (``max_new_tokens`` beyond them is refused; a warning when a context and
    ``max_new_tokens`` together exceed them: such strings end unfinished at the limit)."""
    size = config.get("vocab_size") or len(tokenizer)
    for token in settings.eos_token_ids or ():
        if not 0 <= token < size:
            raise ConfigError(
                f"`eos_token_id` {token} is outside the model's vocabulary [0, {size})"
            )
    limit = total_cap(position_limit(config), settings.max_total_tokens)
    if limit is None and settings.max_batch_tokens is None:
        return
    if limit is not None and settings.max_new_tokens > limit and settings.max_total_tokens is None:
        raise ConfigError(
            f"`max_new_tokens` {settings.max_new_tokens} is beyond the model's {limit} positions "
            "(context and generated tokens together); give fewer"
        )
    longest = 0
    for prompt in prompts:
        context = format_prompt(tokenizer, settings.template, prompt.text)
        n = len(tokenizer(context, add_special_tokens=True)["input_ids"])
        if limit is not None and n >= limit:
            what = (
                f"the length cap is {limit} tokens, prompt included (max_new_tokens under the "
                "authors' semantics)"
                if limit == settings.max_total_tokens
                else f"the model has {limit} positions (context and generated tokens together)"
            )
            raise ConfigError(
                f"prompt {prompt.id!r} is {n} tokens with its template; {what}: shorten it or "
                "leave it out"
            )
        longest = max(longest, n)
    # A string may grow to its context and max_new_tokens, or to the cap.
    reach = (
        longest + settings.max_new_tokens
        if limit is None
        else min(longest + settings.max_new_tokens, limit)
    )
    if settings.max_batch_tokens is not None and reach > settings.max_batch_tokens:
        raise ConfigError(
            f"`max_batch_tokens` {settings.max_batch_tokens} cannot hold one string: the "
            f"longest context is {longest} tokens and a string may grow to {reach}; raise "
            "max_batch_tokens or lower max_new_tokens"
        )
    if (
        limit is not None
        and longest + settings.max_new_tokens > limit
        and settings.max_total_tokens is None
    ):
        warnings.warn(
            f"the longest context is {longest} tokens and `max_new_tokens` is "
            f"{settings.max_new_tokens}: more than the model's {limit} positions; strings that "
            "reach the limit end there, unfinished",
            TradeoffWarning,
            stacklevel=2,
        )


def check_request(request: GenerationRequest) -> None:
    """Everything that can be checked with the tokenizer and config.json, before the weights
    are loaded."""
    tokenizer = load_tokenizer(request.aligned, trust_remote_code=request.trust_remote_code)
    check_contexts(
        tokenizer, model_config(request.aligned, "aligned model"), request.prompts, request.settings
    )


def open_backend(request: GenerationRequest) -> Generator:
    """Loads the aligned model and returns the Hugging Face loop for ``request``."""
    lm = load_causal_lm(
        request.aligned,
        dtype=request.dtype,
        device=request.device,
        trust_remote_code=request.trust_remote_code,
        what="aligned model",
    )
    generator = Generator(
        lm.model,
        lm.tokenizer,
        request.prompts,
        request.chains,
        request.settings,
        names=request.names,
    )
    generator.identity = {"aligned": lm.identity}
    return generator
