"""Intervals with the right unit (issue 15).

- ``cluster_bootstrap_correlations`` (the pooled corpus-level intervals): the same interval as a
  brute-force bootstrap over groups computed with scipy; with few groups whose points are tied
  to a group effect it covers the pooled correlation's large-sample value near nominal, where
  the naive bootstrap over points almost never does.
- ``corpus_correlation_ci`` (one configuration's corpus-level intervals): the Fisher variance in
  the normal case, and, in the exact automaton world, coverage near 95% of the value the
  corpus-level correlation takes with unlimited strings (the naive bootstrap over corpora
  misses it most of the time).
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from tradeoff import stats
from tradeoff.rundir.summary import Correlation, Correlations, Summary
from tradeoff.worlds.automaton import AutomatonSettings, adapt, make_prior, restrict, tilt

SCIPY = {
    "pearson": lambda x, y: scipy.stats.pearsonr(x, y).statistic,
    "spearman": lambda x, y: scipy.stats.spearmanr(x, y).statistic,
    "kendall": lambda x, y: scipy.stats.kendalltau(x, y).statistic,
}


def brute_force_cluster(x, y, groups, n_resamples, level, seed):
    """Resample groups with replacement (the function's draws: integers from
    default_rng([seed, 0xC1B0])), concatenate their points, recompute with scipy."""
    names, codes = np.unique(groups, return_inverse=True)
    k = len(names)
    picks = np.random.default_rng([seed, 0xC1B0]).integers(0, k, size=(n_resamples, k))
    members = [np.flatnonzero(codes == g) for g in range(k)]
    alpha = 100 * (1 - level) / 2
    out = {}
    for name, fn in SCIPY.items():
        reps = [fn(x[idx], y[idx]) for idx in (np.concatenate([members[g] for g in row])
                                               for row in picks)]  # fmt: skip
        out[name] = (fn(x, y), *np.percentile(reps, [alpha, 100 - alpha]))
    return out


def grouped(rng, k, sizes, rho_between=-0.6, within=0.3):
    """k groups: a bivariate normal group effect (correlation rho_between) plus independent
    within-group noise of standard deviation ``within``."""
    effects = rng.multivariate_normal([0, 0], [[1, rho_between], [rho_between, 1]], size=k)
    labels = np.repeat(np.arange(k), sizes)
    noise = within * rng.normal(size=(len(labels), 2))
    points = effects[labels] + noise
    return points[:, 0], points[:, 1], labels


def test_cluster_bootstrap_is_the_brute_force_bootstrap_over_groups():
    rng = np.random.default_rng(11)
    x, y, labels = grouped(rng, 5, [7, 3, 12, 5, 9])
    names = np.array(["e", "b", "a", "d", "c"])[labels]  # labels need not be sorted codes
    got = stats.cluster_bootstrap_correlations(x, y, names, n_resamples=60, level=0.9, seed=5)
    want = brute_force_cluster(x, y, names, 60, 0.9, 5)
    for name, (statistic, low, high) in want.items():
        assert got[name].statistic == pytest.approx(statistic, abs=1e-12)
        assert got[name].low == pytest.approx(low, abs=1e-10), name
        assert got[name].high == pytest.approx(high, abs=1e-10), name
    # A subsample as large as every group is no subsample.
    same = stats.cluster_bootstrap_correlations(
        x, y, names, n_resamples=60, level=0.9, seed=5, per_group=12
    )
    for name in SCIPY:
        assert same[name].low == got[name].low and same[name].high == got[name].high


def test_cluster_subsample_keeps_the_interval_centred_on_the_full_statistic():
    rng = np.random.default_rng(3)
    x, y, labels = grouped(rng, 12, 400)
    full = stats.cluster_bootstrap_correlations(x, y, labels, n_resamples=300, seed=1)
    sub = stats.cluster_bootstrap_correlations(x, y, labels, n_resamples=300, seed=1, per_group=40)
    for name in ("spearman", "kendall"):
        assert sub[name].statistic == full[name].statistic
        assert sub[name].low < sub[name].statistic < sub[name].high
        width = full[name].high - full[name].low
        assert abs(sub[name].low - full[name].low) < 0.1 * width
        assert abs(sub[name].high - full[name].high) < 0.1 * width
    assert sub["pearson"].low == full["pearson"].low  # Pearson always uses every point


def test_few_groups_cluster_interval_is_honest_where_the_naive_one_is_not():
    """8 groups of 300 points: the pooled correlation's value for unlimited groups is
    rho_between / (1 + within^2) for Pearson. The bootstrap over groups covers it near nominal
    (a percentile interval from 8 units runs a little short); over the 2,400 points as if
    independent, almost never."""
    rho_between, within = -0.6, 0.3
    truth = rho_between / (1 + within**2)
    rng = np.random.default_rng(2024)
    cluster_hits = naive_hits = 0
    widths = []
    reps = 150
    for rep in range(reps):
        x, y, labels = grouped(rng, 8, 300, rho_between, within)
        c = stats.cluster_bootstrap_correlations(
            x, y, labels, n_resamples=400, seed=rep, per_group=30
        )["pearson"]
        n = stats.bootstrap_ci(x, y=y, statistic="pearson", n_resamples=400, seed=rep)
        cluster_hits += c.low <= truth <= c.high
        naive_hits += n.low <= truth <= n.high
        widths.append((c.high - c.low) / (n.high - n.low))
    assert 0.80 <= cluster_hits / reps <= 0.99
    assert naive_hits / reps < 0.3
    assert np.median(widths) > 5


def test_cluster_bootstrap_errors_name_the_argument():
    with pytest.raises(ValueError, match="groups"):
        stats.cluster_bootstrap_correlations([1.0, 2.0, 3.0], [1.0, 3.0, 2.0], [0, 0, 0])
    with pytest.raises(ValueError, match="per_group"):
        stats.cluster_bootstrap_correlations([1.0, 2.0], [1.0, 3.0], [0, 1], per_group=0)
    with pytest.raises(ValueError, match="groups"):
        stats.cluster_bootstrap_correlations([1.0, 2.0], [1.0, 3.0], [0, 1, 1])


def test_corpus_interval_has_the_fisher_variance_for_normal_strings():
    """Equal weights, bivariate normal strings, no chain error, a huge number of corpora:
    the standard error of atanh(r) is 1/sqrt(N) (Fisher's, without the -3)."""
    rng = np.random.default_rng(0)
    n, rho = 200_000, 0.5
    x = rng.normal(size=n)
    y = rho * x + np.sqrt(1 - rho**2) * rng.normal(size=n)
    r = float(np.corrcoef(x, y)[0, 1])
    ci = stats.corpus_correlation_ci("pearson", r, x, y, n_corpora=10**9)
    assert ci.standard_error == pytest.approx(1 / np.sqrt(n), rel=0.02)
    assert ci.parts["chain"] == 0
    z = np.arctanh(r)
    assert np.arctanh(ci.high) - z == pytest.approx(z - np.arctanh(ci.low), rel=1e-9)
    # Weights that keep a tenth of the strings leave a tenth of the sample size.
    weights = np.zeros(n)
    weights[: n // 10] = 1.0
    sub = stats.corpus_correlation_ci("pearson", r, x, y, n_corpora=10**9, weights=weights)
    assert sub.standard_error == pytest.approx(np.sqrt(10 / n), rel=0.05)
    # The corpora's part alone: 0.437 / (n - 4) for Kendall.
    big = stats.corpus_correlation_ci("kendall", 0.3, x, y, n_corpora=1004)
    assert big.parts["corpora"] == pytest.approx(0.437 / 1000)


def test_corpus_interval_errors_name_the_argument():
    x = np.arange(5.0)
    with pytest.raises(ValueError, match="statistic"):
        stats.corpus_correlation_ci("tau", 0.1, x, x, n_corpora=10)
    with pytest.raises(ValueError, match="weights"):
        stats.corpus_correlation_ci("pearson", 0.1, x, x, n_corpora=10, weights=-np.ones(5))
    with pytest.raises(ValueError, match="chain_ess"):
        stats.corpus_correlation_ci("pearson", 0.1, x, x, n_corpora=10, chain_ess=0.0)
    with pytest.raises(ValueError, match="n_corpora"):
        stats.corpus_correlation_ci("pearson", 0.1, x, x, n_corpora=2)


def sample_sums(model, tables, n, rng, max_length=400):
    """n strings from an automaton, all advanced together; per string the sum of each table."""
    cumulative = np.cumsum(model.probs, axis=1)
    state = np.full(n, model.start)
    alive = np.ones(n, dtype=bool)
    totals = np.zeros((len(tables), n))
    for _ in range(max_length):
        live = np.flatnonzero(alive)
        if not live.size:
            break
        s = state[live]
        u = rng.random(live.size) * cumulative[s, -1]
        token = np.minimum((cumulative[s] <= u[:, None]).sum(axis=1), model.eos)
        for j, table in enumerate(tables):
            totals[j, live] += table[s, token]
        ended = token == model.eos
        alive[live[ended]] = False
        state[live[~ended]] = model.next_state[s[~ended], token[~ended]]
    return totals


@pytest.mark.parametrize("spec", ["ancestral", "temperature=0.75,top_p=0.9"])
def test_corpus_interval_covers_the_many_strings_value_in_the_automaton_world(spec):
    """200 repetitions of analyze's corpus-level step on 200 strings of q from the demo's world:
    IMH towards pi restricted to q's support, 500 corpora of 20,000 from the chain. The value
    for unlimited strings: large corpora have bivariate normal means with the target's Pearson
    rho (estimated from 10^6 strings of the target, error ~0.001), so Spearman's is
    (6/pi) asin(rho/2) and Kendall's (2/pi) asin(rho). The interval covers it 91-98.5% of the
    time for each statistic (nominal 95%; binomial sd 1.5%); the old bootstrap over the
    corpora, at most 75%."""
    world = AutomatonSettings(seed=4, min_eos=0.15)
    prior, reward = make_prior(world)
    aligned, _ = tilt(prior, reward, world.beta)
    q = adapt(aligned, spec)
    target = restrict(aligned, q.log_probs > -np.inf)
    tables = [reward, prior.log_probs, aligned.log_probs, q.log_probs]
    big = sample_sums(target, tables[:2], 1_000_000, np.random.default_rng(1))
    rho = np.corrcoef(big[1], big[0])[0, 1]
    truth = {
        "pearson": rho,
        "spearman": 6 / np.pi * np.arcsin(rho / 2),
        "kendall": 2 / np.pi * np.arcsin(rho),
    }
    rng = np.random.default_rng(2)
    hits = dict.fromkeys(truth, 0)
    naive = dict.fromkeys(truth, 0)
    reps, naive_reps = 200, 40
    for rep in range(reps):
        r, lp, la, lq = sample_sums(q, tables, 200, rng)
        chain = stats.imh(la, lq, n_steps=20_000, seed=rep)
        corpora = stats.resample_means(
            np.column_stack([r, lp]),
            n_corpora=500,
            corpus_size=20_000,
            seed=rep,
            indices=chain.indices,
        )
        weights = np.exp((la - lq) - (la - lq).max())
        for name, value in truth.items():
            statistic = getattr(stats, name)(corpora[:, 1], corpora[:, 0]).statistic
            ci = stats.corpus_correlation_ci(
                name, statistic, lp, r, n_corpora=500, weights=weights, chain_ess=chain.ess
            )
            hits[name] += ci.low <= value <= ci.high
            if rep < naive_reps:
                old = stats.bootstrap_ci(
                    corpora[:, 1], y=corpora[:, 0], statistic=name, n_resamples=200, seed=rep
                )
                naive[name] += old.low <= value <= old.high
    for name in truth:
        assert 0.91 <= hits[name] / reps <= 0.985, (name, hits[name] / reps)
        assert naive[name] / naive_reps <= 0.75, (name, naive[name] / naive_reps)


def test_summary_records_the_resampling_and_reads_older_files():
    entry = Correlation(0.1, 0.5, -0.2, 0.4)
    block = Correlations(3, entry, entry, entry, interval="percentile bootstrap over strings")
    data = Summary(string_level=block).to_dict()
    assert Summary.from_dict(data).string_level.interval == "percentile bootstrap over strings"
    del data["string_level"]["interval"]  # as written before the field existed
    assert Summary.from_dict(data).string_level.interval is None


def test_perfectly_correlated_corpora_give_a_point_interval_and_no_pvalue():
    from tradeoff.stages.analyze import _pooled_corpus_correlations
    from tradeoff.stages.settings import AnalysisSettings

    x = np.arange(30.0)
    block = _pooled_corpus_correlations(
        np.column_stack([2 * x, x]), np.repeat(np.arange(3), 10), AnalysisSettings()
    )
    for entry in (block.pearson, block.spearman, block.kendall):
        assert entry.statistic == pytest.approx(1.0) and entry.pvalue is None
        assert entry.low == pytest.approx(1.0) and entry.high == pytest.approx(1.0)
    ci = stats.corpus_correlation_ci("pearson", 1.0, x, 2 * x, n_corpora=30)
    assert np.isnan(ci.low) and np.isnan(ci.high)
