//! `tradeoff`: the Rust core of a toolkit for the probability–quality trade-off of aligned language
//! models. It owns every loop over a vocabulary: sampling adaptors with transformers' semantics,
//! fused adapt-and-sample with a counter-based generator, and fused teacher-forced scoring; and every
//! loop over a corpus: correlations, bootstrap intervals, the IMH correction, resampled corpora.
//!
//! The core is plain Rust, tested with `cargo test`; the `python` feature adds the thin PyO3 layer
//! that maturin builds into `tradeoff._core`.

pub mod adaptors;
pub mod batch;
pub mod error;
pub mod kernels;
pub mod parallel;
pub mod rng;
pub mod sampling;
pub mod scoring;
pub mod simd;
pub mod stats;

#[cfg(test)]
mod test_util;

#[cfg(feature = "python")]
mod python;

pub use adaptors::{Adaptor, Chain};
pub use error::{Error, Result};
