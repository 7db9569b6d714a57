//! Quantized tiles at the AVX-512 level on 512-bit vectors: a tile is a pair of groups (16
//! rows, one from each half of the thread's rows: two streams of weights), the two groups'
//! 256-bit vectors side by side in each register, so one `vpdpbusd` multiplies 4 bytes of
//! each of 16 rows by the same 4 activation bytes broadcast, and every other instruction of
//! the 256-bit tiles (`tiles!`) serves 16 rows instead of 8. A group left over without a pair
//! takes the 256-bit tile.

use super::super::activations::QuantizedActivations;
use super::super::format::quant_code;
use super::super::layout::{
    iq4xs_scales_at, packed_scales_at, q6k_scales_at, signed_scale_top, QuantRows, GROUP,
    Q5_BLOCK_BYTES, Q6K_BLOCK_BYTES, SUB_BLOCKS,
};
use super::super::tile::{Output, Units};
use super::avx512::{self, prefetch_ahead, quant_ahead};
use std::arch::x86_64::*;

/// Groups of a 512-bit tile.
pub(in super::super) const PAIR: usize = 2;

/// The 32 bytes at `p` in the low half and those at `q` in the high half.
///
/// # Safety
/// Both must point at 32 readable bytes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) unsafe fn pair_of(p: *const u8, q: *const u8) -> __m512i {
    // SAFETY: the caller's pointers hold 32 bytes each.
    unsafe {
        let low = _mm512_castsi256_si512(_mm256_loadu_si256(p as *const __m256i));
        _mm512_inserti64x4::<1>(low, _mm256_loadu_si256(q as *const __m256i))
    }
}

/// The 8 f16 values at `p` and the 8 at `q`, as 16 f32 lanes.
///
/// # Safety
/// Both must point at 8 readable values.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) unsafe fn halves_of(p: *const u16, q: *const u16) -> __m512 {
    // SAFETY: the caller's pointers hold 16 bytes each.
    unsafe {
        let low = _mm256_castsi128_si256(_mm_loadu_si128(p as *const __m128i));
        let both = _mm256_inserti128_si256::<1>(low, _mm_loadu_si128(q as *const __m128i));
        _mm512_cvtph_ps(both)
    }
}

/// Activation bytes `4 j .. 4 j + 4` of the block at `a`, in every lane.
///
/// # Safety
/// `a` must point at a block's 32 bytes; `j < 8`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn broadcast4(a: *const u8, j: usize) -> __m512i {
    // SAFETY: the caller's block holds bytes 4 j .. 4 j + 4.
    _mm512_set1_epi32(unsafe { std::ptr::read_unaligned(a.add(4 * j) as *const i32) })
}

/// Each row's sum over sub-block pairs `q` of the two 16-bit values in its lane of `pairs[q]`
/// times the token's sums of those two sub-blocks' activations (`sums[2 q]`, `sums[2 q + 1]`):
/// one `vpdpwssd` per pair, 32-bit lanes.
///
/// # Safety
/// `sums` must point at `2 * pairs.len()` readable values.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) unsafe fn pair_dot(pairs: &[__m512i], sums: *const i16) -> __m512i {
    let mut total = _mm512_setzero_si512();
    for (q, pair) in pairs.iter().enumerate() {
        // SAFETY: the caller's sums hold values 2 q and 2 q + 1.
        let both = unsafe { std::ptr::read_unaligned(sums.add(2 * q) as *const i32) };
        total = _mm512_dpwssd_epi32(total, *pair, _mm512_set1_epi32(both));
    }
    total
}

/// The 8 weight vectors of a block of nibbles of both groups (at `p[0]` and `p[1]`, 128
/// bytes each): the low nibbles of the 4 loads, then their high nibbles.
///
/// # Safety
/// Both pointers must point at a group's block of 128 bytes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn load_nibbles(p: [*const u8; PAIR]) -> [__m512i; 8] {
    let mask = _mm512_set1_epi8(0x0F);
    let mut weights = [_mm512_setzero_si512(); 8];
    for j in 0..4 {
        // SAFETY: the caller's blocks hold 128 bytes.
        let v = unsafe { pair_of(p[0].add(32 * j), p[1].add(32 * j)) };
        weights[j] = _mm512_and_si512(v, mask);
        weights[j + 4] = _mm512_and_si512(_mm512_srli_epi16::<4>(v), mask);
    }
    weights
}

