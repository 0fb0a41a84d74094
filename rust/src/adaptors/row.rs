//! The state of one row while a chain adapts it.
//!
//! A row is never masked entry by entry while a chain runs. Every adaptor removes the tokens below
//! a value, above a value, or both (typical), so the support is an interval `[lo, hi]` of the
//! current values; the chain narrows it. Only temperature changes the values: it writes the
//! scaled row (with `-inf` outside the support) into scratch. Max and sum of exponentials over the
//! support are cached until the support or the values change, so consecutive adaptors and the
//! fused sampler share one pass.

use crate::error::RowProblem;
use crate::kernels;

/// Buffers reused across rows by one worker thread.
#[derive(Default)]
pub struct Scratch {
    /// Values scaled by temperature.
    pub(crate) scaled: Vec<f32>,
    /// Values gathered for a selection.
    pub(crate) keys: Vec<f32>,
    /// (key, weight) pairs gathered for a weighted cut.
    pub(crate) pairs: Vec<(f32, f32)>,
    /// Block sums for sampling.
    pub(crate) blocks: Vec<f64>,
}

impl Scratch {
    pub fn new() -> Self {
        Self::default()
    }
}

/// One row being adapted: the current values and the support interval over them.
pub struct Row<'a> {
    raw: &'a [f32],
    scratch: &'a mut Scratch,
    scaled: bool,
    lo: f32,
    hi: f32,
    max_count: Option<(f32, usize)>,
    sum_exp: Option<f32>,
}

impl<'a> Row<'a> {
    /// A row with every finite entry in the support. The row must have been validated (no NaN, no
    /// `+inf`, at least one finite entry).
    pub fn new(raw: &'a [f32], scratch: &'a mut Scratch) -> Self {
        Row {
            raw,
            scratch,
            scaled: false,
            lo: f32::MIN,
            hi: f32::MAX,
            max_count: None,
            sum_exp: None,
        }
    }

    /// The current values (raw, or scaled by the temperatures seen so far).
    pub fn values(&self) -> &[f32] {
        if self.scaled {
            &self.scratch.scaled
        } else {
            self.raw
        }
    }

    /// The raw (unscaled) logit of a token.
    pub fn raw_value(&self, token: usize) -> f32 {
        self.raw[token]
    }

    pub fn len(&self) -> usize {
        self.raw.len()
    }

    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    pub fn bounds(&self) -> (f32, f32) {
        (self.lo, self.hi)
    }

    pub fn contains(&self, v: f32) -> bool {
        v >= self.lo && v <= self.hi
    }

    /// Largest value in the support.
    pub fn max(&mut self) -> f32 {
        self.max_count().0
    }

    /// Number of tokens in the support.
    pub fn count(&mut self) -> usize {
        self.max_count().1
    }

    fn max_count(&mut self) -> (f32, usize) {
        if let Some(mc) = self.max_count {
            return mc;
        }
        let mc = kernels::max_count_in(self.values(), self.lo, self.hi);
        self.max_count = Some(mc);
        mc
    }

    /// `sum exp(v - max)` over the support.
    pub fn sum_exp(&mut self) -> f32 {
        if let Some(s) = self.sum_exp {
            return s;
        }
        let m = self.max();
        let s = kernels::sum_exp_in(self.values(), self.lo, self.hi, m);
        self.sum_exp = Some(s);
        s
    }

    /// `(sum exp, entropy)` of the distribution over the support, in one pass.
    pub fn sum_exp_and_entropy(&mut self) -> (f32, f32) {
        let m = self.max();
        let (s, moment) = kernels::sum_exp_and_moment_in(self.values(), self.lo, self.hi, m);
        self.sum_exp = Some(s);
        (s, s.ln() - moment / s)
    }

    /// Keep only values `>= c`.
    pub fn keep_at_least(&mut self, c: f32) {
        if c > self.lo {
            self.lo = c;
            self.sum_exp = None;
            // the max stays in the support unless everything went
            self.max_count = None;
        }
    }

    /// Keep only values `<= c`.
    pub fn keep_at_most(&mut self, c: f32) {
        if c < self.hi {
            self.hi = c;
            self.sum_exp = None;
            self.max_count = None;
        }
    }

