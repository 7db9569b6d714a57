//! BF16 dot products (AVX512-BF16) for BF16 weights against BF16 activations: tiles of rows as
//! stored (a few tokens), and the packing of pair panels for prefill's micro-kernel
//! (`micro512::micro_kernel_pairs`).

use super::super::packed::{Column, MICRO_ROWS};
use super::super::tile::{FloatRows, Output};
use super::avx512;
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

/// Packs rows `r0..r0+rows` (at most [`MICRO_ROWS`]; the rest of the micro-panel is zeros),
/// columns `k0..k0+depth` of `w`'s BF16 values into `out` as a pair panel
/// ([`PanelForm::Pairs`](super::super::packed::PanelForm)): column `c`'s lane `r` holds row
/// `r`'s values of depth steps `2 c` and `2 c + 1` (low half first), as `vdpbf16ps` multiplies
/// them; the second step of the last column of an odd depth is zero. A row's 16 values from
/// an even step are its 8 pairs, so eight rows by sixteen steps are loaded and transposed as
/// 32-bit lanes at a time.
///
/// # Safety
/// The CPU must have AVX-512 VL and BF16; `k0` must be even; the rows and columns must exist
/// and `out` must hold `depth.div_ceil(2)` columns.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni,avx512bf16")]
pub(in super::super) unsafe fn pack_pairs(
    w: &FloatRows<u16>,
    r0: usize,
    rows: usize,
    k0: usize,
    depth: usize,
    out: &mut [Column],
) {
    let cols = w.cols;
    let base = w.values.as_ptr();
    // SAFETY: the caller guarantees row r0 + r and column k0 + k exist.
    let at = |r: usize, k: usize| unsafe { base.add((r0 + r) * cols + k0 + k) };
    let main = depth / 16 * 16;
    for half in (0..MICRO_ROWS).step_by(8) {
        let real = rows.saturating_sub(half).min(8);
        for k in (0..main).step_by(16) {
            let mut v = [_mm256_setzero_ps(); 8];
            for (i, v) in v.iter_mut().enumerate().take(real) {
                // SAFETY: sixteen values of an existing row from column k0 + k.
                *v = unsafe { _mm256_loadu_ps(at(half + i, k) as *const f32) };
            }
            for (j, column) in avx512::transpose8(v).into_iter().enumerate() {
                // SAFETY: a column holds 16 aligned lanes; half + 8 <= 16.
                unsafe { _mm256_store_ps(out[k / 2 + j].0.as_mut_ptr().add(half), column) };
            }
        }
        for (c, column) in out
            .iter_mut()
            .enumerate()
            .take(depth.div_ceil(2))
            .skip(main / 2)
        {
            for i in 0..8 {
                let value = |k: usize| {
                    if i < real && k < depth {
                        // SAFETY: an existing value.
                        unsafe { *at(half + i, k) as u32 }
                    } else {
                        0
                    }
                };
                column.0[half + i] = f32::from_bits(value(2 * c) | (value(2 * c + 1) << 16));
            }
        }
    }
}
