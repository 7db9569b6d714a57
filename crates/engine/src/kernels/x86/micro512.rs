//! The micro-kernels of float prefill at the AVX-512 level (see `kernels::packed`): a
//! micro-panel's 16 rows are one 512-bit vector, so 16 rows by up to [`WIDE_MICRO_TOKENS`](super::super::micro::WIDE_MICRO_TOKENS)
//! tokens of sums take 8 of the 32 registers, and each step of the depth is one load of
//! weights, one broadcast and one multiply-add per token: half the instructions of the 256-bit
//! kernel per product.

use super::super::micro::{Column, MicroTile};
use super::avx512::{prefetch_outputs, store_sums};
use std::arch::x86_64::*;

/// Writes (or adds) the 512-bit sums of `T` tokens through the 256-bit halves the levels'
/// shared [`store_sums`] takes.
///
/// # Safety
/// The CPU must have AVX-512; the tile must own its output cells.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn store_wide<const T: usize, X>(tile: &MicroTile<X>, acc: [__m512; T]) {
    let halves: [[__m256; 2]; T] = std::array::from_fn(|t| {
        let high = _mm512_extractf64x4_pd::<1>(_mm512_castps_pd(acc[t]));
        [_mm512_castps512_ps256(acc[t]), _mm256_castpd_ps(high)]
    });
    // SAFETY: as the caller's.
    unsafe { store_sums(tile, halves) };
}

/// One depth step of a micro-panel: the 16 rows' weights `$w` times each token's activation
/// (`$x(t)`, broadcast), added to the sums `$acc`; a macro, so the sums stay in registers.
macro_rules! wide_step {
    ($acc:ident, $w:expr, $x:expr) => {{
        let w = $w;
        let x = $x;
        for t in 0..$acc.len() {
            $acc[t] = _mm512_fmadd_ps(w, _mm512_set1_ps(x(t)), $acc[t]);
        }
    }};
}

/// The outputs of `T` tokens (at most [`WIDE_MICRO_TOKENS`](super::super::micro::WIDE_MICRO_TOKENS)) by a micro-panel's 16 rows of f32:
/// each column is one vector of rows, multiplied by each token's activation of the column, so
/// the `T` sums stay in registers for the whole depth.
///
/// # Safety
/// The CPU must have AVX-512; `tile` must describe existing activations and output cells owned
/// by this call.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(in super::super) unsafe fn micro_kernel<const T: usize>(tile: MicroTile) {
    let mut acc = [_mm512_setzero_ps(); T];
    // SAFETY: the tile's tokens exist.
    let x: [*const f32; T] = std::array::from_fn(|t| unsafe { tile.token(t) });
    // SAFETY: the CPU has the features.
    unsafe { prefetch_outputs::<T, f32>(&tile) };
    for (k, column) in tile.panel.iter().enumerate() {
        // SAFETY: a column is 16 aligned floats.
        let w = unsafe { _mm512_load_ps(column.0.as_ptr()) };
        wide_step!(acc, w, |t: usize| {
            // SAFETY: every token has the depth's activations.
            unsafe { *x[t].add(k) }
        });
    }
    // SAFETY: the tile owns its output cells.
    unsafe { store_wide(&tile, acc) };
}

/// As [`micro_kernel`], over a half micro-panel of F16 values: each depth step's 16 values
/// (the first or second 32 bytes of its column) are widened (F16C) as they are loaded.
///
/// # Safety
/// As [`micro_kernel`]; the panel must be a half panel of F16 values covering `tile.depth`
/// steps.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(in super::super) unsafe fn micro_kernel_half<const T: usize>(tile: MicroTile) {
    let mut acc = [_mm512_setzero_ps(); T];
    // SAFETY: the tile's tokens exist.
    let x: [*const f32; T] = std::array::from_fn(|t| unsafe { tile.token(t) });
    // SAFETY: the CPU has the features.
    unsafe { prefetch_outputs::<T, f32>(&tile) };
    let steps = tile.panel.as_ptr() as *const __m256i;
    for k in 0..tile.depth {
        // SAFETY: step k < depth is the panel's, 32 aligned bytes.
        let w = unsafe { _mm512_cvtph_ps(_mm256_load_si256(steps.add(k))) };
        wide_step!(acc, w, |t: usize| {
            // SAFETY: every token has the depth's activations.
            unsafe { *x[t].add(k) }
        });
    }
    // SAFETY: the tile owns its output cells.
    unsafe { store_wide(&tile, acc) };
}

