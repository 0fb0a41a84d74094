//! AVX2 versions of the hottest passes, for CPUs without AVX-512 (and for `TRADEOFF_SIMD=avx2`).
//! LLVM leaves some of the portable loops scalar at 256 bits (the block sums: a float and an
//! integer accumulator per lane) or vectorises them poorly (the exponential's selects), so these
//! are written with intrinsics, after the AVX-512 ones (`super::avx512`). Each performs exactly
//! the float operations of its portable twin in the parent module, lane for lane: the 16 lanes
//! there are two 256-bit registers here (lanes 0–7 and 8–15), with separate multiplies and adds
//! (no FMA) and the same order of the final sums, so results are bit-identical on every machine;
//! the tests check that.

use std::arch::x86_64::*;

use super::{
    block_tail_exp, block_tail_weights, exp_weights_tail, fold_max_and_invalid, mass_tail,
    max_and_invalid_tail, nucleus_interval, LANES,
};

/// Lanes per 256-bit register.
const HALF: usize = 8;

/// Whether these kernels run: the CPU has AVX2 and `TRADEOFF_SIMD` allows it ([`crate::simd`]).
#[inline]
pub fn available() -> bool {
    crate::simd::level() >= crate::simd::Level::Avx2
}

/// [`super::exp_nonpositive`] on `N` registers of 8 lanes, operation for operation. The `N`
/// independent chains are interleaved step by step: one chain is a long dependent sequence, and
/// at 8 lanes a register the out-of-order window holds too few of them to keep the units busy
/// (with `N` = 6 the exponential pass runs about 1.4x faster than one chain at a time).
#[inline]
#[target_feature(enable = "avx2")]
fn exp<const N: usize>(x: [__m256; N]) -> [__m256; N] {
    let zero = _mm256_setzero_ps();
    let rounder = _mm256_set1_ps(12_582_912.0);
    let (mut underflow, mut xc, mut k, mut k_int, mut r) = (
        [zero; N],
        [zero; N],
        [zero; N],
        [_mm256_setzero_si256(); N],
        [zero; N],
    );
    for j in 0..N {
        underflow[j] = _mm256_cmp_ps::<_CMP_LT_OQ>(x[j], _mm256_set1_ps(-87.3));
        // all-ones lanes clear x to +0.0, as the scalar `if underflow { 0.0 } else { x }`
        xc[j] = _mm256_andnot_ps(underflow[j], x[j]);
    }
    for j in 0..N {
        let shifted = _mm256_add_ps(
            _mm256_mul_ps(xc[j], _mm256_set1_ps(std::f32::consts::LOG2_E)),
            rounder,
        );
        k[j] = _mm256_sub_ps(shifted, rounder);
        k_int[j] = _mm256_sub_epi32(_mm256_castps_si256(shifted), _mm256_castps_si256(rounder));
    }
    for j in 0..N {
        r[j] = _mm256_sub_ps(
            _mm256_sub_ps(xc[j], _mm256_mul_ps(k[j], _mm256_set1_ps(0.693_359_4))),
            _mm256_mul_ps(k[j], _mm256_set1_ps(-2.121_944_4e-4)),
        );
    }
    let mut p = [_mm256_set1_ps(1.987_569_1e-4); N];
    for c in [
        1.398_199_9e-3f32,
        8.333_452e-3,
        4.166_579_6e-2,
        1.666_666_5e-1,
        0.5,
    ] {
        for j in 0..N {
            p[j] = _mm256_add_ps(_mm256_mul_ps(p[j], r[j]), _mm256_set1_ps(c));
        }
    }
    let mut out = [zero; N];
    for j in 0..N {
        let e = _mm256_add_ps(
            _mm256_add_ps(_mm256_mul_ps(p[j], _mm256_mul_ps(r[j], r[j])), r[j]),
            _mm256_set1_ps(1.0),
        );
        let scale = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(
            k_int[j],
            _mm256_set1_epi32(127),
        )));
        out[j] = _mm256_andnot_ps(underflow[j], _mm256_mul_ps(e, scale));
    }
    out
}

