//! Fused adapt-and-sample: each row is adapted by its chain and sampled by inverse CDF over the
//! support in vocabulary order, with one uniform from Philox keyed by (seed, stream, step). No
//! adapted row is written: the chain only narrows an interval of values.

use crate::adaptors::Row;
use crate::batch::{for_each_row, per_row_u64, row_error, Chains, Logits};
use crate::error::Result;
use crate::kernels::{self, exp_nonpositive};
use crate::rng;

/// Entries per block of the inverse-CDF search: block sums are vectorised, then one block is
/// walked token by token.
const BLOCK: usize = 512;

/// One row's draw.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Draw {
    /// The token id.
    pub token: u32,
    /// log q(token): under the adapted, renormalised distribution.
    pub logp_adapted: f64,
    /// log p(token): under the raw row.
    pub logp_base: f64,
    /// Number of tokens in the adapted support.
    pub support_size: u32,
}

/// Sample one token per row. `streams` has one entry per row; `steps` one per row or one for all.
pub fn sample(
    logits: Logits,
    chains: Chains,
    seed: u64,
    streams: &[u64],
    steps: &[u64],
    out: &mut [Draw],
) -> Result<()> {
    per_row_u64("streams", streams, logits.rows, false)?;
    per_row_u64("steps", steps, logits.rows, true)?;
    if out.len() != logits.rows {
        return Err(crate::error::Error::argument(
            "out",
            "needs one entry per row",
        ));
    }
    for_each_row(logits, out, 1, |i, row, out_i| {
        let step = if steps.len() == 1 { steps[0] } else { steps[i] };
        let u = rng::uniform(seed, streams[i], step);
        out_i[0] = sample_row(row, chains.get(i), u).map_err(|p| row_error(i, p))?;
        Ok(())
    })
}

/// Adapt one row and draw a token with the uniform `u` in [0, 1).
pub fn sample_row(
    row: &mut Row,
    chain: &crate::adaptors::Chain,
    u: f64,
) -> std::result::Result<Draw, crate::error::RowProblem> {
    chain.narrow(row)?;
    let max = row.max();
    let (lo, hi) = row.bounds();
    let (values, weights, blocks) = row.sampling_view();
    let weight = |j: usize| match weights {
        Some(w) => w[j],
        None => exp_nonpositive(values[j] - max),
    };
    let (total, support_size) = match weights {
        Some(w) => kernels::block_sums_weights_in(values, w, lo, hi, BLOCK, blocks),
        None => kernels::block_sums_exp_in(values, lo, hi, max, BLOCK, blocks),
    };
    let log_sum = total.ln();
    let target = u * total;
    let token = inverse_cdf(values, lo, hi, blocks, target, weight);
    let value = values[token];
    // for an unchanged row (ancestral) the block sums are the raw row's normaliser too
    row.record_sum_exp(max, total as f32);
    let (base_max, base_sum) = row.base_stats();
    Ok(Draw {
        token: token as u32,
        logp_adapted: (value - max) as f64 - log_sum,
        logp_base: (row.raw_value(token) - base_max) as f64 - (base_sum as f64).ln(),
        support_size: support_size as u32,
    })
}