    /// Divide the values by `t`, as `scores / t` in torch (float32 division). Fails when the
    /// result overflows float32 or leaves no finite value.
    pub fn divide(&mut self, t: f32) -> Result<(), RowProblem> {
        let n = self.raw.len();
        let (lo, hi) = (self.lo, self.hi);
        if self.scaled {
            let buf = &mut self.scratch.scaled;
            for v in buf.iter_mut() {
                *v = if *v >= lo && *v <= hi { *v / t } else { f32::NEG_INFINITY };
            }
        } else {
            let buf = &mut self.scratch.scaled;
            buf.resize(n, 0.0);
            kernels::write_divided(self.raw, lo, hi, t, buf);
            self.scaled = true;
        }
        self.lo = f32::MIN;
        self.hi = f32::MAX;
        self.sum_exp = None;
        let (max, count) = kernels::max_count_in(&self.scratch.scaled, f32::NEG_INFINITY, f32::INFINITY);
        if !max.is_finite() {
            return Err(RowProblem::TemperatureOverflow);
        }
        self.max_count = Some((max, count));
        Ok(())
    }

    /// The `k`-th largest value in the support, `1 <= k <= count`.
    pub fn kth_largest(&mut self, k: usize) -> f32 {
        let (lo, hi) = (self.lo, self.hi);
        let values: &[f32] = if self.scaled { &self.scratch.scaled } else { self.raw };
        let keys = &mut self.scratch.keys;
        keys.clear();
        keys.extend(values.iter().copied().filter(|&v| v >= lo && v <= hi));
        super::select::kth_largest(keys, k)
    }

    /// The lowest value `c` in `[lo, top]` for which `keep(c)` holds, given that `keep` is
    /// monotone (false below some value, true from it on) and `keep(top)` holds. Bisects over the
    /// ordered bit patterns of f32, so `c` is exact: the tokens with `v >= c` are exactly those
    /// for which the rule holds.
    pub fn lowest_satisfying(&self, top: f32, keep: impl Fn(f32) -> bool) -> f32 {
        let mut lo_key = ordered(self.lo);
        let mut hi_key = ordered(top);
        if keep(self.lo) {
            return self.lo;
        }
        // invariant: keep(lo_key) false, keep(hi_key) true
        while hi_key - lo_key > 1 {
            let mid = lo_key + (hi_key - lo_key) / 2;
            if keep(from_ordered(mid)) {
                hi_key = mid;
            } else {
                lo_key = mid;
            }
        }
        from_ordered(hi_key)
    }

    /// Gather `(key(v), weight(v))` for the support into the pair buffer; returns the buffer.
    pub fn gather_pairs(&mut self, mut f: impl FnMut(f32) -> (f32, f32)) -> &mut Vec<(f32, f32)> {
        let (lo, hi) = (self.lo, self.hi);
        let values: &[f32] = if self.scaled { &self.scratch.scaled } else { self.raw };
        let pairs = &mut self.scratch.pairs;
        pairs.clear();
        pairs.extend(values.iter().copied().filter(|&v| v >= lo && v <= hi).map(&mut f));
        pairs
    }

    /// Scratch for the sampler's block sums.
    pub(crate) fn values_and_blocks(&mut self) -> (&[f32], &mut Vec<f64>) {
        let values: &[f32] = if self.scaled { &self.scratch.scaled } else { self.raw };
        (values, &mut self.scratch.blocks)
    }
}

/// f32 -> i64 preserving order (for finite values and infinities).
fn ordered(v: f32) -> i64 {
    let bits = v.to_bits() as i32;
    (if bits < 0 { i32::MIN - bits } else { bits }) as i64
}

fn from_ordered(k: i64) -> f32 {
    let k = k as i32;
    f32::from_bits((if k < 0 { i32::MIN - k } else { k }) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordered_keys_preserve_order_and_round_trip() {
        let vals = [f32::MIN, -3.5, -1e-30, 0.0, 1e-30, 2.0, f32::MAX];
        for w in vals.windows(2) {
            assert!(ordered(w[0]) <= ordered(w[1]));
        }
        for &v in &vals {
            assert_eq!(from_ordered(ordered(v)).to_bits(), v.to_bits());
        }
    }

    #[test]
    fn lowest_satisfying_finds_the_exact_boundary() {
        let raw = vec![0.0f32, 1.0, 2.0];
        let mut scratch = Scratch::new();
        let mut row = Row::new(&raw, &mut scratch);
        let c = row.lowest_satisfying(2.0, |v| v >= 0.7);
        assert_eq!(c, 0.7f32);
    }
}
