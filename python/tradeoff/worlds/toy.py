"""The paper's toy experiment, where the trade-off can be seen without a language model.

1,000 outcomes ("strings"). The aligned distribution p+ ~ Dirichlet(0.1) (numpy's legacy
generator, seed 42); the prior ``p = softmax(p+^(1/42) + U(-0.42, 0.42))`` (the noise drawn next
from the same stream); the reward ``r = log(p+ / p)``, so beta = 1 and Z = 1. Corpora of 100,000
outcomes are drawn from p+; a corpus is typical when ``|H(p+) + mean log p+| < 0.001``. Across
typical corpora, mean reward and mean log p fall on a line of slope -1, although per outcome they
are positively correlated.

``rng="numpy-legacy"`` draws corpus i after seeding numpy's legacy generator with i and calling
``choice(1000, size=100000, p=p+)``, the published computation draw for draw; ``rng="fast"`` draws
the same multinomial corpora in Rust (:func:`tradeoff.stats.resample_means` with weights).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .. import stats
from ..errors import ConfigError

__all__ = ["ToySettings", "ToyWorld", "draw_corpora", "make_world", "run_toy", "save_figure"]


@dataclass(frozen=True)
class ToySettings:
    """The experiment's parameters (the paper's values by default)."""

    n_outcomes: int = 1000
    alpha: float = 0.1
    scaling: float = 42.0
    noise: float = 0.42
    seed: int = 42
    n_corpora: int = 1000
    corpus_size: int = 100_000
    tolerance: float = 0.001
    bins: int = 10
    per_bin: int = 100
    rng: str = "fast"

    def __post_init__(self) -> None:
        positive = {
            "n_outcomes": self.n_outcomes,
            "n_corpora": self.n_corpora,
            "corpus_size": self.corpus_size,
            "bins": self.bins,
            "per_bin": self.per_bin,
        }
        for name, value in positive.items():
            if value < 1:
                raise ConfigError(f"`{name}` must be an integer >= 1, got {value}")
        for name, value in {"alpha": self.alpha, "scaling": self.scaling,
                            "tolerance": self.tolerance}.items():  # fmt: skip
            if not value > 0:
                raise ConfigError(f"`{name}` must be > 0, got {value}")
        if not self.noise >= 0:
            raise ConfigError(f"`noise` must be >= 0, got {self.noise}")
        if not 0 <= self.seed < 2**32:
            raise ConfigError(f"`seed` must be an integer in [0, 2**32), got {self.seed}")
        if self.rng not in ("fast", "numpy-legacy"):
            raise ConfigError(f"`rng` must be fast or numpy-legacy, got {self.rng!r}")


@dataclass(frozen=True)
class ToyWorld:
    p_aligned: np.ndarray
    p_prior: np.ndarray
    reward: np.ndarray

    @property
    def log_p_aligned(self) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return np.log(self.p_aligned)

    @property
    def log_p_prior(self) -> np.ndarray:
        return np.log(self.p_prior)

    @staticmethod
    def entropy(p: np.ndarray) -> float:
        q = p[p > 0]
        return float(-(q * np.log(q)).sum())


def make_world(settings: ToySettings) -> ToyWorld:
    """p+, p and r, from numpy's legacy generator seeded with ``settings.seed`` (the same stream
    as the paper's ``np.random.seed(42)``, without touching numpy's global state)."""
    legacy = np.random.RandomState(settings.seed)
    p_aligned = legacy.dirichlet(np.full(settings.n_outcomes, settings.alpha))
    noise = legacy.uniform(-settings.noise, settings.noise, settings.n_outcomes)
    logits = p_aligned ** (1.0 / settings.scaling) + noise
    p_prior = np.exp(logits - logits.max())
    p_prior /= p_prior.sum()
    with np.errstate(divide="ignore"):
        reward = np.log(p_aligned) - np.log(p_prior)
    return ToyWorld(p_aligned, p_prior, reward)


def draw_corpora(world: ToyWorld, settings: ToySettings) -> np.ndarray:
    """``[n_corpora, 3]``: each corpus's mean log p+, mean log p and mean reward."""
    # Outcomes of probability 0 are never drawn; zero their (infinite) logs in the table.
    drawable = world.p_aligned > 0
    values = np.column_stack([world.log_p_aligned, world.log_p_prior, world.reward])
    values[~drawable] = 0.0
    if settings.rng == "fast":
        return stats.resample_means(
            values,
            n_corpora=settings.n_corpora,
            corpus_size=settings.corpus_size,
            seed=settings.seed,
            weights=world.p_aligned,
        )
    means = np.empty((settings.n_corpora, 3))
    for i in range(settings.n_corpora):
        draws = np.random.RandomState(i).choice(
            settings.n_outcomes, size=settings.corpus_size, p=world.p_aligned
        )
        means[i] = values[draws].mean(axis=0)
    return means


