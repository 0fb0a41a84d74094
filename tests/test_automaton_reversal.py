"""The demo's worlds: the "reversal" world shows the paper's phenomenon exactly (a positive
string-level correlation of (log p, reward), negative correlations between the configurations'
exact means), its seven adaptor families keep different tokens at every temperature (ours and
transformers' warpers alike), exact second moments agree with Monte Carlo, and the first demo
world ("independent") is still the same world."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from hf_reference import hf_apply
from scipy import stats

from tradeoff.adaptors import AdaptorChain
from tradeoff.app.demo import DEMO_FAMILIES, DEMO_TEMPERATURES, demo_config, demo_configs
from tradeoff.errors import ConfigError
from tradeoff.worlds.automaton import (
    PRESETS,
    AutomatonSettings,
    adapt,
    exact_expectations,
    make_prior,
    preset_settings,
    sample_strings,
    string_values,
    tilt,
)
from tradeoff.worlds.automaton_moments import additive_moments, exact_correlations

REVERSAL = preset_settings("reversal")


@pytest.fixture(scope="module")
def world():
    prior, reward = make_prior(REVERSAL)
    aligned, _ = tilt(prior, reward, REVERSAL.beta)
    return prior, reward, aligned


def chain_name(family: str, temperature: float) -> str:
    if temperature == 1.0:
        return family
    return f"temperature={temperature}" + ("" if family == "ancestral" else f",{family}")


def sample(model, n, seed, prior, reward):
    strings = sample_strings(model, n, seed=seed)
    x = np.array([string_values(model, s, prior.log_probs) for s in strings])
    y = np.array([string_values(model, s, reward) for s in strings])
    return x, y


@pytest.mark.parametrize("chain", ["ancestral", "temperature=0.5,top_p=0.9", "typical=0.85"])
def test_exact_second_moments_match_monte_carlo(world, chain):
    prior, reward, aligned = world
    q = adapt(aligned, chain)
    m = additive_moments(q, prior.log_probs, reward)
    x, y = sample(q, 40_000, 11, prior, reward)
    for exact, values in ((m.mean_f, x), (m.mean_g, y), (m.ff, x * x), (m.fg, x * y),
                          (m.gg, y * y)):  # fmt: skip
        se = values.std() / np.sqrt(len(values))
        assert abs(values.mean() - exact) < 4.5 * se + 1e-12
    # The means are the ones exact_expectations computes another way (expected visits).
    e = exact_expectations(prior, reward, REVERSAL.beta, chain)["adapted"]
    assert m.mean_f == pytest.approx(e["logp_prior"], abs=1e-10)
    assert m.mean_g == pytest.approx(e["reward"], abs=1e-10)
    r = stats.pearsonr(x, y).statistic
    assert abs(r - m.pearson) < 0.03  # about 5 standard errors at 40,000 strings


def test_strings_likelier_under_the_prior_score_higher(world):
    prior, reward, aligned = world
    # The demo's string level: its strings pooled over the 35 configurations, here 1,000 each.
    pooled = [sample(adapt(aligned, c), 1000, 100 + i, prior, reward)
              for i, c in enumerate(demo_configs())]  # fmt: skip
    x = np.concatenate([p[0] for p in pooled])
    y = np.concatenate([p[1] for p in pooled])
    exact = exact_correlations(prior, reward, REVERSAL.beta, demo_configs())
    assert exact["string_level_pearson"] > 0.15
    pearson = stats.pearsonr(x, y)
    assert pearson.confidence_interval(0.999).low > 0.1
    assert abs(pearson.statistic - exact["string_level_pearson"]) < 0.04
    assert stats.spearmanr(x, y).statistic > 0.3
    # Within a configuration too, for 32 of the 35 (under pi itself it is about 0: +0.017).
    within = exact["per_config_pearson"]
    assert sum(r > 0 for r in within.values()) >= 32
    assert within["ancestral"] == pytest.approx(0.017, abs=5e-3)


def test_configuration_means_trade_prior_likelihood_for_reward(world):
    prior, reward, _ = world
    exact = [exact_expectations(prior, reward, REVERSAL.beta, c) for c in demo_configs()]
    # The IMH targets' means (the centres of the corpora: corpus level), and the adapted models'
    # (Simpson's between-configuration correlation, a Pearson one).
    for where, pearson, spearman in (("imh_target", -0.55, -0.5), ("adapted", -0.35, -0.1)):
        x = [e[where]["logp_prior"] for e in exact]
        y = [e[where]["reward"] for e in exact]
        assert stats.pearsonr(x, y).statistic < pearson
        assert stats.spearmanr(x, y).statistic < spearman
    correlations = exact_correlations(prior, reward, REVERSAL.beta, demo_configs())
    assert correlations["corpus_level_pearson"] == pytest.approx(
        stats.pearsonr([e["imh_target"]["logp_prior"] for e in exact],
                       [e["imh_target"]["reward"] for e in exact]).statistic, abs=1e-9
    )  # fmt: skip
    # Every configuration ends its strings, and they are short (the demo stays fast).
    lengths = [e["adapted"]["length"] for e in exact]
    assert 1 < min(lengths) and max(lengths) < 6


def test_the_seven_families_keep_different_tokens_at_every_temperature(world):
    _, _, aligned = world
    rows = aligned.log_probs.astype(np.float32)
    for temperature in DEMO_TEMPERATURES:
        kept, kept_hf = {}, {}
        for family in DEMO_FAMILIES:
            chain = AdaptorChain.parse(chain_name(family, temperature))
            kept[family] = adapt(aligned, chain).log_probs > -np.inf
            kept_hf[family] = hf_apply(chain, rows) > -np.inf
        for a, b in itertools.combinations(DEMO_FAMILIES, 2):
            where = f"{a} and {b} at temperature {temperature}"
            assert (kept[a] != kept[b]).any(), where
            assert (kept_hf[a] != kept_hf[b]).any(), where + " (transformers)"


def test_the_independent_world_is_the_first_demo_world():
    # The first demo's world ([world] seed = 4, min_eos = 0.15): its exact ancestral means, as
    # the first demo printed them.
    settings = preset_settings("independent")
    assert settings == AutomatonSettings(seed=4, min_eos=0.15)
    prior, reward = make_prior(settings)
    exact = exact_expectations(prior, reward, 1.0, "ancestral")["adapted"]
    assert exact["reward"] == pytest.approx(0.874, abs=5e-4)
    assert exact["logp_prior"] == pytest.approx(-13.002, abs=5e-4)
    # A world.json written before the reward kinds existed still loads, as that world.
    old = {"n_states": 6, "n_symbols": 12, "min_eos": 0.15, "beta": 1.0, "reward_scale": 0.3,
           "concentration": 0.5, "seed": 4}  # fmt: skip
    assert AutomatonSettings(**json.loads(json.dumps(old))) == settings


def test_presets_and_settings_are_checked():
    assert set(PRESETS) == {"reversal", "independent"}
    assert demo_config()["world"] == {"kind": "automaton", "preset": "reversal"}
    assert demo_config(world="independent")["world"]["preset"] == "independent"
    with pytest.raises(ConfigError, match="`world` must be one of reversal, independent"):
        demo_config(world="other")
    with pytest.raises(ConfigError, match="unknown world 'other'"):
        preset_settings("other")
    assert preset_settings("reversal", seed=5, min_eos=None).seed == 5
    with pytest.raises(ConfigError, match="`reward` must be one of"):
        AutomatonSettings(reward="learned")
    with pytest.raises(ConfigError, match="`concentration_spread` must be >= 0"):
        AutomatonSettings(reward="reversal", concentration_spread=-1.0)
    with pytest.raises(ConfigError, match="shape the 'reversal' reward only"):
        AutomatonSettings(state_weight=1.0)
    with pytest.raises(ConfigError, match="`eos_reward` must be a finite number"):
        AutomatonSettings(reward="reversal", eos_reward=float("nan"))


def test_a_configs_world_section_picks_the_preset(tmp_path):
    from tradeoff.app.config import config_from_dict
    from tradeoff.app.run import _world_inputs
    from tradeoff.worlds.automaton_hf import load_world

    def config(world):
        values = demo_config(str(tmp_path / "out"))
        values["world"] = world
        return config_from_dict(values, "the test")

    with pytest.raises(
        ConfigError, match=r"\[world\] 'preset' must be one of reversal, independent"
    ):
        config({"kind": "automaton", "preset": "other"})
    with pytest.raises(ConfigError, match=r"\[world\] 'min_eos' must be in \(0, 1\)"):
        config({"preset": "independent", "min_eos": 1.5})
    _world_inputs(config({"preset": "independent", "seed": 5}), build=True)
    settings, _, _ = load_world(tmp_path / "out" / "world")
    assert settings == AutomatonSettings(seed=5, min_eos=0.15)
    _world_inputs(config({"kind": "automaton"}), build=True)  # the preset by default: reversal
    settings, prior, reward = load_world(tmp_path / "out" / "world")
    assert settings == REVERSAL
    np.testing.assert_array_equal(reward, make_prior(REVERSAL)[1])
