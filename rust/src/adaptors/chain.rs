//! A chain of adaptors, applied in the written order; the empty chain is ancestral sampling.

use super::{Adaptor, Row};
use crate::error::{Error, Result, RowProblem};
use crate::kernels;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Chain {
    pub adaptors: Vec<Adaptor>,
}

impl Chain {
    pub fn new(adaptors: Vec<Adaptor>) -> Self {
        Self { adaptors }
    }

    /// The empty chain: no adaptor, sampling from the model's own distribution.
    pub fn ancestral() -> Self {
        Self::default()
    }

    /// Run every adaptor on the row.
    pub fn narrow(&self, row: &mut Row) -> std::result::Result<(), RowProblem> {
        for adaptor in &self.adaptors {
            adaptor.narrow(row)?;
        }
        Ok(())
    }

    /// The adapted row: the current values in the support, `-inf` outside.
    pub fn apply_into(
        &self,
        row: &mut Row,
        out: &mut [f32],
    ) -> std::result::Result<(), RowProblem> {
        self.narrow(row)?;
        let (lo, hi) = row.bounds();
        kernels::write_masked(row.values(), lo, hi, out);
        Ok(())
    }

    /// Normalised log-probabilities of the adapted row (`-inf` outside the support).
    pub fn log_probs_into(
        &self,
        row: &mut Row,
        out: &mut [f32],
    ) -> std::result::Result<(), RowProblem> {
        self.narrow(row)?;
        let max = row.max();
        let log_sum = row.sum_exp().ln();
        let (lo, hi) = row.bounds();
        kernels::write_log_probs(row.values(), lo, hi, max, log_sum, out);
        Ok(())
    }
}

/// Check that a row is a distribution: not empty, no NaN, no `+inf`, at least one finite value.
/// `index` is the row's number for the message. Returns the row's max.
pub fn validate_row(row: &[f32], index: usize) -> Result<f32> {
    if row.is_empty() {
        return Err(row_problem(index, RowProblem::Empty));
    }
    let (max, invalid) = kernels::max_and_invalid(row);
    if invalid {
        let col = row
            .iter()
            .position(|v| v.is_nan() || *v == f32::INFINITY)
            .unwrap_or(0);
        let problem = if row[col].is_nan() {
            RowProblem::NaN(col)
        } else {
            RowProblem::PosInf(col)
        };
        return Err(row_problem(index, problem));
    }
    if max == f32::NEG_INFINITY {
        return Err(row_problem(index, RowProblem::AllMasked));
    }
    Ok(max)
}

