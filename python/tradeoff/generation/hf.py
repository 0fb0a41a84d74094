"""The Hugging Face backend: the model's forward pass with a KV cache in torch, the adaptors and
the draw in Rust (:func:`tradeoff.sample`).

A batch's rows may have different configurations (one chain per row). Each step: the last
position's logits -> float32 on the CPU -> ``tradeoff.sample`` (adapt, draw, and the
log-probabilities of the drawn token under the model, ``log pi``, and under the adapted
distribution, ``log q``) -> tokens back to the device. Finished rows leave the batch and its
cache. A row also ends (unfinished, ``stop_reason = "length"``) when its context and tokens fill
the model's positions.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..adaptors import AdaptorChain
from ..adaptors import sample as sample_tokens
from ..errors import ConfigError, TradeoffWarning
from ..models import load_causal_lm, load_tokenizer, model_config, position_limit
from .backend import GenerationRequest, GenerationSettings
from .templates import format_prompt
from .work import Prompt, WorkItem, stream_id

__all__ = ["Generator", "check_contexts", "check_request", "open_backend"]


def _eos_ids(model: Any, tokenizer: Any) -> tuple[int, ...]:
    ids: Any = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if ids is None:
        ids = tokenizer.eos_token_id
    if ids is None:
        return ()
    return tuple(int(i) for i in (ids if isinstance(ids, (list, tuple)) else [ids]))


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
    tokens: list[int] = field(default_factory=list)
    logp_aligned: list[float] = field(default_factory=list)
    logp_adapted: list[float] = field(default_factory=list)
    stop_reason: str = "length"


class Generator:
    """Generates batches of work items with one model and a list of adaptor configurations."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        prompts: Sequence[Prompt],
        chains: Sequence[AdaptorChain | str],
        settings: GenerationSettings,
        names: Sequence[str] | None = None,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.prompts = list(prompts)
        self.chains = [AdaptorChain.coerce(c) for c in chains]
        # The configurations' names (their streams and their rows); by default the chains'. A
        # string may be drawn with another chain than its configuration's name says (the
        # authors' hidden top-k).
        self.configs = list(names) if names is not None else [str(c) for c in self.chains]
        # transformers 5 names the forward argument `cache`; 4.x named it `past_key_values`.
        parameters = inspect.signature(model.forward).parameters
        self._cache_argument = "cache" if "cache" in parameters else "past_key_values"
        # Only the last position's logits are needed after the prompt (older names, or none).
        self._last_logits_only = next(
            ({name: 1} for name in ("logits_to_keep", "num_logits_to_keep") if name in parameters),
            {},
        )
        self.settings = settings
        self.eos_ids = settings.eos_token_ids or _eos_ids(model, tokenizer)
        self.pad_id = tokenizer.pad_token_id
        if self.pad_id is None:
            self.pad_id = self.eos_ids[0] if self.eos_ids else 0
        self.device = next(model.parameters()).device
        self.contexts = [format_prompt(tokenizer, settings.template, p.text) for p in self.prompts]
        self._context_ids: dict[int, list[int]] = {}
        # A row ends when its context and tokens fill the model's positions.
        self.max_positions = position_limit(model.config.to_dict())
        self.name = "hf"
        self.identity: dict[str, Any] = {}

    def context_ids(self, prompt_index: int) -> list[int]:
        if prompt_index not in self._context_ids:
            ids = self.tokenizer(self.contexts[prompt_index], add_special_tokens=True)["input_ids"]
            if not ids:
                raise ConfigError(
                    f"prompt {self.prompts[prompt_index].id!r} tokenizes to no tokens; "
                    "give a non-empty prompt or template"
                )
            self._context_ids[prompt_index] = list(ids)
        return self._context_ids[prompt_index]

    @torch.inference_mode()
    def run_batch(self, items: Sequence[WorkItem]) -> list[dict[str, Any]]:
        """Generates one batch and returns one record per item, in the items' order."""
        rows = [
            _Row(
                i,
                stream_id(
                    self.prompts[i.prompt_index].id, i.sample_index, self.configs[i.config_index]
                ),
                self.context_ids(i.prompt_index),
            )
            for i in items
        ]
        width = max(len(r.context_ids) for r in rows)
        input_ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for b, r in enumerate(rows):
            input_ids[b, width - len(r.context_ids) :] = torch.tensor(r.context_ids)
            mask[b, width - len(r.context_ids) :] = 1
        input_ids, mask = input_ids.to(self.device), mask.to(self.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = _new_cache(self.model)
        out = self.model(
            input_ids=input_ids,
            attention_mask=mask,
            position_ids=positions,
            use_cache=True,
            **self._last_logits_only,
            **{self._cache_argument: cache},
        )
        logits = out.logits[:, -1, :]
        last_position = positions[:, -1]
        active = list(range(len(rows)))
        streams = np.array([r.stream for r in rows], dtype=np.uint64)
        eos = set(self.eos_ids)
        # The most tokens a row may hold, context included: the model's positions, or fewer when
        # the length cap counts the prompt (the authors' max_length).
        caps = [c for c in (self.max_positions, self.settings.max_total_tokens) if c is not None]
        total = min(caps) if caps else None
        for step in range(self.settings.max_new_tokens):
            draw = sample_tokens(
                logits.float().cpu(),
                [self.chains[rows[b].item.config_index] for b in active],
                seed=self.settings.seed,
                streams=streams[active],
                steps=step,
            )
            tokens = draw.tokens.tolist()
            keep: list[int] = []
            for j, b in enumerate(active):
                row = rows[b]
                row.tokens.append(tokens[j])
                row.logp_aligned.append(float(draw.logp_base[j]))
                row.logp_adapted.append(float(draw.logp_adapted[j]))
                if tokens[j] in eos:
                    row.stop_reason = "eos"
                elif self.settings.stop_strings and self._hit_stop_string(row):
                    row.stop_reason = "stop_string"
                elif total is not None and len(row.context_ids) + len(row.tokens) >= total:
                    pass  # the model's positions are full: unfinished, at the length limit
                else:
                    keep.append(j)
            if not keep or step + 1 == self.settings.max_new_tokens:
                break
            if len(keep) < len(active):
                index = torch.tensor(keep, device=self.device)
                cache.batch_select_indices(index)
                mask = mask[index]
                last_position = last_position[index]
                active = [active[j] for j in keep]
            next_ids = torch.tensor([[rows[b].tokens[-1]] for b in active], device=self.device)
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
            last_position = last_position + 1
            out = self.model(
                input_ids=next_ids,
                attention_mask=mask,
                position_ids=last_position[:, None],
                use_cache=True,
                **{self._cache_argument: cache},
            )
            logits = out.logits[:, -1, :]
        return [self._record(r) for r in rows]

    def _hit_stop_string(self, row: _Row) -> bool:
        # Decode only the tail that can hold a stop string just completed by the last token.
        text = self.tokenizer.decode(row.tokens[-16:], skip_special_tokens=False)
        return any(s in text for s in self.settings.stop_strings)

    def _record(self, row: _Row) -> dict[str, Any]:
        item = row.item
        prompt = self.prompts[item.prompt_index]
        finished = row.stop_reason != "length"
        return {
            "prompt_id": prompt.id,
            "prompt": prompt.text,
            "context": self.contexts[item.prompt_index],
            "config": self.configs[item.config_index],
            "sample_index": item.sample_index,
            "text": self.tokenizer.decode(row.tokens, skip_special_tokens=True),
            "token_ids": row.tokens,
            "n_tokens": len(row.tokens),
            "finished": finished,
            "stop_reason": row.stop_reason,
            "logp_aligned": float(np.sum(row.logp_aligned)),
            "logp_adapted": float(np.sum(row.logp_adapted)),
            "token_logp_aligned": row.logp_aligned,
            "token_logp_adapted": row.logp_adapted,
        }

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
    caps = [c for c in (position_limit(config), settings.max_total_tokens) if c is not None]
    limit = min(caps) if caps else None
    if limit is None:
        return
    if settings.max_new_tokens > limit and settings.max_total_tokens is None:
        raise ConfigError(
            f"`max_new_tokens` {settings.max_new_tokens} is beyond the model's {limit} positions "
            "(context and generated tokens together); give fewer"
        )
    longest = 0
    for prompt in prompts:
        context = format_prompt(tokenizer, settings.template, prompt.text)
        n = len(tokenizer(context, add_special_tokens=True)["input_ids"])
        if n >= limit:
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
    if longest + settings.max_new_tokens > limit and settings.max_total_tokens is None:
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
