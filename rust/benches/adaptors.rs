//! Criterion benchmarks of the row-parallel entry points: every single adaptor through
//! `batch::apply`, and fused `sampling::sample` with `temperature=1.0,top_p=0.9` and with the
//! ancestral (empty) chain, at B x V in {1 x 32000, 32 x 32000, 32 x 128256, 8 x 151936}.
//!
//! Two kinds of deterministic pseudo-random logits: "flat" rows, N(0, 3^2), where the top-p
//! nucleus holds thousands of tokens, and "peaked" rows, N(0, 1) plus five spikes at +12..+16,
//! closer to a language model's rows. Benchmark ids read `apply/top_p/peaked/32x128256` and
//! `sample/top_p/flat/8x151936`; pass a part of one to run a subset:
//!
//!     cargo bench --bench adaptors -- 32x128256
//!
//! Sample sizes are small and measurement times short, so that the whole run takes a few minutes.

use std::hint::black_box;
use std::time::Duration;

mod common;

use common::SplitMix;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tradeoff::batch::{self, Chains, Logits};
use tradeoff::sampling::{self, Draw};
use tradeoff::{Adaptor, Chain};

const SHAPES: [(usize, usize); 4] = [(1, 32_000), (32, 32_000), (32, 128_256), (8, 151_936)];

const ADAPTORS: [(&str, f64); 9] = [
    ("temperature", 0.7),
    ("top_k", 50.0),
    ("top_p", 0.9),
    ("min_p", 0.05),
    ("typical", 0.9),
    ("epsilon", 0.0003),
    ("eta", 0.0009),
    ("top_a", 0.2),
    ("top_nsigma", 1.0),
];

const KINDS: [&str; 2] = ["flat", "peaked"];

/// `rows x vocab` logits of the given kind, the same on every run.
fn make_logits(kind: &str, rows: usize, vocab: usize) -> Vec<f32> {
    let seed = (rows as u64) << 40 ^ (vocab as u64) << 8 ^ (kind == "peaked") as u64;
    let mut rng = SplitMix(seed);
    let mut data = Vec::with_capacity(rows * vocab);
    for _ in 0..rows {
        let start = data.len();
        match kind {
            "flat" => data.extend((0..vocab).map(|_| (3.0 * rng.normal()) as f32)),
            _ => {
                data.extend((0..vocab).map(|_| rng.normal() as f32));
                for spike in 0..5 {
                    let i = start + (rng.next_u64() % vocab as u64) as usize;
                    data[i] += 12.0 + spike as f32;
                }
            }
        }
    }
    data
}

struct Input {
    kind: &'static str,
    rows: usize,
    vocab: usize,
    data: Vec<f32>,
}

impl Input {
    fn logits(&self) -> Logits<'_> {
        Logits::new(&self.data, self.rows, self.vocab).expect("valid shape")
    }

    fn shape(&self) -> String {
        format!("{}x{}", self.rows, self.vocab)
    }
}

fn inputs() -> Vec<Input> {
    let mut all = Vec::new();
    for kind in KINDS {
        for (rows, vocab) in SHAPES {
            all.push(Input {
                kind,
                rows,
                vocab,
                data: make_logits(kind, rows, vocab),
            });
        }
    }
    all
}

fn bench_apply(c: &mut Criterion, inputs: &[Input]) {
    for (name, value) in ADAPTORS {
        let chain = Chain::new(vec![
            Adaptor::from_name(name, value, 1).expect("valid adaptor")
        ]);
        let refs = [&chain];
        for kind in KINDS {
            let mut group = c.benchmark_group(format!("apply/{name}/{kind}"));
            for input in inputs.iter().filter(|i| i.kind == kind) {
                let logits = input.logits();
                let chains = Chains::new(&refs, input.rows).expect("one chain");
                let mut out = vec![0.0f32; input.rows * input.vocab];
                group.throughput(Throughput::Elements((input.rows * input.vocab) as u64));
                group.bench_function(BenchmarkId::from_parameter(input.shape()), |b| {
                    b.iter(|| {
                        batch::apply(black_box(logits), chains, black_box(&mut out))
                            .expect("valid rows")
                    })
                });
            }
            group.finish();
        }
    }
}

fn bench_sample(c: &mut Criterion, inputs: &[Input]) {
    let top_p = Chain::new(vec![
        Adaptor::from_name("temperature", 1.0, 1).expect("valid adaptor"),
        Adaptor::from_name("top_p", 0.9, 1).expect("valid adaptor"),
    ]);
    let ancestral = Chain::ancestral();
    for (label, chain) in [("top_p", &top_p), ("ancestral", &ancestral)] {
        let refs = [chain];
        for kind in KINDS {
            let mut group = c.benchmark_group(format!("sample/{label}/{kind}"));
            for input in inputs.iter().filter(|i| i.kind == kind) {
                let logits = input.logits();
                let chains = Chains::new(&refs, input.rows).expect("one chain");
                let streams: Vec<u64> = (0..input.rows as u64).collect();
                let mut out = vec![Draw::default(); input.rows];
                let mut step = 0u64;
                group.throughput(Throughput::Elements((input.rows * input.vocab) as u64));
                group.bench_function(BenchmarkId::from_parameter(input.shape()), |b| {
                    b.iter(|| {
                        step += 1;
                        sampling::sample(
                            black_box(logits),
                            chains,
                            1234,
                            &streams,
                            &[step],
                            black_box(&mut out),
                        )
                        .expect("valid rows")
                    })
                });
            }
            group.finish();
        }
    }
}

fn benches(c: &mut Criterion) {
    let inputs = inputs();
    bench_apply(c, &inputs);
    bench_sample(c, &inputs);
}

criterion_group! {
    name = adaptors;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    targets = benches
}
criterion_main!(adaptors);
