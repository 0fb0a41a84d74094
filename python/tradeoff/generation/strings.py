"""What every generation backend shares about one string: its random stream, its token budget,
the end-of-string ids, how it ends (EOS, a stop string, its length cap) and its record in
``samples.parquet``. The backends own only their model loops, so that a string means the same
thing whichever backend drew it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..adaptors import AdaptorChain
from ..errors import ConfigError
from .backend import GenerationSettings
from .templates import format_prompt
from .work import Prompt, WorkItem, stream_id

__all__ = [
    "STOP_WINDOW",
    "StringPlan",
    "context_token_ids",
    "eos_ids",
    "end_reason",
    "hit_stop_string",
    "item_stream",
    "string_record",
    "token_budget",
    "total_cap",
]

# The tokens decoded to look for a stop string just completed by the last token.
STOP_WINDOW = 16


def item_stream(prompts: Sequence[Prompt], configs: Sequence[str], item: WorkItem) -> int:
    """The random stream of work item ``item``: from its prompt id, sample index and
    configuration name (never from its position in a batch)."""
    return stream_id(prompts[item.prompt_index].id, item.sample_index, configs[item.config_index])


def context_token_ids(tokenizer: Any, context: str, prompt: Prompt) -> list[int]:
    """The token ids a string continues: ``context`` (the prompt with its template) tokenised
    with the tokenizer's special tokens; a ConfigError naming the prompt when that is empty."""
    ids = tokenizer(context, add_special_tokens=True)["input_ids"]
    if not ids:
        raise ConfigError(
            f"prompt {prompt.id!r} tokenizes to no tokens; give a non-empty prompt or template"
        )
    return list(ids)


def eos_ids(model_eos: Any, tokenizer: Any) -> tuple[int, ...]:
    """The end-of-string ids: the model's generation config's (``model_eos``, an id, a list or
    None), else the tokenizer's EOS, else none."""
    ids: Any = model_eos
    if ids is None:
        ids = tokenizer.eos_token_id
    if ids is None:
        return ()
    return tuple(int(i) for i in (ids if isinstance(ids, (list, tuple)) else [ids]))


def total_cap(max_positions: int | None, max_total_tokens: int | None) -> int | None:
    """The most tokens a context and its string may hold together: the model's positions or
    the length cap (``max_total_tokens``), whichever is lower; None when neither is set."""
    caps = [c for c in (max_positions, max_total_tokens) if c is not None]
    return min(caps) if caps else None


def token_budget(max_new_tokens: int, total_cap: int | None, context_length: int) -> int:
    """The most tokens a string may draw: ``max_new_tokens``, or fewer when the cap on context
    and string together (the model's positions, the authors' length cap) ends it first; at
    least one."""
    if total_cap is None:
        return max_new_tokens
    return max(1, min(max_new_tokens, total_cap - context_length))


def hit_stop_string(tokenizer: Any, tokens: Sequence[int], stop_strings: Sequence[str]) -> bool:
    """Whether the last tokens of ``tokens`` hold a stop string (decoding only the tail that can
    hold one just completed by the last token)."""
    text = tokenizer.decode(list(tokens[-STOP_WINDOW:]), skip_special_tokens=False)
    return any(s in text for s in stop_strings)


def end_reason(
    tokens: Sequence[int],
    *,
    eos: Sequence[int],
    stop_strings: Sequence[str],
    budget: int,
    tokenizer: Any,
) -> str | None:
    """Why a string ends after its last token (``tokens`` its tokens so far): ``eos``,
    ``stop_string``, ``length`` (its budget), or None (it goes on)."""
    if tokens[-1] in eos:
        return "eos"
    if stop_strings and hit_stop_string(tokenizer, tokens, stop_strings):
        return "stop_string"
    if len(tokens) >= budget:
        return "length"
    return None


def string_record(
    *,
    prompt: Prompt,
    context: str,
    config: str,
    sample_index: int,
    text: str,
    tokens: list[int],
    stop_reason: str,
    logp_aligned: list[float],
    logp_adapted: list[float],
) -> dict[str, Any]:
    """One row of ``samples.parquet`` (``stop_reason`` ``length`` is an unfinished string)."""
    return {
        "prompt_id": prompt.id,
        "prompt": prompt.text,
        "context": context,
        "config": config,
        "sample_index": sample_index,
        "text": text,
        "token_ids": tokens,
        "n_tokens": len(tokens),
        "finished": stop_reason != "length",
        "stop_reason": stop_reason,
        "logp_aligned": float(np.sum(logp_aligned)),
        "logp_adapted": float(np.sum(logp_adapted)),
        "token_logp_aligned": logp_aligned,
        "token_logp_adapted": logp_adapted,
    }


class StringPlan:
    """What a backend knows of its strings before a model runs: the prompts and their contexts
    (the template applied) and context token ids, the chains and the configurations' names, the
    EOS ids (``settings.eos_token_ids``, else ``model_eos``, else the tokenizer's), and each
    string's stream and token budget. Both backends build on it, so that they agree on them."""

    def __init__(
        self,
        tokenizer: Any,
        prompts: Sequence[Prompt],
        chains: Sequence[AdaptorChain | str],
        settings: GenerationSettings,
        names: Sequence[str] | None = None,
        *,
        model_eos: Any = None,
        max_positions: int | None = None,
    ) -> None:
        self.tokenizer = tokenizer
        self.prompts = list(prompts)
        self.chains = [AdaptorChain.coerce(c) for c in chains]
        # The configurations' names (their streams and their rows); by default the chains'. A
        # string may be drawn with another chain than its configuration's name says (the
        # authors' hidden top-k).
        self.configs = list(names) if names is not None else [str(c) for c in self.chains]
        self.settings = settings
        self.eos_ids = settings.eos_token_ids or eos_ids(model_eos, tokenizer)
        self.contexts = [format_prompt(tokenizer, settings.template, p.text) for p in self.prompts]
        # A string ends when its context and tokens fill the model's positions.
        self.max_positions = max_positions
        self._total_cap = total_cap(max_positions, settings.max_total_tokens)
        self._context_ids: dict[int, list[int]] = {}

    def context_ids(self, prompt_index: int) -> list[int]:
        """The context's token ids (tokenised once per prompt)."""
        if prompt_index not in self._context_ids:
            self._context_ids[prompt_index] = context_token_ids(
                self.tokenizer, self.contexts[prompt_index], self.prompts[prompt_index]
            )
        return self._context_ids[prompt_index]

    def budget(self, context_length: int) -> int:
        """The most tokens a string after a context of ``context_length`` tokens may draw."""
        return token_budget(self.settings.max_new_tokens, self._total_cap, context_length)

    def stream(self, item: WorkItem) -> int:
        """Work item ``item``'s random stream."""
        return item_stream(self.prompts, self.configs, item)
