//! Passes over one row of logits. These are the hot loops of the crate: each works on a contiguous
//! `f32` slice with 16 independent lane accumulators, so that LLVM vectorises it (a single running
//! value would force sequential float adds), and is compiled twice (`simd::multiversion!`): for the
//! baseline target and for AVX2, chosen at run time. The hottest passes (the exponential, the
//! bracketing masses, the block sums) also have intrinsics versions, `avx512` (LLVM's generic
//! tuning keeps auto-vectorised code at 256 bits even where AVX-512 is enabled) and `avx2` (where
//! LLVM leaves some of these loops scalar or poorly scheduled), bit-identical to these. The
//! dispatch takes AVX-512, else AVX2, else the portable code, capped by `TRADEOFF_SIMD`
//! ([`crate::simd`]: `avx2` or `portable` run the narrower paths on any machine, to measure and
//! test them). No `mul_add` anywhere: a fused multiply-add would round differently on machines
//! without FMA, and results must not depend on the machine.
//!
//! "In the support" means `lo <= v && v <= hi`; the support's `lo` is never below `f32::MIN`, so
//! `-inf` entries are never in it.

use crate::simd;

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;

const LANES: usize = 16;

/// `exp(x)` for `x <= 0`, branch-free so that it vectorises: Cephes' range reduction
/// `x = k ln 2 + r` and a degree-6 polynomial on `|r| <= ln 2 / 2`, about 1 ulp.
/// Returns exactly 0 below -87.3 (where the result would be subnormal) and for `-inf`.
#[inline(always)]
pub fn exp_nonpositive(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // 1.5 * 2^23: adding and subtracting it rounds to the nearest integer without a libm call.
    const ROUNDER: f32 = 12_582_912.0;
    let underflow = x < -87.3;
    let xc = if underflow { 0.0 } else { x };
    let shifted = xc * LOG2E + ROUNDER;
    let k = shifted - ROUNDER;
    // the integer k sits in the low mantissa bits of `shifted`: integer ops only, so it vectorises
    // (an `as i32` cast saturates and does not)
    let k_int = shifted.to_bits().wrapping_sub(ROUNDER.to_bits()) as i32;
    let r = (xc - k * LN2_HI) - k * LN2_LO;
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5; // Cephes' 5.0000001201e-1, which is 0.5 in f32
    let e = (p * (r * r) + r) + 1.0;
    let scale = f32::from_bits((k_int.wrapping_add(127) as u32) << 23);
    if underflow {
        0.0
    } else {
        e * scale
    }
}

#[inline(always)]
fn in_support(v: f32, lo: f32, hi: f32) -> bool {
    // `&`, not `&&`: a short-circuit becomes a branch and stops vectorisation
    (v >= lo) & (v <= hi)
}

// The scalar tails below (the entries after the last full group of 16) are shared by the
// portable kernels and their AVX-512 twins, so both add the remainder into lane 0 the same way.

#[inline(always)]
fn exp_weights_tail(
    values: &[f32],
    e: &mut [f32],
    lo: f32,
    hi: f32,
    max: f32,
    acc: &mut f32,
    acc_x: &mut f32,
) {
    for (&v, w) in values.iter().zip(e.iter_mut()) {
        let keep = in_support(v, lo, hi);
        let x = if keep { v - max } else { 0.0 };
        *w = if keep { exp_nonpositive(x) } else { 0.0 };
        *acc += *w;
        *acc_x += *w * x;
    }
}

#[inline(always)]
fn mass_tail(
    values: &[f32],
    e: &[f32],
    lo: f32,
    hi: f32,
    t: &[f32; 4],
    key: impl Fn(f32) -> f32,
    m: [&mut f32; 4],
) {
    let [m0, m1, m2, m3] = m;
    for (&v, &w) in values.iter().zip(e) {
        if in_support(v, lo, hi) {
            let k = key(v);
            *m0 += if k <= t[0] { w } else { 0.0 };
            *m1 += if k <= t[1] { w } else { 0.0 };
            *m2 += if k <= t[2] { w } else { 0.0 };
            *m3 += if k <= t[3] { w } else { 0.0 };
        }
    }
}

/// Returns how many of the tail's tokens are in the support.
#[inline(always)]
fn block_tail_weights(values: &[f32], e: &[f32], lo: f32, hi: f32, acc: &mut f32) -> usize {
    let mut count = 0;
    for (&v, &w) in values.iter().zip(e) {
        let keep = in_support(v, lo, hi);
        *acc += if keep { w } else { 0.0 };
        count += keep as usize;
    }
    count
}

/// Returns how many of the tail's tokens are in the support.
#[inline(always)]
fn block_tail_exp(values: &[f32], lo: f32, hi: f32, max: f32, acc: &mut f32) -> usize {
    let mut count = 0;
    for &v in values {
        let e = exp_nonpositive(v - max);
        let keep = in_support(v, lo, hi);
        *acc += if keep { e } else { 0.0 };
        count += keep as usize;
    }
    count
}

/// Max over the whole row and whether any entry is NaN or `+inf` (`!(v < inf)`).
pub fn max_and_invalid(row: &[f32]) -> (f32, bool) {
    #[cfg(target_arch = "x86_64")]
    {
        if avx512::available() {
            // SAFETY: AVX-512F is present
            return unsafe { avx512::max_and_invalid(row) };
        }
        if avx2::available() {
            // SAFETY: AVX2 is present
            return unsafe { avx2::max_and_invalid(row) };
        }
    }
    max_and_invalid_portable(row)
}

