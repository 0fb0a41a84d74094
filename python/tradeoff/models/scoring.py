"""Teacher-forced scoring of strings under a causal LM: ``log p(y | context)`` under the prior,
``log pi`` and ``log q_alpha`` under the aligned model (re-scoring text generated elsewhere).

The continuation's tokens: when the scoring model shares the generator's tokenizer, the generated
token ids themselves; otherwise context and text are tokenized together and split where the text
begins (a token that straddles the boundary belongs to the continuation, as in
lm-evaluation-harness), so that merges across the boundary cannot lose or double characters. A
string that ended with EOS is scored with the scorer's EOS appended. A token outside an adaptor's
support has ``log q = -inf``; ``clamp_token_nll`` (the paper: 25) clamps every token's negative
log-likelihood to ``[0, clamp]`` in the per-string sums.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..adaptors import AdaptorChain, score_tokens
from ..errors import ModelError

__all__ = [
    "Continuation",
    "ScoredString",
    "authors_continuation",
    "clamped_sum",
    "continuation_ids",
    "logits_to_keep_argument",
    "score_continuations",
    "same_vocabulary",
    "token_batches",
]


@dataclass(frozen=True)
class Continuation:
    """Token ids of a context and of the continuation to score after it."""

    context_ids: list[int]
    ids: list[int]


@dataclass
class ScoredString:
    token_logp: list[float]
    token_logp_adapted: list[float] | None = None

    @property
    def n_outside_support(self) -> int:
        if self.token_logp_adapted is None:
            return 0
        return int(np.sum(np.isneginf(self.token_logp_adapted)))


def same_vocabulary(a: Any, b: Any) -> bool:
    """Whether two tokenizers map every token to the same id (then token ids can be shared)."""
    return a is b or (len(a) == len(b) and a.get_vocab() == b.get_vocab())


def _context_ids(tokenizer: Any, context: str | None) -> list[int]:
    """The context's ids; ``None`` means BOS only (EOS when there is no BOS)."""
    if context is None:
        start = tokenizer.bos_token_id
        if start is None:
            start = tokenizer.eos_token_id
        if start is None:
            raise ModelError(
                "prior context 'none' needs a BOS (or EOS) token; the tokenizer has none"
            )
        return [int(start)]
    ids = list(tokenizer(context, add_special_tokens=True)["input_ids"])
    if not ids:
        return _context_ids(tokenizer, None)
    return ids


def continuation_ids(
    tokenizer: Any,
    context: str | None,
    text: str,
    *,
    token_ids: Sequence[int] | None = None,
    ended_with_eos: bool = False,
) -> Continuation:
    """Splits context and continuation for a scorer. ``token_ids`` (the generated ids, only when
    the scorer shares the generator's vocabulary) are used as they are, EOS included; otherwise
    ``text`` is tokenized jointly with the context and EOS appended when the string ended with
    it."""
    if token_ids is not None:
        return Continuation(_context_ids(tokenizer, context), list(token_ids))
    eos = (
        [int(tokenizer.eos_token_id)]
        if ended_with_eos and tokenizer.eos_token_id is not None
        else []
    )
    if context is None:
        prefix = _context_ids(tokenizer, None)
        ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
        return Continuation(prefix, ids + eos)
    encoded = tokenizer(context + text, add_special_tokens=True, return_offsets_mapping=True)
    ids, offsets = list(encoded["input_ids"]), list(encoded["offset_mapping"])
    boundary = len(context)
    special = set(tokenizer.all_special_ids)
    split = len(ids)
    for i, ((start, end), token) in enumerate(zip(offsets, ids, strict=True)):
        if token in special and start == end:
            continue
        if end > boundary:
            split = i
            break
    context_part = ids[:split] or _context_ids(tokenizer, None)
    continuation = [
        t
        for t, (s, e) in zip(ids[split:], offsets[split:], strict=True)
        if not (t in special and s == e)
    ]
    return Continuation(context_part, continuation + eos)


def authors_continuation(
    tokenizer: Any, text: str, prompt: str | None, max_tokens: int
) -> Continuation:
    """The split the authors' ``compute_nll`` scores: BOS, then ``text`` tokenized without special
    tokens and truncated to ``max_tokens - 1``; its first ``len(tokenize(prompt))`` tokens (the
    prompt tokenized alone) are context, the rest is scored. No EOS."""
    bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    if bos is None:
        raise ModelError("the authors' scoring prepends BOS; this tokenizer has none")

    def tokens(value: str) -> list[int]:
        encoded = tokenizer(value, add_special_tokens=False, truncation=True,
                            max_length=max_tokens - 1)  # fmt: skip
        return list(encoded["input_ids"])

    ids = tokens(text)
    n_prompt = len(tokens(prompt)) if prompt else 0
    return Continuation([int(bos)] + ids[:n_prompt], ids[n_prompt:])


