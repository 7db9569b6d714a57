//! [`panel_scores_at`](super::queries::panel_scores_at) at the SIMD levels: one key group (4
//! values of each of the panel's 16 positions, 64 bytes) is a vector of words that an integer
//! dot multiplies with a query word broadcast, for every query row.

use super::super::kernels::BLOCK;
use super::super::kv_format::PANEL;
use super::queries::QuantizedQueries;
use super::GROUP;
use half::f16;
use std::arch::x86_64::*;

/// Key groups per block.
const GROUPS: usize = BLOCK / GROUP;

/// The scores at AVX-512: `vpdpbusd` multiplies unsigned by signed bytes, so the keys are
/// offset by 128 (`k ^ 0x80`) and each block's dot loses `128 · Σ q` after.
///
/// # Safety
/// The CPU has AVX-512 F/BW/VL and VNNI; `keys` holds `q.blocks · 32 · PANEL` values and
/// `scales` `q.blocks · PANEL`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
pub(super) unsafe fn panel_scores_512<const R: usize>(
    q: &QuantizedQueries<R>,
    scale: f32,
    keys: &[i8],
    scales: &[f16],
) -> [[f32; PANEL]; R] {
    let offset = _mm512_set1_epi8(i8::MIN);
    let mut acc = [_mm512_setzero_ps(); R];
    for b in 0..q.blocks {
        let mut dots = [_mm512_setzero_si512(); R];
        for t in b * GROUPS..(b + 1) * GROUPS {
            // SAFETY: group t of the panel is within `keys` (the caller's length).
            let group = unsafe { _mm512_loadu_si512(keys.as_ptr().add(t * GROUP * PANEL).cast()) };
            let unsigned = _mm512_xor_si512(group, offset);
            for (r, dots) in dots.iter_mut().enumerate() {
                *dots = _mm512_dpbusd_epi32(*dots, unsigned, _mm512_set1_epi32(q.word(r, t)));
            }
        }
        // SAFETY: block b's 16 scales are within `scales` (the caller's length).
        let dk =
            unsafe { _mm512_cvtph_ps(_mm256_loadu_si256(scales.as_ptr().add(b * PANEL).cast())) };
        for r in 0..R {
            let dot = _mm512_sub_epi32(dots[r], _mm512_set1_epi32(128 * q.sums[r][b]));
            let d = _mm512_mul_ps(_mm512_set1_ps(q.d[r][b]), dk);
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), d, acc[r]);
        }
    }
    let mut out = [[0f32; PANEL]; R];
    for (out, acc) in out.iter_mut().zip(acc) {
        let acc = _mm512_mul_ps(acc, _mm512_set1_ps(scale));
        // SAFETY: `out` is one vector of f32.
        unsafe { _mm512_storeu_ps(out.as_mut_ptr(), acc) };
    }
    out
}

/// The scores at AVX2: `vpmaddubsw` multiplies unsigned by signed bytes into saturating 16-bit
/// pairs, so it takes `|k|` and `q` with `k`'s sign (`vpsignb`), whose pairs stay within
/// ±2·127², and `vpmaddwd` by ones sums the pairs into words.
///
/// # Safety
/// The CPU has AVX2, FMA and F16C; `keys` holds `q.blocks · 32 · PANEL` values and `scales`
/// `q.blocks · PANEL`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn panel_scores_256<const R: usize>(
    q: &QuantizedQueries<R>,
    scale: f32,
    keys: &[i8],
    scales: &[f16],
) -> [[f32; PANEL]; R] {
    const HALF: usize = PANEL / 2;
    let ones = _mm256_set1_epi16(1);
    let mut acc = [[_mm256_setzero_ps(); 2]; R];
    for b in 0..q.blocks {
        let mut dots = [[_mm256_setzero_si256(); 2]; R];
        for t in b * GROUPS..(b + 1) * GROUPS {
            for h in 0..2 {
                let at = t * GROUP * PANEL + h * GROUP * HALF;
                // SAFETY: half h of group t is within `keys` (the caller's length).
                let group = unsafe { _mm256_loadu_si256(keys.as_ptr().add(at).cast()) };
                let magnitude = _mm256_abs_epi8(group);
                for (r, dots) in dots.iter_mut().enumerate() {
                    let signed = _mm256_sign_epi8(_mm256_set1_epi32(q.word(r, t)), group);
                    let pairs = _mm256_maddubs_epi16(magnitude, signed);
                    dots[h] = _mm256_add_epi32(dots[h], _mm256_madd_epi16(pairs, ones));
                }
            }
        }
        for h in 0..2 {
            let at = b * PANEL + h * HALF;
            // SAFETY: block b's scales of half h are within `scales` (the caller's length).
            let dk = unsafe { _mm256_cvtph_ps(_mm_loadu_si128(scales.as_ptr().add(at).cast())) };
            for r in 0..R {
                let d = _mm256_mul_ps(_mm256_set1_ps(q.d[r][b]), dk);
                acc[r][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dots[r][h]), d, acc[r][h]);
            }
        }
    }
    let mut out = [[0f32; PANEL]; R];
    for (out, acc) in out.iter_mut().zip(acc) {
        for (h, acc) in acc.into_iter().enumerate() {
            let acc = _mm256_mul_ps(acc, _mm256_set1_ps(scale));
            // SAFETY: half h of `out` holds 8 f32.
            unsafe { _mm256_storeu_ps(out.as_mut_ptr().add(h * HALF), acc) };
        }
    }
    out
}
