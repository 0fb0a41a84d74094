//! Locally typical sampling (Meister et al. 2023): with `H` the entropy and
//! `s = |-log p - H|`, sort by `s` ascending, accumulate `p`, and keep the tokens up to and
//! including the first whose cumulative mass reaches `mass`. The `min_keep` most *typical* tokens
//! (smallest `s`, not the most probable) are always kept. The cut compares by value, so ties at
//! it are kept whole. Typical can remove the most probable tokens: the support is a band of values.

use super::{check_range, Row};
use crate::error::Result;
use crate::kernels::{typical_gap, CutKey};

#[derive(Debug, Clone, PartialEq)]
pub struct Typical {
    pub mass: f64,
    pub min_keep: usize,
}

impl Typical {
    /// `mass` in (0, 1).
    pub fn new(mass: f64, min_keep: usize) -> Result<Self> {
        let mass = check_range("typical", mass, "in (0, 1)", |m| m > 0.0 && m < 1.0)?;
        Ok(Self { mass, min_keep })
    }

    pub fn narrow(&self, row: &mut Row) {
        let (max, sum, moment) = row.weight_moments();
        let log_sum = sum.ln();
        let entropy = log_sum - moment / sum;
        // s as transformers computes it: |-(log_softmax) - H|
        let surprise_gap = move |v: f32| typical_gap(v, max, log_sum, entropy);
        let mass = (self.mass as f32) as f64;
        let key = CutKey::Typical {
            max,
            log_sum,
            entropy,
        };
        let cut = row
            .weighted_cut(key, |total| total * mass)
            .unwrap_or(f32::INFINITY);
        // min_keep protects the most typical tokens: the min_keep smallest gaps (ties too). One
        // never binds: the cut is at least the smallest gap of the support.
        let protected = if self.min_keep == 1 {
            f32::NEG_INFINITY
        } else {
            let gaps = row.gather_pairs(|v| (-surprise_gap(v), 0.0));
            let mut keys: Vec<f32> = gaps.iter().map(|&(k, _)| k).collect();
            if self.min_keep >= keys.len() {
                f32::INFINITY
            } else {
                -super::select::kth_largest(&mut keys, self.min_keep)
            }
        };
        let cut = cut.max(protected);
        if cut == f32::INFINITY {
            return;
        }
        // {s <= cut} is a band of values around the vertex where s = 0 (s falls before it and
        // rises after, in float32 too): find its ends by bisection on each side
        let (lo, hi) = row.bounds();
        let vertex = ((max + log_sum) - entropy).clamp(lo, hi);
        let kept = |v: f32| surprise_gap(v) <= cut;
        if kept(vertex) {
            let band_lo = row.lowest_satisfying(vertex, kept);
            let band_hi = row.highest_satisfying(vertex, kept);
            row.keep_at_least(band_lo);
            row.keep_at_most(band_hi);
        } else {
            // the float32 vertex missed a band narrower than rounding: find its ends by a pass
            let (mut band_lo, mut band_hi) = (f32::INFINITY, f32::NEG_INFINITY);
            for &v in row.values() {
                if v >= lo && v <= hi && kept(v) {
                    band_lo = band_lo.min(v);
                    band_hi = band_hi.max(v);
                }
            }
            row.keep_at_least(band_lo);
            row.keep_at_most(band_hi);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adaptors::Adaptor;
    use crate::test_util::{
        compare_kept, dyadic_row, entropy, indices, kept, random_row, softmax, Rng,
    };

    fn typical(mass: f64, min_keep: usize) -> Adaptor {
        Adaptor::Typical(Typical::new(mass, min_keep).unwrap())
    }

    /// `s = |-ln p - H|` per finite token (infinite for `-inf` tokens), in f64.
    fn gaps(z: &[f32]) -> Vec<f64> {
        let p = softmax(z);
        let h = entropy(&p);
        p.iter()
            .map(|&q| {
                if q > 0.0 {
                    (-q.ln() - h).abs()
                } else {
                    f64::INFINITY
                }
            })
            .collect()
    }

    /// transformers' rule in f64: sort by s ascending, accumulate p, `n = #(cum < mass)` (at most
    /// the last finite position), remove `s > s_(n)`; the first `min_keep` positions are kept, and
    /// ties in s with a kept token are kept. `None` when some cumulative sum lies within 1e-5 of
    /// `mass` (where the cut itself is a matter of rounding); otherwise per token `(keep,
    /// ambiguous)`, ambiguous when s lies within float32 rounding of the cut's s.
    fn reference(z: &[f32], mass: f64, min_keep: usize) -> Option<Vec<(bool, bool)>> {
        let p = softmax(z);
        let s = gaps(z);
        let h = entropy(&p);
        let mut order: Vec<usize> = (0..z.len()).filter(|&i| z[i].is_finite()).collect();
        order.sort_by(|&a, &b| s[a].total_cmp(&s[b]));
        let mut cum = 0.0;
        let mut n = 0;
        for &i in &order {
            cum += p[i];
            if (cum - mass).abs() <= 1e-5 {
                return None;
            }
            if cum < mass {
                n += 1;
            }
        }
        let n = n.min(order.len() - 1);
        let cut = s[order[n]].max(s[order[min_keep.min(order.len()) - 1]]);
        Some(
            (0..z.len())
                .map(|i| {
                    let keep = z[i].is_finite() && s[i] <= cut;
                    let tol = 1e-5 * (1.0 + h + p[i].ln().abs());
                    (keep, z[i].is_finite() && (s[i] - cut).abs() <= tol)
                })
                .collect(),
        )
    }

    #[test]
    fn dyadic_probabilities_give_exact_sets_and_can_remove_the_most_probable() {
        // p = 0.5, 0.25, 0.125, 0.125; H = 1.75 ln 2; s / ln 2 = 0.75, 0.25, 1.25, 1.25
        let z = dyadic_row();
        // most typical first: token 1 (cum 0.25), token 0 (0.75), tokens 2 and 3 (0.875, 1)
        assert_eq!(indices(&kept(typical(0.2, 1), &z)), vec![1]);
        assert_eq!(indices(&kept(typical(0.5, 1), &z)), vec![0, 1]);
        // cum 0.75 is not < 0.75: the cut stops at token 0
        assert_eq!(indices(&kept(typical(0.75, 1), &z)), vec![0, 1]);
        // the tied pair straddles mass 0.8 and is kept whole
        assert_eq!(indices(&kept(typical(0.8, 1), &z)), vec![0, 1, 2, 3]);
        assert_eq!(indices(&kept(typical(0.99, 1), &z)), vec![0, 1, 2, 3]);
    }

    #[test]
    fn min_tokens_to_keep_protects_the_most_typical_not_the_most_probable() {
        // one dominant token and a spread of moderate ones: the moderate ones are the typical ones
        let z = [
            3.0f32, 1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0,
        ];
        let s = gaps(&z);
        let mut by_gap: Vec<usize> = (0..z.len()).collect();
        by_gap.sort_by(|&a, &b| s[a].total_cmp(&s[b]));
        let mut want = by_gap[..3].to_vec();
        want.sort();
        assert!(
            !want.contains(&0),
            "the premise: the most probable token is not among the most typical"
        );
        assert_eq!(indices(&kept(typical(1e-6, 3), &z)), want);
        assert_eq!(indices(&kept(typical(1e-6, 1), &z)), vec![by_gap[0]]);
        // min_keep >= V keeps every finite token
        assert_eq!(indices(&kept(typical(1e-6, 12), &z)).len(), 12);
        // on the dyadic row, the two most typical are tokens 1 and 0; the third ties with the fourth
        let d = dyadic_row();
        assert_eq!(indices(&kept(typical(0.01, 2), &d)), vec![0, 1]);
        assert_eq!(indices(&kept(typical(0.01, 3), &d)), vec![0, 1, 2, 3]);
    }

    #[test]
    fn minus_inf_is_never_kept() {
        let z = [0.0f32, f32::NEG_INFINITY, -1.0, -2.0, f32::NEG_INFINITY];
        assert_eq!(indices(&kept(typical(0.999, 1), &z)), vec![0, 2, 3]);
        assert_eq!(indices(&kept(typical(0.01, 5), &z)), vec![0, 2, 3]);
    }

    #[test]
    fn rejects_mass_outside_the_open_unit_interval() {
        for m in [0.0, 1.0, -0.5, 1.5, f64::NAN, f64::INFINITY] {
            let err = Typical::new(m, 1).unwrap_err().to_string();
            assert!(err.contains("`typical`") && err.contains("(0, 1)"), "{err}");
        }
    }

    #[test]
    fn matches_a_sorted_reference_on_random_rows() {
        let mut rng = Rng::new(81);
        let (mut k_total, mut r_total, mut skipped) = (0, 0, 0);
        for trial in 0..300 {
            let v = 1 + rng.below(300);
            let z = random_row(&mut rng, v);
            let mass = [0.2, 0.5, 0.9, 0.95, rng.uniform().clamp(1e-3, 0.999)][rng.below(5)];
            let min_keep = [1, 1, 2, 5][rng.below(4)];
            let Some(want) = reference(&z, mass, min_keep) else {
                skipped += 1;
                continue;
            };
            let ctx = format!("trial {trial} mass={mass} min_keep={min_keep}");
            let (a, b) = compare_kept(&kept(typical(mass, min_keep), &z), &want, &z, &ctx);
            k_total += a;
            r_total += b;
        }
        assert!(skipped < 30, "{skipped}");
        assert!(k_total > 1000 && r_total > 1000, "{k_total} {r_total}");
    }
}
