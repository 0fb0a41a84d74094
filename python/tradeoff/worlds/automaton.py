"""An exact world: a prior given as a probabilistic finite-state automaton, an additive reward,
and everything the paper estimates computed exactly, without sampling.

The prior p emits, in state s, token a with probability ``P[s, a]`` and moves to ``next[s, a]``;
token ``EOS`` (the last one) ends the string, and every state has at least ``min_eos`` probability
of EOS, so strings are finite. The reward adds up over transitions, ``r(y) = sum w(s_t, a_t)``
(EOS included). Then:

- the aligned model ``pi = p exp(r / beta) / Z`` is another automaton: with tilted weights
  ``W[s, a] = P[s, a] exp(w[s, a] / beta)``, the normaliser per state solves
  ``Z_s = W[s, EOS] + sum_a W[s, a] Z_next[s, a]`` (one linear solve), and
  ``pi(a | s) = W[s, a] Z_next[s, a] / Z_s``; when the tilted weights make Z infinite (the
  solve's matrix has spectral radius >= 1), this is refused with a clear error;
- an adaptor chain applied to pi's next-token distribution in each state gives the adapted
  automaton q (the same float32 arithmetic as the sampler);
- expectations of any additive quantity under an automaton come from its expected state visits,
  ``v = e_start (I - Q)^-1``: reward, log p, log pi, log q and length under q, under the IMH
  target (pi restricted to q's support, renormalised), and under the globally normalised adaptor
  (pi^(1/tau) restricted to q's support, renormalised over strings: the same h-transform with
  weights ``pi(a | s)^(1/tau)``, refused when those weights sum to infinity, as they can for
  tau > 1);
- the identity ``E[log pi] = E[log p] + E[r] / beta - log Z`` holds for every string, so for
  every expectation; :func:`exact_expectations` reports its residual.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..adaptors import AdaptorChain
from ..errors import ConfigError

__all__ = [
    "Automaton",
    "AutomatonSettings",
    "InfiniteNormaliserError",
    "PRESETS",
    "adapt",
    "exact_expectations",
    "make_prior",
    "preset_settings",
    "sample_strings",
    "tilt",
]


class InfiniteNormaliserError(ConfigError):
    """The tilted weights p exp(r / beta) do not sum to a finite Z."""


REWARDS = ("independent", "reversal")


@dataclass(frozen=True)
class AutomatonSettings:
    """A seeded random world. Tokens 0 .. n_symbols - 1 are symbols, token n_symbols is EOS.

    ``reward`` says how the reward table is drawn (see :func:`make_prior`):

    - ``"independent"``: ``w = reward_scale * normal``, drawn independently of the prior (in the
      first demo world, string and corpus level correlations are both negative: no reversal);
    - ``"reversal"``: ``w[s, a] = state_weight * m_s - surprise_weight * (log p(a | s) - m_s)
      + symbol_reward [a is a symbol] + eos_reward [a is EOS] + reward_scale * normal``, with
      ``m_s = sum_a p(a | s) log p(a | s)`` the state's mean token log-probability, and each
      state's Dirichlet concentration ``concentration * exp(concentration_spread * normal)``.
      Predictable states are rewarded (so strings likelier under p score higher: a positive
      string-level correlation), while within a state the rarer tokens are (so truncating pi's
      tail and lowering the temperature buy prior likelihood with reward: a negative
      corpus-level correlation). Saved worlds without these fields are ``"independent"``.
    """

    n_states: int = 6
    n_symbols: int = 12
    min_eos: float = 0.1
    beta: float = 1.0
    reward_scale: float = 0.3
    concentration: float = 0.5
    seed: int = 0
    reward: str = "independent"
    concentration_spread: float = 0.0
    state_weight: float = 0.0
    surprise_weight: float = 0.0
    symbol_reward: float = 0.0
    eos_reward: float = 0.0

    def __post_init__(self) -> None:
        for name in ("n_states", "n_symbols"):
            if getattr(self, name) < 1:
                raise ConfigError(f"`{name}` must be an integer >= 1, got {getattr(self, name)}")
        if not 0 < self.min_eos < 1:
            raise ConfigError(f"`min_eos` must be in (0, 1), got {self.min_eos}")
        for name in ("beta", "concentration"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"`{name}` must be > 0, got {getattr(self, name)}")
        if not self.reward_scale >= 0:
            raise ConfigError(f"`reward_scale` must be >= 0, got {self.reward_scale}")
        if self.reward not in REWARDS:
            raise ConfigError(f"`reward` must be one of {', '.join(REWARDS)}, got {self.reward!r}")
        if not self.concentration_spread >= 0:
            raise ConfigError(
                f"`concentration_spread` must be >= 0, got {self.concentration_spread}"
            )
        for name in ("state_weight", "surprise_weight", "symbol_reward", "eos_reward"):
            if not np.isfinite(getattr(self, name)):
                raise ConfigError(f"`{name}` must be a finite number, got {getattr(self, name)}")
        if self.reward == "independent" and any(
            getattr(self, name)
            for name in ("concentration_spread", "state_weight", "surprise_weight",
                         "symbol_reward", "eos_reward")
        ):  # fmt: skip
            raise ConfigError(
                "`concentration_spread`, `state_weight`, `surprise_weight`, `symbol_reward` and "
                "`eos_reward` shape the 'reversal' reward only; set `reward = 'reversal'` or "
                "leave them at 0"
            )


# The worlds the demo offers, by name (``tradeoff-eval demo --world NAME``, ``[world] preset``).
PRESETS: dict[str, dict[str, Any]] = {
    # The paper's phenomenon. Found by a search over seeds and the reward's weights that used the
    # exact expectations of the 35 demo configurations (7 families x 5 temperatures): the pooled
    # string-level Pearson correlation of (log p, reward) is +0.19 exactly, the correlation of
    # the IMH targets' exact means (corpus level) -0.61 and of the adapted models' exact means
    # (Simpson's between-configuration) -0.41, both still clearly negative once each
    # configuration's centre carries the noise of 400 strings; strings are short (mean length
    # 1.5 to 4.3 tokens, EOS included), so the demo stays fast; flat states beside peaky ones
    # make the demo's seven families keep different tokens at every temperature (with typical's
    # mass at 0.85: see tradeoff.app.demo). Under pi itself the string-level correlation is
    # about 0 (+0.017); it is positive in 32 of the 35 configurations and pooled.
    "reversal": dict(
        reward="reversal",
        seed=163,
        n_states=4,
        n_symbols=12,
        min_eos=0.2,
        beta=1.0,
        concentration=0.3,
        concentration_spread=2.5,
        state_weight=0.55,
        surprise_weight=0.37,
        symbol_reward=0.9,
        eos_reward=-0.1,
        reward_scale=0.1,
    ),
    # The first demo world: a reward drawn independently of the prior; string-level and
    # corpus-level correlations are both negative (about -0.8 and -0.98), so no reversal.
    "independent": dict(
        reward="independent", seed=4, n_states=6, n_symbols=12, min_eos=0.15, beta=1.0
    ),
}


def preset_settings(name: str, **overrides: Any) -> AutomatonSettings:
    """The settings of a named world (:data:`PRESETS`), with ``overrides`` (None: keep)."""
    if name not in PRESETS:
        raise ConfigError(f"unknown world {name!r}; known: {', '.join(PRESETS)}")
    values = dict(PRESETS[name])
    values.update({k: v for k, v in overrides.items() if v is not None})
    return AutomatonSettings(**values)


@dataclass(frozen=True)
class Automaton:
    """Next-token log-probabilities ``log_probs[s, a]`` (``-inf`` for impossible tokens), the
    state after each symbol ``next_state[s, a]`` (a < EOS), and the start state."""

    log_probs: np.ndarray
    next_state: np.ndarray
    start: int = 0

    @property
    def eos(self) -> int:
        return self.log_probs.shape[1] - 1

    @property
    def probs(self) -> np.ndarray:
        return np.exp(self.log_probs)


def make_prior(settings: AutomatonSettings) -> tuple[Automaton, np.ndarray]:
    """The prior automaton p and the reward table ``w[s, a]`` (EOS column included)."""
    if settings.reward == "reversal":
        return _make_reversal_prior(settings)
    rng = np.random.default_rng(settings.seed)
    s, a = settings.n_states, settings.n_symbols
    symbols = rng.dirichlet(np.full(a, settings.concentration), size=s)
    probs, next_state = _with_eos_and_moves(rng, symbols, settings.min_eos)
    reward = settings.reward_scale * rng.normal(size=(s, a + 1))
    with np.errstate(divide="ignore"):
        log_probs = np.log(probs)
    return Automaton(log_probs, next_state), reward


def _with_eos_and_moves(
    rng: np.random.Generator, symbols: np.ndarray, min_eos: float
) -> tuple[np.ndarray, np.ndarray]:
    """Each state's EOS probability (at least ``min_eos``) beside its symbols' (rows of
    ``symbols`` summing to 1, scaled to make room), and the state each symbol moves to; drawn
    in this order from ``rng``, after the symbols, in both worlds."""
    s, a = symbols.shape
    eos = min_eos + (1 - min_eos) * rng.beta(1.0, 4.0, size=s)
    probs = np.column_stack([symbols * (1 - eos)[:, None], eos])
    return probs, rng.integers(0, s, size=(s, a))


# Symbol probabilities below this are raised to it (then renormalised): a Dirichlet with a small
# concentration can draw exact zeros, and the reward needs every log p(a | s) finite.
_FLOOR = 1e-12


def _make_reversal_prior(settings: AutomatonSettings) -> tuple[Automaton, np.ndarray]:
    """The ``"reversal"`` world (see :class:`AutomatonSettings`)."""
    rng = np.random.default_rng(settings.seed)
    s, a = settings.n_states, settings.n_symbols
    concentrations = settings.concentration * np.exp(
        settings.concentration_spread * rng.normal(size=s)
    )
    symbols = np.stack([rng.dirichlet(np.full(a, c)) for c in concentrations])
    symbols = np.maximum(symbols, _FLOOR)
    symbols /= symbols.sum(axis=1, keepdims=True)
    probs, next_state = _with_eos_and_moves(rng, symbols, settings.min_eos)
    log_probs = np.log(probs)
    mean = (probs * log_probs).sum(axis=1, keepdims=True)
    reward = (
        settings.state_weight * mean
        - settings.surprise_weight * (log_probs - mean)
        + settings.reward_scale * rng.normal(size=log_probs.shape)
    )
    reward[:, :-1] += settings.symbol_reward
    reward[:, -1] += settings.eos_reward
    return Automaton(log_probs, next_state), reward


def _transfer(weights: np.ndarray, next_state: np.ndarray) -> np.ndarray:
    """``M[s, s'] = sum over symbols a with next[s, a] = s' of weights[s, a]``."""
    n = weights.shape[0]
    matrix = np.zeros((n, n))
    np.add.at(matrix, (np.repeat(np.arange(n), next_state.shape[1]), next_state.ravel()),
              weights[:, :-1].ravel())  # fmt: skip
    return matrix


def _normaliser(
    weights: np.ndarray,
    next_state: np.ndarray,
    what: str = "the tilted weights p exp(r / beta)",
    remedy: str = "lower the reward scale, raise `beta`, or raise `min_eos`",
) -> np.ndarray:
    """Z solving ``Z = W[:, EOS] + M Z``; raises when the series diverges."""
    matrix = _transfer(weights, next_state)
    radius = max(abs(np.linalg.eigvals(matrix))) if matrix.size else 0.0
    if radius >= 1.0 - 1e-12:
        raise InfiniteNormaliserError(
            f"{what} sum to infinity over strings (spectral radius {radius:.4f} >= 1): {remedy}"
        )
    return np.linalg.solve(np.eye(len(matrix)) - matrix, weights[:, -1])


def tilt(prior: Automaton, reward: np.ndarray, beta: float) -> tuple[Automaton, float]:
    """The aligned automaton pi = p exp(r / beta) / Z, and log Z (from the start state)."""
    weights = prior.probs * np.exp(reward / beta)
    z = _normaliser(weights, prior.next_state)
    z_next = np.column_stack([z[prior.next_state], np.ones(len(z))])
    with np.errstate(divide="ignore"):
        log_probs = np.log(weights) + np.log(z_next) - np.log(z)[:, None]
    return Automaton(log_probs, prior.next_state, prior.start), float(np.log(z[prior.start]))


def adapt(model: Automaton, chain: AdaptorChain | str) -> Automaton:
    """The adapted automaton: ``chain`` applied to each state's next-token distribution, in
    float32 as the sampler does, renormalised."""
    chain = AdaptorChain.coerce(chain)
    log_q = chain.log_probs(model.log_probs.astype(np.float32)).astype(np.float64)
    # Renormalised in float64, so that each row sums to 1 to double precision (the expectations'
    # telescoping identities need it); the kept set is the sampler's.
    kept = log_q > -np.inf
    peak = np.max(log_q, axis=1, keepdims=True)
    log_q = np.where(kept, log_q - peak, -np.inf)
    log_q -= np.log(np.exp(log_q).sum(axis=1, keepdims=True))
    return Automaton(log_q, model.next_state, model.start)


def _visits(model: Automaton) -> np.ndarray:
    """Expected number of visits to each state before EOS, from the start state."""
    q = _transfer(model.probs, model.next_state)
    start = np.zeros(len(q))
    start[model.start] = 1.0
    radius = max(abs(np.linalg.eigvals(q))) if q.size else 0.0
    if radius >= 1.0 - 1e-12:
        raise ConfigError(
            "this automaton's strings need not end: a cycle of states has no EOS in its support "
            "(an adaptor truncated EOS away); use a chain that keeps EOS reachable"
        )
    return np.linalg.solve((np.eye(len(q)) - q).T, start)


def _expect(model: Automaton, visits: np.ndarray, per_token: np.ndarray) -> float:
    """E[sum over the string's tokens (EOS included) of per_token[s, a]] under ``model``."""
    probs = model.probs
    values = np.where(probs > 0, per_token, 0.0)
    return float(visits @ (probs * values).sum(axis=1))


def restrict(model: Automaton, support: np.ndarray, power: float = 1.0) -> Automaton:
    """``model`` raised to ``power`` (string probabilities ``model(y)^power``), restricted to the
    tokens in ``support`` and renormalised as a distribution over strings (each state's
    normaliser from one linear solve; an :class:`InfiniteNormaliserError` when it diverges)."""
    with np.errstate(divide="ignore"):
        weights = np.where(support, np.exp(power * model.log_probs), 0.0)
    z = _normaliser(
        weights,
        model.next_state,
        f"the weights pi(a | s)^{power:g} on the support",
        "this globally normalised adaptor has no distribution (a lower temperature has one)",
    )
    z_next = np.column_stack([z[model.next_state], np.ones(len(z))])
    with np.errstate(divide="ignore", invalid="ignore"):
        log_probs = np.log(weights) + np.log(z_next) - np.log(z)[:, None]
    return Automaton(np.where(weights > 0, log_probs, -np.inf), model.next_state, model.start)


def exact_expectations(
    prior: Automaton, reward: np.ndarray, beta: float, chain: AdaptorChain | str
) -> dict[str, Any]:
    """Exact expectations of reward, log p, log pi, log q and length (tokens, EOS included)
    under the adapted automaton q, under the IMH target (pi restricted to q's support), and under
    the globally normalised adaptor (``global_target``: pi^(1/tau) restricted to q's support, tau
    the chain's temperature; None with ``global_reason`` when its normaliser diverges); with
    log Z and the identity's residual ``E_q[log pi] - (E_q[log p] + E_q[r] / beta - log Z)``."""
    chain = AdaptorChain.coerce(chain)
    aligned, log_z = tilt(prior, reward, beta)
    adapted = adapt(aligned, chain)
    support = adapted.log_probs > -np.inf
    models = {"adapted": adapted, "imh_target": restrict(aligned, support)}
    result: dict[str, Any] = {"log_z": log_z, "global_target": None, "global_reason": None}
    try:
        models["global_target"] = restrict(aligned, support, 1.0 / chain.split_temperature()[1])
    except InfiniteNormaliserError as error:
        result["global_reason"] = str(error)
    ones = np.ones_like(reward)
    for name, model in models.items():
        visits = _visits(model)
        values = {
            "reward": _expect(model, visits, reward),
            "logp_prior": _expect(model, visits, prior.log_probs),
            "logp_aligned": _expect(model, visits, aligned.log_probs),
            "logp_adapted": _expect(model, visits, adapted.log_probs),
            "length": _expect(model, visits, ones),
        }
        result[name] = values
    q = result["adapted"]
    result["identity_residual"] = q["logp_aligned"] - (q["logp_prior"] + q["reward"] / beta - log_z)
    return result


def sample_strings(
    model: Automaton, n: int, seed: int, max_length: int = 10_000
) -> list[list[int]]:
    """``n`` token sequences (EOS included) drawn from an automaton: for tests and checks."""
    rng = np.random.default_rng(seed)
    probs = model.probs
    cumulative = np.cumsum(probs, axis=1)
    strings = []
    for _ in range(n):
        state, tokens = model.start, []
        for _ in range(max_length):
            u = rng.random() * cumulative[state, -1]
            token = int(np.searchsorted(cumulative[state], u, side="right"))
            token = min(token, model.eos)
            tokens.append(token)
            if token == model.eos:
                break
            state = int(model.next_state[state, token])
        strings.append(tokens)
    return strings


def string_values(model: Automaton, tokens: list[int], per_token: np.ndarray) -> float:
    """The sum of ``per_token[s, a]`` along one string."""
    state, total = model.start, 0.0
    for token in tokens:
        total += per_token[state, token]
        if token == model.eos:
            break
        state = int(model.next_state[state, token])
    return float(total)
