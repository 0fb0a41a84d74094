//! The bulk draws of the parent module with AVX-512 intrinsics: the eight lanes' states in four
//! 512-bit registers, Lemire's multiply on both 32-bit halves, two 8-wide gathers and adds per
//! step. The same operations in the same order as the portable code, so sums are bit-identical.

use std::arch::x86_64::*;

use super::{redraw_rejected, rejection_threshold, LaneStates, LANES};

/// Whether this path runs: the CPU has AVX-512F and `TRADEOFF_SIMD` allows it
/// ([`crate::simd`]).
#[inline]
pub fn available() -> bool {
    crate::simd::level() >= crate::simd::Level::Avx512
}

/// Adds the draws of `steps` full steps into `acc` (slot j into acc[j]).
///
/// # Safety
/// The CPU must have AVX-512F, and `values` must have `1..=2^32` entries.
#[target_feature(enable = "avx512f")]
pub unsafe fn add_draws(
    state: &mut LaneStates,
    values: &[f64],
    steps: usize,
    acc: &mut [f64; 2 * LANES],
) {
    let n = values.len() as u64;
    let threshold = rejection_threshold(n);
    let load = |w: &[u64; LANES]| _mm512_loadu_si512(w.as_ptr().cast());
    let (mut s0, mut s1, mut s2, mut s3) = (
        load(&state[0]),
        load(&state[1]),
        load(&state[2]),
        load(&state[3]),
    );
    let mut acc_lo = _mm512_loadu_pd(acc.as_ptr());
    let mut acc_hi = _mm512_loadu_pd(acc.as_ptr().add(LANES));
    let n_vec = _mm512_set1_epi64(n as i64);
    let threshold_vec = _mm512_set1_epi64(threshold as i64);
    let low_word = _mm512_set1_epi64(0xFFFF_FFFF);
    for _ in 0..steps {
        let out = _mm512_add_epi64(_mm512_rol_epi64::<23>(_mm512_add_epi64(s0, s3)), s0);
        let t = _mm512_slli_epi64::<17>(s1);
        s2 = _mm512_xor_si512(s2, s0);
        s3 = _mm512_xor_si512(s3, s1);
        s1 = _mm512_xor_si512(s1, s2);
        s0 = _mm512_xor_si512(s0, s3);
        s2 = _mm512_xor_si512(s2, t);
        s3 = _mm512_rol_epi64::<45>(s3);
        // mul_epu32 multiplies the low 32 bits of each lane: the low half, then the high one.
        let m_lo = _mm512_mul_epu32(out, n_vec);
        let m_hi = _mm512_mul_epu32(_mm512_srli_epi64::<32>(out), n_vec);
        let rejected = _mm512_cmplt_epu64_mask(_mm512_and_si512(m_lo, low_word), threshold_vec)
            | _mm512_cmplt_epu64_mask(_mm512_and_si512(m_hi, low_word), threshold_vec);
        let (idx_lo, idx_hi) = if rejected == 0 {
            (_mm512_srli_epi64::<32>(m_lo), _mm512_srli_epi64::<32>(m_hi))
        } else {
            // Rare: the portable redraw, on the state as it is after this step.
            let mut s = [[0u64; LANES]; 4];
            for (w, v) in s.iter_mut().zip([s0, s1, s2, s3]) {
                _mm512_storeu_si512(w.as_mut_ptr().cast(), v);
            }
            let mut words = [0u64; LANES];
            _mm512_storeu_si512(words.as_mut_ptr().cast(), out);
            let mut slots = [0usize; 2 * LANES];
            redraw_rejected(&mut s, &words, n, &mut slots);
            (s0, s1, s2, s3) = (load(&s[0]), load(&s[1]), load(&s[2]), load(&s[3]));
            let as_i64 = |slots: &[usize]| -> [i64; LANES] {
                let mut out = [0i64; LANES];
                for (o, &v) in out.iter_mut().zip(slots) {
                    *o = v as i64;
                }
                out
            };
            let (lo, hi) = (as_i64(&slots[..LANES]), as_i64(&slots[LANES..]));
            (
                _mm512_loadu_si512(lo.as_ptr().cast()),
                _mm512_loadu_si512(hi.as_ptr().cast()),
            )
        };
        // Every index is below n = values.len() (Lemire's map), so the gathers stay in bounds.
        let g_lo = _mm512_i64gather_pd::<8>(idx_lo, values.as_ptr().cast());
        let g_hi = _mm512_i64gather_pd::<8>(idx_hi, values.as_ptr().cast());
        acc_lo = _mm512_add_pd(acc_lo, g_lo);
        acc_hi = _mm512_add_pd(acc_hi, g_hi);
    }
    for (w, v) in state.iter_mut().zip([s0, s1, s2, s3]) {
        _mm512_storeu_si512(w.as_mut_ptr().cast(), v);
    }
    _mm512_storeu_pd(acc.as_mut_ptr(), acc_lo);
    _mm512_storeu_pd(acc.as_mut_ptr().add(LANES), acc_hi);
}