/// All-ones lanes where `lo <= v <= hi`.
#[inline]
#[target_feature(enable = "avx2")]
fn support_mask(v: __m256, lo: __m256, hi: __m256) -> __m256 {
    _mm256_and_ps(
        _mm256_cmp_ps::<_CMP_GE_OQ>(v, lo),
        _mm256_cmp_ps::<_CMP_LE_OQ>(v, hi),
    )
}

/// The 16 lanes of two registers, lanes 0–7 from `a`.
#[inline]
#[target_feature(enable = "avx2")]
fn lanes(a: __m256, b: __m256) -> [f32; LANES] {
    let mut out = [0.0f32; LANES];
    // SAFETY: `out` holds 16 floats
    unsafe {
        _mm256_storeu_ps(out.as_mut_ptr(), a);
        _mm256_storeu_ps(out.as_mut_ptr().add(HALF), b);
    }
    out
}

/// The two halves of 16 floats at `p`.
///
/// # Safety
/// `p` must point to 16 readable floats.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn load16(p: *const f32) -> [__m256; 2] {
    unsafe { [_mm256_loadu_ps(p), _mm256_loadu_ps(p.add(HALF))] }
}

/// Sum of the 8 lanes of counts.
#[inline]
#[target_feature(enable = "avx2")]
fn count_lanes(c: __m256i) -> usize {
    let mut out = [0u32; HALF];
    // SAFETY: `out` holds 8 u32
    unsafe { _mm256_storeu_si256(out.as_mut_ptr().cast(), c) };
    out.iter().map(|&x| x as usize).sum()
}

/// [`super::exp_weights_in`].
///
/// # Safety
/// The CPU must support AVX2 ([`available`]); `e.len() >= values.len()`.
#[target_feature(enable = "avx2")]
pub unsafe fn exp_weights_in(
    values: &[f32],
    lo: f32,
    hi: f32,
    max: f32,
    e: &mut [f32],
) -> (f32, f32) {
    assert!(e.len() >= values.len());
    let done = values.len() / LANES * LANES;
    let wide = values.len() / (3 * LANES) * (3 * LANES);
    let mut acc = [_mm256_setzero_ps(); 2];
    let mut acc_x = [_mm256_setzero_ps(); 2];
    // three groups of 16 lanes a step, then single groups
    for i in (0..wide).step_by(3 * LANES) {
        // SAFETY: i + 48 <= wide <= values.len() <= e.len()
        unsafe { exp_weights_step::<6>(values, e, i, (lo, hi, max), &mut acc, &mut acc_x) };
    }
    for i in (wide..done).step_by(LANES) {
        // SAFETY: i + 16 <= done <= values.len() <= e.len()
        unsafe { exp_weights_step::<2>(values, e, i, (lo, hi, max), &mut acc, &mut acc_x) };
    }
    let (mut acc, mut acc_x) = (lanes(acc[0], acc[1]), lanes(acc_x[0], acc_x[1]));
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

/// `N` registers (N / 2 groups of 16 lanes) of [`exp_weights_in`] from entry `i`: register j
/// holds lanes 0–7 (even j) or 8–15 (odd j) of its group, and adds into `acc[j % 2]` in order.
///
/// # Safety
/// `i + 8 N <= values.len() <= e.len()`.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn exp_weights_step<const N: usize>(
    values: &[f32],
    e: &mut [f32],
    i: usize,
    (lo, hi, max): (f32, f32, f32),
    acc: &mut [__m256; 2],
    acc_x: &mut [__m256; 2],
) {
    let (vlo, vhi, vmax) = (_mm256_set1_ps(lo), _mm256_set1_ps(hi), _mm256_set1_ps(max));
    let (mut keep, mut x) = ([_mm256_setzero_ps(); N], [_mm256_setzero_ps(); N]);
    for j in 0..N {
        // SAFETY: i + 8 N <= values.len()
        let v = unsafe { _mm256_loadu_ps(values.as_ptr().add(i + j * HALF)) };
        keep[j] = support_mask(v, vlo, vhi);
        // +0.0 outside the support, as the scalar `if keep { v - max } else { 0.0 }`
        x[j] = _mm256_and_ps(keep[j], _mm256_sub_ps(v, vmax));
    }
    let ex = exp(x);
    for j in 0..N {
        let w = _mm256_and_ps(keep[j], ex[j]);
        // SAFETY: i + 8 N <= e.len()
        unsafe { _mm256_storeu_ps(e.as_mut_ptr().add(i + j * HALF), w) };
        acc[j % 2] = _mm256_add_ps(acc[j % 2], w);
        acc_x[j % 2] = _mm256_add_ps(acc_x[j % 2], _mm256_mul_ps(w, x[j]));
    }
}

