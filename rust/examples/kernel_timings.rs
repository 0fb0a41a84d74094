//! Rough per-kernel timings on one 128k row (a development aid; the benchmarks are in benches/).
use std::time::Instant;
use tradeoff::kernels;

fn main() {
    let n = 128_256;
    let mut state = 1u64;
    let row: Vec<f32> = (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 12.0
        })
        .collect();
    let reps = 200;
    let time = |name: &str, f: &mut dyn FnMut() -> f32| {
        let t = Instant::now();
        let mut acc = 0.0;
        for _ in 0..reps {
            acc += std::hint::black_box(f());
        }
        let ns = t.elapsed().as_nanos() as f64 / reps as f64;
        println!(
            "{name:<28} {:>9.1} us  {:>6.2} ns/elem  ({acc})",
            ns / 1e3,
            ns / n as f64
        );
    };
    let (m, _) = kernels::max_count_in(std::hint::black_box(&row), f32::MIN, f32::MAX);
    let row = std::hint::black_box(row);
    time("max_and_invalid", &mut || {
        kernels::max_and_invalid(std::hint::black_box(&row)).0
    });
    time("max_count_in", &mut || {
        kernels::max_count_in(std::hint::black_box(&row), f32::MIN, f32::MAX).0
    });
    time("sum_exp_in", &mut || {
        kernels::sum_exp_in(std::hint::black_box(&row), f32::MIN, f32::MAX, m)
    });
    let mut hist = Box::new([0.0f32; kernels::CUT_BINS]);
    time("nucleus_histogram_in", &mut || {
        kernels::nucleus_histogram_in(std::hint::black_box(&row), f32::MIN, f32::MAX, m, &mut hist);
        hist[0]
    });
    let mut blocks = Vec::new();
    time("block_sums_exp_in", &mut || {
        kernels::block_sums_exp_in(
            std::hint::black_box(&row),
            f32::MIN,
            f32::MAX,
            m,
            512,
            &mut blocks,
        )
        .0 as f32
    });
    let mut out = vec![0.0f32; n];
    time("write_masked", &mut || {
        kernels::write_masked(std::hint::black_box(&row), 0.0, f32::MAX, &mut out);
        out[0]
    });
    let chain = tradeoff::Chain::new(vec![tradeoff::Adaptor::from_name("top_p", 0.9, 1).unwrap()]);
    let mut scratch = tradeoff::adaptors::Scratch::new();
    time("chain top_p apply_into", &mut || {
        let mut r = tradeoff::adaptors::Row::new(&row, &mut scratch);
        chain.apply_into(&mut r, &mut out).unwrap();
        out[0]
    });
    time("sample_row top_p", &mut || {
        let mut r = tradeoff::adaptors::Row::new(&row, &mut scratch);
        tradeoff::sampling::sample_row(&mut r, &chain, 0.3)
            .unwrap()
            .token as f32
    });
}
