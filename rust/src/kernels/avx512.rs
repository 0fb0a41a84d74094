//! AVX-512 versions of the hottest passes, written with intrinsics because LLVM's generic tuning
//! keeps auto-vectorised code at 256 bits. Each one performs exactly the float operations of its
//! portable twin in the parent module, lane for lane (16 lanes there, one 512-bit register here,
//! separate multiplies and adds, the same order of the final sums), so results are bit-identical
//! on every machine; the tests check that.

use std::arch::x86_64::*;

use super::{
    block_tail_exp, block_tail_weights, exp_weights_tail, fold_max_and_invalid, mass_tail,
    max_and_invalid_tail, nucleus_interval, LANES,
};

/// Whether these kernels run: the CPU has AVX-512F and `TRADEOFF_SIMD` allows it
/// ([`crate::simd`]).
#[inline]
pub fn available() -> bool {
    crate::simd::level() >= crate::simd::Level::Avx512
}

/// [`super::exp_nonpositive`] on 16 lanes, operation for operation.
#[inline]
#[target_feature(enable = "avx512f")]
fn exp16(x: __m512) -> __m512 {
    let underflow = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, _mm512_set1_ps(-87.3));
    let xc = _mm512_mask_mov_ps(x, underflow, _mm512_setzero_ps());
    let rounder = _mm512_set1_ps(12_582_912.0);
    let shifted = _mm512_add_ps(
        _mm512_mul_ps(xc, _mm512_set1_ps(std::f32::consts::LOG2_E)),
        rounder,
    );
    let k = _mm512_sub_ps(shifted, rounder);
    let k_int = _mm512_sub_epi32(_mm512_castps_si512(shifted), _mm512_castps_si512(rounder));
    let r = _mm512_sub_ps(
        _mm512_sub_ps(xc, _mm512_mul_ps(k, _mm512_set1_ps(0.693_359_4))),
        _mm512_mul_ps(k, _mm512_set1_ps(-2.121_944_4e-4)),
    );
    let mut p = _mm512_set1_ps(1.987_569_1e-4);
    for c in [
        1.398_199_9e-3f32,
        8.333_452e-3,
        4.166_579_6e-2,
        1.666_666_5e-1,
        0.5,
    ] {
        p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(c));
    }
    let e = _mm512_add_ps(
        _mm512_add_ps(_mm512_mul_ps(p, _mm512_mul_ps(r, r)), r),
        _mm512_set1_ps(1.0),
    );
    let scale = _mm512_castsi512_ps(_mm512_slli_epi32::<23>(_mm512_add_epi32(
        k_int,
        _mm512_set1_epi32(127),
    )));
    _mm512_maskz_mul_ps(!underflow, e, scale)
}

#[inline]
#[target_feature(enable = "avx512f")]
fn support_mask(v: __m512, lo: __m512, hi: __m512) -> __mmask16 {
    _mm512_cmp_ps_mask::<_CMP_GE_OQ>(v, lo) & _mm512_cmp_ps_mask::<_CMP_LE_OQ>(v, hi)
}

#[inline]
#[target_feature(enable = "avx512f")]
fn lanes(x: __m512) -> [f32; LANES] {
    let mut out = [0.0f32; LANES];
    // SAFETY: `out` holds 16 floats
    unsafe { _mm512_storeu_ps(out.as_mut_ptr(), x) };
    out
}

