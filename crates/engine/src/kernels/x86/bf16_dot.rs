//! BF16 dot products (AVX512-BF16) for BF16 weights against BF16 activations: the rounding of
//! the activations, tiles of rows as stored for decode and batch decode (fewer tokens than
//! prefill), and the packing of pair panels for prefill's micro-kernel
//! (`micro512::micro_kernel_pairs`).

use super::super::micro::{Column, MICRO_ROWS};
use super::super::tile::{FloatRows, Output, Units, FLOAT_AHEAD_BYTES};
use super::avx512;
use std::arch::x86_64::*;

/// Writes `x` rounded to BF16 (nearest, ties to even) into `out` as bit patterns, 16 values per
/// `vcvtneps2bf16`; the last `x.len() % 16` masked. As the instruction does, subnormal inputs
/// and results become zeros of their sign (`half`'s rounding keeps them; activations that
/// small add nothing to a product).
///
/// # Safety
/// The CPU must have AVX-512 BW, VL and BF16.
#[target_feature(enable = "avx2,fma,avx512f,avx512bw,avx512vl,avx512bf16")]
pub(in super::super) unsafe fn round(x: &[f32], out: &mut [u16]) {
    assert_eq!(x.len(), out.len(), "one bit pattern per value");
    let rounded = |v: __m512| {
        // SAFETY: both are 256 bits of plain data.
        unsafe { std::mem::transmute::<__m256bh, __m256i>(_mm512_cvtneps_pbh(v)) }
    };
    let main = x.len() / 16 * 16;
    for i in (0..main).step_by(16) {
        // SAFETY: values i..i + 16 exist in both slices.
        unsafe {
            let v = _mm512_loadu_ps(x.as_ptr().add(i));
            _mm256_storeu_si256(out.as_mut_ptr().add(i) as *mut __m256i, rounded(v));
        }
    }
    let mask: __mmask16 = (1 << (x.len() - main)) - 1;
    // SAFETY: the mask covers only the values from main on, which exist in both slices.
    unsafe {
        let v = _mm512_maskz_loadu_ps(mask, x.as_ptr().add(main));
        _mm256_mask_storeu_epi16(out.as_mut_ptr().add(main) as *mut i16, mask, rounded(v));
    }
}

/// The `R` BF16 rows of `units` times tokens `t0..t0+T` of `x` (BF16 bit patterns): one cache
/// line (32 columns) of each row per `vdpbf16ps`, f32 accumulation, each row's stream
/// prefetched [`FLOAT_AHEAD_BYTES`] ahead (near a row's end, in the row after it: the next
/// tile's, in the same stream; past the matrix's end, the hint is dropped). The last columns of
/// a row that is not a multiple of 32 are loaded masked, as zeros beyond the row.
///
/// # Safety
/// The CPU must have AVX-512 BW and BF16; rows and tokens must exist; the output cells must
/// belong to this tile.
// (r, t) index loops keep the accumulators in registers, as in the float tiles
#[allow(clippy::needless_range_loop)]
#[target_feature(enable = "avx2,fma,avx512f,avx512bw,avx512vl,avx512bf16")]
pub(in super::super) unsafe fn tile<const R: usize, const T: usize>(
    w: &FloatRows<u16>,
    units: Units,
    x: &[u16],
    t0: usize,
    out: Output,
) {
    let cols = w.cols;
    let base = w.values.as_ptr();
    let rows: [*const u16; R] = std::array::from_fn(|r| base.wrapping_add(units.at(r) * cols));
    let tokens: [*const u16; T] = std::array::from_fn(|t| x.as_ptr().wrapping_add((t0 + t) * cols));
    let mut acc = [[_mm512_setzero_ps(); T]; R];
    for c in (0..cols).step_by(32) {
        let mask: __mmask32 = if c + 32 <= cols {
            !0
        } else {
            (1 << (cols - c)) - 1
        };
        for row in rows {
            let next = row.wrapping_add(c + FLOAT_AHEAD_BYTES / 2);
            _mm_prefetch::<_MM_HINT_T0>(next as *const i8);
        }
        // SAFETY: the caller's rows and tokens exist; the mask keeps the loads within them.
        unsafe {
            let mut weights = [bh(_mm512_setzero_si512()); R];
            for r in 0..R {
                weights[r] = bh(_mm512_maskz_loadu_epi16(mask, rows[r].add(c) as *const i16));
            }
            for t in 0..T {
                let xv = bh(_mm512_maskz_loadu_epi16(
                    mask,
                    tokens[t].add(c) as *const i16,
                ));
                for r in 0..R {
                    acc[r][t] = _mm512_dpbf16_ps(acc[r][t], weights[r], xv);
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

/// 32 BF16 bit patterns as the operand type of `vdpbf16ps`.
#[target_feature(enable = "avx2,fma,avx512f,avx512bw,avx512vl,avx512bf16")]
fn bh(v: __m512i) -> __m512bh {
    // SAFETY: both are 512 bits of plain data.
    unsafe { std::mem::transmute::<__m512i, __m512bh>(v) }
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
