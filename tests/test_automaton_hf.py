"""The automaton world as transformers models: generation through the project's generator gives
the automaton's exact log-probabilities, cached and full forward passes agree, the reward model
adds the reward up exactly, and sample means meet the exact expectations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tradeoff.generation import GenerationSettings, Prompt, make_batches, work_items
from tradeoff.generation.hf import Generator
from tradeoff.models import load_causal_lm
from tradeoff.models.rewards import load_reward
from tradeoff.worlds.automaton import AutomatonSettings, exact_expectations, string_values, tilt
from tradeoff.worlds.automaton_hf import FIRST_SYMBOL, load_world, save_world

SETTINGS = AutomatonSettings(seed=3)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    directory = tmp_path_factory.mktemp("world")
    paths = save_world(directory, SETTINGS)
    _, prior, reward = load_world(directory)
    aligned, log_z = tilt(prior, reward, SETTINGS.beta)
    return paths, prior, reward, aligned


def automaton_tokens(ids):
    return [t - FIRST_SYMBOL if t >= FIRST_SYMBOL else SETTINGS.n_symbols for t in ids]


def generate(paths, chain, n, seed=0, batch_size=256):
    lm = load_causal_lm(str(paths["aligned"]))
    prompts = [Prompt(str(i), "") for i in range(n)]
    settings = GenerationSettings(max_new_tokens=400, seed=seed)
    gen = Generator(lm.model, lm.tokenizer, prompts, [chain], settings)
    items = work_items(n, 1, 1)
    return [r for b in make_batches(items, batch_size) for r in gen.run_batch(b)], lm


def test_generation_gives_the_automatons_log_probabilities(world):
    paths, prior, reward, aligned = world
    records, lm = generate(paths, "top_p=0.9", 200, batch_size=37)
    assert all(r["finished"] for r in records)
    for r in records:
        tokens = automaton_tokens(r["token_ids"])
        assert r["token_ids"][-1] == lm.tokenizer.eos_token_id
        exact = string_values(aligned, tokens, aligned.log_probs)
        assert r["logp_aligned"] == pytest.approx(exact, abs=1e-4)
        # The full forward pass over the final sequence gives the same per-token values.
        ids = torch.tensor([[lm.tokenizer.bos_token_id, *r["token_ids"]]])
        with torch.no_grad():
            logits = lm.model(ids).logits[0, :-1]
        full = torch.log_softmax(logits.double(), -1).gather(1, ids[0, 1:, None])[:, 0]
        np.testing.assert_allclose(full.numpy(), r["token_logp_aligned"], atol=1e-5)


def test_reward_model_adds_the_reward_up(world):
    paths, prior, reward, aligned = world
    records, _ = generate(paths, "ancestral", 50, seed=1)
    fn = load_reward(str(paths["reward"]))
    values = fn([""] * len(records), [r["text"] for r in records])
    for r, value in zip(records, values, strict=True):
        exact = string_values(prior, automaton_tokens(r["token_ids"]), reward)
        assert value == pytest.approx(exact, abs=1e-5)


@pytest.mark.parametrize("chain", ["temperature=1.5", "top_k=4,temperature=0.75"])
def test_sample_means_meet_the_exact_expectations(world, chain):
    paths, prior, reward, aligned = world
    records, _ = generate(paths, chain, 3000, seed=2)
    exact = exact_expectations(prior, reward, SETTINGS.beta, chain)["adapted"]
    values = {
        "logp_aligned": [r["logp_aligned"] for r in records],
        "logp_adapted": [r["logp_adapted"] for r in records],
        "length": [r["n_tokens"] for r in records],
        "reward": [string_values(prior, automaton_tokens(r["token_ids"]), reward) for r in records],
    }
    for key, sample in values.items():
        sample = np.asarray(sample, dtype=float)
        se = sample.std() / np.sqrt(len(sample))
        assert abs(sample.mean() - exact[key]) < 5 * se, key