/// [`super::nucleus_mass_at_or_below`]: the key is `-v`, so `key <= t` is `v >= -t` (exact).
///
/// # Safety
/// The CPU must support AVX2 ([`available`]); `e.len() >= values.len()`.
#[target_feature(enable = "avx2")]
pub unsafe fn nucleus_mass_at_or_below(
    values: &[f32],
    e: &[f32],
    lo: f32,
    hi: f32,
    t: &[f32; 4],
) -> [f64; 4] {
    assert!(e.len() >= values.len());
    let done = values.len() / LANES * LANES;
    let (vlo, vhi) = (_mm256_set1_ps(lo), _mm256_set1_ps(hi));
    let floors = t.map(|tj| _mm256_set1_ps(-tj));
    let mut m = [[_mm256_setzero_ps(); 2]; 4];
    for i in (0..done).step_by(LANES) {
        // SAFETY: i + 16 <= done <= values.len() <= e.len()
        let v = unsafe { load16(values.as_ptr().add(i)) };
        let w = unsafe { load16(e.as_ptr().add(i)) };
        for h in 0..2 {
            let keep = support_mask(v[h], vlo, vhi);
            // the support's weight, +0.0 outside: the scalar `if keep { w } else { 0.0 }`
            let kept = _mm256_and_ps(keep, w[h]);
            for j in 0..4 {
                let below = _mm256_cmp_ps::<_CMP_GE_OQ>(v[h], floors[j]);
                // adding +0.0 where the scalar code adds 0.0: the same sums
                m[j][h] = _mm256_add_ps(m[j][h], _mm256_and_ps(below, kept));
            }
        }
    }
    let mut m = m.map(|[a, b]| lanes(a, b));
    let [m0, m1, m2, m3] = &mut m;
    mass_tail(
        &values[done..],
        &e[done..],
        lo,
        hi,
        t,
        |v| -v,
        [&mut m0[0], &mut m1[0], &mut m2[0], &mut m3[0]],
    );
    m.map(|lanes| lanes.iter().map(|&x| x as f64).sum::<f64>())
}