/// The lanes' maxima and flags of [`max_and_invalid`] folded as the portable code folds them.
#[inline(always)]
fn fold_max_and_invalid(max: &[f32; LANES], bad: &[bool; LANES]) -> (f32, bool) {
    let m = max
        .iter()
        .copied()
        .fold(f32::NEG_INFINITY, |a, b| if b > a { b } else { a });
    (m, bad.iter().any(|&b| b))
}

/// [`max_and_invalid`]'s scalar tail, into lane 0.
#[inline(always)]
#[allow(clippy::neg_cmp_op_on_partial_ord)] // `!(v < inf)` is true exactly for NaN and +inf
fn max_and_invalid_tail(rest: &[f32], max: &mut f32, bad: &mut bool) {
    for &v in rest {
        *max = if v > *max { v } else { *max };
        *bad |= !(v < f32::INFINITY);
    }
}

simd::multiversion!(
    /// The portable (baseline / AVX2) [`max_and_invalid`].
    #[allow(clippy::neg_cmp_op_on_partial_ord)] // `!(v < inf)` is true exactly for NaN and +inf
    fn max_and_invalid_portable(row: &[f32]) -> (f32, bool) {
        let mut max = [f32::NEG_INFINITY; LANES];
        let mut bad = [false; LANES];
        let chunks = row.chunks_exact(LANES);
        let rest = chunks.remainder();
        for chunk in chunks {
            for l in 0..LANES {
                let v = chunk[l];
                max[l] = if v > max[l] { v } else { max[l] };
                bad[l] |= !(v < f32::INFINITY);
            }
        }
        max_and_invalid_tail(rest, &mut max[0], &mut bad[0]);
        fold_max_and_invalid(&max, &bad)
    }
);

simd::multiversion!(
    /// Max and count of the entries in the support.
    pub fn max_count_in(values: &[f32], lo: f32, hi: f32) -> (f32, usize) {
        let mut max = [f32::NEG_INFINITY; LANES];
        let mut count = [0u32; LANES];
        let chunks = values.chunks_exact(LANES);
        let rest = chunks.remainder();
        for chunk in chunks {
            for l in 0..LANES {
                let v = chunk[l];
                let keep = in_support(v, lo, hi);
                max[l] = if keep && v > max[l] { v } else { max[l] };
                count[l] += keep as u32;
            }
        }
        for &v in rest {
            let keep = in_support(v, lo, hi);
            max[0] = if keep && v > max[0] { v } else { max[0] };
            count[0] += keep as u32;
        }
        let m = max
            .iter()
            .copied()
            .fold(f32::NEG_INFINITY, |a, b| if b > a { b } else { a });
        (m, count.iter().map(|&c| c as usize).sum())
    }
);

simd::multiversion!(
    /// `sum exp(v - max)` over the support.
    pub fn sum_exp_in(values: &[f32], lo: f32, hi: f32, max: f32) -> f32 {
        let mut acc = [0.0f32; LANES];
        let chunks = values.chunks_exact(LANES);
        let rest = chunks.remainder();
        for chunk in chunks {
            for l in 0..LANES {
                let v = chunk[l];
                let e = exp_nonpositive(v - max);
                acc[l] += if in_support(v, lo, hi) { e } else { 0.0 };
            }
        }
        for &v in rest {
            let e = exp_nonpositive(v - max);
            acc[0] += if in_support(v, lo, hi) { e } else { 0.0 };
        }
        acc.iter().sum()
    }
);

simd::multiversion!(
    /// Sum over the support (for the mean) in f64.
    pub fn sum_in(values: &[f32], lo: f32, hi: f32) -> f64 {
        let mut acc = [0.0f64; LANES];
        let chunks = values.chunks_exact(LANES);
        let rest = chunks.remainder();
        for chunk in chunks {
            for l in 0..LANES {
                let v = chunk[l];
                acc[l] += if in_support(v, lo, hi) { v as f64 } else { 0.0 };
            }
        }
        for &v in rest {
            acc[0] += if in_support(v, lo, hi) { v as f64 } else { 0.0 };
        }
        acc.iter().sum()
    }
);

simd::multiversion!(
    /// `sum (v - mean)^2` over the support in f64 (second pass of a two-pass variance).
    pub fn sum_sq_dev_in(values: &[f32], lo: f32, hi: f32, mean: f64) -> f64 {
        let mut acc = [0.0f64; LANES];
        let chunks = values.chunks_exact(LANES);
        let rest = chunks.remainder();
        for chunk in chunks {
            for l in 0..LANES {
                let v = chunk[l];
                let d = if in_support(v, lo, hi) {
                    v as f64 - mean
                } else {
                    0.0
                };
                acc[l] += d * d;
            }
        }
        for &v in rest {
            let d = if in_support(v, lo, hi) {
                v as f64 - mean
            } else {
                0.0
            };
            acc[0] += d * d;
        }
        acc.iter().sum()
    }
);

