//! Input checks shared by the statistics, and accurate first and second moments.

use crate::error::{Error, Result};

/// Every value must be finite: NaN and ±inf are reported with their index.
pub fn check_finite(name: &'static str, values: &[f64]) -> Result<()> {
    match values.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(i) => Err(Error::argument(
            name,
            format!("has {} at index {i}; values must be finite", values[i]),
        )),
    }
}

/// At least `min` values.
pub fn check_len(name: &'static str, values: &[f64], min: usize) -> Result<()> {
    if values.len() < min {
        let what = if values.is_empty() {
            "is empty".to_string()
        } else {
            format!("has {} values", values.len())
        };
        return Err(Error::argument(
            name,
            format!("{what}; it needs at least {min}"),
        ));
    }
    Ok(())
}

/// `name` (of length `len`) must have as many values as `reference` (of length `reference_len`).
pub fn check_same_len(
    name: &'static str,
    len: usize,
    reference: &str,
    reference_len: usize,
) -> Result<()> {
    if len != reference_len {
        return Err(Error::argument(
            name,
            format!(
                "has {len} values but `{reference}` has {reference_len}; they must have the same length"
            ),
        ));
    }
    Ok(())
}

/// Two columns of one sample: same length, at least `min` values, all finite.
pub fn check_pair(x: &[f64], y: &[f64], min: usize) -> Result<()> {
    check_same_len("y", y.len(), "x", x.len())?;
    check_len("x", x, min)?;
    check_finite("x", x)?;
    check_finite("y", y)
}

/// The mean, with one correction pass so that it is accurate to the last bits.
pub fn mean(x: &[f64]) -> f64 {
    let n = x.len() as f64;
    let first = x.iter().sum::<f64>() / n;
    first + x.iter().map(|v| v - first).sum::<f64>() / n
}

/// Whether every value equals the first.
pub fn is_constant(x: &[f64]) -> bool {
    x.iter().all(|&v| v == x[0])
}

/// Centred second moments of a pair: `(mean x, mean y, Σ dx², Σ dy², Σ dx·dy)`.
pub struct Centred {
    pub mean_x: f64,
    pub mean_y: f64,
    pub sxx: f64,
    pub syy: f64,
    pub sxy: f64,
    /// Pearson's r, from the scaled sums (finite even where the sums overflow).
    pub r: f64,
}

/// Centred sums, with the deviations scaled by their largest magnitude so that squares of large
/// values (1e200) do not overflow.
pub fn centred(x: &[f64], y: &[f64]) -> Centred {
    let (mean_x, mean_y) = (mean(x), mean(y));
    let scale = |v: &[f64], m: f64| {
        let s = v.iter().fold(0.0f64, |a, &b| a.max((b - m).abs()));
        if s > 0.0 && s.is_finite() {
            s
        } else {
            1.0
        }
    };
    let (kx, ky) = (scale(x, mean_x), scale(y, mean_y));
    let (mut sxx, mut syy, mut sxy) = (0.0, 0.0, 0.0);
    for (&a, &b) in x.iter().zip(y) {
        let dx = (a - mean_x) / kx;
        let dy = (b - mean_y) / ky;
        sxx += dx * dx;
        syy += dy * dy;
        sxy += dx * dy;
    }
    let product = sxx * syy;
    let r = if product > 0.0 {
        (sxy / product.sqrt()).clamp(-1.0, 1.0)
    } else {
        f64::NAN
    };
    Centred {
        mean_x,
        mean_y,
        r,
        sxx: sxx * kx * kx,
        syy: syy * ky * ky,
        sxy: sxy * kx * ky,
    }
}

/// Pearson's r from centred sums, clipped to [-1, 1] as rounding can step past it.
pub fn r_from(c: &Centred) -> f64 {
    c.r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_name_the_argument() {
        let e = check_finite("x", &[1.0, f64::NAN]).unwrap_err().to_string();
        assert_eq!(e, "`x` has NaN at index 1; values must be finite");
        let e = check_pair(&[1.0], &[1.0, 2.0], 2).unwrap_err().to_string();
        assert!(e.starts_with("`y` has 2 values but `x` has 1"), "{e}");
        let e = check_len("x", &[], 2).unwrap_err().to_string();
        assert_eq!(e, "`x` is empty; it needs at least 2");
        assert!(check_finite("y", &[f64::INFINITY]).is_err());
    }

    #[test]
    fn moments_are_accurate() {
        let x = [1e8 + 1.0, 1e8 + 2.0, 1e8 + 3.0];
        assert_eq!(mean(&x), 1e8 + 2.0);
        let c = centred(&x, &[3.0, 2.0, 1.0]);
        assert_eq!((c.sxx, c.syy, c.sxy), (2.0, 2.0, -2.0));
        assert_eq!(r_from(&c), -1.0);
        let big = centred(&[-5e200, 5e200], &[1.0, 2.0]);
        assert_eq!(r_from(&big), 1.0);
    }
}
