"""Fused sampling and scoring: determinism, the sampled distribution, agreement with log_probs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

import tradeoff
from tradeoff import AdaptorChain

RNG = np.random.default_rng(7)
LOGITS = RNG.normal(0, 2, size=(32, 3000)).astype(np.float32)
SPECS = ["ancestral", "temperature=0.7,top_p=0.9", "top_k=20", "typical=0.9", "min_p=0.05"]


@pytest.mark.parametrize("spec", SPECS)
def test_same_seed_same_tokens_whatever_the_batch_order_size_and_threads(spec):
    chain = AdaptorChain.parse(spec)
    streams = np.arange(1000, 1032, dtype=np.uint64)
    steps = np.arange(32, dtype=np.uint64) * 3
    full = tradeoff.sample(LOGITS, chain, seed=42, streams=streams, steps=steps)
    # batch sizes 1, 7 and 32
    for size in (1, 7, 32):
        for start in range(0, 32, size):
            sl = slice(start, min(start + size, 32))
            part = tradeoff.sample(LOGITS[sl], chain, seed=42, streams=streams[sl], steps=steps[sl])
            np.testing.assert_array_equal(part.tokens, full.tokens[sl])
            np.testing.assert_array_equal(part.logp_adapted, full.logp_adapted[sl])
    # shuffled rows
    perm = RNG.permutation(32)
    shuffled = tradeoff.sample(
        LOGITS[perm], chain, seed=42, streams=streams[perm], steps=steps[perm]
    )
    np.testing.assert_array_equal(shuffled.tokens, full.tokens[perm])
    # 1 vs 2 threads
    before = tradeoff.get_num_threads()
    try:
        for threads in (1, 2):
            tradeoff.set_num_threads(threads)
            again = tradeoff.sample(LOGITS, chain, seed=42, streams=streams, steps=steps)
            np.testing.assert_array_equal(again.tokens, full.tokens)
            np.testing.assert_array_equal(again.logp_base, full.logp_base)
    finally:
        tradeoff.set_num_threads(before)
    # a different seed or step changes the draws
    other = tradeoff.sample(LOGITS, chain, seed=43, streams=streams, steps=steps)
    assert (other.tokens != full.tokens).any()


@pytest.mark.parametrize(
    "spec", ["ancestral", "temperature=0.7,top_p=0.9", "top_k=5", "typical=0.5", "eta=0.01"]
)
def test_sampled_frequencies_match_the_adapted_distribution(spec):
    chain = AdaptorChain.parse(spec)
    row = np.random.default_rng(3).normal(0, 1.5, size=40).astype(np.float32)
    n = 200_000
    logits = np.broadcast_to(row, (n, row.size))
    draws = tradeoff.sample(logits, chain, seed=2024, streams=np.arange(n, dtype=np.uint64))
    probs = np.exp(chain.log_probs(row).astype(np.float64))
    support = probs > 0
    counts = np.bincount(draws.tokens, minlength=row.size)
    assert counts[~support].sum() == 0, "a token outside the adapted support was drawn"
    expected = probs[support] / probs[support].sum() * n
    result = stats.chisquare(counts[support], expected)
    assert result.pvalue > 1e-6, (spec, result)
    # logp_adapted reports the adapted log-probability of the drawn token
    np.testing.assert_allclose(
        draws.logp_adapted[:100], np.log(probs[draws.tokens[:100]]), rtol=0, atol=1e-5
    )
    np.testing.assert_array_equal(draws.support_size[:5], support.sum())


def test_logp_base_is_the_raw_log_softmax():
    chain = AdaptorChain.parse("temperature=1.5,top_k=10")
    res = tradeoff.sample(LOGITS, chain, seed=1, streams=np.arange(32))
    raw = torch.log_softmax(torch.from_numpy(LOGITS).double(), dim=-1).numpy()
    np.testing.assert_allclose(res.logp_base, raw[np.arange(32), res.tokens], atol=2e-6)


@pytest.mark.parametrize("spec", SPECS + ["temperature=1.3,eta=0.0009", "top_nsigma=1.0"])
def test_score_tokens_agrees_with_log_probs_at_the_targets(spec):
    chain = AdaptorChain.parse(spec)
    targets = RNG.integers(0, LOGITS.shape[1], size=32)
    targets[:8] = LOGITS[:8].argmax(1)  # some surely inside the support
    scores = tradeoff.score_tokens(LOGITS, targets, chain)
    lp = chain.log_probs(LOGITS)[np.arange(32), targets].astype(np.float64)
    np.testing.assert_array_equal(scores.in_support, np.isfinite(lp))
    np.testing.assert_array_equal(np.isneginf(scores.logp_adapted), ~np.isfinite(lp))
    inside = np.isfinite(lp)
    np.testing.assert_allclose(scores.logp_adapted[inside], lp[inside], atol=2e-6)
    raw = torch.log_softmax(torch.from_numpy(LOGITS).double(), dim=-1).numpy()
    np.testing.assert_allclose(scores.logp_base, raw[np.arange(32), targets], atol=2e-6)
    if not spec.startswith("typical"):  # typical may remove the most probable token
        assert scores.in_support[:8].all()


def test_sampling_a_token_then_scoring_it_gives_the_same_log_probabilities():
    chain = AdaptorChain.parse("temperature=0.8,min_p=0.02")
    res = tradeoff.sample(LOGITS, chain, seed=5, streams=np.arange(32), steps=9)
    scores = tradeoff.score_tokens(LOGITS, res.tokens, chain)
    assert scores.in_support.all()
    np.testing.assert_allclose(scores.logp_adapted, res.logp_adapted, atol=1e-6)
    np.testing.assert_allclose(scores.logp_base, res.logp_base, atol=1e-6)


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_a_forked_child_samples_the_same_tokens():
    # torch's data loaders fork: the worker pool must not be inherited half-alive
    import os

    chain = AdaptorChain.parse("temperature=0.7,top_p=0.9")
    streams = np.arange(32, dtype=np.uint64)
    parent = tradeoff.sample(LOGITS, chain, seed=9, streams=streams).tokens
    pid = os.fork()
    if pid == 0:  # the child: exit 0 only when it draws the same tokens
        try:
            child = tradeoff.sample(LOGITS, chain, seed=9, streams=streams).tokens
            os._exit(0 if np.array_equal(child, parent) else 1)
        except BaseException:
            os._exit(2)
    import time

    deadline = time.monotonic() + 120
    while True:  # a child stuck on a dead pool would hang: fail instead
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            raise AssertionError("the forked child hung")
        time.sleep(0.05)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
