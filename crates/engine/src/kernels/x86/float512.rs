//! F16 tiles for decode and batch decode (fewer tokens than prefill) at the AVX-512 level, on
//! 512-bit vectors: one cache line of each row per step, 32 values widened 16 at a time with
//! F16C: half the loads and conversions of the 256-bit tiles per value. F32 rows of one token,
//! already as wide as a multiply-add with nothing to widen, stay on the 256-bit tiles, as do
//! BF16 rows where the CPU has no AVX512-BF16. F32 tiles of several tokens (batch decode) take
//! 512 bits: there the multiply-adds, not the memory, set the pace.

use super::super::format::float_code;
use super::super::tile::{FloatRows, Output, Units, FLOAT_AHEAD_BYTES};
use std::arch::x86_64::*;

/// The `R` rows of `units` (F16 or F32, format `F`) times tokens `t0..t0+T` of `x`: each
/// step loads 16 values of each row (F16 widened) and multiplies them by the tokens'
/// activations, and once per cache line of each row prefetches its stream
/// [`FLOAT_AHEAD_BYTES`] ahead (near a row's end, in the row after it: the next tile's, in the
/// same stream; past the matrix's end, the hint is dropped). A row's last values that do not
/// fill 16 are loaded masked, as zeros beyond the row.
///
/// # Safety
/// The CPU must have AVX-512 F/BW/VL and F16C; `V` must be `F`'s storage (16-bit F16 values
/// or f32); rows and tokens must exist; the output cells must belong to this tile.
// (r, t) index loops keep the accumulators in registers, as in the other float tiles
#[allow(clippy::needless_range_loop)]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl")]
pub(in super::super) unsafe fn wide_tile<V: Copy, const F: u8, const R: usize, const T: usize>(
    w: &FloatRows<V>,
    units: Units,
    x: &[f32],
    t0: usize,
    out: Output,
) {
    let size = std::mem::size_of::<V>();
    assert_eq!(size, if F == float_code::F16 { 2 } else { 4 });
    let cols = w.cols;
    let base = w.values.as_ptr() as *const u8;
    let rows: [*const u8; R] =
        std::array::from_fn(|r| base.wrapping_add(units.at(r) * cols * size));
    let tokens: [*const f32; T] = std::array::from_fn(|t| x.as_ptr().wrapping_add((t0 + t) * cols));
    let mut acc = [[_mm512_setzero_ps(); T]; R];
    for c in (0..cols).step_by(16) {
        let mask: __mmask16 = if c + 16 <= cols {
            !0
        } else {
            (1 << (cols - c)) - 1
        };
        if (c * size).is_multiple_of(64) {
            for row in rows {
                let next = row.wrapping_add(c * size + FLOAT_AHEAD_BYTES);
                _mm_prefetch::<_MM_HINT_T0>(next as *const i8);
            }
        }
        // SAFETY: the caller's rows and tokens exist; the mask keeps the loads within them.
        unsafe {
            let mut weights = [_mm512_setzero_ps(); R];
            for r in 0..R {
                let at = rows[r].add(c * size);
                weights[r] = if F == float_code::F16 {
                    _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, at as *const i16))
                } else {
                    _mm512_maskz_loadu_ps(mask, at as *const f32)
                };
            }
            for t in 0..T {
                let xv = _mm512_maskz_loadu_ps(mask, tokens[t].add(c));
                for r in 0..R {
                    acc[r][t] = _mm512_fmadd_ps(weights[r], xv, acc[r][t]);
                }
            }
        }
    }
    for r in 0..R {
        for t in 0..T {
            // SAFETY: the caller owns these cells.
            unsafe { out.write(t0 + t, units.at(r), _mm512_reduce_add_ps(acc[r][t])) };
        }
    }
}
