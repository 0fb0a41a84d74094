"""Exact second moments of additive quantities in an automaton world, and from them the exact
correlations the demo estimates.

For additive ``F = sum f(s_t, a_t)`` and ``G = sum g(s_t, a_t)`` (EOS included) under an
automaton, the conditional moments from each state solve linear systems on the same transfer
matrix as the expected visits: ``m_F = b_F + Q m_F`` with ``b_F(s) = sum_a q(a|s) f(s, a)``, and

    E[F G | s] = sum_a q(a|s) (f g + f m_G(next) + g m_F(next) + E[F G | next])

(the moments after EOS are 0). With them:

- the string-level Pearson correlation of (log p, reward) in one configuration;
- the pooled string-level one, over the strings of several configurations in equal numbers (a
  mixture: its covariance is the mean of the second moments less the product of the mean means);
- the correlation between the configurations' means (Simpson's between-configuration one), under
  the adapted models and under the IMH targets (pi restricted to each configuration's support:
  the centres of the resampled corpora, whose correlation the corpus-level one tends to when the
  corpora are many and large).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .automaton import Automaton, _transfer, adapt, restrict, tilt

__all__ = ["Moments", "additive_moments", "exact_correlations"]


@dataclass(frozen=True)
class Moments:
    """First and second moments of two additive quantities F, G under one automaton."""

    mean_f: float
    mean_g: float
    ff: float
    fg: float
    gg: float

    @property
    def pearson(self) -> float:
        """The Pearson correlation of F and G over strings."""
        cov = self.fg - self.mean_f * self.mean_g
        return float(cov / np.sqrt((self.ff - self.mean_f**2) * (self.gg - self.mean_g**2)))


def additive_moments(model: Automaton, f: np.ndarray, g: np.ndarray) -> Moments:
    """E[F], E[G], E[F^2], E[F G], E[G^2] for ``F = sum f[s, a]``, ``G = sum g[s, a]`` along a
    string of ``model`` (EOS included); tokens outside the support contribute nothing."""
    probs = model.probs
    n = probs.shape[0]
    system = np.eye(n) - _transfer(probs, model.next_state)
    f = np.where(probs > 0, f, 0.0)
    g = np.where(probs > 0, g, 0.0)

    def after(m: np.ndarray) -> np.ndarray:  # the moment from the next state; 0 after EOS
        return np.column_stack([m[model.next_state], np.zeros(n)])

    m_f = np.linalg.solve(system, (probs * f).sum(axis=1))
    m_g = np.linalg.solve(system, (probs * g).sum(axis=1))

    def second(a: np.ndarray, b: np.ndarray, m_a: np.ndarray, m_b: np.ndarray) -> float:
        rhs = (probs * (a * b + a * after(m_b) + b * after(m_a))).sum(axis=1)
        return float(np.linalg.solve(system, rhs)[model.start])

    s = model.start
    return Moments(
        mean_f=float(m_f[s]),
        mean_g=float(m_g[s]),
        ff=second(f, f, m_f, m_f),
        fg=second(f, g, m_f, m_g),
        gg=second(g, g, m_g, m_g),
    )


def exact_correlations(
    prior: Automaton,
    reward: np.ndarray,
    beta: float,
    chains: list[str],
    weights: list[float] | None = None,
) -> dict[str, Any]:
    """The exact correlations of (log p, reward) for the configurations ``chains``:
    ``string_level_pearson`` (pooled over their strings, configuration i's share of the strings
    ``weights[i] / sum(weights)``, equal by default), ``per_config_pearson``,
    ``between_pearson`` (of the adapted models' means: Simpson's between-configuration one) and
    ``corpus_level_pearson`` (of the IMH targets' means, configurations equally weighted: the
    limit of the pooled corpus-level correlation when each configuration's corpora are many and
    large)."""
    if weights is None:
        weights = [1.0] * len(chains)
    if len(weights) != len(chains) or not sum(weights) > 0 or min(weights) < 0:
        raise ValueError(
            f"`weights` must hold {len(chains)} numbers >= 0 with a positive sum, got {weights}"
        )
    aligned, _ = tilt(prior, reward, beta)
    adapted, targets = [], []
    for chain in chains:
        q = adapt(aligned, chain)
        adapted.append(additive_moments(q, prior.log_probs, reward))
        target = restrict(aligned, q.log_probs > -np.inf)
        targets.append(additive_moments(target, prior.log_probs, reward))
    share = np.asarray(weights, dtype=float) / float(sum(weights))

    def pooled(name: str) -> float:
        return float(share @ np.array([getattr(m, name) for m in adapted]))

    f, g = pooled("mean_f"), pooled("mean_g")
    string = (pooled("fg") - f * g) / np.sqrt((pooled("ff") - f**2) * (pooled("gg") - g**2))

    def between(ms: list[Moments]) -> float:
        if len(ms) < 2:
            return float("nan")
        return float(np.corrcoef([m.mean_f for m in ms], [m.mean_g for m in ms])[0, 1])

    return {
        "string_level_pearson": float(string),
        "per_config_pearson": {c: m.pearson for c, m in zip(chains, adapted, strict=True)},
        "between_pearson": between(adapted),
        "corpus_level_pearson": between(targets),
    }