def binned_resample(x: np.ndarray, bins: int, per_bin: int, seed: int) -> np.ndarray:
    """Indices of ``per_bin`` corpora drawn with replacement from each of ``bins`` equal-width bins
    of ``x`` (empty bins are skipped): the paper's figure, which evens out the corpora along the
    line."""
    if len(x) == 0:
        return np.zeros(0, dtype=int)
    edges = np.linspace(x.min(), x.max(), bins + 1)
    which = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, bins - 1)
    rng = np.random.default_rng(seed)
    chosen = [
        rng.choice(np.flatnonzero(which == b), per_bin, replace=True)
        for b in range(bins)
        if (which == b).any()
    ]
    return np.concatenate(chosen)


def _correlations(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    if len(x) < 3:
        return float("nan"), float("nan")
    return stats.spearman(x, y).statistic, stats.pearson(x, y).statistic


def run_toy(settings: ToySettings | None = None) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The experiment: a JSON-able summary, and the arrays a figure needs."""
    settings = settings or ToySettings()
    start = time.perf_counter()
    world = make_world(settings)
    entropy_aligned = world.entropy(world.p_aligned)
    corpora = draw_corpora(world, settings)
    typical = stats.typicality(corpora[:, 0], entropy_aligned, tolerance=settings.tolerance).typical
    x, y = corpora[typical, 1], corpora[typical, 2]
    picked = binned_resample(x, settings.bins, settings.per_bin, settings.seed)
    drawable = world.p_aligned > 0
    string_spearman, string_pearson = _correlations(
        world.log_p_prior[drawable], world.reward[drawable]
    )
    corpus_spearman, corpus_pearson = _correlations(x, y)
    binned_spearman, binned_pearson = _correlations(x[picked], y[picked])
    summary = {
        "entropy_aligned": entropy_aligned,
        "entropy_prior": world.entropy(world.p_prior),
        "string_spearman": string_spearman,
        "string_pearson": string_pearson,
        "n_corpora": settings.n_corpora,
        "n_typical": int(typical.sum()),
        "corpus_spearman_typical": corpus_spearman,
        "corpus_pearson_typical": corpus_pearson,
        "corpus_spearman_binned": binned_spearman,
        "corpus_pearson_binned": binned_pearson,
        "rng": settings.rng,
        "settings": asdict(settings),
        "seconds": time.perf_counter() - start,
    }
    arrays = {
        "p_aligned": world.p_aligned,
        "p_prior": world.p_prior,
        "reward": world.reward,
        "corpora": corpora,
        "typical": typical,
        "binned": picked,
    }
    return summary, arrays


def save_figure(summary: dict[str, Any], arrays: dict[str, np.ndarray], path: str) -> None:
    """The paper's three panels: the two distributions, string level, corpus level."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    order = np.argsort(arrays["p_aligned"])[::-1]
    axes[0].plot(
        arrays["p_aligned"][order], label=f"aligned p+ (H = {summary['entropy_aligned']:.2f})"
    )
    axes[0].plot(arrays["p_prior"][order], label=f"prior p (H = {summary['entropy_prior']:.2f})")
    axes[0].set(yscale="log", xlabel="outcome (by p+)", ylabel="probability", title="distributions")
    axes[0].legend()
    drawable = arrays["p_aligned"] > 0
    axes[1].scatter(np.log(arrays["p_prior"][drawable]), arrays["reward"][drawable], s=4, alpha=0.5)
    axes[1].set(xlabel="log p(y)", ylabel="r(y)",
                title=f"string level: rho = {summary['string_spearman']:.2f}, "
                f"r = {summary['string_pearson']:.2f}")  # fmt: skip
    corpora, typical = arrays["corpora"], arrays["typical"]
    axes[2].scatter(corpora[~typical, 1], corpora[~typical, 2], s=4, color="0.75", label="atypical")
    x, y = corpora[typical, 1], corpora[typical, 2]
    picked = arrays["binned"]
    axes[2].scatter(x[picked], y[picked], s=6, label="typical (binned resample)")
    axes[2].set(xlabel="mean log p", ylabel="mean r",
                title=f"corpus level: rho = {summary['corpus_spearman_binned']:.2f}, "
                f"r = {summary['corpus_pearson_binned']:.2f}")  # fmt: skip
    axes[2].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
