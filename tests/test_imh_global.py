"""The globally normalised adaptor q~(y) ~ pi(y)^(1/tau) 1[y in S]: its exact automaton is that
distribution string by string, it is the paper's target when tau = 1, its exact expectations
agree with an independent importance-sampling estimate, a divergent normaliser is refused, and
analyze's chain to it (proposal q, log-weights log pi / tau - log q) covers the exact values."""

from __future__ import annotations

import numpy as np
import pytest

from tradeoff.adaptors import AdaptorChain
from tradeoff.rundir.summary import MEAN_KEYS
from tradeoff.stages.analyze import _imh_global
from tradeoff.stages.settings import AnalysisSettings
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
    n_states=5, n_symbols=8, min_eos=0.2, beta=0.8, reward_scale=0.4, seed=3
)
COLUMNS = ("reward", "logp_prior", "logp_aligned", "logp_adapted", "length")


def _world(chain: str):
    prior, reward = make_prior(SETTINGS)
    aligned, _ = tilt(prior, reward, SETTINGS.beta)
    adapted = adapt(aligned, chain)
    tables = {"reward": reward, "logp_prior": prior.log_probs, "logp_aligned": aligned.log_probs,
              "logp_adapted": adapted.log_probs, "length": np.ones_like(reward)}  # fmt: skip
    return prior, reward, aligned, adapted, tables


def _values(model, strings, tables) -> np.ndarray:
    return np.array([[string_values(model, s, tables[c]) for c in COLUMNS] for s in strings])


@pytest.mark.parametrize("chain", ["top_k=3", "top_p=0.8", "eta=0.03", "ancestral"])
def test_at_temperature_one_the_global_target_is_the_papers_target(chain):
    prior, reward = make_prior(SETTINGS)
    exact = exact_expectations(prior, reward, SETTINGS.beta, chain)
    for key in COLUMNS:
        assert exact["global_target"][key] == pytest.approx(exact["imh_target"][key], abs=1e-9)


@pytest.mark.parametrize("chain", ["temperature=0.7", "temperature=0.6,top_k=4",
                                   "top_p=0.9,temperature=1.2"])  # fmt: skip
def test_the_global_automaton_is_pi_to_the_one_over_tau_string_by_string(chain):
    _, _, aligned, adapted, _ = _world(chain)
    tau = AdaptorChain.parse(chain).split_temperature()[1]
    support = adapted.log_probs > -np.inf
    target = restrict(aligned, support, 1.0 / tau)
    np.testing.assert_allclose(np.exp(target.log_probs).sum(axis=1), 1.0, atol=1e-12)
    assert np.array_equal(target.log_probs > -np.inf, support)
    # log q~(y) - log pi(y) / tau is the same constant (-log Z_tau) for every string.
    offsets = [
        string_values(target, s, target.log_probs)
        - string_values(aligned, s, aligned.log_probs) / tau
        for s in sample_strings(adapted, 300, seed=2)
    ]
    assert np.ptp(offsets) < 1e-9


@pytest.mark.parametrize("chain", ["temperature=0.7", "temperature=0.6,top_k=4"])
def test_exact_global_expectations_match_importance_sampling_from_q(chain):
    _, reward, aligned, adapted, tables = _world(chain)
    prior, _ = make_prior(SETTINGS)
    exact = exact_expectations(prior, reward, SETTINGS.beta, chain)["global_target"]
    tau = AdaptorChain.parse(chain).split_temperature()[1]
    values = _values(adapted, sample_strings(adapted, 40_000, seed=5), tables)
    log_w = values[:, 2] / tau - values[:, 3]
    w = np.exp(log_w - log_w.max())
    w /= w.sum()
    for j, key in enumerate(COLUMNS):
        mean = w @ values[:, j]
        se = np.sqrt(np.sum(w**2 * (values[:, j] - mean) ** 2))
        assert abs(mean - exact[key]) < 5 * se + 1e-9, key


