"""Per-prompt trade-off lines: each prompt is its own automaton world (its own prior, reward and
aligned model), strings drawn from each configuration's adapted automaton. The per-prompt
implied beta is the world's beta exactly (the identity holds string by string), the lines'
means are the importance-weighted means of a direct computation, and with many strings the
lines approach the ones through the worlds' exact IMH-target means."""

from __future__ import annotations

import numpy as np
import pytest

from tradeoff.errors import ConfigError
from tradeoff.stages.analyze import Loaded, analyze_per_prompt
from tradeoff.stages.settings import AnalysisSettings
from tradeoff.worlds.automaton import (
    AutomatonSettings,
    adapt,
    exact_expectations,
    make_prior,
    sample_strings,
    string_values,
    tilt,
)

CONFIGS = ["ancestral", "temperature=0.7", "top_k=3", "top_p=0.8,temperature=0.8"]
BETAS = {"a": 0.8, "b": 1.5}
# Worlds in which every configuration keeps EOS reachable (its strings end).
SEEDS = {"a": 11, "b": 3}


def _world(prompt: str) -> AutomatonSettings:
    return AutomatonSettings(n_states=4, n_symbols=6, min_eos=0.3, beta=BETAS[prompt],
                             reward_scale=0.5, seed=SEEDS[prompt])  # fmt: skip


def _loaded(per_cell: int, short: dict[tuple[str, str], int] | None = None) -> Loaded:
    names = ("config", "prompt_id", "reward", "logp_prior", "logp_aligned", "logp_adapted",
             "n_tokens")  # fmt: skip
    rows: dict[str, list] = {k: [] for k in names}
    for prompt in BETAS:
        settings = _world(prompt)
        prior, reward = make_prior(settings)
        aligned, _ = tilt(prior, reward, settings.beta)
        for index, config in enumerate(CONFIGS):
            adapted = adapt(aligned, config)
            n = (short or {}).get((prompt, config), per_cell)
            for tokens in sample_strings(adapted, n, seed=ord(prompt) * 100 + index):
                rows["config"].append(config)
                rows["prompt_id"].append(prompt)
                rows["reward"].append(string_values(prior, tokens, reward))
                rows["logp_prior"].append(string_values(prior, tokens, prior.log_probs))
                rows["logp_aligned"].append(string_values(aligned, tokens, aligned.log_probs))
                rows["logp_adapted"].append(string_values(adapted, tokens, adapted.log_probs))
                rows["n_tokens"].append(float(len(tokens)))
    n = len(rows["config"])
    columns = {k: np.asarray(rows[k], dtype=float) for k in names[2:]}
    return Loaded(columns=columns, config=np.asarray(rows["config"], dtype=object),
                  prompt_id=np.asarray(rows["prompt_id"], dtype=object),
                  finished=np.ones(n, dtype=bool), empty=np.zeros(n, dtype=bool),
                  finite=np.ones(n, dtype=bool), order=list(CONFIGS),
                  duplicate=np.zeros(n, dtype=bool))  # fmt: skip


def test_each_prompt_implies_its_own_worlds_beta_and_its_line_is_the_weighted_fit():
    data = _loaded(200)
    block, reason = analyze_per_prompt(data, AnalysisSettings())
    assert reason is None and block.n_prompts == 2 and block.n_configs == len(CONFIGS)
    for line in block.prompts:
        assert line.beta == pytest.approx(BETAS[line.prompt_id], rel=1e-9)
        # The same line by a direct computation: importance-weighted means, then polyfit.
        xs, ys = [], []
        for config in CONFIGS:
            rows = (data.prompt_id == line.prompt_id) & (data.config == config)
            log_w = data.columns["logp_aligned"][rows] - data.columns["logp_adapted"][rows]
            xs.append(np.average(data.columns["logp_prior"][rows], weights=np.exp(log_w)))
            ys.append(np.average(data.columns["reward"][rows], weights=np.exp(log_w)))
        slope, intercept = np.polyfit(xs, ys, 1)
        assert line.slope == pytest.approx(slope, rel=1e-9)
        assert line.intercept == pytest.approx(intercept, rel=1e-9)
        assert line.rvalue == pytest.approx(np.corrcoef(xs, ys)[0, 1], rel=1e-9)
    assert block.beta_median == pytest.approx(np.median(list(BETAS.values())))
    slopes = [line.slope for line in block.prompts]
    assert block.slope_median == pytest.approx(np.median(slopes))
    assert block.share_negative == np.mean(np.array(slopes) < 0)
    ratios = [line.slope / -line.beta for line in block.prompts]
    assert block.ratio_to_minus_beta_median == pytest.approx(np.median(ratios))


def test_with_many_strings_the_lines_approach_the_exact_ones():
    block, _ = analyze_per_prompt(_loaded(4000), AnalysisSettings())
    for line in block.prompts:
        settings = _world(line.prompt_id)
        prior, reward = make_prior(settings)
        exact = [exact_expectations(prior, reward, settings.beta, c)["imh_target"] for c in CONFIGS]
        slope = np.polyfit([e["logp_prior"] for e in exact], [e["reward"] for e in exact], 1)[0]
        assert line.slope == pytest.approx(slope, rel=0.15, abs=0.01)


def test_prompts_short_of_strings_are_dropped_and_counted():
    data = _loaded(30, short={("b", "top_k=3"): 5})
    block, reason = analyze_per_prompt(data, AnalysisSettings(per_prompt_min_samples=10))
    assert reason is None and block.n_prompts == 1 and block.n_prompts_dropped == 1
    assert [line.prompt_id for line in block.prompts] == ["a"]
    block, reason = analyze_per_prompt(data, AnalysisSettings(per_prompt_min_samples=40))
    assert block is None and "no prompt has 40 kept strings" in reason and "most" in reason


def test_min_samples_is_checked():
    with pytest.raises(ConfigError, match="per_prompt_min_samples.*>= 2"):
        AnalysisSettings(per_prompt_min_samples=1).check(lambda key: f"[analysis] {key}")