def token_batches(
    lengths: Sequence[int], batch_size: int, max_batch_tokens: int | None
) -> list[list[int]]:
    """Indices cut into forward batches, shortest first: at most ``batch_size`` rows and at most
    ``max_batch_tokens`` padded tokens (rows x the longest) per batch; a string longer than the
    budget is a batch of its own."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        # Sorted by length: the newcomer is the widest of its batch.
        fits = max_batch_tokens is None or (len(current) + 1) * lengths[i] <= max_batch_tokens
        if current and (len(current) >= batch_size or not fits):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def logits_to_keep_argument(model: Any) -> str | None:
    """The forward argument that computes logits only for the last positions, if any."""
    import inspect

    parameters = inspect.signature(model.forward).parameters
    return next((n for n in ("logits_to_keep", "num_logits_to_keep") if n in parameters), None)


@torch.inference_mode()
def score_continuations(
    model: Any,
    items: Sequence[Continuation],
    *,
    chains: Sequence[AdaptorChain | str] | None = None,
    batch_size: int = 8,
    max_batch_tokens: int | None = None,
    pad_id: int = 0,
    progress: bool = False,
    description: str = "score",
) -> list[ScoredString]:
    """Teacher-forced log-probabilities of each continuation given its context.

    Batches are cut by length (:func:`token_batches`: ``batch_size`` rows, ``max_batch_tokens``
    padded tokens). In a batch the contexts are left-padded and the continuations right-padded,
    so that every continuation starts at the same column and the model computes logits only for
    the continuation's positions (``logits_to_keep``), never ``[B, T, V]`` for the contexts.
    Without ``chains``: ``log p`` by log-softmax and gather on the device, and only the ``[N]``
    values go to the CPU. With one chain per item: the continuation's rows go to the CPU in the
    model's dtype, and :func:`tradeoff.score_tokens` gives ``log pi`` and ``log q`` of each
    token, the code that sampling uses."""
    if chains is not None and len(chains) != len(items):
        raise ValueError(f"`chains` must have one entry per item ({len(items)}), got {len(chains)}")
    device = next(model.parameters()).device
    keep_argument = logits_to_keep_argument(model)
    results: list[ScoredString | None] = [None] * len(items)
    import sys

    from tqdm import tqdm

    bar = tqdm(
        total=len(items), desc=description, unit="str", disable=not progress, file=sys.stderr
    )
    lengths = [len(it.context_ids) + len(it.ids) for it in items]
    for batch in token_batches(lengths, batch_size, max_batch_tokens):
        bar.update(len(batch))
        for i in batch:
            if not items[i].ids:
                results[i] = ScoredString([], [] if chains is not None else None)
        batch = [i for i in batch if items[i].ids]
        if not batch:
            continue
        n_context = max(len(items[i].context_ids) for i in batch)
        n_continuation = max(len(items[i].ids) for i in batch)
        width = n_context + n_continuation
        input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for b, i in enumerate(batch):
            context, ids = items[i].context_ids, items[i].ids
            start = n_context - len(context)
            input_ids[b, start : n_context + len(ids)] = torch.tensor(context + ids)
            mask[b, start : n_context + len(ids)] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        # Position n_context - 1 + j predicts continuation token j.
        extra = {keep_argument: n_continuation + 1} if keep_argument else {}
        logits = model(
            input_ids=input_ids.to(device),
            attention_mask=mask.to(device),
            position_ids=positions.to(device),
            **extra,
        ).logits
        logits = logits[:, -(n_continuation + 1) : -1]
        targets = torch.zeros((len(batch), n_continuation), dtype=torch.long)
        for b, i in enumerate(batch):
            targets[b, : len(items[i].ids)] = torch.tensor(items[i].ids)
        if chains is None:
            logp = torch.log_softmax(logits.float(), -1).gather(2, targets.to(device)[..., None])
            values = logp[..., 0].double().cpu()
            for b, i in enumerate(batch):
                results[i] = ScoredString(values[b, : len(items[i].ids)].tolist())
        else:
            for b, i in enumerate(batch):
                n = len(items[i].ids)
                rows = logits[b, :n].cpu()
                scored = score_tokens(rows, targets[b, :n], chains[i])
                results[i] = ScoredString(
                    scored.logp_base.double().tolist(), scored.logp_adapted.double().tolist()
                )
    bar.close()
    return [r for r in results if r is not None]


def clamped_sum(token_logp: Sequence[float], clamp_token_nll: float | None) -> float:
    """The string's log-probability; with a clamp, each token's NLL is first clipped to
    ``[0, clamp]`` (the paper's treatment of tokens outside an adaptor's support)."""
    values = np.asarray(token_logp, dtype=np.float64)
    if clamp_token_nll is not None:
        values = -np.clip(-values, 0.0, clamp_token_nll)
    return float(values.sum())