/// The 8 weight vectors of an IQ4 block of nibbles of both groups (at `p[0]` and `p[1]`, 128
/// bytes each), each nibble looked up as its table value plus 128 (unsigned, as `vpdpbusd`
/// takes them).
///
/// # Safety
/// Both pointers must point at a group's block of 128 bytes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn load_iq4(p: [*const u8; PAIR], table: __m512i) -> [__m512i; 8] {
    // SAFETY: as the caller's.
    let mut weights = unsafe { load_nibbles(p) };
    // a loop, not a closure: a closure would be compiled without the level's features
    for w in weights.iter_mut() {
        *w = _mm512_shuffle_epi8(table, *w);
    }
    weights
}

/// The 8 weight vectors of a Q8_0 block of both groups (256 bytes each), offset by 128 to
/// unsigned bytes as `vpdpbusd` takes them.
///
/// # Safety
/// Both pointers must point at a group's block of 256 bytes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn load_bytes(p: [*const u8; PAIR]) -> [__m512i; 8] {
    let flip = _mm512_set1_epi8(-128);
    std::array::from_fn(|j| {
        // SAFETY: the caller's blocks hold 256 bytes.
        let pair = unsafe { pair_of(p[0].add(32 * j), p[1].add(32 * j)) };
        _mm512_xor_si512(pair, flip)
    })
}

/// A block's dot products of unsigned weight bytes with signed activation bytes: 4 products
/// per lane and `vpdpbusd`, in two independent sums.
///
/// # Safety
/// `a` must point at a block's 32 bytes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn dot(weights: &[__m512i; 8], a: *const u8) -> __m512i {
    let mut dots = [_mm512_setzero_si512(); 2];
    for (j, w) in weights.iter().enumerate() {
        // SAFETY: j < 8 and the caller's block has 32 bytes.
        let a4 = unsafe { broadcast4(a, j) };
        dots[j % 2] = _mm512_dpbusd_epi32(dots[j % 2], *w, a4);
    }
    _mm512_add_epi32(dots[0], dots[1])
}

/// The `pshufb` patterns that move byte `i` (of 4) of each 32-bit word to the word's top byte
/// ([`signed_scale_top`]), for all 4 `i`: a shift right by 24 then makes it a 32-bit scale.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) fn signed_scale_tops() -> [__m512i; 4] {
    std::array::from_fn(|i| {
        let pattern = signed_scale_top(i);
        // SAFETY: the pattern holds 16 bytes.
        _mm512_broadcast_i32x4(unsafe { _mm_loadu_si128(pattern.as_ptr() as *const __m128i) })
    })
}

/// A block's dot products as [`dot`]'s, the two 16-value halves apart: vectors 0-3 hold
/// values 0-15 of each row, vectors 4-7 values 16-31.
///
/// # Safety
/// `a` must point at a block's 32 bytes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) unsafe fn half_dots(weights: &[__m512i; 8], a: *const u8) -> [__m512i; 2] {
    let mut dots = [_mm512_setzero_si512(); 2];
    for (j, w) in weights.iter().enumerate() {
        // SAFETY: j < 8 and the caller's block has 32 bytes.
        let a4 = unsafe { broadcast4(a, j) };
        dots[j / 4] = _mm512_dpbusd_epi32(dots[j / 4], *w, a4);
    }
    dots
}

/// Where block `b` of each of the pair's `groups` starts (`bytes` quantized bytes per row's
/// block), each group's stream hinted `ahead` bytes further on (none without a distance).
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) fn pair_block(
    w: &QuantRows,
    groups: [usize; PAIR],
    b: usize,
    bytes: usize,
    ahead: Option<usize>,
) -> [*const u8; PAIR] {
    let p = groups.map(|g| {
        w.quants
            .as_ptr()
            .wrapping_add((g * w.blocks + b) * GROUP * bytes)
    });
    for p in p {
        prefetch_ahead(p, ahead, GROUP * bytes);
    }
    p
}