fn row_problem(row: usize, problem: RowProblem) -> Error {
    Error::Row {
        name: "logits",
        row,
        problem,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adaptors::{Scratch, Temperature, TopK, TopNSigma, TopP, ADAPTOR_NAMES};
    use crate::test_util::{
        apply, chain, dyadic_row, indices, kept_by_chain, random_row, softmax, Rng,
    };

    fn log_probs(chain: &Chain, z: &[f32]) -> Vec<f32> {
        let mut scratch = Scratch::new();
        let mut row = Row::new(z, &mut scratch);
        let mut out = vec![0.0f32; z.len()];
        chain.log_probs_into(&mut row, &mut out).unwrap();
        out
    }

    #[test]
    fn the_empty_chain_is_the_identity_and_its_log_probs_are_log_softmax() {
        let mut rng = Rng::new(5);
        for _ in 0..50 {
            let v = 1 + rng.below(200);
            let z = random_row(&mut rng, v);
            let ancestral = Chain::ancestral();
            assert_eq!(apply(&ancestral, &z), z);
            let lp = log_probs(&ancestral, &z);
            for (&got, &p) in lp.iter().zip(&softmax(&z)) {
                if p == 0.0 {
                    assert_eq!(got, f32::NEG_INFINITY);
                } else {
                    assert!(
                        (got as f64 - p.ln()).abs() < 1e-5 * (1.0 + p.ln().abs()),
                        "{got} {}",
                        p.ln()
                    );
                }
            }
        }
    }

    #[test]
    fn log_probs_are_of_the_renormalised_adapted_row() {
        let mut rng = Rng::new(6);
        for _ in 0..50 {
            let v = 2 + rng.below(200);
            let z = random_row(&mut rng, v);
            let c = chain(&[("temperature", 0.7), ("top_k", 20.0), ("top_p", 0.9)]);
            let adapted = apply(&c, &z);
            let lp = log_probs(&c, &z);
            let q = softmax(&adapted);
            let total: f64 = lp.iter().map(|&x| (x as f64).exp()).sum();
            assert!((total - 1.0).abs() < 1e-5, "{total}");
            for (&got, &qi) in lp.iter().zip(&q) {
                if qi == 0.0 {
                    assert_eq!(got, f32::NEG_INFINITY);
                } else {
                    assert!((got as f64 - qi.ln()).abs() < 1e-5 * (1.0 + qi.ln().abs()));
                }
            }
        }
    }

    #[test]
    fn temperature_order_matters() {
        // p = 0.5, 0.25, 0.125, 0.125
        let z = dyadic_row();
        // top_p first: 0.5 alone is below 0.6, the 0.25 token crosses; temperature then rescales
        let first_top_p = chain(&[("top_p", 0.6), ("temperature", 0.5)]);
        // temperature first: p ~ p^2 = 0.73, 0.18, ...: 0.73 alone reaches 0.6
        let first_temperature = chain(&[("temperature", 0.5), ("top_p", 0.6)]);
        assert_eq!(indices(&kept_by_chain(&first_top_p, &z)), vec![0, 1]);
        assert_eq!(indices(&kept_by_chain(&first_temperature, &z)), vec![0]);
        // and a hot temperature first flattens the row so that top_p keeps more
        let hot_first = chain(&[("temperature", 2.0), ("top_p", 0.75)]);
        let hot_last = chain(&[("top_p", 0.75), ("temperature", 2.0)]);
        assert_eq!(indices(&kept_by_chain(&hot_first, &z)), vec![0, 1, 2, 3]);
        assert_eq!(indices(&kept_by_chain(&hot_last, &z)), vec![0, 1]);
        // the values of the kept tokens are divided whatever the position of temperature
        let out = apply(&first_top_p, &z);
        assert_eq!(out[..2], [z[0] / 0.5, z[1] / 0.5]);
        assert_eq!(out[2..], [f32::NEG_INFINITY; 2]);
    }

    #[test]
    fn each_adaptor_sees_the_previous_ones_output() {
        // p = 0.4, 0.3, 0.2, 0.1; after top_k = 3: 4/9, 3/9, 2/9
        let z: Vec<f32> = [0.4f64, 0.3, 0.2, 0.1]
            .iter()
            .map(|p| p.ln() as f32)
            .collect();
        // on the full row the mass above token 2 is 0.7 < 0.75: kept
        assert_eq!(
            indices(&kept_by_chain(&chain(&[("top_p", 0.75)]), &z)),
            vec![0, 1, 2]
        );
        // after top_k it is 7/9 >= 0.75: removed
        assert_eq!(
            indices(&kept_by_chain(
                &chain(&[("top_k", 3.0), ("top_p", 0.75)]),
                &z
            )),
            vec![0, 1]
        );
    }

    #[test]
    fn temperatures_compose_as_two_float32_divisions() {
        let z = [1.5f32, -0.3, 2.25, f32::NEG_INFINITY, 0.7];
        let c = chain(&[("top_k", 3.0), ("temperature", 0.7), ("temperature", 1.3)]);
        let out = apply(&c, &z);
        let (t1, t2) = (0.7f64 as f32, 1.3f64 as f32);
        assert_eq!(
            out,
            vec![
                (z[0] / t1) / t2,
                f32::NEG_INFINITY,
                (z[2] / t1) / t2,
                f32::NEG_INFINITY,
                (z[4] / t1) / t2
            ]
        );
    }

    #[test]
    fn adaptors_after_temperature_ignore_minus_inf_entries() {
        // temperature writes the scaled row; masked tokens must not count as part of the support
        let z = [1.0f32, 2.0, f32::NEG_INFINITY, f32::NEG_INFINITY];
        let c = Chain::new(vec![
            Adaptor::Temperature(Temperature::new(0.5).unwrap()),
            Adaptor::TopK(TopK::new(3, 1).unwrap()),
        ]);
        assert_eq!(indices(&kept_by_chain(&c, &z)), vec![0, 1]);
        let c = Chain::new(vec![
            Adaptor::Temperature(Temperature::new(0.5).unwrap()),
            Adaptor::TopP(TopP::new(0.1, 3).unwrap()),
        ]);
        assert_eq!(indices(&kept_by_chain(&c, &z)), vec![0, 1]);
        // scaled values 2, 4 (and two -inf): sigma = 1, threshold 4 - 2.5 = 1.5 keeps both
        let c = Chain::new(vec![
            Adaptor::Temperature(Temperature::new(0.5).unwrap()),
            Adaptor::TopNSigma(TopNSigma::new(2.5, 1).unwrap()),
        ]);
        assert_eq!(indices(&kept_by_chain(&c, &z)), vec![0, 1]);
        let c = Chain::new(vec![
            Adaptor::Temperature(Temperature::new(0.5).unwrap()),
            Adaptor::TopNSigma(TopNSigma::new(1.5, 1).unwrap()),
        ]);
        assert_eq!(indices(&kept_by_chain(&c, &z)), vec![1]);
    }

    #[test]
    fn from_name_builds_every_adaptor_and_names_bad_parameters() {
        let values = [0.7, 50.0, 0.9, 0.05, 0.9, 3e-4, 9e-4, 0.2, 1.0];
        for (name, value) in ADAPTOR_NAMES.iter().zip(values) {
            assert!(Adaptor::from_name(name, value, 1).is_ok(), "{name}");
            let err = Adaptor::from_name(name, f64::NAN, 1)
                .unwrap_err()
                .to_string();
            assert!(err.contains(&format!("`{name}`")), "{err}");
        }
        let err = Adaptor::from_name("top_q", 0.5, 1).unwrap_err().to_string();
        assert!(
            err.contains("`name`") && err.contains("top_q") && err.contains("top_p"),
            "{err}"
        );
        let err = Adaptor::from_name("top_p", 0.5, 0).unwrap_err().to_string();
        assert!(
            err.contains("`min_tokens_to_keep`") && err.contains(">= 1"),
            "{err}"
        );
        let err = Adaptor::from_name("top_k", 2.5, 1).unwrap_err().to_string();
        assert!(err.contains("`top_k`") && err.contains("integer"), "{err}");
    }

    #[test]
    fn validate_row_names_the_row_and_the_problem() {
        assert!(validate_row(&[0.0, f32::NEG_INFINITY], 0).is_ok());
        let cases: [(&[f32], RowProblem); 4] = [
            (&[], RowProblem::Empty),
            (&[0.0, f32::NAN], RowProblem::NaN(1)),
            (&[0.0, 1.0, f32::INFINITY], RowProblem::PosInf(2)),
            (&[f32::NEG_INFINITY; 3], RowProblem::AllMasked),
        ];
        for (row, problem) in cases {
            let err = validate_row(row, 7).unwrap_err();
            assert_eq!(
                err,
                Error::Row {
                    name: "logits",
                    row: 7,
                    problem
                }
            );
            assert!(err.to_string().contains("row 7"), "{err}");
        }
    }
}