/// [`super::typical_mass_at_or_below`], with typical's gap computed as
/// [`super::typical_gap`] does (negation and absolute value are exact bit operations).
///
/// # Safety
/// The CPU must support AVX2 ([`available`]); `e.len() >= values.len()`.
#[target_feature(enable = "avx2")]
pub unsafe fn typical_mass_at_or_below(
    values: &[f32],
    e: &[f32],
    lo: f32,
    hi: f32,
    t: &[f32; 4],
    (max, log_sum, entropy): (f32, f32, f32),
) -> [f64; 4] {
    assert!(e.len() >= values.len());
    let done = values.len() / LANES * LANES;
    let (vlo, vhi) = (_mm256_set1_ps(lo), _mm256_set1_ps(hi));
    let (vmax, vls, vent) = (
        _mm256_set1_ps(max),
        _mm256_set1_ps(log_sum),
        _mm256_set1_ps(entropy),
    );
    let sign = _mm256_set1_ps(-0.0);
    let thresholds = t.map(|tj| _mm256_set1_ps(tj));
    let mut m = [[_mm256_setzero_ps(); 2]; 4];
    for i in (0..done).step_by(LANES) {
        // SAFETY: i + 16 <= done <= values.len() <= e.len()
        let v = unsafe { load16(values.as_ptr().add(i)) };
        let w = unsafe { load16(e.as_ptr().add(i)) };
        for h in 0..2 {
            let keep = support_mask(v[h], vlo, vhi);
            let kept = _mm256_and_ps(keep, w[h]);
            let inner = _mm256_sub_ps(_mm256_sub_ps(v[h], vmax), vls);
            let d = _mm256_sub_ps(_mm256_xor_ps(inner, sign), vent);
            let gap = _mm256_andnot_ps(sign, d);
            for j in 0..4 {
                let below = _mm256_cmp_ps::<_CMP_LE_OQ>(gap, thresholds[j]);
                m[j][h] = _mm256_add_ps(m[j][h], _mm256_and_ps(below, kept));
            }
        }
    }
    let mut m = m.map(|[a, b]| lanes(a, b));
    let [m0, m1, m2, m3] = &mut m;
    let gap = |v| super::typical_gap(v, max, log_sum, entropy);
    mass_tail(
        &values[done..],
        &e[done..],
        lo,
        hi,
        t,
        gap,
        [&mut m0[0], &mut m1[0], &mut m2[0], &mut m3[0]],
    );
    m.map(|lanes| lanes.iter().map(|&x| x as f64).sum::<f64>())
}

/// [`super::block_sums_weights_in`].
///
/// # Safety
/// The CPU must support AVX2 ([`available`]); `e.len() >= values.len()`.
#[target_feature(enable = "avx2")]
pub unsafe fn block_sums_weights_in(
    values: &[f32],
    e: &[f32],
    lo: f32,
    hi: f32,
    block: usize,
    out: &mut Vec<f64>,
) -> (f64, usize) {
    assert!(e.len() >= values.len());
    out.clear();
    let (vlo, vhi) = (_mm256_set1_ps(lo), _mm256_set1_ps(hi));
    let mut total = 0.0f64;
    let mut count = 0usize;
    // per-lane counts: a support mask lane is -1, so subtracting it counts the token
    let mut counts = _mm256_setzero_si256();
    for (vb, eb) in values.chunks(block).zip(e.chunks(block)) {
        let done = vb.len() / LANES * LANES;
        let mut acc = [_mm256_setzero_ps(); 2];
        for i in (0..done).step_by(LANES) {
            // SAFETY: i + 16 <= done <= vb.len() <= eb.len()
            let v = unsafe { load16(vb.as_ptr().add(i)) };
            let w = unsafe { load16(eb.as_ptr().add(i)) };
            for h in 0..2 {
                let keep = support_mask(v[h], vlo, vhi);
                acc[h] = _mm256_add_ps(acc[h], _mm256_and_ps(keep, w[h]));
                counts = _mm256_sub_epi32(counts, _mm256_castps_si256(keep));
            }
        }
        let mut acc = lanes(acc[0], acc[1]);
        count += block_tail_weights(&vb[done..], &eb[done..], lo, hi, &mut acc[0]);
        let s: f64 = acc.iter().map(|&a| a as f64).sum();
        out.push(s);
        total += s;
    }
    (total, count + count_lanes(counts))
}

