//! Temperature scaling (Ackley, Hinton and Sejnowski 1985): `z / t`. Removes nothing; changes the
//! distribution every later adaptor in a chain sees.

use super::{check_range, Row};
use crate::error::{Result, RowProblem};

#[derive(Debug, Clone, PartialEq)]
pub struct Temperature {
    pub temperature: f64,
}

impl Temperature {
    /// `temperature`: finite, > 0.
    pub fn new(temperature: f64) -> Result<Self> {
        // the float32 value must be a positive normal number, or the division is meaningless
        let temperature = check_range(
            "temperature",
            temperature,
            "a finite number > 0 (at least 1.2e-38, the smallest normal float32)",
            |t| t >= f32::MIN_POSITIVE as f64 && t <= f32::MAX as f64,
        )?;
        Ok(Self { temperature })
    }

    pub fn narrow(&self, row: &mut Row) -> std::result::Result<(), RowProblem> {
        // torch divides a float32 tensor by the scalar cast to float32
        let t = self.temperature as f32;
        if t != 1.0 {
            row.divide(t)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adaptors::{Adaptor, Chain};
    use crate::test_util::{apply, softmax, Rng};

    fn chain(t: f64) -> Chain {
        Chain::new(vec![Adaptor::Temperature(Temperature::new(t).unwrap())])
    }

    #[test]
    fn divides_every_finite_logit_as_float32_and_keeps_minus_inf() {
        let mut rng = Rng::new(1);
        let z: Vec<f32> = (0..37)
            .map(|i| {
                if i % 7 == 3 {
                    f32::NEG_INFINITY
                } else {
                    (3.0 * rng.normal()) as f32
                }
            })
            .collect();
        for t in [0.3, 0.7, 1.0, 1.5, 4.0] {
            let out = apply(&chain(t), &z);
            for (o, &x) in out.iter().zip(&z) {
                if x == f32::NEG_INFINITY {
                    assert_eq!(*o, f32::NEG_INFINITY);
                } else {
                    // torch: float32 tensor / float32 scalar
                    assert_eq!(o.to_bits(), (x / t as f32).to_bits(), "t={t} x={x}");
                }
            }
        }
    }

    #[test]
    fn sharpens_below_one_and_flattens_above_one() {
        let z = [2.0f32, 1.0, 0.0, -1.0];
        let p = softmax(&z);
        let cold = softmax(&apply(&chain(0.5), &z));
        let hot = softmax(&apply(&chain(2.0), &z));
        assert!(cold[0] > p[0] && p[0] > hot[0]);
        assert!(cold[3] < p[3] && p[3] < hot[3]);
        // the reference: softmax(z / t) in f64
        let want: Vec<f64> = softmax(&z.iter().map(|&x| x * 2.0).collect::<Vec<_>>());
        for (c, w) in cold.iter().zip(&want) {
            assert!((c - w).abs() < 1e-12);
        }
    }

    #[test]
    fn rejects_non_positive_and_non_finite_temperatures() {
        for t in [
            0.0,
            -1.0,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1e-300,
            1e300,
        ] {
            let err = Temperature::new(t).unwrap_err().to_string();
            assert!(
                err.contains("`temperature`") && err.contains("> 0"),
                "{err}"
            );
        }
        assert!(Temperature::new(1e-30).is_ok());
        assert!(Temperature::new(1.0).is_ok());
    }

    #[test]
    fn overflowing_float32_is_a_row_problem() {
        use crate::adaptors::Scratch;
        let z = [f32::MAX / 2.0, 0.0];
        let mut scratch = Scratch::new();
        let mut row = crate::adaptors::Row::new(&z, &mut scratch);
        let mut out = [0.0f32; 2];
        assert_eq!(
            chain(0.1).apply_into(&mut row, &mut out),
            Err(RowProblem::TemperatureOverflow)
        );
    }
}
