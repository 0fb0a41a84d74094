//! Criterion benchmarks of every statistic in `tradeoff::stats`, at the sizes of the issue's
//! targets: correlations at n = 10^6, bootstrap intervals at n = 10^4, and the paper's IMH +
//! resampled corpora at full scale (2,000 strings, 200,000 steps, 2,000 corpora of 200,000
//! strings, two columns). Run a subset by passing part of an id:
//!
//!     cargo bench --bench stats -- paper_scale
//!
//! The Python script benches/stats_vs_reference.py times the same work against scipy and NumPy.

use std::hint::black_box;
use std::time::Duration;

mod common;

use common::SplitMix;
use criterion::{criterion_group, criterion_main, Criterion};
use tradeoff::stats::bootstrap::{bootstrap_ci, Method, Options, Statistic};
use tradeoff::stats::correlation::{kendall, linregress, pearson, spearman};
use tradeoff::stats::imh::{cramers_v, imh};
use tradeoff::stats::resample::{resample_means, Pool, Table};
use tradeoff::stats::segments::segment_sum;
use tradeoff::stats::simpson::{simpson, Method as SimpsonMethod};

fn correlations(c: &mut Criterion) {
    let mut rng = SplitMix(1);
    let n = 1_000_000;
    let x = rng.normals(n);
    let y: Vec<f64> = x.iter().map(|v| 0.3 * v + rng.normal()).collect();
    let xt: Vec<f64> = x.iter().map(|v| (v * 2.0).round()).collect();
    let yt: Vec<f64> = y.iter().map(|v| (v * 2.0).round()).collect();
    let mut group = c.benchmark_group("correlation");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(3));
    for (label, a, b) in [("continuous", &x, &y), ("ties", &xt, &yt)] {
        group.bench_function(format!("pearson/{label}/1e6"), |bench| {
            bench.iter(|| pearson(black_box(a), black_box(b)).unwrap())
        });
        group.bench_function(format!("spearman/{label}/1e6"), |bench| {
            bench.iter(|| spearman(black_box(a), black_box(b)).unwrap())
        });
        group.bench_function(format!("kendall/{label}/1e6"), |bench| {
            bench.iter(|| kendall(black_box(a), black_box(b)).unwrap())
        });
    }
    group.bench_function("linregress/1e6", |bench| {
        bench.iter(|| linregress(black_box(&x), black_box(&y)).unwrap())
    });
    group.finish();
}

fn bootstrap(c: &mut Criterion) {
    let mut rng = SplitMix(2);
    let x = rng.normals(10_000);
    let y: Vec<f64> = x.iter().map(|v| 0.5 * v + rng.normal()).collect();
    let mut group = c.benchmark_group("bootstrap");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    let cases = [
        (
            "mean/percentile/9999",
            Statistic::Mean,
            Method::Percentile,
            9999,
        ),
        ("mean/bca/9999", Statistic::Mean, Method::Bca, 9999),
        ("pearson/bca/999", Statistic::Pearson, Method::Bca, 999),
        (
            "spearman/percentile/999",
            Statistic::Spearman,
            Method::Percentile,
            999,
        ),
    ];
    for (id, statistic, method, n_resamples) in cases {
        let options = Options {
            statistic,
            n_resamples,
            level: 0.95,
            seed: 0,
            method,
        };
        let paired = statistic.is_paired().then_some(&y[..]);
        group.bench_function(id, |bench| {
            bench.iter(|| bootstrap_ci(black_box(&x), paired, options).unwrap())
        });
    }
    group.finish();
}

fn corpora(c: &mut Criterion) {
    let mut rng = SplitMix(3);
    let n = 2000;
    let log_target: Vec<f64> = rng.normals(n).iter().map(|v| -150.0 + 20.0 * v).collect();
    let log_proposal: Vec<f64> = log_target.iter().map(|v| v + 0.5 * rng.normal()).collect();
    let values: Vec<f64> = log_target
        .iter()
        .flat_map(|&t| [4.0 + 0.01 * (t + 150.0), t])
        .collect();
    let table = Table {
        data: &values,
        n_columns: 2,
    };
    let chain = imh(&log_target, &log_proposal, 200_000, 0).unwrap();
    let mut group = c.benchmark_group("corpora");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    group.bench_function("imh/2000x200000", |bench| {
        bench.iter(|| imh(black_box(&log_target), black_box(&log_proposal), 200_000, 0).unwrap())
    });
    group.bench_function("resample_means/2000x200000x2", |bench| {
        bench.iter(|| {
            resample_means(table, 2000, 200_000, 0, Pool::Indices(&chain.indices)).unwrap()
        })
    });
    group.bench_function("paper_scale/imh+resample_means", |bench| {
        bench.iter(|| {
            let chain = imh(&log_target, &log_proposal, 200_000, 0).unwrap();
            resample_means(table, 2000, 200_000, 0, Pool::Indices(&chain.indices)).unwrap()
        })
    });
    group.bench_function("resample_means/draws/2000x2000", |bench| {
        bench.iter(|| resample_means(table, 2000, 2000, 0, Pool::Rows).unwrap())
    });
    group.bench_function("cramers_v/200000", |bench| {
        bench.iter(|| cramers_v(&chain.indices[..199_999], &chain.indices[1..]))
    });
    let offsets: Vec<u64> = (0..=100_000).map(|s| 10 * s).collect();
    let tokens = rng.normals(1_000_000);
    group.bench_function("segment_sum/1e6_tokens/1e5_strings", |bench| {
        bench.iter(|| segment_sum(black_box(&tokens), &offsets).unwrap())
    });
    let groups: Vec<u32> = (0..1_000_000).map(|i| (i % 35) as u32).collect();
    let rewards = rng.normals(1_000_000);
    group.bench_function("simpson/pearson/1e6/35_groups", |bench| {
        bench.iter(|| simpson(&tokens, &rewards, &groups, SimpsonMethod::Pearson).unwrap())
    });
    group.finish();
}

criterion_group!(benches, correlations, bootstrap, corpora);
criterion_main!(benches);
