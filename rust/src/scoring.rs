//! Fused teacher-forced scoring, the counterpart of sampling: for each row (a position) and its
//! target token, the target's log-probability under the raw row and under the adapted row, without
//! writing the adapted row.

use crate::adaptors::{Chain, Row};
use crate::batch::{for_each_row, row_error, Chains, Logits};
use crate::error::{Error, Result, RowProblem};

/// One position's scores.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct TokenScore {
    /// log p(target) under the raw row.
    pub logp_base: f64,
    /// log q(target) under the adapted row; `-inf` outside the support.
    pub logp_adapted: f64,
    /// Whether the target is in the adapted support.
    pub in_support: bool,
}

/// Score `targets[i]` under row `i` of `logits`, raw and adapted by its chain.
pub fn score_tokens(
    logits: Logits,
    chains: Chains,
    targets: &[i64],
    out: &mut [TokenScore],
) -> Result<()> {
    if targets.len() != logits.rows {
        return Err(Error::argument(
            "targets",
            format!(
                "has {} entries; give one per row of `logits` ({})",
                targets.len(),
                logits.rows
            ),
        ));
    }
    if let Some((i, &t)) = targets
        .iter()
        .enumerate()
        .find(|(_, &t)| t < 0 || t as u64 >= logits.vocab as u64)
    {
        return Err(Error::argument(
            "targets",
            format!(
                "[{i}] = {t} is outside [0, {}) (the vocabulary of `logits`)",
                logits.vocab
            ),
        ));
    }
    if out.len() != logits.rows {
        return Err(Error::argument("out", "needs one entry per row"));
    }
    for_each_row(logits, out, 1, |i, row, out_i| {
        out_i[0] =
            score_row(row, chains.get(i), targets[i] as usize).map_err(|p| row_error(i, p))?;
        Ok(())
    })
}

