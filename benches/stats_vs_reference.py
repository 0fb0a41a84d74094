"""tradeoff.stats against the references users would otherwise use, on the same inputs.

- scipy.stats.pearsonr / spearmanr / kendalltau at n = 10^6 (continuous, and rounded: many ties);
- scipy.stats.bootstrap for the mean (9,999 resamples, n = 10^4; BCa, scipy's default, and
  percentile) and for Pearson's r (999 paired resamples, BCa);
- the paper's IMH correction + resampled corpora at full scale (2,000 strings, 200,000 IMH steps,
  2,000 corpora of 200,000 strings, two value columns) against a straightforward vectorised NumPy
  implementation (proposals and uniforms drawn at once, the chain in a loop, each corpus drawn
  with ``rng.choice`` and averaged).

scipy and NumPy run on one thread; tradeoff is timed on 1 thread and on all threads. Prints a
markdown table of medians and ratios (see benches/RESULTS.md).

    python benches/stats_vs_reference.py                  # everything (about 2-3 minutes)
    python benches/stats_vs_reference.py --quick          # fewer repeats, smaller IMH reference
"""

from __future__ import annotations

import argparse
import os

# The references on one thread, as they are in a default run of these functions.
for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import platform  # noqa: E402

import numpy as np  # noqa: E402
import scipy  # noqa: E402
import scipy.stats  # noqa: E402
from timing import median_seconds  # noqa: E402

import tradeoff  # noqa: E402
from tradeoff import stats  # noqa: E402


def numpy_imh_and_corpora(log_target, log_proposal, values, n_steps, n_corpora, corpus_size, seed):
    """The reference: what one writes with NumPy without this package."""
    rng = np.random.default_rng(seed)
    n = len(log_target)
    w = log_target - log_proposal
    proposals = rng.integers(0, n, size=n_steps)
    log_u = np.log(rng.random(n_steps))
    state = rng.integers(0, n)
    chain = np.empty(n_steps, dtype=np.int64)
    for t in range(n_steps):
        j = proposals[t]
        if log_u[t] < w[j] - w[state]:
            state = j
        chain[t] = state
    means = np.empty((n_corpora, values.shape[1]))
    for c in range(n_corpora):
        means[c] = values[rng.choice(chain, size=corpus_size)].mean(axis=0)
    return means


def ours_imh_and_corpora(log_target, log_proposal, values, n_steps, n_corpora, corpus_size, seed):
    chain = stats.imh(log_target, log_proposal, n_steps=n_steps, seed=seed)
    return stats.resample_means(
        values, n_corpora=n_corpora, corpus_size=corpus_size, seed=seed, indices=chain.indices
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="fewer repeats; IMH reference at 1/10")
    args = parser.parse_args()
    repeats = 2 if args.quick else args.repeats
    all_threads = tradeoff.get_num_threads()
    rng = np.random.default_rng(0)
    rows: list[tuple[str, str, float, float, float]] = []

    def compare(task: str, reference: str, ref_fn, ours_fn, ref_repeats: int = repeats) -> None:
        t_ref = median_seconds(ref_fn, ref_repeats)
        tradeoff.set_num_threads(1)
        t_one = median_seconds(ours_fn, repeats)
        tradeoff.set_num_threads(all_threads)
        t_all = median_seconds(ours_fn, repeats)
        rows.append((task, reference, t_ref, t_one, t_all))
        print(
            f"{task}: {reference} {t_ref * 1e3:.1f} ms, tradeoff 1 thread {t_one * 1e3:.1f} ms "
            f"({t_ref / t_one:.1f}x), {all_threads} threads {t_all * 1e3:.1f} ms "
            f"({t_ref / t_all:.1f}x)",
            flush=True,
        )

    n = 10**6
    x = rng.normal(size=n)
    y = 0.3 * x + rng.normal(size=n)
    xt, yt = np.round(x * 2), np.round(y * 2)
    for label, a, b in [("continuous", x, y), ("ties", xt, yt)]:
        compare(
            f"pearson n=1e6 {label}",
            "scipy pearsonr",
            lambda a=a, b=b: scipy.stats.pearsonr(a, b),
            lambda a=a, b=b: stats.pearson(a, b),
        )
        compare(
            f"spearman n=1e6 {label}",
            "scipy spearmanr",
            lambda a=a, b=b: scipy.stats.spearmanr(a, b),
            lambda a=a, b=b: stats.spearman(a, b),
        )
        compare(
            f"kendall n=1e6 {label}",
            "scipy kendalltau",
            lambda a=a, b=b: scipy.stats.kendalltau(a, b),
            lambda a=a, b=b: stats.kendall(a, b),
        )

    m = 10**4
    xb = rng.normal(size=m)
    yb = 0.5 * xb + rng.normal(size=m)
    for method, ours_method in [("BCa", "bca"), ("percentile", "percentile")]:
        compare(
            f"bootstrap mean n=1e4, 9999 resamples, {method}",
            "scipy bootstrap",
            lambda method=method: scipy.stats.bootstrap(
                (xb,), np.mean, n_resamples=9999, method=method, rng=0
            ),
            lambda ours_method=ours_method: stats.bootstrap_ci(
                xb, n_resamples=9999, method=ours_method
            ),
            ref_repeats=min(repeats, 3),
        )

    def pearson_statistic(a, b, axis):
        return scipy.stats.pearsonr(a, b, axis=axis).statistic

    compare(
        "bootstrap pearson n=1e4, 999 resamples, BCa",
        "scipy bootstrap",
        lambda: scipy.stats.bootstrap(
            (xb, yb), pearson_statistic, n_resamples=999, paired=True, vectorized=True, rng=0
        ),
        lambda: stats.bootstrap_ci(xb, y=yb, statistic="pearson", n_resamples=999, method="bca"),
        ref_repeats=min(repeats, 3),
    )

    n_strings = 2000
    log_target = rng.normal(-150, 20, n_strings)
    log_proposal = log_target + rng.normal(0, 0.5, n_strings)
    values = np.column_stack([rng.normal(4, 1, n_strings), log_target])
    scale = 10 if args.quick else 1
    task = "IMH 2e5 steps + 2000 corpora x 2e5 strings x 2 columns"
    if args.quick:
        task += " (reference: 200 corpora, x10)"
    compare(
        task,
        "NumPy (vectorised)",
        lambda: numpy_imh_and_corpora(
            log_target, log_proposal, values, 200_000, 2000 // scale, 200_000, 0
        ),
        lambda: ours_imh_and_corpora(log_target, log_proposal, values, 200_000, 2000, 200_000, 0),
        ref_repeats=1,
    )
    if args.quick:
        task, ref, t_ref, t_one, t_all = rows[-1]
        rows[-1] = (task, ref, t_ref * scale, t_one, t_all)

    print()
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs, "
        f"numpy {np.__version__}, scipy {scipy.__version__}, tradeoff {tradeoff.__version__}"
    )
    print(
        "| task | reference | reference ms | tradeoff 1 thread ms | ratio "
        f"| tradeoff {all_threads} threads ms | ratio |"
    )
    print("|---|---|---|---|---|---|---|")
    for task, ref, t_ref, t_one, t_all in rows:
        print(
            f"| {task} | {ref} | {t_ref * 1e3:.1f} | {t_one * 1e3:.1f} | {t_ref / t_one:.1f}x "
            f"| {t_all * 1e3:.1f} | {t_ref / t_all:.1f}x |"
        )


if __name__ == "__main__":
    main()