/// Writes each token's 16 lanes (`acc[t]`: group `units.at(0)`'s 8 rows, then
/// `units.at(1)`'s), dropping the padding rows of the matrix's last group.
///
/// # Safety
/// The output cells must belong to the caller's tile.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) unsafe fn store_pair<const T: usize>(
    acc: &[__m512; T],
    rows: usize,
    units: Units,
    t0: usize,
    out: Output,
) {
    for (t, v) in acc.iter().enumerate() {
        let mut lanes = [0f32; PAIR * GROUP];
        // SAFETY: lanes holds 16 floats.
        unsafe { _mm512_storeu_ps(lanes.as_mut_ptr(), *v) };
        for (n, group) in lanes.chunks_exact(GROUP).enumerate() {
            let g = units.at(n);
            for (lane, value) in group.iter().enumerate().take(GROUP.min(rows - g * GROUP)) {
                // SAFETY: the caller owns these cells.
                unsafe { out.write(t0 + t, g * GROUP + lane, *value) };
            }
        }
    }
}

/// The 16 rows of the pair of groups of `units` times tokens `t0..t0+T` (Q4_0, Q4_1, Q5_0,
/// Q5_1, Q8_0, IQ4_NL),
/// with the 256-bit tiles' arithmetic: per block, integer dots less the rows' offset times the
/// token's block sum, scaled by the rows' and the token's scales, plus Q4_1's and Q5_1's
/// minimums times
/// the token's `s`.
///
/// # Safety
/// The CPU must have AVX-512 F/BW/VL + VNNI; both groups and the tokens must exist; the output
/// cells must belong to this tile.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(in super::super) unsafe fn quant_tile<const Q: u8, const T: usize>(
    w: &QuantRows,
    units: Units,
    act: &QuantizedActivations,
    t0: usize,
    out: Output,
) {
    let blocks = w.blocks;
    let five = Q == quant_code::Q5_0 || Q == quant_code::Q5_1;
    let bytes = match Q {
        quant_code::Q8_0 => 32,
        _ if five => Q5_BLOCK_BYTES,
        _ => 16,
    };
    // the stored weights' offset from their signed values (Q8_0's bytes are loaded plus 128),
    // taken out of the integer dots with the activations' block sums
    let offset: i32 = match Q {
        quant_code::Q4_0 => 8,
        quant_code::Q5_0 => 16,
        quant_code::Q8_0 | quant_code::IQ4NL => 128,
        _ => 0,
    };
    let ahead = quant_ahead::<T>(blocks, bytes);
    let table = _mm512_broadcast_i64x4(avx512::iq4_table(128));
    let groups: [usize; PAIR] = std::array::from_fn(|n| units.at(n));
    let tokens: [_; T] = std::array::from_fn(|t| act.token(t0 + t));
    let sums: [_; T] = std::array::from_fn(|t| act.block_sums(t0 + t));
    let mut acc = [_mm512_setzero_ps(); T];
    for b in 0..blocks {
        let at = groups.map(|g| (g * blocks + b) * GROUP);
        let p = pair_block(w, groups, b, bytes, ahead);
        // SAFETY: both groups exist, so their block b does (8 rows, padded).
        let (weights, scale, min) = unsafe {
            let weights = if Q == quant_code::Q8_0 {
                load_bytes(p)
            } else if Q == quant_code::IQ4NL {
                load_iq4(p, table)
            } else if five {
                load_q5(p)
            } else {
                load_nibbles(p)
            };
            let scale = halves_of(w.scales.as_ptr().add(at[0]), w.scales.as_ptr().add(at[1]));
            let min = if Q == quant_code::Q4_1 || Q == quant_code::Q5_1 {
                halves_of(w.mins.as_ptr().add(at[0]), w.mins.as_ptr().add(at[1]))
            } else {
                _mm512_setzero_ps()
            };
            (weights, scale, min)
        };
        for t in 0..T {
            let (quants, scales, scaled_sums) = tokens[t];
            // SAFETY: every token row has `blocks` blocks of 32 bytes.
            let (mut dot, d, s, sum) = unsafe {
                let a = quants.as_ptr().add(b) as *const u8;
                (
                    dot(&weights, a),
                    *scales.get_unchecked(b),
                    *scaled_sums.get_unchecked(b),
                    *sums[t].get_unchecked(b),
                )
            };
            if offset != 0 {
                dot = _mm512_sub_epi32(dot, _mm512_set1_epi32(offset * i32::from(sum)));
            }
            let scaled = _mm512_mul_ps(scale, _mm512_set1_ps(d));
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), scaled, acc[t]);
            if Q == quant_code::Q4_1 || Q == quant_code::Q5_1 {
                acc[t] = _mm512_fmadd_ps(min, _mm512_set1_ps(s), acc[t]);
            }
        }
    }
    // SAFETY: the caller owns the tile's cells.
    unsafe { store_pair(&acc, w.rows, units, t0, out) }
}