/// The first token whose cumulative weight exceeds `target`. Rounding can leave the walk short of
/// the target at the very end: then the last token with positive weight is taken.
fn inverse_cdf(
    values: &[f32],
    lo: f32,
    hi: f32,
    blocks: &[f64],
    target: f64,
    weight: impl Fn(usize) -> f32,
) -> usize {
    let in_block = |b: usize| {
        let start = b * BLOCK;
        (start..(start + BLOCK).min(values.len())).filter(|&j| values[j] >= lo && values[j] <= hi)
    };
    let mut before = 0.0f64;
    let mut last_positive = None;
    for (b, &mass) in blocks.iter().enumerate() {
        if mass > 0.0 {
            last_positive = Some(b);
            if before + mass > target {
                let mut acc = before;
                for j in in_block(b) {
                    let w = weight(j) as f64;
                    acc += w;
                    if acc > target && w > 0.0 {
                        return j;
                    }
                }
            }
        }
        before += mass;
    }
    let b = last_positive.expect("the support has positive mass: its max has weight 1");
    in_block(b)
        .filter(|&j| weight(j) > 0.0)
        .last()
        .expect("a block with positive mass has a token of positive weight")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adaptors::{Chain, Scratch};
    use crate::test_util::{apply, chain, random_row, softmax, Rng};

    /// Draw `n` tokens from copies of one row, one stream per copy, in one batch.
    fn draw_many(z: &[f32], c: &Chain, n: usize, seed: u64) -> Vec<Draw> {
        let data: Vec<f32> = (0..n).flat_map(|_| z.iter().copied()).collect();
        let streams: Vec<u64> = (0..n as u64).collect();
        let mut out = vec![Draw::default(); n];
        sample(
            Logits::new(&data, n, z.len()).unwrap(),
            Chains::new(&[c], n).unwrap(),
            seed,
            &streams,
            &[42],
            &mut out,
        )
        .unwrap();
        out
    }

    /// Pearson's chi-square of observed counts against expected probabilities (cells with q > 0).
    fn chi_square(counts: &[u64], q: &[f64], n: usize) -> f64 {
        counts
            .iter()
            .zip(q)
            .filter(|(_, &qi)| qi > 0.0)
            .map(|(&c, &qi)| {
                let e = qi * n as f64;
                (c as f64 - e) * (c as f64 - e) / e
            })
            .sum()
    }

    #[test]
    fn frequencies_match_the_adapted_distribution() {
        let z = [
            1.3f32,
            0.2,
            -0.5,
            2.1,
            f32::NEG_INFINITY,
            0.9,
            -1.7,
            1.6,
            -3.0,
            0.4,
            0.0,
            1.0,
        ];
        let c = chain(&[("temperature", 0.8), ("top_p", 0.9)]);
        // the reference in f64: softmax(z / 0.8), then the tokens whose strictly-greater mass is
        // below 0.9, renormalised
        let p = softmax(&z.iter().map(|&x| x / 0.8).collect::<Vec<_>>());
        let above = |i: usize| -> f64 { (0..z.len()).filter(|&j| z[j] > z[i]).map(|j| p[j]).sum() };
        let keep: Vec<bool> = (0..z.len()).map(|i| p[i] > 0.0 && above(i) < 0.9).collect();
        assert!(
            (0..z.len()).all(|i| p[i] == 0.0 || (above(i) - 0.9).abs() > 1e-3),
            "no token near the cut"
        );
        let kept_mass: f64 = (0..z.len()).filter(|&i| keep[i]).map(|i| p[i]).sum();
        let q: Vec<f64> = (0..z.len())
            .map(|i| if keep[i] { p[i] / kept_mass } else { 0.0 })
            .collect();
        let support = keep.iter().filter(|&&k| k).count();
        assert!((4..11).contains(&support), "{support}");

        let n = 200_000;
        let draws = draw_many(&z, &c, n, 20_240_611);
        let mut counts = vec![0u64; z.len()];
        for d in &draws {
            counts[d.token as usize] += 1;
            assert_eq!(d.support_size as usize, support);
        }
        for i in 0..z.len() {
            if !keep[i] {
                assert_eq!(counts[i], 0, "token {i} is outside the support");
            }
        }
        let df = (support - 1) as f64;
        let chi2 = chi_square(&counts, &q, n);
        assert!(
            chi2 < df + 8.0 * (2.0 * df).sqrt(),
            "chi2 {chi2} with {df} degrees of freedom; {counts:?}"
        );
        // the reported log-probabilities are those of the reference
        let base = softmax(&z);
        for d in draws.iter().take(50) {
            let t = d.token as usize;
            assert!(
                (d.logp_adapted - q[t].ln()).abs() < 1e-5,
                "{} {}",
                d.logp_adapted,
                q[t].ln()
            );
            assert!(
                (d.logp_base - base[t].ln()).abs() < 1e-5,
                "{} {}",
                d.logp_base,
                base[t].ln()
            );
        }
    }

    #[test]
    fn each_token_is_drawn_on_its_own_interval_of_the_cdf_across_blocks() {
        // V spans three sampling blocks; for each token of the support, a uniform in the middle of
        // its interval of the f64 reference CDF (support in vocabulary order) must draw it
        let mut rng = Rng::new(23);
        let v = 1100;
        let z: Vec<f32> = (0..v)
            .map(|i| {
                if i % 97 == 5 {
                    f32::NEG_INFINITY
                } else {
                    (2.0 * rng.normal()) as f32
                }
            })
            .collect();
        for c in [
            Chain::ancestral(),
            chain(&[("temperature", 0.9), ("top_p", 0.8)]),
        ] {
            let q = softmax(&apply(&c, &z));
            let support = q.iter().filter(|&&x| x > 0.0).count();
            let mut before = 0.0;
            let mut checked = 0;
            for (t, &qt) in q.iter().enumerate() {
                if qt > 1e-5 {
                    let mut scratch = Scratch::new();
                    let mut row = Row::new(&z, &mut scratch);
                    let d = sample_row(&mut row, &c, before + qt / 2.0).unwrap();
                    assert_eq!(d.token as usize, t, "u = {}", before + qt / 2.0);
                    assert_eq!(d.support_size as usize, support);
                    checked += 1;
                }
                before += qt;
            }
            assert!(checked > 100, "{checked}");
        }
    }

    #[test]
    fn the_inverse_cdf_runs_over_the_support_in_vocabulary_order() {
        let z = [f32::NEG_INFINITY, 0.0, 5.0, 1.0, 4.0, f32::NEG_INFINITY];
        let c = chain(&[("top_k", 2.0)]);
        let draw = |u: f64| {
            let mut scratch = Scratch::new();
            let mut row = Row::new(&z, &mut scratch);
            sample_row(&mut row, &c, u).unwrap()
        };
        // support {2, 4} with weights e^5 : e^4
        let first = 1.0 / (1.0 + (-1.0f64).exp());
        assert_eq!(draw(0.0).token, 2);
        assert_eq!(draw(first - 1e-6).token, 2);
        assert_eq!(draw(first + 1e-6).token, 4);
        assert_eq!(draw(1.0 - f64::EPSILON / 2.0).token, 4);
        assert_eq!(draw(0.3).support_size, 2);
    }

    #[test]
    fn drawn_tokens_are_always_in_the_adapted_support() {
        let mut rng = Rng::new(99);
        let chains = [
            chain(&[("top_k", 3.0)]),
            chain(&[("temperature", 0.5), ("top_p", 0.5)]),
            chain(&[("typical", 0.3)]),
            chain(&[("min_p", 0.2), ("temperature", 2.0)]),
            chain(&[("temperature", 0.7), ("epsilon", 0.01)]),
            chain(&[("eta", 0.01)]),
            chain(&[("top_a", 0.5)]),
            chain(&[("top_nsigma", 1.0)]),
        ];
        for trial in 0..400u64 {
            let v = 1 + rng.below(700);
            let z = random_row(&mut rng, v);
            let c = &chains[trial as usize % chains.len()];
            let adapted = apply(c, &z);
            let mut out = [Draw::default()];
            sample(
                Logits::new(&z, 1, v).unwrap(),
                Chains::new(&[c], 1).unwrap(),
                5,
                &[trial],
                &[0],
                &mut out,
            )
            .unwrap();
            let t = out[0].token as usize;
            assert!(
                adapted[t] > f32::NEG_INFINITY,
                "trial {trial}: token {t} outside the support"
            );
            let support = adapted.iter().filter(|x| x.is_finite()).count();
            assert_eq!(out[0].support_size as usize, support, "trial {trial}");
        }
    }

    #[test]
    fn a_draw_depends_only_on_seed_stream_and_step_not_on_the_batch() {
        let mut rng = Rng::new(17);
        let v = 300;
        let b = 24;
        let rows: Vec<Vec<f32>> = (0..b).map(|_| random_row(&mut rng, v)).collect();
        let streams: Vec<u64> = (0..b).map(|_| rng.next_u64()).collect();
        let steps: Vec<u64> = (0..b).map(|_| rng.next_u64() % 1000).collect();
        let chains: Vec<Chain> = (0..b)
            .map(|i| {
                if i % 2 == 0 {
                    chain(&[("temperature", 0.9), ("top_p", 0.95)])
                } else {
                    Chain::ancestral()
                }
            })
            .collect();
        let chain_refs: Vec<&Chain> = chains.iter().collect();
        let data: Vec<f32> = rows.iter().flatten().copied().collect();
        let mut all = vec![Draw::default(); b];
        sample(
            Logits::new(&data, b, v).unwrap(),
            Chains::new(&chain_refs, b).unwrap(),
            3,
            &streams,
            &steps,
            &mut all,
        )
        .unwrap();
        // one row at a time
        for i in 0..b {
            let mut one = [Draw::default()];
            let logits = Logits::new(&rows[i], 1, v).unwrap();
            sample(
                logits,
                Chains::new(&[&chains[i]], 1).unwrap(),
                3,
                &streams[i..i + 1],
                &steps[i..i + 1],
                &mut one,
            )
            .unwrap();
            assert_eq!(one[0], all[i], "row {i}");
        }
        // the batch reversed
        let rev: Vec<f32> = rows.iter().rev().flatten().copied().collect();
        let rev_streams: Vec<u64> = streams.iter().rev().copied().collect();
        let rev_steps: Vec<u64> = steps.iter().rev().copied().collect();
        let rev_chains: Vec<&Chain> = chains.iter().rev().collect();
        let mut reversed = vec![Draw::default(); b];
        sample(
            Logits::new(&rev, b, v).unwrap(),
            Chains::new(&rev_chains, b).unwrap(),
            3,
            &rev_streams,
            &rev_steps,
            &mut reversed,
        )
        .unwrap();
        for i in 0..b {
            assert_eq!(reversed[b - 1 - i], all[i], "row {i}");
        }
        // a broadcast step is the same as that step on every row
        let mut broadcast = vec![Draw::default(); b];
        let mut repeated = vec![Draw::default(); b];
        let logits = Logits::new(&data, b, v).unwrap();
        let chains_arg = Chains::new(&chain_refs, b).unwrap();
        sample(logits, chains_arg, 3, &streams, &[11], &mut broadcast).unwrap();
        sample(logits, chains_arg, 3, &streams, &[11; 24], &mut repeated).unwrap();
        assert_eq!(broadcast, repeated);
        // and another seed gives other draws
        let mut other = vec![Draw::default(); b];
        sample(logits, chains_arg, 4, &streams, &[11], &mut other).unwrap();
        assert_ne!(other, broadcast);
    }

    #[test]
    fn support_size_after_temperature_counts_only_finite_tokens() {
        let z = [1.0f32, 2.0, f32::NEG_INFINITY, f32::NEG_INFINITY];
        let mut out = [Draw::default()];
        let c = chain(&[("temperature", 0.5)]);
        sample(
            Logits::new(&z, 1, 4).unwrap(),
            Chains::new(&[&c], 1).unwrap(),
            1,
            &[0],
            &[0],
            &mut out,
        )
        .unwrap();
        assert_eq!(out[0].support_size, 2);
        assert!(out[0].token < 2);
    }

    #[test]
    fn bad_arguments_and_rows_are_errors() {
        let data = [0.0f32, 1.0, 2.0, f32::NAN, 0.0, 0.0];
        let logits = Logits::new(&data, 3, 2).unwrap();
        let c = Chain::ancestral();
        let refs = [&c];
        let chains = Chains::new(&refs, 3).unwrap();
        let mut out = vec![Draw::default(); 3];
        let err = sample(logits, chains, 0, &[0, 1], &[0], &mut out)
            .unwrap_err()
            .to_string();
        assert!(err.contains("`streams`"), "{err}");
        let err = sample(logits, chains, 0, &[0, 1, 2], &[0, 1], &mut out)
            .unwrap_err()
            .to_string();
        assert!(err.contains("`steps`"), "{err}");
        let err = sample(logits, chains, 0, &[0, 1, 2], &[0], &mut out[..2])
            .unwrap_err()
            .to_string();
        assert!(err.contains("`out`"), "{err}");
        let err = sample(logits, chains, 0, &[0, 1, 2], &[0], &mut out)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("row 1") && err.contains("NaN at column 1"),
            "{err}"
        );
    }
}
