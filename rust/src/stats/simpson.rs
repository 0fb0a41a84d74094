//! Simpson's check for the paper's reversal: string-level correlation pooled over all strings,
//! within each group (configuration), and between the group means. The trade-off predicts a
//! positive string-level and a negative corpus-level correlation.

use crate::error::{Error, Result};
use crate::stats::correlation::{pearson, spearman, Correlation};
use crate::stats::moments::{check_pair, check_same_len};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Pearson,
    Spearman,
}

impl Method {
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "pearson" => Ok(Method::Pearson),
            "spearman" => Ok(Method::Spearman),
            _ => Err(Error::argument(
                "method",
                format!("must be \"pearson\" or \"spearman\", got {name:?}"),
            )),
        }
    }

    fn correlate(self, x: &[f64], y: &[f64]) -> Result<Correlation> {
        match self {
            Method::Pearson => pearson(x, y),
            Method::Spearman => spearman(x, y),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Simpson {
    pub pooled: Correlation,
    /// Per group (code order): the correlation within it, NaN when it has < 2 strings or a
    /// constant column.
    pub within: Vec<Correlation>,
    pub group_sizes: Vec<usize>,
    pub mean_x: Vec<f64>,
    pub mean_y: Vec<f64>,
    /// The correlation of the group means (NaN with fewer than 2 non-empty groups).
    pub between: Correlation,
    /// The pooled and between-group correlations have opposite signs.
    pub reversal: bool,
}

/// `groups[i]` is string i's group code in `0..n_groups`.
pub fn simpson(x: &[f64], y: &[f64], groups: &[u32], method: Method) -> Result<Simpson> {
    check_pair(x, y, 2)?;
    check_same_len("groups", groups.len(), "x", x.len())?;
    let n_groups = groups.iter().max().map_or(0, |&g| g as usize + 1);
    let mut members: Vec<(Vec<f64>, Vec<f64>)> = vec![(Vec::new(), Vec::new()); n_groups];
    for ((&a, &b), &g) in x.iter().zip(y).zip(groups) {
        members[g as usize].0.push(a);
        members[g as usize].1.push(b);
    }
    let undefined = Correlation {
        statistic: f64::NAN,
        pvalue: f64::NAN,
    };
    let mut within = Vec::with_capacity(n_groups);
    let (mut mean_x, mut mean_y, mut group_sizes) = (Vec::new(), Vec::new(), Vec::new());
    for (gx, gy) in &members {
        group_sizes.push(gx.len());
        within.push(if gx.len() >= 2 {
            method.correlate(gx, gy)?
        } else {
            undefined
        });
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        mean_x.push(mean(gx));
        mean_y.push(mean(gy));
    }
    let (bx, by): (Vec<f64>, Vec<f64>) = mean_x
        .iter()
        .zip(&mean_y)
        .filter(|(a, _)| !a.is_nan())
        .map(|(&a, &b)| (a, b))
        .unzip();
    let between = if bx.len() >= 2 {
        method.correlate(&bx, &by)?
    } else {
        undefined
    };
    let pooled = method.correlate(x, y)?;
    let reversal = pooled.statistic * between.statistic < 0.0;
    Ok(Simpson {
        pooled,
        within,
        group_sizes,
        mean_x,
        mean_y,
        between,
        reversal,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_the_classic_reversal() {
        // Within each group y rises with x; the groups' means fall.
        let mut x = Vec::new();
        let mut y = Vec::new();
        let mut g = Vec::new();
        for group in 0..4u32 {
            for i in 0..10 {
                x.push(group as f64 * 10.0 + i as f64);
                y.push(-(group as f64) * 30.0 + i as f64);
                g.push(group);
            }
        }
        let s = simpson(&x, &y, &g, Method::Pearson).unwrap();
        assert!(s.within.iter().all(|c| (c.statistic - 1.0).abs() < 1e-12));
        assert!(s.between.statistic < -0.99);
        assert!(s.pooled.statistic < 0.0);
        assert!(!s.reversal);
        let per_string = simpson(&x, &y, &[0; 40], Method::Spearman).unwrap();
        assert!(per_string.between.statistic.is_nan());
        assert!(simpson(&x, &y, &g[1..], Method::Pearson).is_err());
    }
}