/// The 256-bit tiles' `unpack_k_scales` for both groups of a pair (at `p[0]` and `p[1]`),
/// side by side.
///
/// # Safety
/// Both pointers must point at a group super-block's 96 bytes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn unpack_k_scales(p: [*const u8; PAIR]) -> [__m512i; 4] {
    // SAFETY: the caller's 96 bytes hold each group's packed scales.
    let [low, high] = p.map(|p| unsafe { avx512::unpack_k_scales(p) });
    std::array::from_fn(|i| _mm512_inserti64x4::<1>(_mm512_castsi256_si512(low[i]), high[i]))
}

/// The 8 weight vectors of a Q5_K block of both groups (at `p[0]` and `p[1]`, 160 bytes
/// each), as the 256-bit tiles' `load_q5`: unsigned 5-bit values.
///
/// # Safety
/// Both pointers must point at a group's Q5_K block of 160 bytes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn load_q5(p: [*const u8; PAIR]) -> [__m512i; 8] {
    // SAFETY: the caller's blocks hold 128 bytes of nibbles, then 32 of high bits.
    let (mut weights, bits) = unsafe { (load_nibbles(p), pair_of(p[0].add(128), p[1].add(128))) };
    let placed = [
        _mm512_slli_epi16::<4>(bits),
        _mm512_slli_epi16::<3>(bits),
        _mm512_slli_epi16::<2>(bits),
        _mm512_slli_epi16::<1>(bits),
        bits,
        _mm512_srli_epi16::<1>(bits),
        _mm512_srli_epi16::<2>(bits),
        _mm512_srli_epi16::<3>(bits),
    ];
    let top = _mm512_set1_epi8(0x10);
    for (w, v) in weights.iter_mut().zip(placed) {
        // bit 4 of each byte from the placed word, the nibble's from the weights
        *w = _mm512_ternarylogic_epi32::<0xF8>(*w, v, top);
    }
    weights
}

