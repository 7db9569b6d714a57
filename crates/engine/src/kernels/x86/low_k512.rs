//! Q3_K's and Q2_K's tiles at the AVX-512 level on 512-bit vectors: a pair of groups side by
//! side, as `quant512`'s tiles, with the 256-bit `low_k_tile`'s arithmetic.

use super::super::activations::QuantizedActivations;
use super::super::format::quant_code;
use super::super::layout::{
    packed_scales_at, q6k_scales_at, QuantRows, GROUP, Q2K_BLOCK_BYTES, Q3K_BLOCK_BYTES, SUB_BLOCKS,
};
use super::super::tile::{Output, Units};
use super::avx512::{self, quant_ahead};
use super::quant512::{
    half_dots, halves_of, pair_block, pair_dot, pair_of, signed_scale_tops, store_pair, PAIR,
};
use std::arch::x86_64::*;

/// The 256-bit vectors `low` and `high` side by side.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn side_by_side(low: __m256i, high: __m256i) -> __m512i {
    _mm512_inserti64x4::<1>(_mm512_castsi256_si512(low), high)
}

/// The 8 weight vectors of a Q2_K or Q3_K block of both groups (at `p[0]` and `p[1]`), as the
/// 256-bit tiles' `load_low_k`: unsigned values 0-3 or 0-7.
///
/// # Safety
/// Both pointers must point at a group's block of 64 (Q2_K) or 96 (Q3_K) bytes.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn load_low_k<const Q: u8>(p: [*const u8; PAIR]) -> [__m512i; 8] {
    let mask = _mm512_set1_epi8(3);
    let mut weights = [_mm512_setzero_si512(); 8];
    for h in 0..2 {
        // SAFETY: the caller's blocks hold 64 bytes of 2-bit values.
        let bits = unsafe { pair_of(p[0].add(32 * h), p[1].add(32 * h)) };
        let placed = [
            bits,
            _mm512_srli_epi16::<2>(bits),
            _mm512_srli_epi16::<4>(bits),
            _mm512_srli_epi16::<6>(bits),
        ];
        for (f, v) in placed.iter().enumerate() {
            weights[4 * h + f] = _mm512_and_si512(*v, mask);
        }
    }
    if Q == quant_code::Q3K {
        // SAFETY: a Q3_K block has 32 bytes of high bits after them.
        let bits = unsafe { pair_of(p[0].add(64), p[1].add(64)) };
        let placed = [
            _mm512_slli_epi16::<2>(bits),
            _mm512_slli_epi16::<1>(bits),
            bits,
            _mm512_srli_epi16::<1>(bits),
            _mm512_srli_epi16::<2>(bits),
            _mm512_srli_epi16::<3>(bits),
            _mm512_srli_epi16::<4>(bits),
            _mm512_srli_epi16::<5>(bits),
        ];
        let bit2 = _mm512_set1_epi8(4);
        for (w, v) in weights.iter_mut().zip(placed) {
            // bit 2 of each byte from the placed word, the 2 bits from the weights
            *w = _mm512_ternarylogic_epi32::<0xF8>(*w, v, bit2);
        }
    }
    weights
}

