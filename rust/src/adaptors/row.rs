//! The state of one row while a chain adapts it.
//!
//! A row is never masked entry by entry while a chain runs. Every adaptor removes the tokens below
//! a value, above a value, or both (typical), so the support is an interval `[lo, hi]` of the
//! current values; the chain narrows it. Only temperature changes the values: it writes the
//! scaled row (with `-inf` outside the support) into scratch. Max and sum of exponentials over the
//! support are cached until the support or the values change, so consecutive adaptors and the
//! fused sampler share one pass.

use crate::error::RowProblem;
use crate::kernels::{self, CutKey};

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
    /// Weights `exp(v - max)` of the support, shared by the cut search and the sampler.
    pub(crate) weights: Vec<f32>,
}

impl Scratch {
    pub fn new() -> Self {
        Scratch {
            scaled: Vec::new(),
            keys: Vec::new(),
            pairs: Vec::new(),
            blocks: Vec::new(),
            weights: Vec::new(),
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
    /// `sum exp(v - max) (v - max)` over the support, with `sum_exp`.
    moment: Option<f32>,
    /// (max, sum exp) of the raw row, kept once computed on the untouched row.
    base: Option<(f32, f32)>,
    /// The max that `scratch.weights` are relative to, while they are valid: they stay valid as
    /// the support shrinks (masked sums skip removed tokens) until the values change.
    weights_max: Option<f32>,
    /// The raw row's max, when known from validation.
    raw_max: Option<f32>,
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
            moment: None,
            base: None,
            weights_max: None,
            raw_max: None,
        }
    }

    /// Like [`Row::new`], with the row's max already known (from validation).
    pub fn with_max(raw: &'a [f32], scratch: &'a mut Scratch, max: f32) -> Self {
        let mut row = Row::new(raw, scratch);
        row.max = Some(max);
        row.raw_max = Some(max);
        row
    }