def test_a_divergent_global_normaliser_is_refused_with_its_reason():
    # Few states ending rarely: pi(a | s)^(1/3) over 8 symbols sums far above 1.
    settings = AutomatonSettings(n_states=3, n_symbols=8, min_eos=0.05, seed=1)
    prior, reward = make_prior(settings)
    exact = exact_expectations(prior, reward, settings.beta, "temperature=3")
    assert exact["global_target"] is None
    assert "sum to infinity" in exact["global_reason"]
    assert exact["imh_target"] is not None and exact["adapted"] is not None
    aligned, _ = tilt(prior, reward, settings.beta)
    with pytest.raises(InfiniteNormaliserError, match=r"pi\(a \| s\)\^0.333333"):
        restrict(aligned, np.ones_like(aligned.log_probs, dtype=bool), 1 / 3)


CHAINS = ["temperature=0.7", "temperature=0.8,top_k=5", "top_p=0.8", "temperature=0.9,eta=0.03",
          "typical=0.9,temperature=0.75", "temperature=1.1,top_k=3"]  # fmt: skip


def test_analyze_global_chain_covers_the_exact_expectations():
    # 3 samples of 1,500 strings from each of 6 configurations, 5 means each: 90 pairs (a
    # configuration's 5 misses come together, so fewer would make the share too coarse).
    settings = AnalysisSettings(n_steps=50_000, seed=11)
    prior, reward = make_prior(SETTINGS)
    hits = total = 0
    for index, chain in enumerate(CHAINS * 3):
        _, _, _, adapted, tables = _world(chain)
        exact = exact_expectations(prior, reward, SETTINGS.beta, chain)["global_target"]
        values = _values(adapted, sample_strings(adapted, 1500, seed=100 + index), tables)
        tau = AdaptorChain.parse(chain).split_temperature()[1]
        result = _imh_global(values, values[:, 2], values[:, 3], tau, settings, seed=index)
        assert 0 < result.acceptance_rate <= 1 and 1 <= result.importance_ess <= len(values)
        for key, column in zip(MEAN_KEYS, COLUMNS, strict=True):
            estimate = getattr(result, key)
            total += 1
            hits += estimate.low <= exact[column] <= estimate.high
    assert hits / total >= 0.9, f"{hits} of {total}"


@pytest.mark.parametrize("k", [0.2, 0.5, 0.9, 1.5])
def test_pareto_k_recovers_the_shape_of_generalised_pareto_weights(k):
    from scipy.stats import genpareto

    from tradeoff import stats

    weights = genpareto.rvs(k, size=20_000, random_state=np.random.default_rng(int(10 * k)))
    assert stats.pareto_k(np.log(weights)) == pytest.approx(k, abs=0.12)
    # Bounded and light tails stay below the threshold; equal weights have no tail at all.
    rng = np.random.default_rng(1)
    assert stats.pareto_k(rng.normal(0, 0.3, 4000)) < stats.pareto_k_threshold(4000)
    assert stats.pareto_k(np.zeros(400)) == -np.inf
    assert np.isnan(stats.pareto_k(np.zeros(10)))
    assert stats.pareto_k_threshold(400) == pytest.approx(1 - 1 / np.log10(400))
    assert stats.pareto_k_threshold(10**6) == 0.7


def test_heavy_tailed_weights_give_means_without_intervals():
    # q at temperature 1.3 proposes for pi^(1/1.3) globally normalised: log-weights with a
    # Pareto tail (k = 1.5) far above the threshold.
    rng = np.random.default_rng(3)
    from scipy.stats import genpareto

    log_w = np.log(genpareto.rvs(1.5, size=400, random_state=rng))
    values = np.column_stack([rng.normal(size=400) for _ in range(5)])
    result = _imh_global(values, log_w, np.zeros(400), 1.0, AnalysisSettings(n_steps=5000), 0)
    assert result.pareto_k > 1
    for key in MEAN_KEYS:
        estimate = getattr(result, key)
        assert estimate.value is not None and estimate.low is None and estimate.high is None
        assert "Pareto k-hat" in estimate.reason and "PSIS" in estimate.reason


def test_pareto_k_is_undefined_for_a_tail_of_repeated_weights():
    from tradeoff import stats

    # 400 strings, 20 distinct: a repeated string repeats its weight (the largest 60 hold 3).
    log_w = np.repeat(np.random.default_rng(0).normal(size=20), 20)
    assert np.isnan(stats.pareto_k(log_w))
