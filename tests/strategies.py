"""Hypothesis strategies: logit rows with many ties and masked entries, adaptors, chains."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import strategies as st

import tradeoff


@st.composite
def logit_rows(draw, max_vocab: int = 300, max_rows: int = 4) -> np.ndarray:
    """``[B, V]`` float32 logits: normal with a drawn scale, rounded to bfloat16 precision or to a
    coarse grid (many exact ties), a fraction masked to ``-inf`` (at least one finite per row)."""
    seed = draw(st.integers(0, 2**32 - 1))
    rows = draw(st.integers(1, max_rows))
    vocab = draw(st.one_of(st.sampled_from([1, 2, 3, 4, 17, 64, 257]), st.integers(1, max_vocab)))
    scale = draw(st.sampled_from([0.05, 1.0, 3.0, 10.0]))
    ties = draw(st.sampled_from(["bfloat16", "grid", "none"]))
    mask_fraction = draw(st.sampled_from([0.0, 0.0, 0.3, 0.9]))
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, scale, size=(rows, vocab)).astype(np.float32)
    if ties == "bfloat16":
        x = torch.from_numpy(x).to(torch.bfloat16).to(torch.float32).numpy()
    elif ties == "grid":
        x = (np.round(x * 2) / 2).astype(np.float32)
    mask = rng.random((rows, vocab)) < mask_fraction
    mask[np.arange(rows), rng.integers(0, vocab, rows)] = False
    x[mask] = -np.inf
    return x


_VALUES = {
    "temperature": st.one_of(st.sampled_from([0.5, 0.75, 1.0, 1.25, 1.5]), st.floats(0.05, 5.0)),
    "top_k": st.integers(1, 60),
    "top_p": st.one_of(st.sampled_from([0.5, 0.9, 0.95]), st.floats(0.01, 0.999)),
    "min_p": st.one_of(st.sampled_from([0.0, 0.05, 0.1, 1.0]), st.floats(0.0, 1.0)),
    "typical": st.one_of(st.sampled_from([0.2, 0.9, 0.95]), st.floats(0.01, 0.99)),
    "epsilon": st.one_of(st.sampled_from([3e-4, 1e-3, 0.01]), st.floats(1e-5, 0.5)),
    "eta": st.one_of(st.sampled_from([9e-4, 3e-3, 0.01]), st.floats(1e-5, 0.5)),
    "top_a": st.floats(0.0, 1.0),
    "top_nsigma": st.floats(0.1, 5.0),
}


@st.composite
def adaptors(draw, names=tuple(_VALUES)) -> tradeoff.Adaptor:
    name = draw(st.sampled_from(names))
    value = draw(_VALUES[name])
    min_keep = draw(st.sampled_from([1, 1, 1, 2, 3]))
    return tradeoff.ADAPTOR_CLASSES[name](value, min_tokens_to_keep=min_keep)


@st.composite
def chains(draw, names=tuple(_VALUES), max_size: int = 3) -> tradeoff.AdaptorChain:
    items = draw(st.lists(adaptors(names), min_size=0, max_size=max_size))
    return tradeoff.AdaptorChain(items)
