"""Helpers that compare tradeoff's adaptors with Hugging Face transformers' warpers.

A kept-set difference between the two is accepted only where ADAPTORS.md allows it:
(1) a group of exactly equal values straddling a cut that transformers finds by sorting (top-p,
typical, and the ``min_tokens_to_keep`` protection) is kept whole by us; (2) a token whose fate lies
within float32 rounding of the cut. Each difference is checked against an independent float64
analysis of the row; everything else must agree exactly.
"""

from __future__ import annotations

import numpy as np
import torch
from transformers.generation.logits_process import (
    EpsilonLogitsWarper,
    EtaLogitsWarper,
    LogitsProcessorList,
    MinPLogitsWarper,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
    TypicalLogitsWarper,
)

import tradeoff

HF_NAMES = ("temperature", "top_k", "top_p", "min_p", "typical", "epsilon", "eta")


def hf_warper(adaptor: tradeoff.Adaptor):
    mk = adaptor.min_tokens_to_keep
    v = adaptor.value
    return {
        "temperature": lambda: TemperatureLogitsWarper(float(v)),
        "top_k": lambda: TopKLogitsWarper(int(v), min_tokens_to_keep=mk),
        "top_p": lambda: TopPLogitsWarper(float(v), min_tokens_to_keep=mk),
        "min_p": lambda: MinPLogitsWarper(float(v), min_tokens_to_keep=mk),
        "typical": lambda: TypicalLogitsWarper(mass=float(v), min_tokens_to_keep=mk),
        "epsilon": lambda: EpsilonLogitsWarper(float(v), min_tokens_to_keep=mk),
        "eta": lambda: EtaLogitsWarper(float(v), min_tokens_to_keep=mk),
    }[adaptor.name]()


def hf_apply(chain: tradeoff.AdaptorChain, logits: np.ndarray) -> np.ndarray:
    """The equivalent LogitsProcessorList on a float32 ``[B, V]`` array."""
    processors = LogitsProcessorList([hf_warper(a) for a in chain])
    scores = torch.from_numpy(np.array(logits, dtype=np.float32, copy=True))
    ids = torch.zeros((scores.shape[0], 1), dtype=torch.long)
    return processors(ids, scores).numpy()


def _softmax64(row: np.ndarray) -> np.ndarray:
    z = row.astype(np.float64)
    finite = np.isfinite(z)
    p = np.zeros_like(z)
    p[finite] = np.exp(z[finite] - z[finite].max())
    return p / p.sum()


def _entropy64(p: np.ndarray) -> float:
    q = p[p > 0]
    return float(-(q * np.log(q)).sum())


def _rounding_tol(n: int) -> float:
    # float32 cumulative sums over n terms: generous multiple of n * eps
    return 1e-5 + 4 * n * 6e-8


def _in_straddling_protection(row: np.ndarray, i: int, ours: np.ndarray, min_keep: int) -> bool:
    """Token i ties with the min_keep-th largest value, which transformers protects in part."""
    finite = row[np.isfinite(row)]
    if min_keep <= 1 or min_keep > len(finite):
        return False
    kth = np.sort(finite)[::-1][min_keep - 1]
    return row[i] == kth and ours[i]


def explain(
    adaptor: tradeoff.Adaptor, row: np.ndarray, i: int, ours: np.ndarray, theirs: np.ndarray
):
    """Why token ``i`` may be kept by one side only; ``None`` when nothing allows it."""
    name = adaptor.name
    p = _softmax64(row)
    n = int(np.isfinite(row).sum())
    tol = _rounding_tol(n)
    if _in_straddling_protection(row, i, ours, adaptor.min_tokens_to_keep):
        return "tie straddling min_tokens_to_keep"
    if name == "top_p":
        top_p = adaptor.value
        above = p[row > row[i]].sum()
        group = row == row[i]
        if abs(above - top_p) < tol:
            return "rounding at the top-p cut"
        if (
            group.sum() > 1
            and theirs[group].any()
            and not theirs[group].all()
            and ours[group].all()
        ):
            return "tie straddling the top-p cut"
        return None
    if name == "typical":
        mass = adaptor.value
        finite = np.isfinite(row)
        logp = np.full_like(p, -np.inf)
        logp[finite] = np.log(np.maximum(p[finite], 1e-300))
        h = _entropy64(p)
        s = np.where(finite, np.abs(-logp - h), np.inf)
        si = s[i]
        # f32 computes s with absolute error ~1e-6 * |log p|: treat near-equal gaps as ties
        s_tol = 1e-5 * (1 + abs(logp[i]) + h)
        below = p[s < si - s_tol].sum()
        upto = p[s <= si + s_tol].sum()
        if below - tol < mass <= upto + tol:
            return "typical cut within rounding or ties"
        order = np.sort(s[finite])
        mk = adaptor.min_tokens_to_keep
        if mk > 1 and mk <= len(order) and abs(si - order[mk - 1]) <= s_tol and ours[i]:
            return "tie straddling typical's min_tokens_to_keep"
        return None
    if name in ("min_p", "epsilon", "eta"):
        if name == "min_p":
            thr = adaptor.value * p.max()
        elif name == "epsilon":
            thr = adaptor.value
        else:
            eps = adaptor.value
            thr = min(eps, np.sqrt(eps) * np.exp(-_entropy64(p)))
        rel = 1e-4 if name == "eta" else 1e-5
        if abs(p[i] - thr) <= rel * thr + 1e-30:
            return f"rounding at the {name} threshold"
        return None
    return None  # temperature and top_k must agree exactly


def assert_step_matches(adaptor: tradeoff.Adaptor, logits: np.ndarray) -> int:
    """One adaptor on ``[B, V]`` float32 logits against its warper; returns the number of explained
    differences. Raises AssertionError with the row and token on an unexplained one."""
    chain = tradeoff.AdaptorChain([adaptor])
    ours = chain.apply(logits)
    theirs = hf_apply(chain, logits)
    assert ours.shape == theirs.shape and ours.dtype == np.float32
    explained = 0
    for b in range(logits.shape[0]):
        ok, tk = np.isfinite(ours[b]), np.isfinite(theirs[b])
        for i in np.flatnonzero(ok != tk):
            why = explain(adaptor, logits[b], int(i), ok, tk)
            assert why is not None, (
                f"{adaptor}: row {b} token {i} (logit {logits[b, i]!r}) kept by "
                f"{'tradeoff' if ok[i] else 'transformers'} only; row={logits[b].tolist()}"
            )
            explained += 1
        both = ok & tk
        np.testing.assert_allclose(ours[b][both], theirs[b][both], rtol=2e-7, atol=0)
        assert ok.any()
    return explained