simd::multiversion!(
    /// The portable (baseline / AVX2) [`block_sums_exp_in`].
    fn block_sums_exp_in_portable(
        values: &[f32],
        lo: f32,
        hi: f32,
        max: f32,
        block: usize,
        out: &mut Vec<f64>,
    ) -> (f64, usize) {
        out.clear();
        let mut total = 0.0f64;
        let mut count = [0u32; LANES];
        for blk in values.chunks(block) {
            let mut acc = [0.0f32; LANES];
            let chunks = blk.chunks_exact(LANES);
            let rest = chunks.remainder();
            for chunk in chunks {
                for l in 0..LANES {
                    let v = chunk[l];
                    let e = exp_nonpositive(v - max);
                    let keep = in_support(v, lo, hi);
                    acc[l] += if keep { e } else { 0.0 };
                    count[l] += keep as u32;
                }
            }
            count[0] += block_tail_exp(rest, lo, hi, max, &mut acc[0]) as u32;
            let s: f64 = acc.iter().map(|&a| a as f64).sum();
            out.push(s);
            total += s;
        }
        (total, count.iter().map(|&c| c as usize).sum())
    }
);

simd::multiversion!(
    /// `out[i] = values[i]` in the support, `-inf` outside.
    pub fn write_masked(values: &[f32], lo: f32, hi: f32, out: &mut [f32]) {
        for (o, &v) in out.iter_mut().zip(values) {
            *o = if in_support(v, lo, hi) {
                v
            } else {
                f32::NEG_INFINITY
            };
        }
    }
);

simd::multiversion!(
    /// `out[i] = (values[i] - max) - log_sum` in the support, `-inf` outside: `log_softmax` as torch
    /// computes it.
    pub fn write_log_probs(
        values: &[f32],
        lo: f32,
        hi: f32,
        max: f32,
        log_sum: f32,
        out: &mut [f32],
    ) {
        for (o, &v) in out.iter_mut().zip(values) {
            *o = if in_support(v, lo, hi) {
                (v - max) - log_sum
            } else {
                f32::NEG_INFINITY
            };
        }
    }
);

simd::multiversion!(
    /// `out[i] = values[i] / t` in the support and `-inf` outside (temperature, as torch divides);
    /// returns the max of the results and whether any overflowed to `+inf`.
    pub fn write_divided(values: &[f32], lo: f32, hi: f32, t: f32, out: &mut [f32]) -> (f32, bool) {
        let mut max = [f32::NEG_INFINITY; LANES];
        let mut overflow = [false; LANES];
        let done = values.len() / LANES * LANES;
        for (vc, oc) in values.chunks_exact(LANES).zip(out.chunks_exact_mut(LANES)) {
            for l in 0..LANES {
                let v = vc[l];
                let q = if in_support(v, lo, hi) {
                    v / t
                } else {
                    f32::NEG_INFINITY
                };
                oc[l] = q;
                max[l] = if q > max[l] { q } else { max[l] };
                overflow[l] |= q == f32::INFINITY;
            }
        }
        for (&v, o) in values[done..].iter().zip(&mut out[done..]) {
            let q = if in_support(v, lo, hi) {
                v / t
            } else {
                f32::NEG_INFINITY
            };
            *o = q;
            max[0] = if q > max[0] { q } else { max[0] };
            overflow[0] |= q == f32::INFINITY;
        }
        let m = max
            .iter()
            .copied()
            .fold(f32::NEG_INFINITY, |a, b| if b > a { b } else { a });
        (m, overflow.iter().any(|&b| b))
    }
);

/// [`write_divided`] in place (a second temperature in a chain; rare, so it copies).
pub fn divide_in_place(values: &mut [f32], lo: f32, hi: f32, t: f32) -> (f32, bool) {
    let copy = values.to_vec();
    write_divided(&copy, lo, hi, t, values)
}

/// Typical's gap `|-(log_softmax(v)) - H|`, computed as transformers does.
#[inline(always)]
pub fn typical_gap(v: f32, max: f32, log_sum: f32, entropy: f32) -> f32 {
    (-((v - max) - log_sum) - entropy).abs()
}

/// The order in which a weighted cut walks the support: top-p takes the largest values first
/// (key `-v`), typical the smallest gaps first.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CutKey {
    Nucleus,
    Typical {
        max: f32,
        log_sum: f32,
        entropy: f32,
    },
}

impl CutKey {
    #[inline(always)]
    pub fn of(self, v: f32) -> f32 {
        match self {
            CutKey::Nucleus => -v,
            CutKey::Typical {
                max,
                log_sum,
                entropy,
            } => typical_gap(v, max, log_sum, entropy),
        }
    }
}

simd::multiversion!(
    /// The portable (baseline / AVX2) [`exp_weights_in`].
    fn exp_weights_in_portable(
        values: &[f32],
        lo: f32,
        hi: f32,
        max: f32,
        e: &mut [f32],
    ) -> (f32, f32) {
        let mut acc = [0.0f32; LANES];
        let mut acc_x = [0.0f32; LANES];
        let done = values.len() / LANES * LANES;
        for (vc, ec) in values.chunks_exact(LANES).zip(e.chunks_exact_mut(LANES)) {
            for l in 0..LANES {
                let v = vc[l];
                let keep = in_support(v, lo, hi);
                let x = if keep { v - max } else { 0.0 };
                let w = if keep { exp_nonpositive(x) } else { 0.0 };
                ec[l] = w;
                acc[l] += w;
                acc_x[l] += w * x;
            }
        }
        exp_weights_tail(
            &values[done..],
            &mut e[done..],
            lo,
            hi,
            max,
            &mut acc[0],
            &mut acc_x[0],
        );
        (acc.iter().sum(), acc_x.iter().sum())
    }
);