/// [`super::block_sums_exp_in`].
///
/// # Safety
/// The CPU must support AVX2 ([`available`]).
#[target_feature(enable = "avx2")]
pub unsafe fn block_sums_exp_in(
    values: &[f32],
    lo: f32,
    hi: f32,
    max: f32,
    block: usize,
    out: &mut Vec<f64>,
) -> (f64, usize) {
    out.clear();
    let (vlo, vhi, vmax) = (_mm256_set1_ps(lo), _mm256_set1_ps(hi), _mm256_set1_ps(max));
    let mut total = 0.0f64;
    let mut count = 0usize;
    let mut counts = _mm256_setzero_si256();
    for vb in values.chunks(block) {
        let done = vb.len() / LANES * LANES;
        let mut acc = [_mm256_setzero_ps(); 2];
        for i in (0..done).step_by(LANES) {
            // SAFETY: i + 16 <= done <= vb.len()
            let v = unsafe { load16(vb.as_ptr().add(i)) };
            let e = exp([_mm256_sub_ps(v[0], vmax), _mm256_sub_ps(v[1], vmax)]);
            for h in 0..2 {
                let keep = support_mask(v[h], vlo, vhi);
                acc[h] = _mm256_add_ps(acc[h], _mm256_and_ps(keep, e[h]));
                counts = _mm256_sub_epi32(counts, _mm256_castps_si256(keep));
            }
        }
        let mut acc = lanes(acc[0], acc[1]);
        count += block_tail_exp(&vb[done..], lo, hi, max, &mut acc[0]);
        let s: f64 = acc.iter().map(|&a| a as f64).sum();
        out.push(s);
        total += s;
    }
    (total, count + count_lanes(counts))
}

/// [`super::max_and_invalid`]: `vmaxps(v, max)` is `if v > max { v } else { max }` exactly
/// (the second operand where either is NaN or both are zeros), and `!(v < inf)` is the unordered
/// not-less-than compare.
///
/// # Safety
/// The CPU must support AVX2 ([`available`]).
#[target_feature(enable = "avx2")]
pub unsafe fn max_and_invalid(row: &[f32]) -> (f32, bool) {
    let done = row.len() / LANES * LANES;
    let inf = _mm256_set1_ps(f32::INFINITY);
    let mut max = [_mm256_set1_ps(f32::NEG_INFINITY); 2];
    let mut bad = [_mm256_setzero_ps(); 2];
    for i in (0..done).step_by(LANES) {
        // SAFETY: i + 16 <= done <= row.len()
        let v = unsafe { load16(row.as_ptr().add(i)) };
        for h in 0..2 {
            max[h] = _mm256_max_ps(v[h], max[h]);
            bad[h] = _mm256_or_ps(bad[h], _mm256_cmp_ps::<_CMP_NLT_UQ>(v[h], inf));
        }
    }
    let mut max = lanes(max[0], max[1]);
    let bits = _mm256_movemask_ps(bad[0]) | _mm256_movemask_ps(bad[1]) << HALF;
    let mut flags = std::array::from_fn(|l| bits >> l & 1 == 1);
    max_and_invalid_tail(&row[done..], &mut max[0], &mut flags[0]);
    fold_max_and_invalid(&max, &flags)
}

/// [`super::gather_nucleus`]: the bracket test as two compares ([`nucleus_interval`]), then
/// the set bits of the mask, in index order.
///
/// # Safety
/// The CPU must support AVX2 ([`available`]); `e.len() >= values.len()`.
#[target_feature(enable = "avx2")]
pub unsafe fn gather_nucleus(
    values: &[f32],
    e: &[f32],
    lo: f32,
    hi: f32,
    bracket: (f32, f32),
    out: &mut Vec<(f32, f32)>,
) {
    assert!(e.len() >= values.len());
    out.clear();
    let (lower, upper) = nucleus_interval(lo, hi, bracket);
    let (vlower, vupper) = (_mm256_set1_ps(lower), _mm256_set1_ps(upper));
    let done = values.len() / LANES * LANES;
    for i in (0..done).step_by(LANES) {
        // SAFETY: i + 16 <= done <= values.len()
        let v = unsafe { load16(values.as_ptr().add(i)) };
        let hit = v.map(|v| {
            _mm256_movemask_ps(_mm256_and_ps(
                _mm256_cmp_ps::<_CMP_GE_OQ>(v, vlower),
                _mm256_cmp_ps::<_CMP_LE_OQ>(v, vupper),
            ))
        });
        let mut hit = (hit[0] | hit[1] << HALF) as u32;
        while hit != 0 {
            let j = i + hit.trailing_zeros() as usize;
            out.push((-values[j], e[j]));
            hit &= hit - 1;
        }
    }
    for j in done..values.len() {
        let v = values[j];
        if v >= lower && v <= upper {
            out.push((-v, e[j]));
        }
    }
}