/// As [`quant_tile`] for Q4_K and Q5_K (format `Q`): each block's dot in 32 bits (`vpdpbusd`),
/// converted and summed over the super-block in floats times its rows' 6-bit sub-block scale
/// (see [`q6k_tile`] for why not `vpmulld`), and the minimums as the 256-bit `k_tile`'s, so
/// only `d · d_a` and `dmin · d_a` remain. Half the instructions per block and token of the
/// 256-bit tile's 16-bit sums, which prefill (8 tokens per tile) pays for.
///
/// # Safety
/// As [`quant_tile`]'s; the activations' grain must be the super-block.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(in super::super) unsafe fn k_tile<const Q: u8, const T: usize>(
    w: &QuantRows,
    units: Units,
    act: &QuantizedActivations,
    t0: usize,
    out: Output,
) {
    let blocks = w.blocks;
    let bytes = if Q == quant_code::Q5K {
        Q5_BLOCK_BYTES
    } else {
        16
    };
    let ahead = quant_ahead::<T>(blocks, bytes);
    // the 256-bit patterns work within 128-bit lanes, so both halves take the same
    let (_, min_spread) = avx512::k_spreads();
    let min_spread = min_spread.map(|v| _mm512_broadcast_i64x4(v));
    let tops = signed_scale_tops();
    let groups: [usize; PAIR] = std::array::from_fn(|n| units.at(n));
    let tokens: [_; T] = std::array::from_fn(|t| act.token(t0 + t));
    let sums: [_; T] = std::array::from_fn(|t| act.block_sums(t0 + t));
    let mut acc = [_mm512_setzero_ps(); T];
    for s in 0..blocks / SUB_BLOCKS {
        let k = groups.map(|g| (g * blocks / SUB_BLOCKS + s) * GROUP);
        // SAFETY: both groups exist, so their super-block s's scales do.
        let unpacked =
            unsafe { unpack_k_scales(k.map(|k| w.sub_scales.as_ptr().add(packed_scales_at(k)))) };
        let mut dots = [_mm512_setzero_ps(); T];
        for j in 0..SUB_BLOCKS {
            let b = s * SUB_BLOCKS + j;
            let p = pair_block(w, groups, b, bytes, ahead);
            // SAFETY: both groups exist, so their block b does.
            let weights = unsafe {
                if Q == quant_code::Q5K {
                    load_q5(p)
                } else {
                    load_nibbles(p)
                }
            };
            // the sub-block's 6-bit scale, each row's as a float lane
            let top = _mm512_shuffle_epi8(unpacked[j / 4], tops[j % 4]);
            let scale = _mm512_cvtepi32_ps(_mm512_srli_epi32::<24>(top));
            for t in 0..T {
                // SAFETY: every token row has `blocks` blocks of 32 bytes.
                let d = unsafe { dot(&weights, tokens[t].0.as_ptr().add(b) as *const u8) };
                dots[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), scale, dots[t]);
            }
        }
        let mins: [__m512i; SUB_BLOCKS / 2] = std::array::from_fn(|pair| {
            _mm512_shuffle_epi8(unpacked[2 + pair / 2], min_spread[pair % 2])
        });
        // SAFETY: both groups' super-block s has its d and dmin.
        let (d, dmin) = unsafe {
            let (scales, minimums) = (w.scales.as_ptr(), w.mins.as_ptr());
            (
                halves_of(scales.add(k[0]), scales.add(k[1])),
                halves_of(minimums.add(k[0]), minimums.add(k[1])),
            )
        };
        for t in 0..T {
            // SAFETY: the token row's super-block s has 8 block sums and its scale.
            let (da, min_dot) = unsafe {
                (
                    _mm512_set1_ps(*tokens[t].1.get_unchecked(s * SUB_BLOCKS)),
                    pair_dot(&mins, sums[t].as_ptr().add(s * SUB_BLOCKS)),
                )
            };
            acc[t] = _mm512_fmadd_ps(dots[t], _mm512_mul_ps(d, da), acc[t]);
            let mins = _mm512_cvtepi32_ps(min_dot);
            acc[t] = _mm512_fnmadd_ps(mins, _mm512_mul_ps(dmin, da), acc[t]);
        }
    }
    // SAFETY: the caller owns the tile's cells.
    unsafe { store_pair(&acc, w.rows, units, t0, out) }
}

/// The 8 weight vectors of a Q6_K block of both groups (at `p[0]` and `p[1]`, 192 bytes
/// each), as the 256-bit tiles' `load_q6`: unsigned 6-bit values.
///
/// # Safety
/// Both pointers must point at a group's Q6_K block of 192 bytes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn load_q6(p: [*const u8; PAIR]) -> [__m512i; 8] {
    // SAFETY: the caller's blocks hold 128 bytes of nibbles, then 64 of high bits.
    let mut weights = unsafe { load_nibbles(p) };
    let top = _mm512_set1_epi8(0x30);
    for h in 0..2 {
        // SAFETY: as above.
        let bits = unsafe { pair_of(p[0].add(128 + 32 * h), p[1].add(128 + 32 * h)) };
        let placed = [
            _mm512_slli_epi16::<4>(bits),
            _mm512_slli_epi16::<2>(bits),
            bits,
            _mm512_srli_epi16::<2>(bits),
        ];
        for (f, v) in placed.iter().enumerate() {
            // bits 4-5 of each byte from the placed word, the nibble's from the weights
            weights[4 * h + f] = _mm512_ternarylogic_epi32::<0xF8>(weights[4 * h + f], *v, top);
        }
    }
    weights
}