simd::multiversion!(
    /// `(sum w, sum w * (v - max))` over the support, for the entropy from precomputed weights.
    pub fn weight_moments_in(values: &[f32], e: &[f32], lo: f32, hi: f32, max: f32) -> (f32, f32) {
        let mut acc = [0.0f32; LANES];
        let mut acc_x = [0.0f32; LANES];
        for (vc, ec) in values.chunks_exact(LANES).zip(e.chunks_exact(LANES)) {
            for l in 0..LANES {
                let v = vc[l];
                let keep = in_support(v, lo, hi);
                let w = if keep { ec[l] } else { 0.0 };
                let x = if keep { v - max } else { 0.0 };
                acc[l] += w;
                acc_x[l] += w * x;
            }
        }
        let done = values.len() / LANES * LANES;
        for (&v, &w) in values[done..].iter().zip(&e[done..]) {
            if in_support(v, lo, hi) {
                acc[0] += w;
                acc_x[0] += w * (v - max);
            }
        }
        (acc.iter().sum(), acc_x.iter().sum())
    }
);

/// For each threshold `t[j]`: the weight of the support tokens whose key is `<= t[j]`. Four
/// thresholds per pass narrow a bracket around a weighted cut; the accumulators fit in registers
/// (counting tokens too doubled them and cost 5x).
#[inline(always)]
fn mass_at_or_below(
    values: &[f32],
    e: &[f32],
    lo: f32,
    hi: f32,
    t: &[f32; 4],
    key: impl Fn(f32) -> f32,
) -> [f64; 4] {
    let mut m0 = [0.0f32; LANES];
    let mut m1 = [0.0f32; LANES];
    let mut m2 = [0.0f32; LANES];
    let mut m3 = [0.0f32; LANES];
    for (vc, ec) in values.chunks_exact(LANES).zip(e.chunks_exact(LANES)) {
        for l in 0..LANES {
            let v = vc[l];
            let keep = in_support(v, lo, hi);
            let w = if keep { ec[l] } else { 0.0 };
            let k = key(v);
            m0[l] += if k <= t[0] { w } else { 0.0 };
            m1[l] += if k <= t[1] { w } else { 0.0 };
            m2[l] += if k <= t[2] { w } else { 0.0 };
            m3[l] += if k <= t[3] { w } else { 0.0 };
        }
    }
    let done = values.len() / LANES * LANES;
    let lane0 = [&mut m0[0], &mut m1[0], &mut m2[0], &mut m3[0]];
    mass_tail(&values[done..], &e[done..], lo, hi, t, key, lane0);
    let sum = |m: &[f32; LANES]| m.iter().map(|&x| x as f64).sum::<f64>();
    [sum(&m0), sum(&m1), sum(&m2), sum(&m3)]
}

simd::multiversion!(
    /// The portable (baseline / AVX2) [`nucleus_mass_at_or_below`].
    fn nucleus_mass_at_or_below_portable(
        values: &[f32],
        e: &[f32],
        lo: f32,
        hi: f32,
        t: &[f32; 4],
    ) -> [f64; 4] {
        mass_at_or_below(values, e, lo, hi, t, |v| -v)
    }
);

simd::multiversion!(
    /// The portable (baseline / AVX2) [`typical_mass_at_or_below`].
    fn typical_mass_at_or_below_portable(
        values: &[f32],
        e: &[f32],
        lo: f32,
        hi: f32,
        t: &[f32; 4],
        gap: (f32, f32, f32),
    ) -> [f64; 4] {
        let (max, log_sum, entropy) = gap;
        mass_at_or_below(values, e, lo, hi, t, |v| {
            typical_gap(v, max, log_sum, entropy)
        })
    }
);

/// Append `(key, weight)` for the support tokens with `k_lo < key <= k_hi` to `out` (cleared
/// first). Chunks are tested with vector compares first: most hold no such token.
#[inline(always)]
fn gather_bracket(
    values: &[f32],
    e: &[f32],
    lo: f32,
    hi: f32,
    (k_lo, k_hi): (f32, f32),
    key: impl Fn(f32) -> f32,
    out: &mut Vec<(f32, f32)>,
) {
    out.clear();
    let hit = |v: f32| {
        let k = key(v);
        in_support(v, lo, hi) & (k > k_lo) & (k <= k_hi)
    };
    for (vc, ec) in values.chunks(LANES).zip(e.chunks(LANES)) {
        let any = vc.len() < LANES || {
            let mut flags = [false; LANES];
            for l in 0..LANES {
                flags[l] = hit(vc[l]);
            }
            flags.iter().fold(false, |a, &f| a | f)
        };
        if any {
            for (&v, &w) in vc.iter().zip(ec) {
                if hit(v) {
                    out.push((key(v), w));
                }
            }
        }
    }
}

/// [`gather_bracket`] for top-p's key (`-v`).
pub fn gather_nucleus(
    values: &[f32],
    e: &[f32],
    lo: f32,
    hi: f32,
    bracket: (f32, f32),
    out: &mut Vec<(f32, f32)>,
) {
    #[cfg(target_arch = "x86_64")]
    {
        if avx512::available() {
            // SAFETY: AVX-512F is present; the kernel checks the lengths
            return unsafe { avx512::gather_nucleus(values, e, lo, hi, bracket, out) };
        }
        if avx2::available() {
            // SAFETY: AVX2 is present; the kernel checks the lengths
            return unsafe { avx2::gather_nucleus(values, e, lo, hi, bracket, out) };
        }
    }
    gather_nucleus_portable(values, e, lo, hi, bracket, out)
}