/// Adapt one row and score `target` under the raw and the adapted distribution.
pub fn score_row(
    row: &mut Row,
    chain: &Chain,
    target: usize,
) -> std::result::Result<TokenScore, RowProblem> {
    chain.narrow(row)?;
    let value = row.values()[target];
    let in_support = row.contains(value);
    let logp_adapted = if in_support {
        let max = row.max();
        (value - max) as f64 - (row.sum_exp() as f64).ln()
    } else {
        f64::NEG_INFINITY
    };
    // after the adapted normaliser: for an unchanged row (ancestral) it is the raw one too
    let (base_max, base_sum) = row.base_stats();
    let raw_value = row.raw_value(target);
    let logp_base = if raw_value == f32::NEG_INFINITY {
        f64::NEG_INFINITY
    } else {
        (raw_value - base_max) as f64 - (base_sum as f64).ln()
    };
    Ok(TokenScore {
        logp_base,
        logp_adapted,
        in_support,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adaptors::Scratch;
    use crate::batch;
    use crate::test_util::{chain, random_row, softmax, Rng};

    /// Score every token of every row (targets cycle through the vocabulary one row per target).
    fn score_all(z: &[f32], c: &Chain) -> Vec<TokenScore> {
        let v = z.len();
        let data: Vec<f32> = (0..v).flat_map(|_| z.iter().copied()).collect();
        let targets: Vec<i64> = (0..v as i64).collect();
        let mut out = vec![TokenScore::default(); v];
        score_tokens(
            Logits::new(&data, v, v).unwrap(),
            Chains::new(&[c], v).unwrap(),
            &targets,
            &mut out,
        )
        .unwrap();
        out
    }

    #[test]
    fn agrees_with_log_probs_gathered_at_the_target() {
        let mut rng = Rng::new(8);
        let chains = [
            Chain::ancestral(),
            chain(&[("temperature", 0.7), ("top_p", 0.9)]),
            chain(&[("top_k", 7.0), ("temperature", 1.3)]),
            chain(&[("typical", 0.5)]),
            chain(&[("min_p", 0.1)]),
            chain(&[("temperature", 0.6), ("eta", 0.01), ("top_nsigma", 1.5)]),
        ];
        for trial in 0..60 {
            let v = 1 + rng.below(120);
            let z = random_row(&mut rng, v);
            let c = &chains[trial % chains.len()];
            let scores = score_all(&z, c);
            let mut adapted = vec![0.0f32; v];
            batch::log_probs(
                Logits::new(&z, 1, v).unwrap(),
                Chains::new(&[c], 1).unwrap(),
                &mut adapted,
            )
            .unwrap();
            let base = softmax(&z);
            for (t, s) in scores.iter().enumerate() {
                let want = adapted[t] as f64;
                assert_eq!(
                    s.in_support,
                    want > f64::NEG_INFINITY,
                    "trial {trial} token {t}"
                );
                if s.in_support {
                    assert!(
                        (s.logp_adapted - want).abs() < 1e-5 * (1.0 + want.abs()),
                        "{} {want}",
                        s.logp_adapted
                    );
                } else {
                    assert_eq!(s.logp_adapted, f64::NEG_INFINITY);
                }
                let want_base = base[t].ln();
                if base[t] == 0.0 {
                    assert_eq!(s.logp_base, f64::NEG_INFINITY);
                } else {
                    assert!((s.logp_base - want_base).abs() < 1e-5 * (1.0 + want_base.abs()));
                }
            }
        }
    }

    #[test]
    fn outside_the_support_is_minus_inf_and_not_in_support() {
        // p = 0.4, 0.3, 0.2, 0.1 and a masked token; top_k = 2 keeps tokens 0 and 1
        let z: Vec<f32> = [0.4f64, 0.3, 0.2, 0.1]
            .iter()
            .map(|p| p.ln() as f32)
            .chain([f32::NEG_INFINITY])
            .collect();
        let scores = score_all(&z, &chain(&[("top_k", 2.0)]));
        assert!((scores[0].logp_adapted - (4.0f64 / 7.0).ln()).abs() < 1e-6);
        assert!((scores[1].logp_adapted - (3.0f64 / 7.0).ln()).abs() < 1e-6);
        assert!((scores[2].logp_base - 0.2f64.ln()).abs() < 1e-6);
        for s in &scores[2..] {
            assert!(!s.in_support);
            assert_eq!(s.logp_adapted, f64::NEG_INFINITY);
        }
        assert_eq!(scores[4].logp_base, f64::NEG_INFINITY);
        // typical can remove the most probable token: it is then outside the support too
        let d: Vec<f32> = [0.5f64, 0.25, 0.125, 0.125]
            .iter()
            .map(|p| p.ln() as f32)
            .collect();
        let scores = score_all(&d, &chain(&[("typical", 0.2)]));
        assert_eq!(
            scores.iter().map(|s| s.in_support).collect::<Vec<_>>(),
            [false, true, false, false]
        );
        assert!(scores[1].logp_adapted.abs() < 1e-6);
        // the masked token is outside after temperature as well
        let mut scratch = Scratch::new();
        let mut row = Row::new(&z, &mut scratch);
        let s = score_row(&mut row, &chain(&[("temperature", 0.5)]), 4).unwrap();
        assert!(
            !s.in_support
                && s.logp_adapted == f64::NEG_INFINITY
                && s.logp_base == f64::NEG_INFINITY
        );
    }

    #[test]
    fn targets_out_of_range_and_bad_shapes_are_errors() {
        let data = [0.0f32, 1.0, 2.0, 3.0, 4.0, 5.0];
        let logits = Logits::new(&data, 2, 3).unwrap();
        let c = Chain::ancestral();
        let refs = [&c];
        let chains = Chains::new(&refs, 2).unwrap();
        let mut out = vec![TokenScore::default(); 2];
        for (targets, text) in [
            ([0i64, 3], "[1] = 3 is outside [0, 3)"),
            ([-1, 0], "[0] = -1 is outside [0, 3)"),
        ] {
            let err = score_tokens(logits, chains, &targets, &mut out).unwrap_err();
            assert!(matches!(
                err,
                Error::Argument {
                    name: "targets",
                    ..
                }
            ));
            assert!(err.to_string().contains(text), "{err}");
        }
        let err = score_tokens(logits, chains, &[0], &mut out)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`targets`") && err.contains("one per row"),
            "{err}"
        );
        let err = score_tokens(logits, chains, &[0, 2], &mut out[..1])
            .unwrap_err()
            .to_string();
        assert!(err.contains("`out`"), "{err}");
        let bad = [0.0f32, 1.0, 2.0, 3.0, f32::INFINITY, 5.0];
        let err = score_tokens(Logits::new(&bad, 2, 3).unwrap(), chains, &[0, 2], &mut out)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("row 1") && err.contains("+inf at column 1"),
            "{err}"
        );
        score_tokens(logits, chains, &[2, 0], &mut out).unwrap();
        assert!(out[0].in_support && out[1].in_support);
    }
}
