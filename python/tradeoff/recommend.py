"""Which adaptor buys how much reward for how much likelihood: the Pareto frontier of a run's
configurations in (mean prior log-likelihood, mean reward), and the cheapest configuration that
meets a target.

Means are the plain means of each configuration's strings (what sampling with that adaptor gives),
with their 95% bootstrap intervals from ``summary.json``. A configuration is on the frontier when
no other has at least its reward and its log-likelihood, one of them higher; it is on the frontier
*within noise* when no other beats it on both axes by more than the intervals (the other's lower
bounds above its upper bounds).
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["recommend"]


def _point(c: dict[str, Any]) -> tuple[float, float]:
    return c["mean_logp_prior"]["value"], c["mean_reward"]["value"]


def _half_width(v: dict[str, Any]) -> float:
    if v.get("low") is None or v.get("high") is None:
        return math.nan
    return (v["high"] - v["low"]) / 2


def _difference(a: dict[str, Any], b: dict[str, Any]) -> dict[str, float]:
    """a - b with an approximate 95% interval (independent samples: half-widths add in
    quadrature)."""
    value = a["value"] - b["value"]
    half = math.hypot(_half_width(a), _half_width(b))
    return {"value": value, "low": value - half, "high": value + half}


def frontier(configs: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """(the Pareto frontier by point estimates, the configurations not clearly dominated)."""
    on, within = [], []
    for c in configs:
        lp, r = _point(c)
        dominated = any(
            (_point(o)[0] >= lp and _point(o)[1] >= r and _point(o) != (lp, r)) for o in configs
        )
        clearly = any(
            o["mean_logp_prior"]["low"] > c["mean_logp_prior"]["high"]
            and o["mean_reward"]["low"] > c["mean_reward"]["high"]
            for o in configs
            if o is not c
        )
        if not dominated:
            on.append(c["config"])
        if not clearly:
            within.append(c["config"])
    return on, within


def recommend(
    summary: dict[str, Any],
    *,
    min_reward: float | None = None,
    max_loglik_loss: float | None = None,
    baseline: str = "ancestral",
) -> dict[str, Any]:
    """The frontier, and with a target the cheapest qualifying configuration, its exchange rate
    against the baseline (reward gained per nat of prior log-likelihood given up) and a plain
    verdict."""
    if min_reward is not None and max_loglik_loss is not None:
        raise ValueError("give `min_reward` or `max_loglik_loss`, not both")
    if max_loglik_loss is not None and not max_loglik_loss >= 0:
        raise ValueError(f"`max_loglik_loss` must be >= 0 nats, got {max_loglik_loss}")
    configs = [
        c
        for c in summary["configs"]
        if c["mean_reward"]["value"] is not None and c["mean_logp_prior"]["value"] is not None
    ]
    if not configs:
        raise ValueError("the summary has no configuration with finite means")
    by_name = {c["config"]: c for c in configs}
    base = by_name.get(baseline)
    on, within = frontier(configs)

    def describe(c: dict[str, Any]) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "config": c["config"],
            "mean_reward": c["mean_reward"],
            "mean_logp_prior": c["mean_logp_prior"],
            "on_frontier": c["config"] in on,
            "on_frontier_within_noise": c["config"] in within,
        }
        if base is not None and c is not base:
            gain = _difference(c["mean_reward"], base["mean_reward"])
            loss = _difference(base["mean_logp_prior"], c["mean_logp_prior"])
            entry["reward_gain"] = gain
            entry["loglik_loss"] = loss
            entry["exchange_rate"] = gain["value"] / loss["value"] if loss["value"] else None
        return entry

    result: dict[str, Any] = {
        "baseline": baseline if base is not None else None,
        "frontier": [describe(by_name[n]) for n in sorted(on, key=lambda n: _point(by_name[n])[0])],
        "frontier_within_noise": within,
    }
    if min_reward is None and max_loglik_loss is None:
        return result
    if min_reward is not None:
        qualifying = [c for c in configs if c["mean_reward"]["value"] >= min_reward]
        target = f"mean reward >= {min_reward}"
        best = max(qualifying, key=lambda c: c["mean_logp_prior"]["value"], default=None)
        confident = best is not None and best["mean_reward"]["low"] >= min_reward
    else:
        if base is None:
            raise ValueError(
                f"`max_loglik_loss` is measured from the {baseline!r} configuration, which this "
                "run does not have"
            )
        floor = base["mean_logp_prior"]["value"] - max_loglik_loss
        qualifying = [c for c in configs if c["mean_logp_prior"]["value"] >= floor]
        target = (
            f"mean prior log-likelihood >= {floor:.4g} ({max_loglik_loss} nats below {baseline})"
        )
        best = max(qualifying, key=lambda c: c["mean_reward"]["value"], default=None)
        confident = best is not None and best["mean_logp_prior"]["low"] >= floor
    result["target"] = target
    if best is None:
        result["choice"] = None
        result["verdict"] = f"No configuration meets {target}."
        return result
    result["choice"] = describe(best)
    # The runner-up in the same direction, to say whether the choice is distinguishable.
    others = [c for c in qualifying if c is not best]
    key = "mean_logp_prior" if min_reward is not None else "mean_reward"
    runner = max(others, key=lambda c: c[key]["value"], default=None)
    verdict = f"{best['config']} meets {target}"
    verdict += "." if confident else ", but only within noise (its 95% interval reaches past it)."
    if runner is not None:
        diff = _difference(best[key], runner[key])
        result["runner_up"] = {"config": runner["config"], "difference": diff}
        if diff["low"] <= 0:
            verdict += (
                f" {runner['config']} is indistinguishable from it at 95% on "
                f"{key.replace('_', ' ')}."
            )
    choice = result["choice"]
    if choice.get("exchange_rate") is not None:
        gain, loss = choice["reward_gain"]["value"], choice["loglik_loss"]["value"]
        if loss > 0:
            verdict += (
                f" Against {baseline}: {gain:+.4g} reward for {loss:.4g} nats of prior "
                f"log-likelihood given up ({choice['exchange_rate']:.4g} reward per nat)."
            )
        else:
            verdict += (
                f" Against {baseline}: {gain:+.4g} reward and {-loss:.4g} nats more prior "
                "log-likelihood (no likelihood given up)."
            )
    result["verdict"] = verdict
    return result