/// [`gather_nucleus`]'s test as one closed interval of values: a support token has
/// `k_lo < -v <= k_hi` exactly when `lower <= v <= upper` (negation is exact, and `v < c` is
/// `v <= c.next_down()` for a non-NaN `v`). For the intrinsics versions: two compares a register.
#[inline(always)]
fn nucleus_interval(lo: f32, hi: f32, (k_lo, k_hi): (f32, f32)) -> (f32, f32) {
    (lo.max(-k_hi), hi.min((-k_lo).next_down()))
}

simd::multiversion!(
    /// The portable (baseline / AVX2) [`gather_nucleus`].
    fn gather_nucleus_portable(
        values: &[f32],
        e: &[f32],
        lo: f32,
        hi: f32,
        bracket: (f32, f32),
        out: &mut Vec<(f32, f32)>,
    ) {
        gather_bracket(values, e, lo, hi, bracket, |v| -v, out)
    }
);

simd::multiversion!(
    /// [`gather_bracket`] for typical's gap.
    pub fn gather_typical(
        values: &[f32],
        e: &[f32],
        lo: f32,
        hi: f32,
        bracket: (f32, f32),
        gap: (f32, f32, f32),
        out: &mut Vec<(f32, f32)>,
    ) {
        let (max, log_sum, entropy) = gap;
        gather_bracket(
            values,
            e,
            lo,
            hi,
            bracket,
            |v| typical_gap(v, max, log_sum, entropy),
            out,
        )
    }
);

simd::multiversion!(
    /// For each threshold: the number of support tokens `>= t[j]`.
    pub fn count_at_least(values: &[f32], lo: f32, hi: f32, t: &[f32; 4]) -> [u32; 4] {
        let mut c = [[0u32; LANES]; 4];
        let chunks = values.chunks_exact(LANES);
        let rest = chunks.remainder();
        for chunk in chunks {
            for l in 0..LANES {
                let v = chunk[l];
                let keep = in_support(v, lo, hi);
                for j in 0..4 {
                    c[j][l] += (keep & (v >= t[j])) as u32;
                }
            }
        }
        for &v in rest {
            for j in 0..4 {
                c[j][0] += (in_support(v, lo, hi) & (v >= t[j])) as u32;
            }
        }
        c.map(|lanes| lanes.iter().sum())
    }
);

simd::multiversion!(
    /// The support values `>= floor` (and `<= hi`), appended to `out` (cleared first); chunks without
    /// one are skipped after a vector compare.
    pub fn gather_at_least(values: &[f32], floor: f32, hi: f32, out: &mut Vec<f32>) {
        out.clear();
        for chunk in values.chunks(LANES) {
            let any = chunk.len() < LANES || {
                let mut flags = [false; LANES];
                for l in 0..LANES {
                    flags[l] = in_support(chunk[l], floor, hi);
                }
                flags.iter().fold(false, |a, &f| a | f)
            };
            if any {
                out.extend(chunk.iter().copied().filter(|&v| in_support(v, floor, hi)));
            }
        }
    }
);

simd::multiversion!(
    /// The portable (baseline / AVX2) [`block_sums_weights_in`].
    fn block_sums_weights_in_portable(
        values: &[f32],
        e: &[f32],
        lo: f32,
        hi: f32,
        block: usize,
        out: &mut Vec<f64>,
    ) -> (f64, usize) {
        out.clear();
        let mut total = 0.0f64;
        let mut count = [0u32; LANES];
        for (vb, eb) in values.chunks(block).zip(e.chunks(block)) {
            let mut acc = [0.0f32; LANES];
            for (vc, ec) in vb.chunks_exact(LANES).zip(eb.chunks_exact(LANES)) {
                for l in 0..LANES {
                    let keep = in_support(vc[l], lo, hi);
                    acc[l] += if keep { ec[l] } else { 0.0 };
                    count[l] += keep as u32;
                }
            }
            let done = vb.len() / LANES * LANES;
            count[0] += block_tail_weights(&vb[done..], &eb[done..], lo, hi, &mut acc[0]) as u32;
            let s: f64 = acc.iter().map(|&a| a as f64).sum();
            out.push(s);
            total += s;
        }
        (total, count.iter().map(|&c| c as usize).sum())
    }
);

/// Sums of `exp(v - max)` over the support in consecutive blocks of `block` entries, appended to
/// `out` (cleared first) as f64; returns their total and the support's size. Sampling finds its
/// block from these sums.
pub fn block_sums_exp_in(
    values: &[f32],
    lo: f32,
    hi: f32,
    max: f32,
    block: usize,
    out: &mut Vec<f64>,
) -> (f64, usize) {
    #[cfg(target_arch = "x86_64")]
    {
        if avx512::available() {
            // SAFETY: AVX-512F is present
            return unsafe { avx512::block_sums_exp_in(values, lo, hi, max, block, out) };
        }
        if avx2::available() {
            // SAFETY: AVX2 is present
            return unsafe { avx2::block_sums_exp_in(values, lo, hi, max, block, out) };
        }
    }
    block_sums_exp_in_portable(values, lo, hi, max, block, out)
}

