"""Adaptor semantics against Hugging Face transformers' warpers (the reference).

Every adaptor transformers has, alone and in chains, on random logits with many ties, masked
entries, tiny and large vocabularies. Kept sets must agree but for the two deliberate differences
of ADAPTORS.md, each of which is checked by ``hf_reference.explain``; kept values must agree.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hf_reference import HF_NAMES, assert_step_matches, hf_apply
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import adaptors, chains, logit_rows

import tradeoff


@pytest.mark.parametrize("name", HF_NAMES)
@settings(max_examples=150)
@given(data=st.data())
def test_each_adaptor_keeps_the_same_tokens_as_its_warper(name, data):
    rows = data.draw(logit_rows())
    adaptor = data.draw(adaptors((name,)))
    assert_step_matches(adaptor, rows)


@settings(max_examples=200)
@given(rows=logit_rows(), chain=chains(HF_NAMES))
def test_chains_match_the_equivalent_logits_processor_list(rows, chain):
    # Step by step, each adaptor sees the same input on both sides.
    x = rows
    explained = 0
    for adaptor in chain:
        explained += assert_step_matches(adaptor, x)
        x = hf_apply(tradeoff.AdaptorChain([adaptor]), x)
    # With no tie or rounding case on the way, the whole chain agrees exactly.
    ours = chain.apply(rows)
    theirs = hf_apply(chain, rows)
    if explained == 0:
        np.testing.assert_array_equal(np.isfinite(ours), np.isfinite(theirs))
        kept = np.isfinite(theirs)
        np.testing.assert_allclose(ours[kept], theirs[kept], rtol=2e-7)


def _large_rows(vocab: int, kind: str, rows: int = 2) -> np.ndarray:
    rng = np.random.default_rng(vocab)
    if kind == "flat":
        x = rng.normal(0, 3, size=(rows, vocab))
    else:
        x = rng.normal(0, 1, size=(rows, vocab))
        for r in range(rows):
            x[r, rng.integers(0, vocab, 5)] += rng.uniform(8, 14, 5)
    # bfloat16 precision: thousands of exact ties, as real bf16 models produce
    return torch.from_numpy(x.astype(np.float32)).to(torch.bfloat16).float().numpy()


LARGE_SPECS = [
    "temperature=0.7",
    "top_k=50",
    "top_p=0.9",
    "top_p=0.95:min_tokens_to_keep=5",
    "min_p=0.05",
    "typical=0.9",
    "epsilon=0.0003",
    "eta=0.0009",
    "temperature=1.5,top_k=30",
    "temperature=0.5,top_p=0.9",
]


@pytest.mark.parametrize("vocab", [32000, 128256])
@pytest.mark.parametrize("kind", ["flat", "peaked"])
@pytest.mark.parametrize("spec", LARGE_SPECS)
def test_large_vocabularies(vocab, kind, spec):
    rows = _large_rows(vocab, kind)
    x = rows
    for adaptor in tradeoff.AdaptorChain.parse(spec):
        assert_step_matches(adaptor, x)
        x = hf_apply(tradeoff.AdaptorChain([adaptor]), x)


DYADIC = np.log(np.array([0.5, 0.25, 0.125, 0.125], dtype=np.float32))


@pytest.mark.parametrize(
    "spec, kept",
    [
        ("top_p=0.75", [0, 1]),  # cumulative sum lands exactly on 1 - p: the cut is <=
        ("top_p=0.5", [0]),
        ("top_p=0.7", [0, 1]),
        ("min_p=0.25", [0, 1, 2, 3]),  # 0.125 == 0.25 * 0.5: not below, kept
        ("min_p=0.5", [0, 1]),
        ("epsilon=0.125", [0, 1, 2, 3]),  # p == epsilon is kept
        ("epsilon=0.25", [0, 1]),
        ("top_k=2", [0, 1]),
        ("top_k=3", [0, 1, 2, 3]),  # the k-th is tied: all ties kept
        ("typical=0.5", [0, 1]),  # gaps |-log p - H|: 0.17 (p=.25), 0.52 (p=.5), 0.87
        ("epsilon=0.3:min_tokens_to_keep=2", [0, 1]),
    ],
)
def test_exact_float32_cases_agree_exactly(spec, kept):
    chain = tradeoff.AdaptorChain.parse(spec)
    ours = np.flatnonzero(np.isfinite(chain.apply(DYADIC)))
    assert ours.tolist() == kept
    theirs = np.flatnonzero(np.isfinite(hf_apply(chain, DYADIC[None])[0]))
    assert theirs.tolist() == kept


def test_typical_min_tokens_to_keep_protects_the_most_typical_tokens():
    # H of (0.5, 0.25, 0.125, 0.125) is 1.75 ln 2; the most typical token (p = 0.25) is not the most
    # probable one, and min_tokens_to_keep=1 with a tiny mass keeps exactly that token.
    chain = tradeoff.AdaptorChain.parse("typical=0.01")
    ours = np.flatnonzero(np.isfinite(chain.apply(DYADIC)))
    theirs = np.flatnonzero(np.isfinite(hf_apply(chain, DYADIC[None])[0]))
    assert ours.tolist() == theirs.tolist() == [1]


def test_tied_group_straddling_the_top_p_cut_is_kept_whole():
    # Four equal logits, p = 0.75: transformers removes one of them, chosen by sort order; we keep
    # the group whole (deliberate difference 1).
    x = np.zeros(4, dtype=np.float32)
    assert np.isfinite(tradeoff.AdaptorChain.parse("top_p=0.75").apply(x)).all()
    assert np.isfinite(hf_apply(tradeoff.AdaptorChain.parse("top_p=0.75"), x[None])[0]).sum() == 3
    # and the two tied 0.125 tokens of the dyadic row, where 1 - p lands between them
    assert np.isfinite(tradeoff.AdaptorChain.parse("top_p=0.875").apply(DYADIC)).all()


def test_masked_entries_stay_masked_and_top_k_beyond_support_is_a_no_op():
    x = np.array([1.0, -np.inf, 0.5, -np.inf], dtype=np.float32)
    out = tradeoff.AdaptorChain.parse("top_k=3").apply(x)
    np.testing.assert_array_equal(out, x)
    lp = tradeoff.AdaptorChain.parse("ancestral").log_probs(x)
    assert np.isneginf(lp[[1, 3]]).all()
    np.testing.assert_allclose(np.exp(lp[[0, 2]]).sum(), 1.0, rtol=1e-6)


def test_top_a_and_top_nsigma_follow_their_published_rules():
    rng = np.random.default_rng(0)
    x = rng.normal(0, 2, size=(8, 500)).astype(np.float32)
    for a in (0.05, 0.2, 0.9):
        out = tradeoff.TopA(a)
        kept = np.isfinite(tradeoff.AdaptorChain([out]).apply(x))
        p = np.exp(x - x.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        want = p >= a * p.max(1, keepdims=True) ** 2
        near = np.abs(p - a * p.max(1, keepdims=True) ** 2) < 1e-6
        assert ((kept == want) | near).all()
    for n in (0.5, 1.0, 2.5):
        kept = np.isfinite(tradeoff.AdaptorChain([tradeoff.TopNSigma(n)]).apply(x))
        thr = x.max(1, keepdims=True) - n * x.std(1, keepdims=True)
        near = np.abs(x - thr) < 1e-5
        assert ((kept == (x >= thr)) | near).all()


def test_log_probs_are_the_log_softmax_of_the_adapted_row():
    rng = np.random.default_rng(1)
    x = rng.normal(0, 2, size=(5, 1000)).astype(np.float32)
    for spec in ["ancestral", "temperature=0.7,top_p=0.9", "typical=0.9", "top_k=7"]:
        chain = tradeoff.AdaptorChain.parse(spec)
        adapted = torch.from_numpy(chain.apply(x))
        want = torch.log_softmax(adapted.double(), dim=-1).numpy()
        got = chain.log_probs(x)
        np.testing.assert_array_equal(np.isfinite(got), np.isfinite(want))
        kept = np.isfinite(want)
        np.testing.assert_allclose(got[kept], want[kept], atol=2e-6)