/// The body of a twin micro-kernel: two adjacent micro-panels (`$first`, `$second`: 32 rows)
/// by `T` tokens, step `k`'s 16 rows of a panel loaded by `$load(panel, k)`; each token's
/// activation is broadcast once per step for both panels' multiply-adds. A macro, so the 2 x `T`
/// sums stay in registers.
macro_rules! twin_body {
    ($first:ident, $second:ident, $t:ident, $load:expr) => {{
        let mut acc = [[_mm512_setzero_ps(); $t]; 2];
        // SAFETY: the tiles' tokens exist (both tiles share them).
        let x: [*const f32; $t] = std::array::from_fn(|t| unsafe { $first.token(t) });
        // SAFETY: the CPU has the features.
        unsafe {
            prefetch_outputs::<$t, f32>(&$first);
            prefetch_outputs::<$t, f32>(&$second);
        }
        let panels = [$first.panel.as_ptr(), $second.panel.as_ptr()];
        for k in 0..$first.depth {
            let w = panels.map(|p| $load(p, k));
            for t in 0..$t {
                // SAFETY: every token has the depth's activations.
                let xt = _mm512_set1_ps(unsafe { *x[t].add(k) });
                acc[0][t] = _mm512_fmadd_ps(w[0], xt, acc[0][t]);
                acc[1][t] = _mm512_fmadd_ps(w[1], xt, acc[1][t]);
            }
        }
        let [first_sums, second_sums] = acc;
        // SAFETY: the tiles own their output cells.
        unsafe {
            store_wide(&$first, first_sums);
            store_wide(&$second, second_sums);
        }
    }};
}

/// [`micro_kernel`] over two adjacent micro-panels at once (32 rows by `T` tokens, 2 x `T` sums
/// of the 32 registers): one broadcast of each activation serves two multiply-adds, so a step
/// loads 2 weight vectors and `T` activations for 2 `T` multiply-adds instead of 1 and `T` for
/// `T`, which leaves the multiply-adds, not the loads, the limit where two 512-bit FMAs issue
/// per cycle.
///
/// # Safety
/// As [`micro_kernel`]'s, for both tiles; they must share their tokens, depth and
/// accumulation.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(in super::super) unsafe fn micro_kernel_twin<const T: usize>(
    first: MicroTile,
    second: MicroTile,
) {
    // SAFETY: a column is 16 aligned floats; step k < depth is one of both panels'.
    twin_body!(first, second, T, |p: *const Column, k: usize| unsafe {
        _mm512_load_ps((*p.add(k)).0.as_ptr())
    })
}

/// [`micro_kernel_half`] over two adjacent micro-panels at once (see [`micro_kernel_twin`]).
///
/// # Safety
/// As [`micro_kernel_half`]'s, for both tiles; they must share their tokens, depth and
/// accumulation.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(in super::super) unsafe fn micro_kernel_half_twin<const T: usize>(
    first: MicroTile,
    second: MicroTile,
) {
    // SAFETY: step k < depth of a half panel is 32 aligned bytes of both panels.
    twin_body!(first, second, T, |p: *const Column, k: usize| unsafe {
        _mm512_cvtph_ps(_mm256_load_si256((p as *const __m256i).add(k)))
    })
}

/// One column of a pair micro-panel against the tokens' activation pairs (`$pair(t)`, two BF16
/// values as one 32-bit lane), added to the sums `$acc`; a macro, so the sums stay in
/// registers.
macro_rules! pair_step {
    ($acc:ident, $column:expr, $pair:expr) => {{
        let column: &Column = &$column;
        // SAFETY: a column holds 16 aligned lanes.
        let w = bh(unsafe { _mm512_load_ps(column.0.as_ptr()) });
        let pair = $pair;
        for t in 0..$acc.len() {
            let b = bh(_mm512_castsi512_ps(_mm512_set1_epi32(pair(t))));
            $acc[t] = _mm512_dpbf16_ps($acc[t], w, b);
        }
    }};
}

/// The outputs of `T` tokens (at most
/// [`PAIR_MICRO_TOKENS`](super::super::micro::PAIR_MICRO_TOKENS)) by a pair micro-panel's 16
/// rows of BF16: each column (two depth steps) is one vector of rows, each token's two BF16
/// activations of those steps are broadcast as one 32-bit lane, and `vdpbf16ps` adds both
/// products into the token's f32 sums. An odd depth's last step pairs its activation with
/// zero, so nothing past the token's activations is read.
///
/// # Safety
/// The CPU must have AVX-512 and BF16; `tile` must describe existing BF16 activations and
/// output cells owned by this call, over a pair panel covering `tile.depth` steps.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni,avx512bf16")]
pub(in super::super) unsafe fn micro_kernel_pairs<const T: usize>(tile: MicroTile<u16>) {
    let mut acc = [_mm512_setzero_ps(); T];
    // SAFETY: the tile's tokens exist.
    let x: [*const u16; T] = std::array::from_fn(|t| unsafe { tile.token(t) });
    // SAFETY: the CPU has the features.
    unsafe { prefetch_outputs::<T, u16>(&tile) };
    let whole = tile.depth / 2;
    for c in 0..whole {
        // SAFETY: every token has the tile's depth of activations, two of them from 2 c.
        pair_step!(acc, tile.panel[c], |t: usize| unsafe {
            std::ptr::read_unaligned(x[t].add(2 * c) as *const i32)
        });
    }
    if tile.depth % 2 == 1 {
        // SAFETY: the last step is the token's last activation of the tile's depth.
        pair_step!(acc, tile.panel[whole], |t: usize| unsafe {
            *x[t].add(2 * whole) as i32
        });
    }
    // SAFETY: the tile owns its output cells.
    unsafe { store_wide(&tile, acc) };
}

/// A vector of 32 BF16 values seen as such.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni,avx512bf16")]
fn bh(v: __m512) -> __m512bh {
    // SAFETY: both are 512 bits of plain data.
    unsafe { std::mem::transmute::<__m512, __m512bh>(v) }
}