/// `e[i] = exp(v - max)` in the support and 0 outside; returns `(sum e, sum e (v - max))` (the
/// normaliser, and with it the entropy). Computed once per row, these weights serve the cut
/// search, the other adaptors and the sampler without another exponential.
pub fn exp_weights_in(values: &[f32], lo: f32, hi: f32, max: f32, e: &mut [f32]) -> (f32, f32) {
    #[cfg(target_arch = "x86_64")]
    {
        if avx512::available() {
            // SAFETY: AVX-512F is present; the kernel checks the lengths
            return unsafe { avx512::exp_weights_in(values, lo, hi, max, e) };
        }
        if avx2::available() {
            // SAFETY: AVX2 is present; the kernel checks the lengths
            return unsafe { avx2::exp_weights_in(values, lo, hi, max, e) };
        }
    }
    exp_weights_in_portable(values, lo, hi, max, e)
}

/// For each threshold `t[j]`: the weight of the support tokens with `-v <= t[j]` (top-p's key).
pub fn nucleus_mass_at_or_below(
    values: &[f32],
    e: &[f32],
    lo: f32,
    hi: f32,
    t: &[f32; 4],
) -> [f64; 4] {
    #[cfg(target_arch = "x86_64")]
    {
        if avx512::available() {
            // SAFETY: AVX-512F is present; the kernel checks the lengths
            return unsafe { avx512::nucleus_mass_at_or_below(values, e, lo, hi, t) };
        }
        if avx2::available() {
            // SAFETY: AVX2 is present; the kernel checks the lengths
            return unsafe { avx2::nucleus_mass_at_or_below(values, e, lo, hi, t) };
        }
    }
    nucleus_mass_at_or_below_portable(values, e, lo, hi, t)
}

/// For each threshold `t[j]`: the weight of the support tokens whose typical gap is `<= t[j]`.
pub fn typical_mass_at_or_below(
    values: &[f32],
    e: &[f32],
    lo: f32,
    hi: f32,
    t: &[f32; 4],
    gap: (f32, f32, f32),
) -> [f64; 4] {
    #[cfg(target_arch = "x86_64")]
    {
        if avx512::available() {
            // SAFETY: AVX-512F is present; the kernel checks the lengths
            return unsafe { avx512::typical_mass_at_or_below(values, e, lo, hi, t, gap) };
        }
        if avx2::available() {
            // SAFETY: AVX2 is present; the kernel checks the lengths
            return unsafe { avx2::typical_mass_at_or_below(values, e, lo, hi, t, gap) };
        }
    }
    typical_mass_at_or_below_portable(values, e, lo, hi, t, gap)
}

