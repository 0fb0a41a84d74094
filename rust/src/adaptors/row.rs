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
pub struct Scratch {
    /// Values scaled by temperature.
    pub(crate) scaled: Vec<f32>,
    /// Values gathered for a selection.
    pub(crate) keys: Vec<f32>,
    /// (key, weight) pairs gathered for a weighted cut.
    pub(crate) pairs: Vec<(f32, f32)>,
    /// Block sums for sampling.
    pub(crate) blocks: Vec<f64>,
    /// Histogram that locates a weighted cut.
    pub(crate) hist: Box<[f32; kernels::CUT_BINS]>,
}

impl Scratch {
    pub fn new() -> Self {
        Scratch {
            scaled: Vec::new(),
            keys: Vec::new(),
            pairs: Vec::new(),
            blocks: Vec::new(),
            hist: Box::new([0.0; kernels::CUT_BINS]),
        }
    }
}

impl Default for Scratch {
    fn default() -> Self {
        Self::new()
    }
}

/// One row being adapted: the current values and the support interval over them.
pub struct Row<'a> {
    raw: &'a [f32],
    scratch: &'a mut Scratch,
    scaled: bool,
    lo: f32,
    hi: f32,
    max: Option<f32>,
    count: Option<usize>,
    sum_exp: Option<f32>,
    /// (max, sum exp) of the raw row, kept once computed on the untouched row.
    base: Option<(f32, f32)>,
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
            max: None,
            count: None,
            sum_exp: None,
            base: None,
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
        match self.max {
            Some(m) => m,
            None => self.max_count().0,
        }
    }

    /// Number of tokens in the support.
    pub fn count(&mut self) -> usize {
        match self.count {
            Some(c) => c,
            None => self.max_count().1,
        }
    }

    fn max_count(&mut self) -> (f32, usize) {
        let (m, c) = kernels::max_count_in(self.values(), self.lo, self.hi);
        self.max = Some(m);
        self.count = Some(c);
        (m, c)
    }

    fn pristine(&self) -> bool {
        !self.scaled && self.lo == f32::MIN && self.hi == f32::MAX
    }

    fn set_sum_exp(&mut self, max: f32, sum: f32) {
        self.sum_exp = Some(sum);
        if self.pristine() {
            self.base = Some((max, sum));
        }
    }

    /// `sum exp(v - max)` over the support.
    pub fn sum_exp(&mut self) -> f32 {
        if let Some(s) = self.sum_exp {
            return s;
        }
        let m = self.max();
        let s = kernels::sum_exp_in(self.values(), self.lo, self.hi, m);
        self.set_sum_exp(m, s);
        s
    }

    /// `(sum exp, entropy)` of the distribution over the support, in one pass.
    pub fn sum_exp_and_entropy(&mut self) -> (f32, f32) {
        let m = self.max();
        let (s, moment) = kernels::sum_exp_and_moment_in(self.values(), self.lo, self.hi, m);
        self.set_sum_exp(m, s);
        (s, s.ln() - moment / s)
    }

    /// (max, sum exp) of the raw row, whatever the chain did since (computed at most once).
    pub fn base_stats(&mut self) -> (f32, f32) {
        if let Some(b) = self.base {
            return b;
        }
        let (max, _) = kernels::max_count_in(self.raw, f32::MIN, f32::MAX);
        let sum = kernels::sum_exp_in(self.raw, f32::MIN, f32::MAX, max);
        self.base = Some((max, sum));
        (max, sum)
    }

    /// The weighted cut of top-p (`typical == None`) or typical (`Some((log_sum, entropy))`):
    /// with weights `exp(v - max)` and keys `-v` (top-p) or typical's gap, the smallest key whose
    /// cumulative weight reaches `target`. A histogram pass finds the bin that holds the cut; only
    /// that bin's tokens are selected exactly. `target_of` turns the support's total weight into
    /// the target (the total also becomes the cached sum of exponentials).
    pub fn weighted_cut(
        &mut self,
        typical: Option<(f32, f32)>,
        target_of: impl Fn(f64) -> f64,
    ) -> Option<f32> {
        let max = self.max();
        let (lo, hi) = (self.lo, self.hi);
        let values: &[f32] = if self.scaled {
            &self.scratch.scaled
        } else {
            self.raw
        };
        let hist = &mut self.scratch.hist;
        let key_bin = |v: f32| match typical {
            None => kernels::cut_bin(max - v),
            Some((log_sum, entropy)) => {
                kernels::cut_bin(kernels::typical_gap(v, max, log_sum, entropy))
            }
        };
        match typical {
            None => kernels::nucleus_histogram_in(values, lo, hi, max, hist),
            Some((log_sum, entropy)) => {
                kernels::typical_histogram_in(values, lo, hi, max, log_sum, entropy, hist)
            }
        }
        let total: f64 = hist.iter().map(|&m| m as f64).sum();
        let target = target_of(total);
        let (bin, below) = kernels::bin_reaching(hist, target)?;
        let pairs = &mut self.scratch.pairs;
        pairs.clear();
        pairs.extend(
            values
                .iter()
                .copied()
                .filter(|&v| v >= lo && v <= hi && key_bin(v) == bin)
                .map(|v| {
                    let key = match typical {
                        None => -v,
                        Some((log_sum, entropy)) => kernels::typical_gap(v, max, log_sum, entropy),
                    };
                    (key, kernels::exp_nonpositive(v - max))
                }),
        );
        // The bin's own total can fall short of the histogram's by rounding: then the cut is the
        // bin's last key.
        let last = pairs
            .iter()
            .map(|&(k, _)| k)
            .fold(f32::NEG_INFINITY, f32::max);
        let cut = super::select::smallest_key_reaching(pairs, target - below).unwrap_or(last);
        if typical.is_none() && self.sum_exp.is_none() {
            self.set_sum_exp(max, total as f32);
        }
        Some(cut)
    }

    /// Keep only values `>= c`.
    pub fn keep_at_least(&mut self, c: f32) {
        if c > self.lo {
            self.lo = c;
            self.sum_exp = None;
            self.count = None;
            // the max stays (the adaptors never cut above it)
            if self.max.is_some_and(|m| m < c) {
                self.max = None;
            }
        }
    }

    /// Keep only values `<= c`.
    pub fn keep_at_most(&mut self, c: f32) {
        if c < self.hi {
            self.hi = c;
            self.sum_exp = None;
            self.count = None;
            self.max = None;
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
                *v = if *v >= lo && *v <= hi {
                    *v / t
                } else {
                    f32::NEG_INFINITY
                };
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
        self.count = None;
        let (max, overflow) = kernels::max_and_invalid(&self.scratch.scaled);
        if overflow || max == f32::NEG_INFINITY {
            return Err(RowProblem::TemperatureOverflow);
        }
        Ok(())
    }

    /// The `k`-th largest value in the support, `1 <= k <= count`.
    pub fn kth_largest(&mut self, k: usize) -> f32 {
        let (lo, hi) = (self.lo, self.hi);
        let values: &[f32] = if self.scaled {
            &self.scratch.scaled
        } else {
            self.raw
        };
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
        let values: &[f32] = if self.scaled {
            &self.scratch.scaled
        } else {
            self.raw
        };
        let pairs = &mut self.scratch.pairs;
        pairs.clear();
        pairs.extend(
            values
                .iter()
                .copied()
                .filter(|&v| v >= lo && v <= hi)
                .map(&mut f),
        );
        pairs
    }

    /// Scratch for the sampler's block sums.
    pub(crate) fn values_and_blocks(&mut self) -> (&[f32], &mut Vec<f64>) {
        let values: &[f32] = if self.scaled {
            &self.scratch.scaled
        } else {
            self.raw
        };
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
        let row = Row::new(&raw, &mut scratch);
        let c = row.lowest_satisfying(2.0, |v| v >= 0.7);
        assert_eq!(c, 0.7f32);
    }
}
