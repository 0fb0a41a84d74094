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
            // N(0, 3^2) by the sum of 4 uniforms (close enough for timing)
            let mut u = 0.0;
            for _ in 0..4 {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                u += (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
            }
            u * 3.0 * 3.0f32.sqrt()
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
    let mut weights = vec![0.0f32; n];
    time("exp_weights_in", &mut || {
        kernels::exp_weights_in(
            std::hint::black_box(&row),
            f32::MIN,
            f32::MAX,
            m,
            &mut weights,
        )
        .0
    });
    let t = [-m + 1.0, -m + 3.0, -m + 6.0, -m + 12.0];
    time("nucleus_mass_at_or_below", &mut || {
        kernels::nucleus_mass_at_or_below(
            std::hint::black_box(&row),
            &weights,
            f32::MIN,
            f32::MAX,
            &t,
        )[0] as f32
    });
    let tk = [m - 1.0, m - 2.0, m - 4.0, m - 8.0];
    time("count_at_least", &mut || {
        kernels::count_at_least(std::hint::black_box(&row), f32::MIN, f32::MAX, &tk)[0] as f32
    });
    let mut keys = Vec::new();
    time("gather_at_least", &mut || {
        kernels::gather_at_least(std::hint::black_box(&row), m - 4.0, f32::MAX, &mut keys);
        keys.len() as f32
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
    let topk = tradeoff::Chain::new(vec![tradeoff::Adaptor::from_name("top_k", 50.0, 1).unwrap()]);
    let mut scratch0 = tradeoff::adaptors::Scratch::new();
    time("chain top_k apply_into", &mut || {
        let mut r = tradeoff::adaptors::Row::with_max(&row, &mut scratch0, m);
        topk.apply_into(&mut r, &mut out).unwrap();
        out[0]
    });
    let chain = tradeoff::Chain::new(vec![tradeoff::Adaptor::from_name("top_p", 0.9, 1).unwrap()]);
    let mut scratch = tradeoff::adaptors::Scratch::new();
    time("chain top_p apply_into", &mut || {
        let mut r = tradeoff::adaptors::Row::with_max(&row, &mut scratch, m);
        chain.apply_into(&mut r, &mut out).unwrap();
        out[0]
    });
    time("sample_row top_p", &mut || {
        let mut r = tradeoff::adaptors::Row::with_max(&row, &mut scratch, m);
        tradeoff::sampling::sample_row(&mut r, &chain, 0.3)
            .unwrap()
            .token as f32
    });
}