/// Like [`block_sums_exp_in`], from precomputed weights.
pub fn block_sums_weights_in(
    values: &[f32],
    e: &[f32],
    lo: f32,
    hi: f32,
    block: usize,
    out: &mut Vec<f64>,
) -> (f64, usize) {
    #[cfg(target_arch = "x86_64")]
    {
        if avx512::available() {
            // SAFETY: AVX-512F is present; the kernel checks the lengths
            return unsafe { avx512::block_sums_weights_in(values, e, lo, hi, block, out) };
        }
        if avx2::available() {
            // SAFETY: AVX2 is present; the kernel checks the lengths
            return unsafe { avx2::block_sums_weights_in(values, e, lo, hi, block, out) };
        }
    }
    block_sums_weights_in_portable(values, e, lo, hi, block, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_accurate_on_nonpositive_inputs() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x <= 0.0 {
            let got = exp_nonpositive(x) as f64;
            let want = (x as f64).exp();
            worst = worst.max(((got - want) / want).abs());
            x += 0.000_37;
        }
        // about 1 ulp (6e-8) of f32
        assert!(worst < 2.5e-7, "worst relative error {worst}");
    }

    #[test]
    fn exp_is_exact_where_the_answer_is_dyadic() {
        assert_eq!(exp_nonpositive(0.0), 1.0);
        assert_eq!(exp_nonpositive(-std::f32::consts::LN_2), 0.5);
        assert_eq!(exp_nonpositive(-2.0 * std::f32::consts::LN_2), 0.25);
        assert_eq!(exp_nonpositive(0.125f32.ln()), 0.125);
        assert_eq!(exp_nonpositive(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_nonpositive(-100.0), 0.0);
    }

    #[test]
    fn passes_agree_with_scalar_loops() {
        let values: Vec<f32> = (0..1037)
            .map(|i| ((i * 7919) % 1000) as f32 / 100.0 - 5.0)
            .collect();
        let (lo, hi) = (-2.0f32, 3.0f32);
        let (m, n) = max_count_in(&values, lo, hi);
        let kept: Vec<f32> = values
            .iter()
            .copied()
            .filter(|&v| v >= lo && v <= hi)
            .collect();
        assert_eq!(n, kept.len());
        assert_eq!(m, kept.iter().copied().fold(f32::MIN, f32::max));
        let s = sum_exp_in(&values, lo, hi, m) as f64;
        let want: f64 = kept.iter().map(|&v| ((v - m) as f64).exp()).sum();
        assert!((s - want).abs() / want < 1e-5);
        let mut blocks = Vec::new();
        let (total, count) = block_sums_exp_in(&values, lo, hi, m, 100, &mut blocks);
        assert_eq!(count, n);
        assert_eq!(blocks.len(), 11);
        assert!((total - want).abs() / want < 1e-5);
    }

    /// One set of intrinsics kernels, as function pointers.
    #[cfg(target_arch = "x86_64")]
    #[allow(clippy::type_complexity)]
    struct Backend {
        name: &'static str,
        exp_weights_in: unsafe fn(&[f32], f32, f32, f32, &mut [f32]) -> (f32, f32),
        nucleus: unsafe fn(&[f32], &[f32], f32, f32, &[f32; 4]) -> [f64; 4],
        typical: unsafe fn(&[f32], &[f32], f32, f32, &[f32; 4], (f32, f32, f32)) -> [f64; 4],
        block_weights: unsafe fn(&[f32], &[f32], f32, f32, usize, &mut Vec<f64>) -> (f64, usize),
        block_exp: unsafe fn(&[f32], f32, f32, f32, usize, &mut Vec<f64>) -> (f64, usize),
        max_and_invalid: unsafe fn(&[f32]) -> (f32, bool),
        gather_nucleus: unsafe fn(&[f32], &[f32], f32, f32, (f32, f32), &mut Vec<(f32, f32)>),
    }

    /// The intrinsics kernels this CPU runs, whatever `TRADEOFF_SIMD` says (so that a test run
    /// with `TRADEOFF_SIMD=avx2` still checks the AVX-512 ones).
    #[cfg(target_arch = "x86_64")]
    fn backends() -> Vec<Backend> {
        let mut all = Vec::new();
        if is_x86_feature_detected!("avx512f") {
            all.push(Backend {
                name: "avx512",
                exp_weights_in: avx512::exp_weights_in,
                nucleus: avx512::nucleus_mass_at_or_below,
                typical: avx512::typical_mass_at_or_below,
                block_weights: avx512::block_sums_weights_in,
                block_exp: avx512::block_sums_exp_in,
                max_and_invalid: avx512::max_and_invalid,
                gather_nucleus: avx512::gather_nucleus,
            });
        }
        if is_x86_feature_detected!("avx2") {
            all.push(Backend {
                name: "avx2",
                exp_weights_in: avx2::exp_weights_in,
                nucleus: avx2::nucleus_mass_at_or_below,
                typical: avx2::typical_mass_at_or_below,
                block_weights: avx2::block_sums_weights_in,
                block_exp: avx2::block_sums_exp_in,
                max_and_invalid: avx2::max_and_invalid,
                gather_nucleus: avx2::gather_nucleus,
            });
        }
        all
    }

    /// Every kernel of `b` against its portable twin on one row and support, bit for bit: the
    /// weights and sums, the masses at the thresholds `t` (top-p's keys) and `tg` (typical's
    /// gaps, from `gap`), and the block sums at `block`.
    #[cfg(target_arch = "x86_64")]
    #[allow(clippy::too_many_arguments)]
    fn check_backend(
        b: &Backend,
        values: &[f32],
        (lo, hi): (f32, f32),
        m: f32,
        t: &[f32; 4],
        tg: &[f32; 4],
        gap: (f32, f32, f32),
        block: usize,
    ) {
        let n = values.len();
        let what = format!(
            "{} n={n} lo={lo} hi={hi} max={m} t={t:?} block={block}",
            b.name
        );
        let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        let (mut e1, mut e2) = (vec![0.0; n], vec![0.0; n]);
        let want = exp_weights_in_portable(values, lo, hi, m, &mut e1);
        // SAFETY (every call below): `backends` lists only kernels this CPU runs, and the
        // weights are as long as the values
        let got = unsafe { (b.exp_weights_in)(values, lo, hi, m, &mut e2) };
        assert_eq!(
            (want.0.to_bits(), want.1.to_bits()),
            (got.0.to_bits(), got.1.to_bits()),
            "exp_weights_in {what}"
        );
        assert_eq!(bits(&e1), bits(&e2), "weights {what}");
        let want = nucleus_mass_at_or_below_portable(values, &e1, lo, hi, t);
        let got = unsafe { (b.nucleus)(values, &e1, lo, hi, t) };
        assert_eq!(
            want.map(f64::to_bits),
            got.map(f64::to_bits),
            "nucleus {what}"
        );
        let want = typical_mass_at_or_below_portable(values, &e1, lo, hi, tg, gap);
        let got = unsafe { (b.typical)(values, &e1, lo, hi, tg, gap) };
        assert_eq!(
            want.map(f64::to_bits),
            got.map(f64::to_bits),
            "typical {what}"
        );
        let (mut o1, mut o2) = (Vec::new(), Vec::new());
        let want = block_sums_weights_in_portable(values, &e1, lo, hi, block, &mut o1);
        let got = unsafe { (b.block_weights)(values, &e1, lo, hi, block, &mut o2) };
        assert_eq!(
            (want.0.to_bits(), want.1),
            (got.0.to_bits(), got.1),
            "blocks {what}"
        );
        assert_eq!(o1.len(), o2.len(), "blocks {what}");
        assert!(o1.iter().zip(&o2).all(|(x, y)| x.to_bits() == y.to_bits()));
        let want = block_sums_exp_in_portable(values, lo, hi, m, block, &mut o1);
        let got = unsafe { (b.block_exp)(values, lo, hi, m, block, &mut o2) };
        assert_eq!(
            (want.0.to_bits(), want.1),
            (got.0.to_bits(), got.1),
            "exp blocks {what}"
        );
        assert!(o1.iter().zip(&o2).all(|(x, y)| x.to_bits() == y.to_bits()));
        let want = max_and_invalid_portable(values);
        let got = unsafe { (b.max_and_invalid)(values) };
        assert_eq!(
            (want.0.to_bits(), want.1),
            (got.0.to_bits(), got.1),
            "max {what}"
        );
        // brackets between the thresholds, open below or above
        let mut brackets = vec![(f32::NEG_INFINITY, t[0]), (t[3], f32::INFINITY)];
        brackets.extend((0..3).map(|j| (t[j], t[j + 1])));
        brackets.push((t[0], t[3]));
        for bracket in brackets {
            let (mut p1, mut p2) = (Vec::new(), Vec::new());
            gather_nucleus_portable(values, &e1, lo, hi, bracket, &mut p1);
            unsafe { (b.gather_nucleus)(values, &e1, lo, hi, bracket, &mut p2) };
            let pair_bits = |p: &[(f32, f32)]| {
                p.iter()
                    .map(|(k, w)| (k.to_bits(), w.to_bits()))
                    .collect::<Vec<_>>()
            };
            assert_eq!(pair_bits(&p1), pair_bits(&p2), "gather {bracket:?} {what}");
        }
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn intrinsics_kernels_are_bit_identical_to_the_portable_ones() {
        let backends = backends();
        let mut state = 99u64;
        for n in [1usize, 15, 16, 17, 1000, 4099] {
            let values: Vec<f32> = (0..n)
                .map(|i| {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let u = (state >> 40) as f32 / (1u64 << 24) as f32;
                    if i % 97 == 5 {
                        f32::NEG_INFINITY
                    } else {
                        (u - 0.5) * 60.0
                    }
                })
                .collect();
            let (m, _) = max_count_in(&values, f32::MIN, f32::MAX);
            let t = [-m + 0.5, -m + 2.0, -m + 9.0, -m + 30.0];
            let tg = [0.1f32, 1.0, 2.5, 9.0];
            for support in [(f32::MIN, f32::MAX), (m - 3.0, m), (-5.0, 7.0)] {
                for b in &backends {
                    check_backend(b, &values, support, m, &t, &tg, (m, 3.1, 1.7), 512);
                }
            }
        }
    }

    /// The same on random rows: every shape of `test_util::random_row` (flat, peaked, ties,
    /// `-inf`), rows wide enough that `exp` underflows to 0 (below -87.3), signed zeros, random
    /// supports, block sizes and thresholds (some equal to row values, so that ties meet the
    /// comparisons), and lengths around the 16-lane groups.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn intrinsics_kernels_are_bit_identical_on_random_rows() {
        use crate::test_util::{random_row, Rng};
        let backends = backends();
        let mut rng = Rng::new(20_261_202);
        for case in 0..300 {
            let n = match case % 3 {
                0 => 1 + rng.below(40),
                1 => 16 * (1 + rng.below(64)) + rng.below(3),
                _ => 1 + rng.below(5000),
            };
            let mut values = random_row(&mut rng, n);
            let scale = [1.0f32, 10.0, 40.0][rng.below(3)];
            for v in values.iter_mut() {
                *v *= scale;
                if rng.below(50) == 0 {
                    *v = if rng.below(2) == 0 { 0.0 } else { -0.0 };
                }
            }
            let pick = |rng: &mut Rng| values[rng.below(n)];
            let (m_all, _) = max_count_in(&values, f32::MIN, f32::MAX);
            let support = match rng.below(3) {
                0 => (f32::MIN, f32::MAX),
                1 => (m_all - 1.0 - 30.0 * rng.uniform() as f32, m_all),
                _ => {
                    let (a, b) = (pick(&mut rng).max(f32::MIN), pick(&mut rng).max(f32::MIN));
                    (a.min(b), a.max(b))
                }
            };
            let (m, count) = max_count_in(&values, support.0, support.1);
            if count == 0 {
                continue;
            }
            let mut t = [0.0f32; 4];
            let mut tg = [0.0f32; 4];
            for j in 0..4 {
                t[j] = match rng.below(3) {
                    0 => -pick(&mut rng),
                    1 => -m + 40.0 * rng.uniform() as f32,
                    _ => f32::INFINITY,
                };
                tg[j] = 10.0 * rng.uniform() as f32;
            }
            t.sort_by(f32::total_cmp);
            tg.sort_by(f32::total_cmp);
            let gap = (m, 5.0 * rng.uniform() as f32, 4.0 * rng.uniform() as f32);
            let block = [16usize, 100, 512, 4096][rng.below(4)];
            for b in &backends {
                check_backend(b, &values, support, m, &t, &tg, gap, block);
            }
            // the validation pass also meets what it rejects: NaN and +inf
            let mut invalid = values.clone();
            for _ in 0..1 + rng.below(3) {
                let i = rng.below(n);
                invalid[i] = [f32::NAN, f32::INFINITY, -f32::NAN][rng.below(3)];
            }
            let want = max_and_invalid_portable(&invalid);
            for b in &backends {
                let got = unsafe { (b.max_and_invalid)(&invalid) };
                assert_eq!(
                    (want.0.to_bits(), want.1),
                    (got.0.to_bits(), got.1),
                    "{}",
                    b.name
                );
            }
        }
    }

    #[test]
    fn max_and_invalid_detects_nan_and_positive_infinity() {
        assert_eq!(
            max_and_invalid(&[1.0, 2.0, f32::NEG_INFINITY]),
            (2.0, false)
        );
        assert!(
            max_and_invalid(
                &[1.0; 40]
                    .iter()
                    .copied()
                    .chain([f32::NAN])
                    .collect::<Vec<_>>()
            )
            .1
        );
        assert!(max_and_invalid(&[f32::INFINITY, 1.0]).1);
    }
}
