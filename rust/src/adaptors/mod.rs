//! Sampling adaptors: local transformations of a next-token distribution, with the semantics of
//! Hugging Face transformers' warpers (see `ADAPTORS.md` in the project's shared notes).
//!
//! Each adaptor narrows a [`Row`]'s support (an interval of the current values) or rescales its
//! values. One adaptor per file; [`Chain`] applies them in the written order.

mod chain;
mod epsilon;
mod eta;
mod min_p;
mod row;
mod select;
mod temperature;
mod top_a;
mod top_k;
mod top_nsigma;
mod top_p;
mod typical;

pub use chain::{validate_row, Chain};
pub use epsilon::Epsilon;
pub use eta::Eta;
pub use min_p::MinP;
pub use row::{Row, Scratch};
pub use temperature::Temperature;
pub use top_a::TopA;
pub use top_k::TopK;
pub use top_nsigma::TopNSigma;
pub use top_p::TopP;
pub use typical::Typical;

use crate::error::{Error, Result, RowProblem};

/// One adaptor of a chain.
#[derive(Debug, Clone, PartialEq)]
pub enum Adaptor {
    Temperature(Temperature),
    TopK(TopK),
    TopP(TopP),
    MinP(MinP),
    Typical(Typical),
    Epsilon(Epsilon),
    Eta(Eta),
    TopA(TopA),
    TopNSigma(TopNSigma),
}

/// The names of the adaptors, as in a spec string (`"temperature=0.7,top_p=0.9"`).
pub const ADAPTOR_NAMES: [&str; 9] = [
    "temperature",
    "top_k",
    "top_p",
    "min_p",
    "typical",
    "epsilon",
    "eta",
    "top_a",
    "top_nsigma",
];

impl Adaptor {
    /// Build an adaptor from its spec name, its parameter and `min_tokens_to_keep`, checking both.
    pub fn from_name(name: &str, value: f64, min_keep: usize) -> Result<Self> {
        if min_keep < 1 {
            return Err(Error::parameter(
                "min_tokens_to_keep",
                min_keep,
                "an integer >= 1",
            ));
        }
        Ok(match name {
            "temperature" => Adaptor::Temperature(Temperature::new(value)?),
            "top_k" => Adaptor::TopK(TopK::from_f64(value, min_keep)?),
            "top_p" => Adaptor::TopP(TopP::new(value, min_keep)?),
            "min_p" => Adaptor::MinP(MinP::new(value, min_keep)?),
            "typical" => Adaptor::Typical(Typical::new(value, min_keep)?),
            "epsilon" => Adaptor::Epsilon(Epsilon::new(value, min_keep)?),
            "eta" => Adaptor::Eta(Eta::new(value, min_keep)?),
            "top_a" => Adaptor::TopA(TopA::new(value, min_keep)?),
            "top_nsigma" => Adaptor::TopNSigma(TopNSigma::new(value, min_keep)?),
            _ => {
                return Err(Error::argument(
                    "name",
                    format!("must be one of {}, got {name:?}", ADAPTOR_NAMES.join(", ")),
                ))
            }
        })
    }

    /// Narrow the row's support (or rescale its values) in place. Only temperature can fail (by
    /// overflowing float32).
    pub fn narrow(&self, row: &mut Row) -> std::result::Result<(), RowProblem> {
        match self {
            Adaptor::Temperature(a) => return a.narrow(row),
            Adaptor::TopK(a) => a.narrow(row),
            Adaptor::TopP(a) => a.narrow(row),
            Adaptor::MinP(a) => a.narrow(row),
            Adaptor::Typical(a) => a.narrow(row),
            Adaptor::Epsilon(a) => a.narrow(row),
            Adaptor::Eta(a) => a.narrow(row),
            Adaptor::TopA(a) => a.narrow(row),
            Adaptor::TopNSigma(a) => a.narrow(row),
        }
        Ok(())
    }
}

/// Check a probability-like parameter: finite and inside the given bounds.
pub(crate) fn check_range(
    name: &'static str,
    value: f64,
    range: &'static str,
    ok: impl Fn(f64) -> bool,
) -> Result<f64> {
    if value.is_finite() && ok(value) {
        Ok(value)
    } else {
        Err(Error::parameter(name, value, range))
    }
}

/// The value at and above which the `min_keep` largest values lie (ties with the `min_keep`-th
/// are protected too, so protection never depends on token order). `f32::MIN` protects all.
pub(crate) fn protected_from(row: &mut Row, min_keep: usize) -> f32 {
    if min_keep == 1 {
        row.max()
    } else {
        row.kth_largest(min_keep).unwrap_or(f32::MIN)
    }
}

/// Shared by the adaptors whose rule is a monotone threshold on the value (min-p, epsilon, eta,
/// top-a, top-n-sigma): keep the values for which `keep` holds, and always the `min_keep` largest.
pub(crate) fn narrow_by_rule(row: &mut Row, min_keep: usize, keep: impl Fn(f32) -> bool) {
    let top = row.max();
    let protected = protected_from(row, min_keep);
    let cut = if keep(top) {
        row.lowest_satisfying(top, keep).min(protected)
    } else {
        protected
    };
    row.keep_at_least(cut);
}

/// `exp(v - max) / sum`, the probability of value `v` as the per-token rules compute it.
#[inline]
pub(crate) fn prob(v: f32, max: f32, sum_exp: f32) -> f32 {
    crate::kernels::exp_nonpositive(v - max) / sum_exp
}
