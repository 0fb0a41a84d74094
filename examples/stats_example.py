"""The paper's corpus-level analysis on a synthetic world where the answer is known.

A world of 20,000 "strings" with a prior p, a reward r (positively correlated with log p, as for
real models), and the aligned model pi = p exp(r / beta) / Z with beta = 0.5. A sampling adaptor is
stood in for by q = pi^0.8 (renormalised). 2,000 strings are drawn from q; the IMH correction
(target pi, proposal q) and 2,000 corpora of 200,000 strings resampled from its chain give the
corpus-level picture, at the paper's full scale:

- the IMH chain's diagnostics, and per string, ``log pi - log p`` regressed on reward gives 1/beta
  exactly (R^2 = 1);
- the trade-off itself, as in the paper's toy experiment: among corpora of 1,000 strings drawn
  from pi, the typical ones (``|H(pi) + mean log pi| < 0.01``) lie on a line of slope -beta in the
  plane (mean log p, mean reward), although reward and log p are positively correlated per string.
"""

from __future__ import annotations

import time

import numpy as np

from tradeoff import stats


def main() -> None:
    rng = np.random.default_rng(0)
    world, beta = 20_000, 0.5
    logits = rng.normal(0, 2, world)
    log_p = logits - np.logaddexp.reduce(logits)
    reward = 0.8 * (log_p - log_p.mean()) / log_p.std() + rng.normal(0, 1, world)
    log_pi = log_p + reward / beta
    log_pi -= np.logaddexp.reduce(log_pi)
    log_q = 0.8 * log_pi - np.logaddexp.reduce(0.8 * log_pi)

    drawn = rng.choice(world, size=2000, p=np.exp(log_q))
    values = np.column_stack([reward[drawn], log_p[drawn]])
    start = time.perf_counter()
    chain = stats.imh(log_pi[drawn], log_q[drawn], n_steps=200_000, seed=0)
    means = stats.resample_means(
        values, n_corpora=2000, corpus_size=200_000, seed=0, indices=chain.indices
    )
    seconds = time.perf_counter() - start

    print(f"IMH + 2,000 corpora of 200,000 strings: {seconds:.2f} s")
    print(
        f"IMH: acceptance {chain.acceptance_rate:.2f}, ESS {chain.ess:,.0f} of 200,000 steps, "
        f"Cramér's V of consecutive states {chain.cramers_v:.3f}"
    )
    print(
        f"corpus means: reward {means[:, 0].mean():.3f} (sd {means[:, 0].std():.4f}), "
        f"log p {means[:, 1].mean():.2f} (sd {means[:, 1].std():.4f})"
    )
    implied = stats.implied_beta(log_pi[drawn], log_p[drawn], reward[drawn])
    print(f"implied beta per string: {implied.beta:.4f} (true {beta}), R^2 {implied.r_squared:.4f}")
    ci = stats.bootstrap_ci(values[:, 0], method="bca")
    print(f"mean reward of the sample: {ci.statistic:.3f} [{ci.low:.3f}, {ci.high:.3f}] (95% BCa)")

    # The trade-off: 5,000 corpora of 1,000 strings from pi (drawn from a large sample of pi).
    pool = rng.choice(world, size=1_000_000, p=np.exp(log_pi))
    columns = np.column_stack([log_pi, log_p, reward])
    corpora = stats.resample_means(columns, n_corpora=5000, corpus_size=1000, seed=1, indices=pool)
    entropy = -np.exp(log_pi) @ log_pi
    split = stats.typicality(corpora[:, 0], entropy, tolerance=0.01)
    typical = corpora[split.typical]
    per_string = stats.spearman(log_p[pool[:100_000]], reward[pool[:100_000]])
    all_corpora = stats.spearman(corpora[:, 1], corpora[:, 2])
    among_typical = stats.spearman(typical[:, 1], typical[:, 2])
    line = stats.tradeoff_line(typical[:, 1], typical[:, 2], n_resamples=1000)
    print(f"H(pi) = {entropy:.3f} nats; {split.fraction_typical:.0%} of 5,000 corpora are typical")
    print(f"string level:  Spearman(log p, reward) = {per_string.statistic:+.2f}")
    print(f"all corpora:   Spearman(mean log p, mean reward) = {all_corpora.statistic:+.2f}")
    print(f"typical ones:  Spearman(mean log p, mean reward) = {among_typical.statistic:+.2f}")
    print(
        f"trade-off line over typical corpora: slope {line.regression.slope:+.3f} "
        f"[{line.slope.low:+.3f}, {line.slope.high:+.3f}] (95% BCa; -beta = {-beta})"
    )


if __name__ == "__main__":
    main()
