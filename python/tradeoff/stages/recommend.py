"""The recommend stage: which adaptor buys how much reward for how much likelihood — the Pareto
frontier of a run's configurations in (mean prior log-likelihood, mean reward), and the cheapest
configuration that meets a target.

Means are the plain means of each configuration's strings (what sampling with that adaptor gives),
with their 95% bootstrap intervals from ``summary.json``. A configuration is on the frontier when
no other has at least its reward and its log-likelihood, one of them higher; it is on the frontier
*within noise* when no other beats it on both axes by more than the intervals (the other's lower
bounds above its upper bounds). Configurations without both means (no strings kept) cannot be
compared; they are listed under ``not_compared`` with the reason. Best-of-n points (when the
analysis has them) are listed beside the adaptors under ``best_of_n`` with their cost, n strings
per output, and the adaptor configurations that beat them on both axes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError, RunDirError
from ..rundir.summary import ConfigSummary, Estimate, Summary

__all__ = ["frontier", "recommend"]


def _point(c: ConfigSummary) -> tuple[float, float]:
    return c.mean_logp_prior.value, c.mean_reward.value  # type: ignore[return-value]


def _half_width(v: Estimate) -> float:
    if v.low is None or v.high is None:
        return math.nan
    return (v.high - v.low) / 2


def _difference(a: Estimate, b: Estimate) -> dict[str, float | None]:
    """a - b with an approximate 95% interval (independent samples: half-widths add in
    quadrature); no interval when either has none."""
    value = a.value - b.value  # type: ignore[operator]
    half = math.hypot(_half_width(a), _half_width(b))
    if not math.isfinite(half):
        return {"value": value, "low": None, "high": None}
    return {"value": value, "low": value - half, "high": value + half}


def _estimate(v: Estimate) -> dict[str, Any]:
    return {"value": v.value, "low": v.low, "high": v.high, "reason": v.reason}


def _clearly_above(a: Estimate, b: Estimate) -> bool:
    return a.low is not None and b.high is not None and a.low > b.high


def frontier(configs: list[ConfigSummary]) -> tuple[list[str], list[str]]:
    """(the Pareto frontier by point estimates, the configurations not clearly dominated)."""
    on, within = [], []
    for c in configs:
        lp, r = _point(c)
        dominated = any(
            (_point(o)[0] >= lp and _point(o)[1] >= r and _point(o) != (lp, r)) for o in configs
        )
        clearly = any(
            _clearly_above(o.mean_logp_prior, c.mean_logp_prior)
            and _clearly_above(o.mean_reward, c.mean_reward)
            for o in configs
            if o is not c
        )
        if not dominated:
            on.append(c.config)
        if not clearly:
            within.append(c.config)
    return on, within


def _best_of_n(
    summary: Summary, configs: list[ConfigSummary], base: ConfigSummary | None
) -> list[dict[str, Any]]:
    """The best-of-n points beside the adaptors: their means, their cost (strings per output),
    the adaptor configurations that beat them on both axes, and the exchange rate against the
    baseline."""
    block = summary.best_of_n
    if block is None:
        return []
    out = []
    for p in block.points:
        if not (p.mean_reward.known and p.mean_logp_prior.known):
            continue
        lp, r = p.mean_logp_prior.value, p.mean_reward.value
        entry: dict[str, Any] = {
            "policy": f"best-of-{p.n} ({block.base})",
            "n": p.n,
            "cost": p.cost,
            "mean_reward": _estimate(p.mean_reward),
            "mean_logp_prior": _estimate(p.mean_logp_prior),
            "kl_bound": p.kl_bound,
            "dominated_by": [
                c.config
                for c in configs
                if _point(c)[0] >= lp and _point(c)[1] >= r and _point(c) != (lp, r)  # type: ignore[operator]
            ],
        }
        if base is not None:
            gain = _difference(p.mean_reward, base.mean_reward)
            loss = _difference(base.mean_logp_prior, p.mean_logp_prior)
            entry["reward_gain"], entry["loglik_loss"] = gain, loss
            entry["exchange_rate"] = gain["value"] / loss["value"] if loss["value"] else None
        out.append(entry)
    return out


def _check_target(name: str, value: float | None) -> None:
    if value is not None and not math.isfinite(value):
        raise ConfigError(f"`{name}` must be a finite number, got {value}")


def recommend(
    summary: Summary | Mapping[str, Any],
    *,
    min_reward: float | None = None,
    max_loglik_loss: float | None = None,
    baseline: str = "ancestral",
) -> dict[str, Any]:
    """The frontier, and with a target the cheapest qualifying configuration, its exchange rate
    against the baseline (reward gained per nat of prior log-likelihood given up) and a plain
    verdict."""
    if min_reward is not None and max_loglik_loss is not None:
        raise ConfigError("give `min_reward` or `max_loglik_loss`, not both")
    _check_target("min_reward", min_reward)
    _check_target("max_loglik_loss", max_loglik_loss)
    if max_loglik_loss is not None and not max_loglik_loss >= 0:
        raise ConfigError(f"`max_loglik_loss` must be >= 0 nats, got {max_loglik_loss}")
    if not isinstance(summary, Summary):
        summary = Summary.from_dict(dict(summary))
    configs = [c for c in summary.configs if c.mean_reward.known and c.mean_logp_prior.known]
    not_compared = [
        {
            "config": c.config,
            "reason": c.mean_reward.reason or c.mean_logp_prior.reason or "no finite means",
        }
        for c in summary.configs
        if not (c.mean_reward.known and c.mean_logp_prior.known)
    ]
    if not configs:
        reasons = "; ".join(f"{n['config']}: {n['reason']}" for n in not_compared)
        raise RunDirError(
            "the summary has no configuration with finite means to compare"
            + (f" ({reasons})" if reasons else "")
        )
    by_name = {c.config: c for c in configs}
    base = by_name.get(baseline)
    on, within = frontier(configs)

    def describe(c: ConfigSummary) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "config": c.config,
            "mean_reward": _estimate(c.mean_reward),
            "mean_logp_prior": _estimate(c.mean_logp_prior),
            "on_frontier": c.config in on,
            "on_frontier_within_noise": c.config in within,
        }
        if base is not None and c is not base:
            gain = _difference(c.mean_reward, base.mean_reward)
            loss = _difference(base.mean_logp_prior, c.mean_logp_prior)
            entry["reward_gain"] = gain
            entry["loglik_loss"] = loss
            entry["exchange_rate"] = gain["value"] / loss["value"] if loss["value"] else None
        return entry

    result: dict[str, Any] = {
        "baseline": baseline if base is not None else None,
        "frontier": [describe(by_name[n]) for n in sorted(on, key=lambda n: _point(by_name[n])[0])],
        "frontier_within_noise": within,
        "not_compared": not_compared,
    }
    points = _best_of_n(summary, configs, base)
    if points:
        result["best_of_n"] = points
    if min_reward is None and max_loglik_loss is None:
        return result
    floor = -math.inf
    if min_reward is not None:
        qualifying = [c for c in configs if c.mean_reward.value >= min_reward]  # type: ignore[operator]
        target = f"mean reward >= {min_reward}"
        best = max(qualifying, key=lambda c: c.mean_logp_prior.value, default=None)  # type: ignore[arg-type, return-value]
        confident = (
            best is not None
            and best.mean_reward.low is not None
            and best.mean_reward.low >= min_reward
        )
    else:
        if base is None:
            raise ConfigError(
                f"`max_loglik_loss` is measured from the {baseline!r} configuration, which this "
                "run does not have"
                + (" with finite means" if baseline in {n["config"] for n in not_compared} else "")
            )
        floor = base.mean_logp_prior.value - max_loglik_loss  # type: ignore[operator]
        qualifying = [c for c in configs if c.mean_logp_prior.value >= floor]  # type: ignore[operator]
        target = (
            f"mean prior log-likelihood >= {floor:.4g} ({max_loglik_loss} nats below {baseline})"
        )
        best = max(qualifying, key=lambda c: c.mean_reward.value, default=None)  # type: ignore[arg-type, return-value]
        confident = (
            best is not None
            and best.mean_logp_prior.low is not None
            and best.mean_logp_prior.low >= floor
        )
    result["target"] = target
    if best is None:
        result["choice"] = None
        result["verdict"] = f"No configuration meets {target}."
        return result
    result["choice"] = describe(best)
    # The runner-up in the same direction, to say whether the choice is distinguishable.
    others = [c for c in qualifying if c is not best]
    key = "mean_logp_prior" if min_reward is not None else "mean_reward"
    runner = max(others, key=lambda c: c.mean(key).value, default=None)  # type: ignore[arg-type, return-value]
    verdict = f"{best.config} meets {target}"
    verdict += "." if confident else ", but only within noise (its 95% interval reaches past it)."
    if runner is not None:
        diff = _difference(best.mean(key), runner.mean(key))
        result["runner_up"] = {"config": runner.config, "difference": diff}
        if diff["low"] is None or diff["low"] <= 0:
            verdict += (
                f" {runner.config} is indistinguishable from it at 95% on {key.replace('_', ' ')}."
            )
    choice = result["choice"]
    meets = [
        p
        for p in points
        if (min_reward is not None and p["mean_reward"]["value"] >= min_reward)
        or (min_reward is None and p["mean_logp_prior"]["value"] >= floor)
    ]
    if points:
        if meets:
            cheapest = min(meets, key=lambda p: p["cost"])
            verdict_bon = (
                f" Best-of-n: {cheapest['policy']} also meets it, at {cheapest['cost']} strings "
                "per output."
            )
        else:
            verdict_bon = f" No best-of-n point (n up to {points[-1]['n']}) meets it."
    else:
        verdict_bon = ""
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
    verdict += verdict_bon
    if not_compared:
        verdict += (
            " Not compared (no finite means): "
            + ", ".join(f"{n['config']} ({n['reason']})" for n in not_compared)
            + "."
        )
    result["verdict"] = verdict
    return result