/// The 16 rows of the pair of groups of `units` times tokens `t0..t0+T` for Q3_K and Q2_K
/// (format `Q`): each 16-value half of a block dotted in 32 bits (`vpdpbusd`) and summed in
/// floats times its rows' sub-block scale, as `quant512::q6k_tile`, with the 256-bit
/// `low_k_tile`'s offsets and minimums (see there; the same bounds hold lane by lane).
///
/// # Safety
/// The CPU must have AVX-512 F/BW/VL + VNNI; both groups and the tokens must exist; the output
/// cells must belong to this tile; the activations' grain must be the super-block.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(in super::super) unsafe fn low_k_tile<const Q: u8, const T: usize>(
    w: &QuantRows,
    units: Units,
    act: &QuantizedActivations,
    t0: usize,
    out: Output,
) {
    let q3 = Q == quant_code::Q3K;
    let bytes = if q3 { Q3K_BLOCK_BYTES } else { Q2K_BLOCK_BYTES };
    let blocks = w.blocks;
    let ahead = quant_ahead::<T>(blocks, bytes);
    // the 256-bit patterns work within 128-bit lanes, so both halves take the same
    let (_, pair_spread) = avx512::signed_scale_spreads();
    let tops = signed_scale_tops();
    let pair_spread = pair_spread.map(|v| _mm512_broadcast_i64x4(v));
    let spread = |word: __m512i, pattern: __m512i| {
        _mm512_srai_epi16::<8>(_mm512_shuffle_epi8(word, pattern))
    };
    let groups: [usize; PAIR] = std::array::from_fn(|n| units.at(n));
    let tokens: [_; T] = std::array::from_fn(|t| act.token(t0 + t));
    let half_sums: [_; T] = std::array::from_fn(|t| act.half_sums(t0 + t));
    let mut acc = [_mm512_setzero_ps(); T];
    for s in 0..blocks / SUB_BLOCKS {
        let k = groups.map(|g| (g * blocks / SUB_BLOCKS + s) * GROUP);
        // each group's scales (Q3_K's signed) and the words its half sums meet (Q3_K's
        // scales again, Q2_K's minimums)
        // SAFETY: both groups exist, so their super-block s's scales do.
        let [low, high] = k.map(|k| unsafe {
            if q3 {
                let p = w.sub_scales.as_ptr().add(packed_scales_at(k));
                let scales = avx512::unpack_q3k_scales(p);
                (scales, scales)
            } else {
                avx512::unpack_q2k_scales(w.sub_scales.as_ptr().add(q6k_scales_at(k)))
            }
        });
        let scale_words: [__m512i; 4] = std::array::from_fn(|i| side_by_side(low.0[i], high.0[i]));
        let pair_words: [__m512i; 4] = std::array::from_fn(|i| side_by_side(low.1[i], high.1[i]));
        let mut dots = [_mm512_setzero_ps(); T];
        for j in 0..SUB_BLOCKS {
            let b = s * SUB_BLOCKS + j;
            let p = pair_block(w, groups, b, bytes, ahead);
            // the block's two sub-block scales, each row's as a float lane
            let scales = [0, 1].map(|h| {
                let top = _mm512_shuffle_epi8(scale_words[j / 2], tops[2 * (j % 2) + h]);
                _mm512_cvtepi32_ps(_mm512_srai_epi32::<24>(top))
            });
            // SAFETY: both groups exist, so their block b does.
            let weights = unsafe { load_low_k::<Q>(p) };
            for t in 0..T {
                // SAFETY: every token row has `blocks` blocks of 32 bytes.
                let halves =
                    unsafe { half_dots(&weights, tokens[t].0.as_ptr().add(b) as *const u8) };
                for (half, scale) in halves.into_iter().zip(scales) {
                    dots[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(half), scale, dots[t]);
                }
            }
        }
        let pairs: [__m512i; SUB_BLOCKS] =
            std::array::from_fn(|q| spread(pair_words[q / 2], pair_spread[q % 2]));
        // SAFETY: both groups' super-block s has its d (and Q2_K's dmin).
        let (d, dmin) = unsafe {
            let (scales, minimums) = (w.scales.as_ptr(), w.mins.as_ptr());
            let dmin = if q3 {
                _mm512_setzero_ps()
            } else {
                halves_of(minimums.add(k[0]), minimums.add(k[1]))
            };
            (halves_of(scales.add(k[0]), scales.add(k[1])), dmin)
        };
        for t in 0..T {
            // SAFETY: the token row's super-block s has 16 half sums and its scale.
            let (da, scaled_sums) = unsafe {
                (
                    _mm512_set1_ps(*tokens[t].1.get_unchecked(s * SUB_BLOCKS)),
                    pair_dot(&pairs, half_sums[t].as_ptr().add(2 * s * SUB_BLOCKS)),
                )
            };
            if q3 {
                let offsets = _mm512_cvtepi32_ps(_mm512_slli_epi32::<2>(scaled_sums));
                let total = _mm512_sub_ps(dots[t], offsets);
                acc[t] = _mm512_fmadd_ps(total, _mm512_mul_ps(d, da), acc[t]);
            } else {
                acc[t] = _mm512_fmadd_ps(dots[t], _mm512_mul_ps(d, da), acc[t]);
                let mins = _mm512_cvtepi32_ps(scaled_sums);
                acc[t] = _mm512_fnmadd_ps(mins, _mm512_mul_ps(dmin, da), acc[t]);
            }
        }
    }
    // SAFETY: the caller owns the tile's cells.
    unsafe { store_pair(&acc, w.rows, units, t0, out) }
}
