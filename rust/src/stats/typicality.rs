//! Typical corpora (the asymptotic equipartition property): a corpus is typical for a
//! distribution with entropy H when its sample entropy `-mean log p` is within a tolerance of H.
//! The paper's toy experiment keeps corpora with `|H(p+) + mean log p+| < 0.001`.

use crate::error::{Error, Result};
use crate::stats::moments::check_finite;

#[derive(Debug, Clone)]
pub struct Typicality {
    /// `-mean log p` of each corpus.
    pub sample_entropy: Vec<f64>,
    /// `|H - sample entropy|` of each corpus.
    pub deviation: Vec<f64>,
    /// Whether each corpus is typical (deviation strictly below the tolerance).
    pub typical: Vec<bool>,
}

/// `mean_log_probs[i]` is corpus i's mean log-probability under the distribution of entropy
/// `entropy` (nats).
pub fn typicality(mean_log_probs: &[f64], entropy: f64, tolerance: f64) -> Result<Typicality> {
    check_finite("mean_log_probs", mean_log_probs)?;
    if !(entropy.is_finite() && entropy >= 0.0) {
        return Err(Error::parameter(
            "entropy",
            entropy,
            "a finite number >= 0 (nats)",
        ));
    }
    if !(tolerance.is_finite() && tolerance > 0.0) {
        return Err(Error::parameter(
            "tolerance",
            tolerance,
            "a finite number > 0",
        ));
    }
    let sample_entropy: Vec<f64> = mean_log_probs.iter().map(|m| -m).collect();
    let deviation: Vec<f64> = sample_entropy.iter().map(|h| (entropy - h).abs()).collect();
    let typical = deviation.iter().map(|&d| d < tolerance).collect();
    Ok(Typicality {
        sample_entropy,
        deviation,
        typical,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_by_tolerance() {
        let t = typicality(&[-5.0, -5.0005, -4.9, -5.002], 5.0, 0.001).unwrap();
        assert_eq!(t.typical, [true, true, false, false]);
        assert!((t.deviation[2] - 0.1).abs() < 1e-12);
        assert_eq!(t.sample_entropy[0], 5.0);
        let e = typicality(&[1.0], 1.0, 0.0).unwrap_err().to_string();
        assert_eq!(e, "`tolerance` must be a finite number > 0, got 0");
    }
}