/// [`super::exp_weights_in`].
///
/// # Safety
/// The CPU must support AVX-512F ([`available`]); `e.len() >= values.len()`.
#[target_feature(enable = "avx512f")]
pub unsafe fn exp_weights_in(
    values: &[f32],
    lo: f32,
    hi: f32,
    max: f32,
    e: &mut [f32],
) -> (f32, f32) {
    assert!(e.len() >= values.len());
    let done = values.len() / LANES * LANES;
    let (vlo, vhi, vmax) = (_mm512_set1_ps(lo), _mm512_set1_ps(hi), _mm512_set1_ps(max));
    let (mut acc, mut acc_x) = (_mm512_setzero_ps(), _mm512_setzero_ps());
    for i in (0..done).step_by(LANES) {
        // SAFETY: i + 16 <= done <= values.len() <= e.len()
        let v = unsafe { _mm512_loadu_ps(values.as_ptr().add(i)) };
        let keep = support_mask(v, vlo, vhi);
        let x = _mm512_maskz_sub_ps(keep, v, vmax);
        let w = _mm512_maskz_mov_ps(keep, exp16(x));
        unsafe { _mm512_storeu_ps(e.as_mut_ptr().add(i), w) };
        acc = _mm512_add_ps(acc, w);
        acc_x = _mm512_add_ps(acc_x, _mm512_mul_ps(w, x));
    }
    let (mut acc, mut acc_x) = (lanes(acc), lanes(acc_x));
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

/// [`super::nucleus_mass_at_or_below`]: the key is `-v`, so `key <= t` is `v >= -t` (exact).
///
/// # Safety
/// The CPU must support AVX-512F ([`available`]); `e.len() >= values.len()`.
#[target_feature(enable = "avx512f")]
pub unsafe fn nucleus_mass_at_or_below(
    values: &[f32],
    e: &[f32],
    lo: f32,
    hi: f32,
    t: &[f32; 4],
) -> [f64; 4] {
    assert!(e.len() >= values.len());
    let done = values.len() / LANES * LANES;
    let (vlo, vhi) = (_mm512_set1_ps(lo), _mm512_set1_ps(hi));
    let floors = t.map(|tj| _mm512_set1_ps(-tj));
    let mut m = [_mm512_setzero_ps(); 4];
    for i in (0..done).step_by(LANES) {
        // SAFETY: i + 16 <= done <= values.len() <= e.len()
        let v = unsafe { _mm512_loadu_ps(values.as_ptr().add(i)) };
        let w = unsafe { _mm512_loadu_ps(e.as_ptr().add(i)) };
        let keep = support_mask(v, vlo, vhi);
        for j in 0..4 {
            let below = keep & _mm512_cmp_ps_mask::<_CMP_GE_OQ>(v, floors[j]);
            // adding 0.0 where the scalar code adds 0.0: the same sums
            m[j] = _mm512_add_ps(m[j], _mm512_maskz_mov_ps(below, w));
        }
    }
    let mut m = m.map(|x| lanes(x));
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

/// [`super::block_sums_weights_in`].
///
/// # Safety
/// The CPU must support AVX-512F ([`available`]); `e.len() >= values.len()`.
#[target_feature(enable = "avx512f")]
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
    let (vlo, vhi) = (_mm512_set1_ps(lo), _mm512_set1_ps(hi));
    let mut total = 0.0f64;
    let mut count = 0usize;
    for (vb, eb) in values.chunks(block).zip(e.chunks(block)) {
        let done = vb.len() / LANES * LANES;
        let mut acc = _mm512_setzero_ps();
        for i in (0..done).step_by(LANES) {
            // SAFETY: i + 16 <= done <= vb.len() <= eb.len()
            let v = unsafe { _mm512_loadu_ps(vb.as_ptr().add(i)) };
            let w = unsafe { _mm512_loadu_ps(eb.as_ptr().add(i)) };
            let keep = support_mask(v, vlo, vhi);
            acc = _mm512_add_ps(acc, _mm512_maskz_mov_ps(keep, w));
            count += keep.count_ones() as usize;
        }
        let mut acc = lanes(acc);
        count += block_tail_weights(&vb[done..], &eb[done..], lo, hi, &mut acc[0]);
        let s: f64 = acc.iter().map(|&a| a as f64).sum();
        out.push(s);
        total += s;
    }
    (total, count)
}

/// [`super::block_sums_exp_in`].
///
/// # Safety
/// The CPU must support AVX-512F ([`available`]).
#[target_feature(enable = "avx512f")]
pub unsafe fn block_sums_exp_in(
    values: &[f32],
    lo: f32,
    hi: f32,
    max: f32,
    block: usize,
    out: &mut Vec<f64>,
) -> (f64, usize) {
    out.clear();
    let (vlo, vhi, vmax) = (_mm512_set1_ps(lo), _mm512_set1_ps(hi), _mm512_set1_ps(max));
    let mut total = 0.0f64;
    let mut count = 0usize;
    for vb in values.chunks(block) {
        let done = vb.len() / LANES * LANES;
        let mut acc = _mm512_setzero_ps();
        for i in (0..done).step_by(LANES) {
            // SAFETY: i + 16 <= done <= vb.len()
            let v = unsafe { _mm512_loadu_ps(vb.as_ptr().add(i)) };
            let keep = support_mask(v, vlo, vhi);
            let e = exp16(_mm512_sub_ps(v, vmax));
            acc = _mm512_add_ps(acc, _mm512_maskz_mov_ps(keep, e));
            count += keep.count_ones() as usize;
        }
        let mut acc = lanes(acc);
        count += block_tail_exp(&vb[done..], lo, hi, max, &mut acc[0]);
        let s: f64 = acc.iter().map(|&a| a as f64).sum();
        out.push(s);
        total += s;
    }
    (total, count)
}

/// [`super::typical_mass_at_or_below`], with typical's gap computed as
/// [`super::typical_gap`] does (negation and absolute value are exact bit operations).
///
/// # Safety
/// The CPU must support AVX-512F ([`available`]); `e.len() >= values.len()`.
#[target_feature(enable = "avx512f")]
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
    let (vlo, vhi) = (_mm512_set1_ps(lo), _mm512_set1_ps(hi));
    let (vmax, vls, vent) = (
        _mm512_set1_ps(max),
        _mm512_set1_ps(log_sum),
        _mm512_set1_ps(entropy),
    );
    let sign = _mm512_set1_epi32(i32::MIN);
    let thresholds = t.map(|tj| _mm512_set1_ps(tj));
    let mut m = [_mm512_setzero_ps(); 4];
    for i in (0..done).step_by(LANES) {
        // SAFETY: i + 16 <= done <= values.len() <= e.len()
        let v = unsafe { _mm512_loadu_ps(values.as_ptr().add(i)) };
        let w = unsafe { _mm512_loadu_ps(e.as_ptr().add(i)) };
        let keep = support_mask(v, vlo, vhi);
        let inner = _mm512_sub_ps(_mm512_sub_ps(v, vmax), vls);
        let negated = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(inner), sign));
        let d = _mm512_sub_ps(negated, vent);
        let gap = _mm512_castsi512_ps(_mm512_andnot_si512(sign, _mm512_castps_si512(d)));
        for j in 0..4 {
            let below = keep & _mm512_cmp_ps_mask::<_CMP_LE_OQ>(gap, thresholds[j]);
            m[j] = _mm512_add_ps(m[j], _mm512_maskz_mov_ps(below, w));
        }
    }
    let mut m = m.map(|x| lanes(x));
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

