"""The exact automaton world: the tilted automaton is exactly p exp(r/beta)/Z string by string,
the identity holds to 1e-9, exact expectations agree with large Monte-Carlo samples (under q and
under the IMH target), and impossible worlds are refused."""

from __future__ import annotations

import numpy as np
import pytest

from tradeoff.worlds.automaton import (
    AutomatonSettings,
    InfiniteNormaliserError,
    adapt,
    exact_expectations,
    make_prior,
    restrict,
    sample_strings,
    string_values,
    tilt,
)

SETTINGS = AutomatonSettings(
    n_states=5, n_symbols=8, min_eos=0.1, beta=0.8, reward_scale=0.4, seed=3
)
CHAINS = ["ancestral", "temperature=0.5", "temperature=1.5", "top_k=3", "top_p=0.8",
          "typical=0.9,temperature=0.75", "eta=0.03"]  # fmt: skip


def test_tilted_automaton_is_the_tilted_prior_string_by_string():
    prior, reward = make_prior(SETTINGS)
    aligned, log_z = tilt(prior, reward, SETTINGS.beta)
    np.testing.assert_allclose(np.exp(aligned.log_probs).sum(axis=1), 1.0, atol=1e-12)
    for tokens in sample_strings(prior, 200, seed=1):
        log_p = string_values(prior, tokens, prior.log_probs)
        log_pi = string_values(aligned, tokens, aligned.log_probs)
        r = string_values(prior, tokens, reward)
        assert log_pi == pytest.approx(log_p + r / SETTINGS.beta - log_z, abs=1e-9)


@pytest.mark.parametrize("chain", CHAINS)
def test_identity_holds_exactly(chain):
    prior, reward = make_prior(SETTINGS)
    exact = exact_expectations(prior, reward, SETTINGS.beta, chain)
    assert abs(exact["identity_residual"]) < 1e-9
    if chain == "ancestral":
        # q = pi: E[log q] = E[log pi] (up to float32 adaptor arithmetic) and the target is pi.
        q = exact["adapted"]
        assert q["logp_adapted"] == pytest.approx(q["logp_aligned"], abs=1e-4)
        for key in q:
            assert exact["imh_target"][key] == pytest.approx(q[key], abs=1e-4)


@pytest.mark.parametrize("chain", ["temperature=1.5", "top_k=3", "top_p=0.8"])
def test_exact_expectations_match_monte_carlo(chain):
    prior, reward = make_prior(SETTINGS)
    aligned, _ = tilt(prior, reward, SETTINGS.beta)
    adapted = adapt(aligned, chain)
    exact = exact_expectations(prior, reward, SETTINGS.beta, chain)
    tables = {"reward": reward, "logp_prior": prior.log_probs, "logp_aligned": aligned.log_probs,
              "logp_adapted": adapted.log_probs, "length": np.ones_like(reward)}  # fmt: skip
    strings = sample_strings(adapted, 40_000, seed=2)
    for key, table in tables.items():
        values = np.array([string_values(adapted, s, table) for s in strings])
        se = values.std() / np.sqrt(len(values))
        assert abs(values.mean() - exact["adapted"][key]) < 5 * se + 1e-9, key
    # The IMH target: pi conditioned on staying in q's support (rejection sampling from pi).
    support = adapted.log_probs > -np.inf
    target = restrict(aligned, support)
    outside = np.where(support, 0.0, 1.0)  # counts the tokens outside q's support
    drawn = sample_strings(aligned, 60_000, seed=3)
    kept = [s for s in drawn if string_values(aligned, s, outside) == 0]
    values = np.array([string_values(target, s, reward) for s in kept])
    se = values.std() / np.sqrt(len(values))
    assert abs(values.mean() - exact["imh_target"]["reward"]) < 5 * se + 1e-9


def test_impossible_worlds_are_refused():
    prior, reward = make_prior(AutomatonSettings(seed=1, reward_scale=12.0, min_eos=0.01))
    with pytest.raises(InfiniteNormaliserError, match="sum to infinity"):
        tilt(prior, reward, 0.1)
    prior, reward = make_prior(SETTINGS)
    with pytest.raises(ValueError, match="need not end"):
        exact_expectations(prior, reward, SETTINGS.beta, "top_k=1,temperature=0.1")
    with pytest.raises(ValueError, match="`min_eos` must be in"):
        AutomatonSettings(min_eos=0.0)
