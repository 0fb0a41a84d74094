//! Corpus statistics: correlations with p-values, bootstrap intervals, the paper's independent
//! Metropolis–Hastings (IMH) correction, resampled corpora, ragged (token -> string) reductions and
//! the trade-off diagnostics built on them. Every function checks its inputs and returns
//! [`crate::Error`] naming the argument; none panics on bad input.

pub mod best_of_n;
pub mod binomial;
pub mod bootstrap;
pub mod correlation;
pub mod draws;
pub mod imh;
pub mod moments;
pub mod rank;
pub mod resample;
pub mod resampled_ranks;
pub mod segments;
pub mod simpson;
pub mod special;
pub mod stream;
pub mod tradeoff_line;
pub mod typicality;
