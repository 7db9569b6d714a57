//! BF16 dot products (AVX512-BF16) for BF16 weights against BF16 activations.

use super::super::tile::{FloatRows, Output};
use std::arch::x86_64::*;

/// BF16 rows `r0..r0+R` times tokens `t0..t0+T` of `x` (bf16 bit patterns): 16 columns of
/// each row per `vdpbf16ps`, f32 accumulation.
///
/// # Safety
/// The CPU must have AVX-512 VL and BF16; rows and tokens must exist; the output cells must
/// belong to this tile.
// (r, t) index loops keep the accumulators in registers, as in the float tiles
#[allow(clippy::needless_range_loop)]
#[target_feature(enable = "avx2,fma,avx512f,avx512vl,avx512bf16")]
pub(in super::super) unsafe fn tile<const R: usize, const T: usize>(
    w: &FloatRows<u16>,
    r0: usize,
    x: &[u16],
    t0: usize,
    out: Output,
) {
    let cols = w.cols;
    let main = cols / 16 * 16;
    let mut acc = [[_mm256_setzero_ps(); T]; R];
    let mut c = 0;
    while c < main {
        // SAFETY: rows r0..r0+R and tokens t0..t0+T exist and c + 16 <= cols.
        unsafe {
            let mut weights = [_mm256_setzero_si256(); R];
            for (r, v) in weights.iter_mut().enumerate() {
                *v = _mm256_loadu_si256(
                    w.values.as_ptr().add((r0 + r) * cols + c) as *const __m256i
                );
            }
            for t in 0..T {
                let xv = _mm256_loadu_si256(x.as_ptr().add((t0 + t) * cols + c) as *const __m256i);
                let xv = std::mem::transmute::<__m256i, __m256bh>(xv);
                for r in 0..R {
                    let wv = std::mem::transmute::<__m256i, __m256bh>(weights[r]);
                    acc[r][t] = _mm256_dpbf16_ps(acc[r][t], wv, xv);
                }
            }
        }
        c += 16;
    }
    let widen = |bits: u16| f32::from_bits((bits as u32) << 16);
    for r in 0..R {
        for t in 0..T {
            let mut lanes = [0f32; 8];
            // SAFETY: lanes holds 8 floats.
            unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), acc[r][t]) };
            let mut total: f32 = lanes.iter().sum();
            for c in main..cols {
                total += widen(w.values[(r0 + r) * cols + c]) * widen(x[(t0 + t) * cols + c]);
            }
            // SAFETY: the caller owns these cells.
            unsafe { out.write(t0 + t, r0 + r, total) };
        }
    }
}
