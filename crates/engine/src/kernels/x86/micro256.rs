//! The micro-kernels of float prefill at the AVX2 level (see `kernels::packed`): 16 rows by up
//! to [`MICRO_TOKENS`](super::super::micro::MICRO_TOKENS) tokens of sums in 12 of AVX2's 16
//! 256-bit registers, one column's outer product per step.

use super::super::micro::MicroTile;
use super::avx2::{prefetch_outputs, store_sums};
use std::arch::x86_64::*;

/// One depth step `$k` of a half micro-panel (`$steps`, 16-byte slots) against the tokens `$x`,
/// added to the sums `$acc`; a macro, so the sums stay in registers.
macro_rules! half_step {
    ($acc:ident, $x:ident, $steps:ident, $k:expr, $tokens:ident) => {{
        let k = $k;
        // SAFETY: step k < depth is the micro-panel's; its two halves are aligned slots.
        let (lo, hi) = unsafe {
            (
                _mm256_cvtph_ps(_mm_load_si128($steps.add(2 * k))),
                _mm256_cvtph_ps(_mm_load_si128($steps.add(2 * k + 1))),
            )
        };
        for t in 0..$tokens {
            // SAFETY: every token has the tile's depth of columns from x[t].
            let b = _mm256_set1_ps(unsafe { *$x[t].add(k) });
            $acc[t][0] = _mm256_fmadd_ps(lo, b, $acc[t][0]);
            $acc[t][1] = _mm256_fmadd_ps(hi, b, $acc[t][1]);
        }
    }};
}

/// The outputs of `T` tokens by a micro-panel's 16 rows: each step loads one column (two
/// vectors of rows), broadcasts each token's activation of that column and multiply-adds, so
/// the 2·T accumulators stay in registers for the whole depth.
///
/// # Safety
/// The CPU must have AVX2, FMA and F16C; `tile` must describe existing activations and output
/// cells owned by this call.
// (t, h) index loops keep the accumulators in registers
#[allow(clippy::needless_range_loop)]
#[target_feature(enable = "avx2,fma,f16c")]
pub(in super::super) unsafe fn micro_kernel<const T: usize>(tile: MicroTile) {
    let mut acc = [[_mm256_setzero_ps(); 2]; T];
    // SAFETY: the tile's tokens exist.
    let x: [*const f32; T] = std::array::from_fn(|t| unsafe { tile.token(t) });
    // SAFETY: the CPU has the features.
    unsafe { prefetch_outputs::<T, f32>(&tile) };
    for (k, column) in tile.panel.iter().enumerate() {
        // SAFETY: a column holds 16 aligned floats.
        let (lo, hi) = unsafe {
            (
                _mm256_load_ps(column.0.as_ptr()),
                _mm256_load_ps(column.0.as_ptr().add(8)),
            )
        };
        for t in 0..T {
            // SAFETY: every token has the panel's depth of columns from x[t].
            let b = _mm256_set1_ps(unsafe { *x[t].add(k) });
            acc[t][0] = _mm256_fmadd_ps(lo, b, acc[t][0]);
            acc[t][1] = _mm256_fmadd_ps(hi, b, acc[t][1]);
        }
    }
    // SAFETY: the tile owns its output cells.
    unsafe { store_sums(&tile, acc) };
}

/// As [`micro_kernel`], over a half micro-panel of F16 values: each column's two depth steps
/// are widened (F16C) as they are loaded.
///
/// # Safety
/// As [`micro_kernel`]; the panel must be a half panel of F16 values covering `tile.depth`
/// steps.
#[allow(clippy::needless_range_loop)]
#[target_feature(enable = "avx2,fma,f16c")]
pub(in super::super) unsafe fn micro_kernel_half<const T: usize>(tile: MicroTile) {
    let mut acc = [[_mm256_setzero_ps(); 2]; T];
    // SAFETY: the tile's tokens exist.
    let x: [*const f32; T] = std::array::from_fn(|t| unsafe { tile.token(t) });
    // step k's 16 values are the 32 bytes at 32 * k (its column's first or second half); two
    // steps per round, as the loop of whole columns compiled to
    let steps = tile.panel.as_ptr() as *const __m128i;
    // SAFETY: the CPU has the features.
    unsafe { prefetch_outputs::<T, f32>(&tile) };
    let mut k = 0;
    while k + 2 <= tile.depth {
        for e in 0..2 {
            half_step!(acc, x, steps, k + e, T);
        }
        k += 2;
    }
    if k < tile.depth {
        half_step!(acc, x, steps, k, T);
    }
    // SAFETY: the tile owns its output cells.
    unsafe { store_sums(&tile, acc) };
}