/// As [`quant_tile`] for Q6_K: each 16-value half of a block dotted in 32 bits (`vpdpbusd`),
/// converted and summed over the super-block in floats times its rows' signed sub-block scale,
/// and the values' offset of 32 taken out with the activations' half sums as the 256-bit
/// `q6k_tile` does, then `d · d_a` applied. The scale is applied in floats because `vpmulld`
/// takes two micro-ops of the one port `vpdpbusd` runs on on Intel; `vcvtdq2ps` takes one
/// and the FMA goes to another (the sums are exact integers below 2^24 per half, rounded once
/// summed).
///
/// # Safety
/// As [`quant_tile`]'s; the activations' grain must be the super-block.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(in super::super) unsafe fn q6k_tile<const T: usize>(
    w: &QuantRows,
    units: Units,
    act: &QuantizedActivations,
    t0: usize,
    out: Output,
) {
    let blocks = w.blocks;
    let ahead = quant_ahead::<T>(blocks, Q6K_BLOCK_BYTES);
    // the 256-bit patterns work within 128-bit lanes, so both halves take the same
    let (_, pair_spread) = avx512::signed_scale_spreads();
    let pair_spread = pair_spread.map(|v| _mm512_broadcast_i64x4(v));
    let spread = |word: __m512i, pattern: __m512i| {
        _mm512_srai_epi16::<8>(_mm512_shuffle_epi8(word, pattern))
    };
    let groups: [usize; PAIR] = std::array::from_fn(|n| units.at(n));
    let tokens: [_; T] = std::array::from_fn(|t| act.token(t0 + t));
    let half_sums: [_; T] = std::array::from_fn(|t| act.half_sums(t0 + t));
    let mut acc = [_mm512_setzero_ps(); T];
    let tops = signed_scale_tops();
    for s in 0..blocks / SUB_BLOCKS {
        let k = groups.map(|g| (g * blocks / SUB_BLOCKS + s) * GROUP);
        // SAFETY: both groups exist, so their super-block s's 4 words of scales do.
        let words: [__m512i; 4] = std::array::from_fn(|i| unsafe {
            let at = k.map(|k| w.sub_scales.as_ptr().add(q6k_scales_at(k) + 32 * i));
            pair_of(at[0], at[1])
        });
        let mut dots = [_mm512_setzero_ps(); T];
        for j in 0..SUB_BLOCKS {
            let b = s * SUB_BLOCKS + j;
            let p = pair_block(w, groups, b, Q6K_BLOCK_BYTES, ahead);
            // the block's two sub-block scales, each row's as a float lane
            let scales = [0, 1].map(|h| {
                let top = _mm512_shuffle_epi8(words[j / 2], tops[2 * (j % 2) + h]);
                _mm512_cvtepi32_ps(_mm512_srai_epi32::<24>(top))
            });
            // SAFETY: both groups exist, so their block b does.
            let weights = unsafe { load_q6(p) };
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
            std::array::from_fn(|q| spread(words[q / 2], pair_spread[q % 2]));
        // SAFETY: both groups' super-block s has its d.
        let d = unsafe { halves_of(w.scales.as_ptr().add(k[0]), w.scales.as_ptr().add(k[1])) };
        for t in 0..T {
            // SAFETY: the token row's super-block s has 16 half sums and its scale.
            let (da, offsets) = unsafe {
                (
                    _mm512_set1_ps(*tokens[t].1.get_unchecked(s * SUB_BLOCKS)),
                    pair_dot(&pairs, half_sums[t].as_ptr().add(2 * s * SUB_BLOCKS)),
                )
            };
            let total = _mm512_sub_ps(dots[t], _mm512_cvtepi32_ps(_mm512_slli_epi32::<5>(offsets)));
            acc[t] = _mm512_fmadd_ps(total, _mm512_mul_ps(d, da), acc[t]);
        }
    }
    // SAFETY: the caller owns the tile's cells.
    unsafe { store_pair(&acc, w.rows, units, t0, out) }
}

/// As [`quant_tile`] for IQ4_XS against activations quantized per super-block: each block's
/// table values (plus 128) meet the activations in `vpdpbusd`, the dot is converted and
/// summed over the super-block in floats times the rows' signed sub-block scale (see
/// [`q6k_tile`] for why not `vpmulld`), and the offset comes off once per super-block with the
/// activation blocks' sums, then `d · d_a` is applied, as ggml does.
///
/// # Safety
/// As [`quant_tile`]'s; the activations' grain must be the super-block.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(in super::super) unsafe fn iq4xs_tile<const T: usize>(
    w: &QuantRows,
    units: Units,
    act: &QuantizedActivations,
    t0: usize,
    out: Output,
) {
    let blocks = w.blocks;
    let ahead = quant_ahead::<T>(blocks, 16);
    let table = _mm512_broadcast_i64x4(avx512::iq4_table(128));
    let (_, pair_spread) = avx512::signed_scale_spreads();
    let pair_spread = pair_spread.map(|v| _mm512_broadcast_i64x4(v));
    // scale i of each row's word to its lane's top byte, then sign-extended to 32 bits
    let tops = signed_scale_tops();
    let groups: [usize; PAIR] = std::array::from_fn(|n| units.at(n));
    let tokens: [_; T] = std::array::from_fn(|t| act.token(t0 + t));
    let sums: [_; T] = std::array::from_fn(|t| act.block_sums(t0 + t));
    let mut acc = [_mm512_setzero_ps(); T];
    for s in 0..blocks / SUB_BLOCKS {
        let k = groups.map(|g| (g * blocks / SUB_BLOCKS + s) * GROUP);
        // SAFETY: both groups exist, so their super-block s's 2 words of scales do.
        let words: [__m512i; 2] = std::array::from_fn(|i| unsafe {
            let at = k.map(|k| w.sub_scales.as_ptr().add(iq4xs_scales_at(k) + 32 * i));
            pair_of(at[0], at[1])
        });
        let mut dots = [_mm512_setzero_ps(); T];
        for j in 0..SUB_BLOCKS {
            let b = s * SUB_BLOCKS + j;
            let p = pair_block(w, groups, b, 16, ahead);
            let top = _mm512_shuffle_epi8(words[j / 4], tops[j % 4]);
            let scale = _mm512_cvtepi32_ps(_mm512_srai_epi32::<24>(top));
            // SAFETY: both groups exist, so their block b does.
            let weights = unsafe { load_iq4(p, table) };
            for t in 0..T {
                // SAFETY: every token row has `blocks` blocks of 32 bytes.
                let d = unsafe { dot(&weights, tokens[t].0.as_ptr().add(b) as *const u8) };
                dots[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), scale, dots[t]);
            }
        }
        // SAFETY: both groups' super-block s has its d.
        let d = unsafe { halves_of(w.scales.as_ptr().add(k[0]), w.scales.as_ptr().add(k[1])) };
        // the weights' offset of 128 times each sub-block's scale and activation sum, in
        // pairs of sub-blocks (one `vpdpwssd` per pair and token, not a subtraction per block)
        let pairs: [__m512i; SUB_BLOCKS / 2] = std::array::from_fn(|q| {
            _mm512_srai_epi16::<8>(_mm512_shuffle_epi8(words[q / 2], pair_spread[q % 2]))
        });
        for t in 0..T {
            // SAFETY: the token row's super-block s has 8 block sums.
            let offsets = unsafe { pair_dot(&pairs, sums[t].as_ptr().add(s * SUB_BLOCKS)) };
            let offsets = _mm512_cvtepi32_ps(_mm512_slli_epi32::<7>(offsets));
            dots[t] = _mm512_sub_ps(dots[t], offsets);
        }
        for t in 0..T {
            // SAFETY: the token row's super-block s has its scale.
            let da = _mm512_set1_ps(unsafe { *tokens[t].1.get_unchecked(s * SUB_BLOCKS) });
            acc[t] = _mm512_fmadd_ps(dots[t], _mm512_mul_ps(d, da), acc[t]);
        }
    }
    // SAFETY: the caller owns the tile's cells.
    unsafe { store_pair(&acc, w.rows, units, t0, out) }
}
