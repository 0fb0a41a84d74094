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