    /// The current values (raw, or scaled by the temperatures seen so far).
    pub fn values(&self) -> &[f32] {
        current(self.raw, &self.scratch.scaled, self.scaled)
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

    /// Record a sum of exponentials over the current support computed elsewhere (the sampler's
    /// block sums), unless one is cached; it also serves as the raw row's while nothing changed.
    pub(crate) fn record_sum_exp(&mut self, max: f32, sum: f32) {
        if self.sum_exp.is_none() {
            self.set_sum_exp(max, sum);
        }
    }

    fn set_sum_exp(&mut self, max: f32, sum: f32) {
        self.sum_exp = Some(sum);
        if self.pristine() {
            self.base = Some((max, sum));
        }
    }

    /// `sum exp(v - max)` over the support (from the shared weights).
    pub fn sum_exp(&mut self) -> f32 {
        match self.sum_exp {
            Some(s) => s,
            None => self.weight_moments().1,
        }
    }

    /// `(sum exp, entropy)` of the distribution over the support.
    pub fn sum_exp_and_entropy(&mut self) -> (f32, f32) {
        let (_, s, moment) = self.weight_moments();
        (s, s.ln() - moment / s)
    }

    /// (max, sum exp) of the raw row, whatever the chain did since (computed at most once).
    pub fn base_stats(&mut self) -> (f32, f32) {
        if let Some(b) = self.base {
            return b;
        }
        let max = match self.raw_max {
            Some(m) => m,
            None => kernels::max_count_in(self.raw, f32::MIN, f32::MAX).0,
        };
        let sum = kernels::sum_exp_in(self.raw, f32::MIN, f32::MAX, max);
        self.base = Some((max, sum));
        (max, sum)
    }

    /// `(max, sum w, sum w (v - max))` over the support, with the weights `w = exp(v - max)`
    /// relative to its current max: the normaliser and the entropy of the current distribution.
    /// The weights are computed in one exponential pass when missing and reused while the max
    /// holds: narrowing only masks tokens out (masked sums skip them), so later adaptors and the
    /// sampler need no exponential of their own.
    pub fn weight_moments(&mut self) -> (f32, f32, f32) {
        let max = self.max();
        if let (Some(sum), Some(moment)) = (self.sum_exp, self.moment) {
            if self.weights_max == Some(max) {
                return (max, sum, moment);
            }
        }
        let (lo, hi) = (self.lo, self.hi);
        let values = current(self.raw, &self.scratch.scaled, self.scaled);
        let (sum, moment) = if self.weights_max == Some(max) {
            kernels::weight_moments_in(values, &self.scratch.weights, lo, hi, max)
        } else {
            let weights = &mut self.scratch.weights;
            weights.resize(values.len(), 0.0);
            self.weights_max = Some(max);
            kernels::exp_weights_in(values, lo, hi, max, weights)
        };
        self.set_sum_exp(max, sum);
        self.moment = Some(moment);
        (max, sum, moment)
    }

    /// The weighted cut of top-p and typical: walking the support in the order of `key`, the
    /// smallest key at which the cumulative weight `exp(v - w_max)` reaches `target_of(total)`.
    /// `None` when the total stays below the target.
    ///
    /// Vectorised passes over the weights measure the mass at four thresholds at once and
    /// narrow a bracket around the cut (no exponential, no scatter, no sort); the tokens left in
    /// the bracket are then selected exactly, so the result is exact whatever the bracket.
    pub fn weighted_cut(&mut self, key: CutKey, target_of: impl Fn(f64) -> f64) -> Option<f32> {
        // keys are in nats: a bracket this narrow holds few tokens on any real row
        const NARROW: f32 = 0.05;
        // gathering a token costs about as much as 1/64 of a pass over the row
        let few = (self.raw.len() as f64 / 64.0).clamp(64.0, 2048.0);
        const MAX_PASSES: usize = 8;
        let (w_max, total, _) = self.weight_moments();
        let total = total as f64;
        let target = target_of(total);
        if target > total {
            return None;
        }
        let (lo, hi) = (self.lo, self.hi);
        let values = current(self.raw, &self.scratch.scaled, self.scaled);
        let weights = &self.scratch.weights;
        // the bracket (k_lo, k_hi] holds the cut; `below` and `mass_hi` are the weights with
        // key <= k_lo and key <= k_hi
        let (mut k_lo, mut k_hi) = (f32::NEG_INFINITY, f32::INFINITY);
        let (mut below, mut mass_hi) = (0.0f64, total);
        let mut last_width = f32::INFINITY;
        // keys never go below this: the max for top-p, a zero gap for typical
        let key_floor = match key {
            CutKey::Nucleus => -w_max,
            CutKey::Typical { .. } => 0.0,
        };
        const P: usize = 4;
        let mut t = [1.0f32, 3.0, 6.0, 12.0].map(|d| key_floor + d);
        for _ in 0..MAX_PASSES {
            let mass = match key {
                CutKey::Nucleus => kernels::nucleus_mass_at_or_below(values, weights, lo, hi, &t),
                CutKey::Typical {
                    max,
                    log_sum,
                    entropy,
                } => kernels::typical_mass_at_or_below(
                    values,
                    weights,
                    lo,
                    hi,
                    &t,
                    (max, log_sum, entropy),
                ),
            };
            let found = (0..P).find(|&j| mass[j] >= target);
            let (prev_hi, prev_mass_hi) = (k_hi, mass_hi);
            match found {
                Some(j) => {
                    if j > 0 {
                        (k_lo, below) = (t[j - 1], mass[j - 1]);
                    }
                    (k_hi, mass_hi) = (t[j], mass[j]);
                }
                None => (k_lo, below) = (t[P - 1], mass[P - 1]),
            }
            let anchor = if k_lo.is_finite() { k_lo } else { key_floor };
            let width = k_hi - anchor;
            // Every token in the bracket weighs at least `lightest` (its key is <= k_hi), so
            // the bracket's mass bounds how many tokens it holds: stop once they are few.
            let lightest = match key {
                CutKey::Nucleus => (-(k_hi as f64) - w_max as f64).exp(),
                CutKey::Typical { entropy, .. } => total * (-(entropy as f64) - k_hi as f64).exp(),
            };
            if width <= NARROW || (mass_hi - below) <= few * lightest {
                break;
            }
            let next = if k_hi.is_finite() {
                // Guess where the cut lies in the bracket and probe around the guess; when a
                // guess did not shrink the bracket 4x, split it evenly instead. For top-p the
                // mass density across the bracket is modelled as e^(-beta x), with beta fitted to
                // the masses this pass measured in the bracket and next to it (a token's weight
                // falls as e^-key, and the number of tokens per unit of key changes too);
                // typical's gaps carry no such law, so its guess is linear.
                let guessing_works = width <= last_width / 4.0;
                last_width = width;
                let share = ((target - below) / (mass_hi - below)).clamp(0.0, 1.0);
                let offset = match key {
                    CutKey::Nucleus => {
                        let left = match found {
                            Some(j) if j >= 2 => {
                                Some((t[j - 2], t[j - 1], mass[j - 1] - mass[j - 2]))
                            }
                            None => Some((t[P - 2], t[P - 1], mass[P - 1] - mass[P - 2])),
                            _ => None,
                        };
                        let right = match found {
                            Some(j) if j + 1 < P => Some((t[j], t[j + 1], mass[j + 1] - mass[j])),
                            Some(_) => Some((t[P - 1], prev_hi, prev_mass_hi - mass[P - 1])),
                            None => None,
                        };
                        let fit = |n: Option<(f32, f32, f64)>| {
                            n.and_then(|(a, b, n)| {
                                let (a, b) = ((a - anchor) as f64, (b - anchor) as f64);
                                fit_rate(width as f64, mass_hi - below, (a, b), n)
                            })
                        };
                        // the rates fitted on either side, averaged: the density's log is
                        // rarely straight, and the mean of its slopes at the two ends of the
                        // bracket guesses better than either (two passes instead of three to
                        // four on N(0, 3^2) rows)
                        let beta = match (fit(left), fit(right)) {
                            (Some(a), Some(b)) => 0.5 * (a + b),
                            (a, b) => a.or(b).unwrap_or(1.0),
                        };
                        invert_rate(beta, width as f64, share) as f32
                    }
                    CutKey::Typical { .. } => width * share as f32,
                };
                let guess = anchor + offset;
                let (inner_lo, inner_hi) = (anchor + width * 0.005, k_hi - width * 0.005);
                let probes = [-0.15f32, -0.03, 0.03, 0.15]
                    .map(|d| (guess + width * d).clamp(inner_lo, inner_hi));
                if guessing_works && probes.windows(2).all(|p| p[0] < p[1]) {
                    probes
                } else {
                    std::array::from_fn(|j| anchor + width * (j + 1) as f32 / (P + 1) as f32)
                }
            } else {
                let w = anchor.abs().max(1.0);
                std::array::from_fn(|j| anchor + w * (1u32 << j) as f32)
            };
            // stop when float resolution no longer splits the bracket (a large tie group)
            if next.windows(2).any(|p| p[0] >= p[1]) || next[0] <= anchor || next[P - 1] >= k_hi {
                break;
            }
            t = next;
        }
        let pairs = &mut self.scratch.pairs;
        match key {
            CutKey::Nucleus => {
                kernels::gather_nucleus(values, weights, lo, hi, (k_lo, k_hi), pairs)
            }
            CutKey::Typical {
                max,
                log_sum,
                entropy,
            } => kernels::gather_typical(
                values,
                weights,
                lo,
                hi,
                (k_lo, k_hi),
                (max, log_sum, entropy),
                pairs,
            ),
        }
        if pairs.is_empty() {
            return k_lo.is_finite().then_some(k_lo);
        }
        // rounding can leave the bracket's own sum just short of the target: take its last key
        let last = pairs
            .iter()
            .map(|&(k, _)| k)
            .fold(f32::NEG_INFINITY, f32::max);
        Some(super::select::smallest_key_reaching(pairs, target - below).unwrap_or(last))
    }

    /// What the sampler needs: the values, the shared weights when they are relative to the
    /// support's current max (else `None`), and the block buffer.
    pub(crate) fn sampling_view(&mut self) -> (&[f32], Option<&[f32]>, &mut Vec<f64>) {
        let max = self.max();
        let usable = self.weights_max == Some(max);
        let values = current(self.raw, &self.scratch.scaled, self.scaled);
        let weights = usable.then_some(&self.scratch.weights[..]);
        (values, weights, &mut self.scratch.blocks)
    }

    /// Keep only values `>= c`.
    pub fn keep_at_least(&mut self, c: f32) {
        if c > self.lo {
            self.lo = c;
            self.sum_exp = None;
            self.moment = None;
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
            self.moment = None;
            self.count = None;
            self.max = None;
        }
    }

    /// Divide the values by `t`, as `scores / t` in torch (float32 division). Fails when the
    /// result overflows float32 or leaves no finite value.
    pub fn divide(&mut self, t: f32) -> Result<(), RowProblem> {
        let n = self.raw.len();
        let (lo, hi) = (self.lo, self.hi);
        let (max, overflow) = if self.scaled {
            kernels::divide_in_place(&mut self.scratch.scaled, lo, hi, t)
        } else {
            let buf = &mut self.scratch.scaled;
            buf.resize(n, 0.0);
            self.scaled = true;
            kernels::write_divided(self.raw, lo, hi, t, buf)
        };
        self.lo = f32::MIN;
        self.hi = f32::MAX;
        self.sum_exp = None;
        self.moment = None;
        self.count = None;
        self.weights_max = None;
        if overflow || max == f32::NEG_INFINITY {
            return Err(RowProblem::TemperatureOverflow);
        }
        // removed tokens are -inf now, so the max of the scaled row is the support's
        self.max = Some(max);
        Ok(())
    }

    /// The `k`-th largest value in the support (`k >= 1`); `None` when it holds fewer than `k`.
    pub fn kth_largest(&mut self, k: usize) -> Option<f32> {
        if k > self.raw.len() {
            return None;
        }
        let max = self.max();
        let (lo, hi) = (self.lo, self.hi);
        let values = current(self.raw, &self.scratch.scaled, self.scaled);
        let keys = &mut self.scratch.keys;
        let floor = Self::top_k_floor(values, lo, hi, max, k);
        kernels::gather_at_least(values, lo.max(floor), hi, keys);
        (keys.len() >= k).then(|| super::select::kth_largest(keys, k))
    }

    /// A value below which fewer tokens lie than need selecting: counting passes (vectorised,
    /// four thresholds at a time) find a threshold with at least `k` tokens above it but not
    /// many more, so that only those are gathered and selected. `f32::MIN` when none is found.
    fn top_k_floor(values: &[f32], lo: f32, hi: f32, max: f32, k: usize) -> f32 {
        // gathering a token costs about as much as 1/64 of a counting pass over the row
        let cap = (4 * k).max(values.len() / 64).max(64) as u32;
        let (mut upper, mut unit) = (max, 1.0f32);
        for _ in 0..12 {
            let t = [1.0f32, 2.0, 4.0, 8.0].map(|d| upper - unit * d);
            let counts = kernels::count_at_least(values, lo, hi, &t);
            match (0..4).find(|&j| counts[j] as usize >= k) {
                Some(j) if counts[j] <= cap => return t[j],
                Some(j) => {
                    // too many: look between the last threshold with fewer and this one
                    let above = if j > 0 { t[j - 1] } else { upper };
                    unit = (above - t[j]) / 9.0;
                    upper = above;
                    if unit.is_nan() || unit <= 0.0 || upper - unit * 8.0 >= upper {
                        return t[j];
                    }
                }
                None => {
                    upper = t[3];
                    unit *= 8.0;
                    if !unit.is_finite() || !upper.is_finite() {
                        break;
                    }
                }
            }
        }
        f32::MIN
    }

    /// The lowest value `c` in `[lo, top]` for which `keep(c)` holds, given that `keep` is
    /// monotone (false below some value, true from it on) and `keep(top)` holds. Bisects over the
    /// ordered bit patterns of f32, so `c` is exact: the tokens with `v >= c` are exactly those
    /// for which the rule holds.
    pub fn lowest_satisfying(&self, top: f32, keep: impl Fn(f32) -> bool) -> f32 {
        if keep(self.lo) {
            return self.lo;
        }
        // the boundary between `lo` (false) and `top` (true): the true side
        from_ordered(boundary(ordered(self.lo), ordered(top), |k| !keep(from_ordered(k))).1)
    }

    /// The highest value `c` in `[bottom, hi]` for which `keep(c)` holds, given that `keep` is
    /// monotone the other way (true up to some value, false above it) and `keep(bottom)` holds.
    pub fn highest_satisfying(&self, bottom: f32, keep: impl Fn(f32) -> bool) -> f32 {
        if keep(self.hi) {
            return self.hi;
        }
        // the boundary between `bottom` (true) and `hi` (false): the true side
        from_ordered(boundary(ordered(bottom), ordered(self.hi), |k| keep(from_ordered(k))).0)
    }

    /// Gather `(key(v), weight(v))` for the support into the pair buffer; returns the buffer.
    pub fn gather_pairs(&mut self, mut f: impl FnMut(f32) -> (f32, f32)) -> &mut Vec<(f32, f32)> {
        let (lo, hi) = (self.lo, self.hi);
        let values = current(self.raw, &self.scratch.scaled, self.scaled);
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
}

/// The current values, raw or scaled. A function of the two fields rather than a method, so
/// that callers can borrow the other scratch buffers mutably alongside.
fn current<'b>(raw: &'b [f32], scaled: &'b [f32], is_scaled: bool) -> &'b [f32] {
    if is_scaled {
        scaled
    } else {
        raw
    }
}

/// Bisect integer keys: given `first(lo)` and `!first(hi)` for a predicate that holds up to a
/// point and then fails, the adjacent pair `(last holding, first failing)`.
fn boundary(mut lo: i64, mut hi: i64, first: impl Fn(i64) -> bool) -> (i64, i64) {
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if first(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    (lo, hi)
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

/// The rate `beta` of a mass density `e^(-beta x)` over `x` in `[0, width]` (the bracket, mass
/// `m`) under which a neighbouring interval `(x0, x1]` of the same pass holds its measured mass
/// `n`; `None` when either mass is zero. Bisection: the ratio of the two masses is monotone in
/// `beta`.
fn fit_rate(width: f64, m: f64, (x0, x1): (f64, f64), n: f64) -> Option<f64> {
    if !(m > 0.0 && n > 0.0 && width > 0.0 && x1 > x0) {
        return None;
    }
    let want = n / m;
    let ratio = |beta: f64| interval_mass(beta, x0, x1) / interval_mass(beta, 0.0, width);
    // rates beyond 40 nats per width or neighbour width change the guess by nothing that matters
    let bound = 40.0 / width.min(x1 - x0);
    let (mut a, mut b) = (-bound, bound);
    let rising = ratio(b) > ratio(a);
    for _ in 0..50 {
        let mid = 0.5 * (a + b);
        if (ratio(mid) < want) == rising {
            a = mid;
        } else {
            b = mid;
        }
    }
    let beta = 0.5 * (a + b);
    beta.is_finite().then_some(beta)
}

/// `integral from x0 to x1 of e^(-beta x) dx`.
fn interval_mass(beta: f64, x0: f64, x1: f64) -> f64 {
    if beta.abs() < 1e-12 {
        x1 - x0
    } else {
        (-beta * x0).exp() * -(-beta * (x1 - x0)).exp_m1() / beta
    }
}

/// The `x` in `[0, width]` below which the density `e^(-beta x)` holds `share` of its mass over
/// `[0, width]`.
fn invert_rate(beta: f64, width: f64, share: f64) -> f64 {
    if beta.abs() < 1e-12 {
        share * width
    } else {
        -(share * (-beta * width).exp_m1()).ln_1p() / beta
    }
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

    #[test]
    fn the_fitted_rate_is_the_one_that_made_the_masses() {
        let width = 6.0;
        for beta in [-2.0f64, -0.3, 0.0, 0.45, 1.0, 3.0] {
            let m = interval_mass(beta, 0.0, width);
            let mut neighbours = vec![(-3.0, 0.0), (width, 9.0), (width, 6.5)];
            if beta > 0.0 {
                // the tail beyond the last threshold, as the first pass sees it
                neighbours.push((width, f64::INFINITY));
            }
            for (x0, x1) in neighbours {
                let n = interval_mass(beta, x0, x1);
                let fitted = fit_rate(width, m, (x0, x1), n).unwrap();
                assert!((fitted - beta).abs() < 1e-6, "{beta} {x0} {x1}: {fitted}");
            }
        }
        assert_eq!(fit_rate(width, 0.0, (6.0, 9.0), 1.0), None);
        assert_eq!(fit_rate(width, 1.0, (6.0, 9.0), 0.0), None);
    }

    #[test]
    fn the_guess_inverts_the_model() {
        for beta in [-2.0f64, -0.3, 0.0, 0.45, 1.0, 3.0] {
            for share in [0.0, 0.1, 0.5, 0.9, 1.0] {
                let x = invert_rate(beta, 6.0, share);
                let got = interval_mass(beta, 0.0, x) / interval_mass(beta, 0.0, 6.0);
                assert!((got - share).abs() < 1e-9, "{beta} {share}: {x} {got}");
            }
        }
    }
}
