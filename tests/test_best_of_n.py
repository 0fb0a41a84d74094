"""Best-of-n from k samples per prompt: the weights equal brute force over every subset (ties
shared), the estimates are unbiased against exact expectations of a discrete base policy and
agree with a direct Monte-Carlo simulation of best-of-n, and the KL estimate approaches
log n - (n - 1) / n."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeoff.stats import best_of_n, best_of_n_weights


def brute_force(rewards: list[float], n: int) -> np.ndarray:
    """Every n-subset; its best shared equally among the tied maxima."""
    weights = np.zeros(len(rewards))
    subsets = list(itertools.combinations(range(len(rewards)), n))
    for subset in subsets:
        best = max(rewards[j] for j in subset)
        tied = [j for j in subset if rewards[j] == best]
        for j in tied:
            weights[j] += 1 / len(tied)
    return weights / len(subsets)


@given(
    prompts=st.lists(
        st.lists(st.integers(-3, 3).map(float), min_size=1, max_size=9), min_size=1, max_size=4
    ),
    n=st.integers(1, 9),
)
@settings(max_examples=300, deadline=None)
def test_weights_equal_brute_force_over_all_subsets(prompts, n):
    n = min(n, min(len(p) for p in prompts))
    rewards = [r for p in prompts for r in p]
    offsets = np.concatenate([[0], np.cumsum([len(p) for p in prompts])])
    weights = best_of_n_weights(rewards, offsets, n)
    for p, (a, b) in zip(prompts, itertools.pairwise(offsets), strict=True):
        np.testing.assert_allclose(weights[a:b], brute_force(p, n), atol=1e-12)
        assert weights[a:b].sum() == pytest.approx(1.0, abs=1e-12)


def test_unbiased_against_the_exact_expectation_of_a_discrete_policy():
    # Rewards in {0, 1, 2, 3} (many ties); E[max of n] = sum_v v (F(v)^n - F(v-)^n).
    rng = np.random.default_rng(0)
    values, probs = np.arange(4.0), np.array([0.4, 0.3, 0.2, 0.1])
    cdf = np.cumsum(probs)
    prompts, k = 4000, 8
    rewards = rng.choice(values, size=prompts * k, p=probs)
    # A second column: the reward plus noise independent of the pick.
    other = rewards + rng.normal(0.0, 1.0, rewards.size)
    offsets = np.arange(0, prompts * k + 1, k)
    for n in (1, 2, 4, 8):
        exact = float(np.sum(values * (cdf**n - np.concatenate([[0.0], cdf[:-1]]) ** n)))
        result = best_of_n(rewards, offsets, n, {"other": other})
        for name in ("reward", "other"):
            per_prompt = result.per_prompt[name]
            error = per_prompt.std(ddof=1) / math.sqrt(prompts)
            assert abs(result.mean[name] - exact) < 4 * error, (n, name)
        assert result.cost == n


def test_agrees_with_a_direct_simulation_of_best_of_n():
    # Continuous rewards, and a likelihood that trades against them: x = -0.5 r + noise.
    rng = np.random.default_rng(1)
    prompts, k = 3000, 16
    rewards = rng.normal(size=prompts * k)
    likelihood = -0.5 * rewards + rng.normal(size=rewards.size)
    offsets = np.arange(0, prompts * k + 1, k)
    for n in (2, 4, 16):
        result = best_of_n(rewards, offsets, n, {"logp": likelihood})
        # Best-of-n itself: n fresh draws, keep the one with the highest reward.
        draws = rng.normal(size=(200_000, n))
        picked = draws.max(axis=1)
        simulated = -0.5 * picked + rng.normal(size=picked.size)
        error = math.hypot(
            result.per_prompt["logp"].std(ddof=1) / math.sqrt(prompts),
            simulated.std(ddof=1) / math.sqrt(simulated.size),
        )
        assert abs(result.mean["logp"] - simulated.mean()) < 4 * error, n
        assert result.mean["reward"] == pytest.approx(picked.mean(), abs=4 * error)


def test_the_kl_estimate_approaches_log_n_minus_one_minus_one_over_n():
    rng = np.random.default_rng(2)
    k = 4000
    rewards = rng.normal(size=3 * k)
    offsets = np.arange(0, 3 * k + 1, k)
    for n in (1, 2, 4, 8):
        result = best_of_n(rewards, offsets, n)
        assert result.kl_bound == pytest.approx(math.log(n) - (n - 1) / n)
        assert result.kl_estimate == pytest.approx(result.kl_bound, abs=0.01)
    assert best_of_n(rewards, offsets, 1).kl_estimate == pytest.approx(0.0, abs=1e-12)


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"`n`.*prompt 1 has 2 < n = 3"):
        best_of_n_weights([1.0, 2.0, 3.0, 4.0, 5.0], [0, 3, 5], 3)
    with pytest.raises(ValueError, match="rewards"):
        best_of_n_weights([1.0, float("nan")], [0, 2], 1)
    with pytest.raises(ValueError, match=r"values\['logp'\]"):
        best_of_n([1.0, 2.0], [0, 2], 1, {"logp": [1.0]})


# --- in the analysis: summary.json's best_of_n block ------------------------------------------


def _loaded(rng, prompts=30, k=6, configs=("ancestral", "top_p=0.9")):
    from tradeoff.stages.analyze import Loaded

    n = prompts * k * len(configs)
    config = np.array([c for _ in range(prompts) for c in configs for _ in range(k)], dtype=object)
    prompt_id = np.array([f"p{p}" for p in range(prompts) for _ in range(len(configs) * k)],
                         dtype=object)  # fmt: skip
    reward = rng.normal(size=n)
    columns = {
        "reward": reward,
        "logp_prior": -0.5 * reward + rng.normal(size=n) - 20,
        "logp_aligned": rng.normal(size=n) - 15,
        "logp_adapted": rng.normal(size=n) - 14,
        "n_tokens": rng.integers(1, 40, size=n).astype(float),
    }
    # About 30% of the strings unfinished (left out): prompts keep fewer than k.
    finished = rng.random(n) > 0.3
    return Loaded(columns=columns, config=config, prompt_id=prompt_id, finished=finished,
                  empty=np.zeros(n, dtype=bool), finite=np.ones(n, dtype=bool),
                  order=list(configs), duplicate=np.zeros(n, dtype=bool))  # fmt: skip


def test_the_analysis_block_equals_the_statistic_on_the_base_configuration():
    from tradeoff.rundir.summary import Summary
    from tradeoff.stages.analyze import analyze_best_of_n
    from tradeoff.stages.settings import AnalysisSettings

    data = _loaded(np.random.default_rng(3))
    settings = AnalysisSettings.from_values(
        {"best_of_n": {"base": "ancestral", "n": [4, 2, 4]}, "n_resamples": 200}
    )
    assert settings.best_of_n == {"base": "ancestral", "n": [2, 4]}
    block, reason = analyze_best_of_n(data, settings)
    assert reason is None and block is not None
    # By hand: the kept ancestral strings, prompt by prompt, prompts with >= 4 of them.
    keep = data.keep & (data.config == "ancestral")
    ids = [f"p{p}" for p in range(30)]
    groups = [np.flatnonzero(keep & (data.prompt_id == pid)) for pid in ids]
    used = [g for g in groups if len(g) >= 4]
    assert block.n_prompts == len(used) and block.n_prompts_dropped == 30 - len(used) > 0
    rows = np.concatenate(used)
    offsets = np.concatenate([[0], np.cumsum([len(g) for g in used])])
    assert [p.n for p in block.points] == [1, 2, 4]
    for point in block.points:
        expected = best_of_n(data.columns["reward"][rows], offsets, point.n,
                             {"logp_prior": data.columns["logp_prior"][rows]})  # fmt: skip
        assert point.mean_reward.value == pytest.approx(expected.mean["reward"])
        assert point.mean_logp_prior.value == pytest.approx(expected.mean["logp_prior"])
        assert point.mean_reward.low < point.mean_reward.value < point.mean_reward.high
        assert point.cost == point.n
    # More reward and less prior likelihood as n grows (reward and log p trade off here).
    rewards = [p.mean_reward.value for p in block.points]
    assert rewards == sorted(rewards)
    assert block.points[-1].mean_logp_prior.value < block.points[0].mean_logp_prior.value
    # The block survives summary.json's round trip.
    again = Summary.from_dict(Summary(best_of_n=block).to_dict())
    assert again.best_of_n == block


def test_the_analysis_says_why_there_is_no_block():
    from tradeoff.errors import ConfigError
    from tradeoff.stages.analyze import analyze_best_of_n
    from tradeoff.stages.settings import AnalysisSettings

    data = _loaded(np.random.default_rng(4), k=3)
    block, reason = analyze_best_of_n(data, AnalysisSettings())
    assert block is None and "not asked for" in reason
    asked = AnalysisSettings.from_values({"best_of_n": {"n": [8]}})
    block, reason = analyze_best_of_n(data, asked)
    assert block is None and "samples_per_prompt >= 8" in reason
    other = AnalysisSettings.from_values({"best_of_n": {"base": "temperature=0.5", "n": [2]}})
    assert "not in the run" in analyze_best_of_n(data, other)[1]
    for bad, match in [({"n": [0]}, "integers >= 1"), ({"base": "nope=1"}, "base"),
                       ({"m": [2]}, "takes the keys base and n")]:  # fmt: skip
        with pytest.raises(ConfigError, match=match):
            AnalysisSettings.from_values({"best_of_n": bad})


def test_one_prompt_gets_intervals_from_its_strings_that_cover_the_exact_value():
    # One prompt (as in the demo's worlds): no interval over prompts exists, so the block
    # resamples the prompt's strings. Over 40 independent prompts of k = 300 discrete rewards,
    # the 95% intervals of E[max of n] should cover the exact value about 95% of the time.
    from tradeoff.stages.analyze import BEST_OF_N_OVER_STRINGS, analyze_best_of_n
    from tradeoff.stages.settings import AnalysisSettings

    values, probs = np.arange(4.0), np.array([0.4, 0.3, 0.2, 0.1])
    cdf = np.cumsum(probs)
    settings = AnalysisSettings.from_values(
        {"best_of_n": {"base": "ancestral", "n": [2, 4, 8]}, "n_resamples": 400}
    )
    hits = total = 0
    for seed in range(40):
        rng = np.random.default_rng(100 + seed)
        data = _loaded(rng, prompts=1, k=300)
        data.finished[:] = True
        data.columns["reward"] = rng.choice(values, size=len(data.config), p=probs)
        block, reason = analyze_best_of_n(data, settings)
        assert reason is None and block.n_prompts == 1
        assert block.interval == BEST_OF_N_OVER_STRINGS
        for point in block.points[1:]:
            n = point.n
            exact = float(np.sum(values * (cdf**n - np.concatenate([[0.0], cdf[:-1]]) ** n)))
            hits += point.mean_reward.low <= exact <= point.mean_reward.high
            total += 1
    assert total == 120
    # 95% of 120 is 114 (binomial sd 2.4); intervals one standard error wide would cover ~82.
    assert hits >= 104, hits
