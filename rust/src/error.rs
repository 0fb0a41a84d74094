//! The core's error type. Every message names the argument and, where there is one, the accepted
//! range, so that the Python layer can pass it on unchanged as a `ValueError`.

use std::fmt;

/// What is wrong with one row of logits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowProblem {
    /// The row has no entries (V = 0).
    Empty,
    /// A NaN at this column.
    NaN(usize),
    /// A `+inf` at this column.
    PosInf(usize),
    /// Every entry is `-inf`: there is no distribution to adapt.
    AllMasked,
    /// Dividing by the temperature overflowed float32 (or sent every value to `-inf`).
    TemperatureOverflow,
}

impl fmt::Display for RowProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RowProblem::Empty => {
                write!(f, "is empty (V = 0); a row needs at least one finite logit")
            }
            RowProblem::NaN(col) => {
                write!(f, "has NaN at column {col}; logits must be finite or -inf")
            }
            RowProblem::PosInf(col) => {
                write!(f, "has +inf at column {col}; logits must be finite or -inf")
            }
            RowProblem::AllMasked => {
                write!(f, "is all -inf; a row needs at least one finite logit")
            }
            RowProblem::TemperatureOverflow => write!(
                f,
                "overflows float32 when divided by the temperature; use a larger `temperature`"
            ),
        }
    }
}

/// Errors of the core. None of them is a panic: every invalid input is reported as one of these.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// An adaptor parameter outside its range.
    #[error("`{name}` must be {range}, got {value}")]
    Parameter {
        name: &'static str,
        value: String,
        range: &'static str,
    },
    /// A row of logits that is not a distribution.
    #[error("`{name}` row {row} {problem}")]
    Row {
        name: &'static str,
        row: usize,
        problem: RowProblem,
    },
    /// An argument with the wrong size or an out-of-range entry.
    #[error("`{name}` {message}")]
    Argument { name: &'static str, message: String },
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn parameter(
        name: &'static str,
        value: impl fmt::Display,
        range: &'static str,
    ) -> Self {
        Error::Parameter {
            name,
            value: value.to_string(),
            range,
        }
    }

    pub(crate) fn argument(name: &'static str, message: impl Into<String>) -> Self {
        Error::Argument {
            name,
            message: message.into(),
        }
    }
}
