"""recommend on a hand-made frontier: the frontier, the cheapest qualifying choice, the exchange
rate, and the plain verdicts when nothing qualifies or the choice is within noise."""

from __future__ import annotations

import json

import pytest

from tradeoff.app import cli
from tradeoff.stages.recommend import recommend


def config(name, logp, reward, half=0.1):
    return {
        "config": name,
        "mean_logp_prior": {"value": logp, "low": logp - half, "high": logp + half},
        "mean_reward": {"value": reward, "low": reward - half, "high": reward + half},
    }


SUMMARY = {
    "configs": [
        config("ancestral", -10.0, 1.0),
        config("temperature=0.5", -6.0, 0.5),
        config("temperature=1.5", -14.0, 2.0),
        config("top_p=0.9", -9.0, 1.25),  # dominates ancestral beyond the intervals
        config("top_k=5", -9.05, 1.19),  # dominated by top_p=0.9, but within noise
        config("bad", -15.0, 0.2),  # clearly dominated
    ]
}


def test_frontier_and_noise():
    result = recommend(SUMMARY)
    assert [f["config"] for f in result["frontier"]] == [
        "temperature=1.5", "top_p=0.9", "temperature=0.5"]  # fmt: skip
    assert "top_k=5" in result["frontier_within_noise"]
    assert "ancestral" not in result["frontier_within_noise"]  # top_p=0.9 beats it clearly
    assert "bad" not in result["frontier_within_noise"]


def test_cheapest_configuration_for_a_reward_target():
    result = recommend(SUMMARY, min_reward=1.1)
    assert result["choice"]["config"] == "top_p=0.9"
    assert result["runner_up"]["config"] == "top_k=5"
    assert "indistinguishable" in result["verdict"]
    assert result["choice"]["reward_gain"]["value"] == pytest.approx(0.25)
    assert "no likelihood given up" in result["verdict"]
    result = recommend(SUMMARY, min_reward=1.5)
    assert result["choice"]["config"] == "temperature=1.5"
    assert result["choice"]["exchange_rate"] == pytest.approx(1.0 / 4.0)
    assert "0.25 reward per nat" in result["verdict"]
    assert (
        recommend(SUMMARY, min_reward=3.0)["verdict"]
        == "No configuration meets mean reward >= 3.0."
    )


def test_best_reward_within_a_likelihood_budget():
    result = recommend(SUMMARY, max_loglik_loss=2.0)
    assert result["choice"]["config"] == "top_p=0.9"
    result = recommend(SUMMARY, max_loglik_loss=5.0)
    assert result["choice"]["config"] == "temperature=1.5"
    with pytest.raises(ValueError, match="not both"):
        recommend(SUMMARY, min_reward=1.0, max_loglik_loss=1.0)
    with pytest.raises(ValueError, match="does not have"):
        recommend(SUMMARY, max_loglik_loss=1.0, baseline="greedy")


def test_command_line(tmp_path, capsys):
    (tmp_path / "summary.json").write_text(json.dumps(SUMMARY))
    assert cli.main(["recommend", "--run", str(tmp_path), "--min-reward", "1.5", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["choice"]["config"] == "temperature=1.5"
    assert cli.main(["recommend", "--run", str(tmp_path / "missing")]) == 2
    assert "run `tradeoff-eval analyze" in capsys.readouterr().err