/// [`super::max_and_invalid`]: `vmaxps(v, max)` is `if v > max { v } else { max }` exactly
/// (the second operand where either is NaN or both are zeros), and `!(v < inf)` is the unordered
/// not-less-than compare.
///
/// # Safety
/// The CPU must support AVX-512F ([`available`]).
#[target_feature(enable = "avx512f")]
pub unsafe fn max_and_invalid(row: &[f32]) -> (f32, bool) {
    let done = row.len() / LANES * LANES;
    let inf = _mm512_set1_ps(f32::INFINITY);
    let mut max = _mm512_set1_ps(f32::NEG_INFINITY);
    let mut bad: __mmask16 = 0;
    for i in (0..done).step_by(LANES) {
        // SAFETY: i + 16 <= done <= row.len()
        let v = unsafe { _mm512_loadu_ps(row.as_ptr().add(i)) };
        max = _mm512_max_ps(v, max);
        bad |= _mm512_cmp_ps_mask::<_CMP_NLT_UQ>(v, inf);
    }
    let mut max = lanes(max);
    let mut flags = std::array::from_fn(|l| bad >> l & 1 == 1);
    max_and_invalid_tail(&row[done..], &mut max[0], &mut flags[0]);
    fold_max_and_invalid(&max, &flags)
}

/// [`super::gather_nucleus`]: the bracket test as two compares ([`nucleus_interval`]), then
/// the set bits of the mask, in index order.
///
/// # Safety
/// The CPU must support AVX-512F ([`available`]); `e.len() >= values.len()`.
#[target_feature(enable = "avx512f")]
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
    let (vlower, vupper) = (_mm512_set1_ps(lower), _mm512_set1_ps(upper));
    let done = values.len() / LANES * LANES;
    for i in (0..done).step_by(LANES) {
        // SAFETY: i + 16 <= done <= values.len()
        let v = unsafe { _mm512_loadu_ps(values.as_ptr().add(i)) };
        let mut hit = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(v, vlower)
            & _mm512_cmp_ps_mask::<_CMP_LE_OQ>(v, vupper);
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
