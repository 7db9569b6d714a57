//! The tiles of the dot-product kernels: a group of 8 interleaved quantized rows, or a few float
//! rows, against a few tokens, summed along the rows.

/// Tile code shared by both levels; expects `load_bytes`, `dot_nibbles`, `dot_bytes` and
/// `BYTE_OFFSET` in the expanding module (the k-quants' tiles are the same code at both:
/// their 16-bit sums meet the sub-block scales in `vpmaddwd`).
///
/// `dot_nibbles(weights, a)` and `dot_bytes(weights, a)` take the 8 weight vectors of a block
/// (4 bytes of each of 8 rows per vector: unsigned nibbles, or Q8_0's bytes as `load_bytes` gives
/// them) and the block's 32 activation bytes, and return the 8 rows' integer dot products.
macro_rules! tiles {
    ($features:literal) => {
        use super::super::activations::QuantizedActivations;
        use super::super::format::{float_code, quant_code, IQ4_VALUES};
        use super::super::layout::{
            iq4xs_scales_at, packed_scales_at, q6k_scales_at, signed_scale_spread,
            sub_scale_spread, QuantRows, GROUP, Q5_BLOCK_BYTES, Q6K_BLOCK_BYTES, SUB_BLOCKS,
        };
        use super::super::tile::{quant_ahead_bytes, FloatRows, Output, Units, FLOAT_AHEAD_BYTES};
        use std::arch::x86_64::*;

        #[target_feature(enable = $features)]
        fn f16_to_f32(h: u16) -> f32 {
            _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h as i32)))
        }

        /// Activation bytes `4 j .. 4 j + 4` of the block at `a`, in every lane.
        ///
        /// # Safety
        /// `a` must point at a block's 32 bytes; `j < 8`.
        #[target_feature(enable = $features)]
        unsafe fn broadcast4(a: *const u8, j: usize) -> __m256i {
            // SAFETY: the caller's block holds bytes 4 j .. 4 j + 4.
            _mm256_set1_epi32(unsafe { std::ptr::read_unaligned(a.add(4 * j) as *const i32) })
        }

        #[target_feature(enable = $features)]
        fn sum_lanes(v: __m256) -> f32 {
            let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
            let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
            _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps(s, s, 1)))
        }

        /// The 8 weight vectors of a block of nibbles at `p` (4 bytes of each of 8 rows per
        /// vector): the low nibbles of the 4 loads, then their high nibbles.
        ///
        /// # Safety
        /// `p` must point at a group's block of 128 bytes.
        #[target_feature(enable = $features)]
        unsafe fn load_nibbles(p: *const u8) -> [__m256i; 8] {
            let mask = _mm256_set1_epi8(0x0F);
            let mut weights = [_mm256_setzero_si256(); 8];
            for j in 0..4 {
                // SAFETY: the caller's block holds 128 bytes.
                let v = unsafe { _mm256_loadu_si256(p.add(32 * j) as *const __m256i) };
                weights[j] = _mm256_and_si256(v, mask);
                weights[j + 4] = _mm256_and_si256(_mm256_srli_epi16(v, 4), mask);
            }
            weights
        }

        /// A block's pairwise products of unsigned nibbles with signed activation bytes, summed
        /// in 16 bits over the whole block (no overflow: 8 vectors x 2 x 15 x 127 = 30480 fits):
        /// each 32-bit lane holds two partial sums of its row.
        ///
        /// # Safety
        /// `a` must point at a block's 32 bytes.
        #[target_feature(enable = $features)]
        unsafe fn nibble_sums16(weights: &[__m256i; 8], a: *const u8) -> __m256i {
            // two independent sums halve the chain of dependent additions
            let mut sums = [_mm256_setzero_si256(); 2];
            for (j, w) in weights.iter().enumerate() {
                // SAFETY: j < 8 and the caller's block has 32 bytes.
                let a4 = unsafe { broadcast4(a, j) };
                sums[j % 2] = _mm256_add_epi16(sums[j % 2], _mm256_maddubs_epi16(*w, a4));
            }
            _mm256_add_epi16(sums[0], sums[1])
        }

        /// Hints the `bytes` bytes of a group's block `ahead` bytes past `p` into L1 (dropped
        /// past the end; nothing without a distance).
        #[target_feature(enable = $features)]
        pub(in super::super) fn prefetch_ahead(p: *const u8, ahead: Option<usize>, bytes: usize) {
            let Some(ahead) = ahead else { return };
            for line in (0..bytes).step_by(64) {
                _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(ahead + line) as *const i8);
            }
        }

        /// Writes the 8 lanes of each group's sums (`acc[n][t]`, group `units.at(n)`, token
        /// `t0 + t`), dropping the padding rows of the matrix's last group.
        ///
        /// # Safety
        /// The output cells must belong to the caller's tile.
        #[target_feature(enable = $features)]
        unsafe fn store_groups<const T: usize, const N: usize>(
            acc: &[[__m256; T]; N],
            rows: usize,
            units: Units,
            t0: usize,
            out: Output,
        ) {
            for (n, group) in acc.iter().enumerate() {
                let g = units.at(n);
                let rows = GROUP.min(rows - g * GROUP);
                for (t, v) in group.iter().enumerate() {
                    let mut lanes = [0f32; GROUP];
                    // SAFETY: lanes holds 8 floats.
                    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), *v) };
                    for (lane, value) in lanes.iter().enumerate().take(rows) {
                        // SAFETY: the caller owns these cells.
                        unsafe { out.write(t0 + t, g * GROUP + lane, *value) };
                    }
                }
            }
        }

        /// Bytes a tile of `T` tokens prefetches ahead of its block of a group's `bytes` bytes
        /// per block: one token, each group's stream a little ahead where that helps
        /// ([`quant_ahead_bytes`]); more, the next group, which later token tiles would
        /// otherwise find the memory idle for.
        pub(in super::super) fn quant_ahead<const T: usize>(
            blocks: usize,
            bytes: usize,
        ) -> Option<usize> {
            if T == 1 {
                quant_ahead_bytes()
            } else {
                Some(blocks * GROUP * bytes)
            }
        }

        /// The 8 rows of each of the `N` groups of `units` times tokens `t0..t0+T` (Q4_0, Q4_1,
        /// Q5_0, Q5_1, Q8_0, IQ4_NL: its nibbles looked up as bytes like Q8_0's; the 5-bit values' products summed as Q5_K's, see [`k_dot`]): each 256-bit weight vector holds 4 bytes of each row, multiplied by the same
        /// 4 activation bytes broadcast, so the 8 lanes accumulate the 8 rows and scales apply
        /// as vectors. With one token it prefetches each group's stream [`quant_ahead_bytes`]
        /// ahead of its block where the CPU takes a distance; with more (one group), the group after it (the group is walked
        /// once per tile of tokens). Past the matrix's end, the hint is dropped.
        ///
        /// # Safety
        /// The CPU must have the features; the groups and tokens must exist; the output cells
        /// must belong to this tile.
        #[target_feature(enable = $features)]
        pub(in super::super) unsafe fn quant_tile<const Q: u8, const T: usize, const N: usize>(
            w: &QuantRows,
            units: Units,
            act: &QuantizedActivations,
            t0: usize,
            out: Output,
        ) {
            let blocks = w.blocks;
            // quantized bytes of one row's block: 32 bytes, 32 nibbles, or those and high bits
            let five = Q == quant_code::Q5_0 || Q == quant_code::Q5_1;
            let bytes = match Q {
                quant_code::Q8_0 => 32,
                _ if five => Q5_BLOCK_BYTES,
                _ => 16,
            };
            // the stored weights' offset from their signed values, taken out of the integer
            // dots with the activations' block sums, as ggml's signed dots leave it out
            let offset: i32 = match Q {
                quant_code::Q4_0 => 8,
                quant_code::Q5_0 => 16,
                quant_code::Q8_0 | quant_code::IQ4NL => BYTE_OFFSET,
                _ => 0,
            };
            let ahead = quant_ahead::<T>(blocks, bytes);
            let table = iq4_table(BYTE_OFFSET);
            let tokens: [_; T] = std::array::from_fn(|t| act.token(t0 + t));
            let sums: [_; T] = std::array::from_fn(|t| act.block_sums(t0 + t));
            let mut acc = [[_mm256_setzero_ps(); T]; N];
            for b in 0..blocks {
                for n in 0..N {
                    let at = (units.at(n) * blocks + b) * GROUP;
                    let p = w.quants.as_ptr().wrapping_add(at * bytes);
                    prefetch_ahead(p, ahead, GROUP * bytes);
                    // SAFETY: the group exists, so its block b does (8 rows, padded).
                    let (weights, scale, min) = unsafe {
                        let weights = if Q == quant_code::Q8_0 {
                            std::array::from_fn(|j| load_bytes(p.add(32 * j)))
                        } else if Q == quant_code::IQ4NL {
                            load_iq4(p, table)
                        } else if five {
                            load_q5(p)
                        } else {
                            load_nibbles(p)
                        };
                        let halves =
                            |p: *const u16| _mm256_cvtph_ps(_mm_loadu_si128(p as *const __m128i));
                        let scale = halves(w.scales.as_ptr().add(at));
                        let min = if Q == quant_code::Q4_1 || Q == quant_code::Q5_1 {
                            halves(w.mins.as_ptr().add(at))
                        } else {
                            _mm256_setzero_ps()
                        };
                        (weights, scale, min)
                    };
                    for t in 0..T {
                        let (quants, scales, scaled_sums) = tokens[t];
                        // SAFETY: every token row has `blocks` blocks.
                        let (a, d, s, sum) = unsafe {
                            (
                                quants.as_ptr().add(b) as *const u8,
                                *scales.get_unchecked(b),
                                *scaled_sums.get_unchecked(b),
                                *sums[t].get_unchecked(b),
                            )
                        };
                        // SAFETY: a block has 32 bytes.
                        let mut dot = unsafe {
                            if Q == quant_code::Q8_0 || Q == quant_code::IQ4NL {
                                dot_bytes(&weights, a)
                            } else if five {
                                k_dot::<{ quant_code::Q5K }>(&weights, a, _mm256_set1_epi16(1))
                            } else {
                                dot_nibbles(&weights, a)
                            }
                        };
                        if offset != 0 {
                            let taken = _mm256_set1_epi32(offset * i32::from(sum));
                            dot = _mm256_sub_epi32(dot, taken);
                        }
                        let scaled = _mm256_mul_ps(scale, _mm256_set1_ps(d));
                        acc[n][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), scaled, acc[n][t]);
                        if Q == quant_code::Q4_1 || Q == quant_code::Q5_1 {
                            acc[n][t] = _mm256_fmadd_ps(min, _mm256_set1_ps(s), acc[n][t]);
                        }
                    }
                }
            }
            // SAFETY: the caller owns the tile's cells.
            unsafe { store_groups(&acc, w.rows, units, t0, out) }
        }

        /// The 16 IQ4 values as bytes plus `offset` (wrapping: 0 leaves them signed, 128 makes
        /// them unsigned as `vpdpbusd` takes them), in both 128-bit lanes: a `pshufb` table.
        #[inline]
        #[target_feature(enable = $features)]
        pub(in super::super) fn iq4_table(offset: i32) -> __m256i {
            let bytes: [u8; 16] =
                std::array::from_fn(|i| (i32::from(IQ4_VALUES[i]) + offset) as u8);
            // SAFETY: the table holds 16 bytes.
            _mm256_broadcastsi128_si256(unsafe {
                _mm_loadu_si128(bytes.as_ptr() as *const __m128i)
            })
        }

        /// The 8 weight vectors of an IQ4 block of nibbles at `p` (as [`load_nibbles`]), each
        /// nibble looked up in `table` ([`iq4_table`]).
        ///
        /// # Safety
        /// `p` must point at a group's block of 128 bytes.
        #[inline]
        #[target_feature(enable = $features)]
        unsafe fn load_iq4(p: *const u8, table: __m256i) -> [__m256i; 8] {
            // SAFETY: as the caller's.
            let mut weights = unsafe { load_nibbles(p) };
            // a loop, not a closure: a closure would be compiled without the level's features
            for w in weights.iter_mut() {
                *w = _mm256_shuffle_epi8(table, *w);
            }
            weights
        }

        /// A block's dot products of signed weight bytes with signed activation bytes, times
        /// the rows' sub-block scale (`scale`, 16-bit in both halves of a lane), in 32 bits:
        /// |w| times sign(w)·a in `vpmaddubsw` (a pair of products, 2 x 127 x 127, fits 16
        /// bits: IQ4's values lie in [-127, 113]), then times the scale in `vpmaddwd`.
        ///
        /// # Safety
        /// `a` must point at a block's 32 bytes.
        #[inline]
        #[target_feature(enable = $features)]
        unsafe fn scaled_signed_dot(
            weights: &[__m256i; 8],
            a: *const u8,
            scale: __m256i,
        ) -> __m256i {
            let mut dots = [_mm256_setzero_si256(); 2];
            for (j, w) in weights.iter().enumerate() {
                // SAFETY: j < 8 and the caller's block has 32 bytes.
                let a4 = unsafe { broadcast4(a, j) };
                let products =
                    _mm256_maddubs_epi16(_mm256_sign_epi8(*w, *w), _mm256_sign_epi8(a4, *w));
                dots[j % 2] = _mm256_add_epi32(dots[j % 2], _mm256_madd_epi16(products, scale));
            }
            _mm256_add_epi32(dots[0], dots[1])
        }

        /// As [`quant_tile`] for IQ4_XS against activations quantized per super-block: each
        /// block's signed table values meet the activations in integers
        /// ([`scaled_signed_dot`]), scaled by the rows' signed sub-block scale and summed over
        /// the super-block, so only `d · d_a` is applied in floats, as ggml does (no overflow:
        /// 8 x 32 x 127 x 127 x 32 fits in 32 bits).
        ///
        /// # Safety
        /// As [`quant_tile`]'s; the activations' grain must be the super-block.
        #[target_feature(enable = $features)]
        pub(in super::super) unsafe fn iq4xs_tile<const T: usize, const N: usize>(
            w: &QuantRows,
            units: Units,
            act: &QuantizedActivations,
            t0: usize,
            out: Output,
        ) {
            let blocks = w.blocks;
            let ahead = quant_ahead::<T>(blocks, 16);
            let table = iq4_table(0);
            let (scale_spread, _) = signed_scale_spreads();
            let spread = |word: __m256i, pattern: __m256i| {
                _mm256_srai_epi16::<8>(_mm256_shuffle_epi8(word, pattern))
            };
            let tokens: [_; T] = std::array::from_fn(|t| act.token(t0 + t));
            let mut acc = [[_mm256_setzero_ps(); T]; N];
            for s in 0..blocks / SUB_BLOCKS {
                let k: [usize; N] =
                    std::array::from_fn(|n| (units.at(n) * blocks / SUB_BLOCKS + s) * GROUP);
                let words: [[__m256i; 2]; N] = k.map(|k| {
                    // SAFETY: the groups exist, so their super-block s's 2 words of scales do.
                    std::array::from_fn(|i| unsafe {
                        let p = w.sub_scales.as_ptr().add(iq4xs_scales_at(k) + 32 * i);
                        _mm256_loadu_si256(p as *const __m256i)
                    })
                });
                let mut dots = [[_mm256_setzero_si256(); T]; N];
                for j in 0..SUB_BLOCKS {
                    let b = s * SUB_BLOCKS + j;
                    for n in 0..N {
                        let at = (units.at(n) * blocks + b) * GROUP;
                        let p = w.quants.as_ptr().wrapping_add(at * 16);
                        prefetch_ahead(p, ahead, GROUP * 16);
                        let scale = spread(words[n][j / 4], scale_spread[j % 4]);
                        // SAFETY: the group exists, so its block b does.
                        let weights = unsafe { load_iq4(p, table) };
                        for t in 0..T {
                            // SAFETY: every token row has `blocks` blocks of 32 bytes.
                            let dot = unsafe {
                                let a = tokens[t].0.as_ptr().add(b) as *const u8;
                                scaled_signed_dot(&weights, a, scale)
                            };
                            dots[n][t] = _mm256_add_epi32(dots[n][t], dot);
                        }
                    }
                }
                for n in 0..N {
                    // SAFETY: the group's super-block s has its d.
                    let d = unsafe {
                        _mm256_cvtph_ps(_mm_loadu_si128(
                            w.scales.as_ptr().add(k[n]) as *const __m128i
                        ))
                    };
                    for t in 0..T {
                        // SAFETY: the token row's super-block s has its scale.
                        let scale = unsafe { *tokens[t].1.get_unchecked(s * SUB_BLOCKS) };
                        let da = _mm256_set1_ps(scale);
                        let total = _mm256_cvtepi32_ps(dots[n][t]);
                        acc[n][t] = _mm256_fmadd_ps(total, _mm256_mul_ps(d, da), acc[n][t]);
                    }
                }
            }
            // SAFETY: the caller owns the tile's cells.
            unsafe { store_groups(&acc, w.rows, units, t0, out) }
        }

        /// The 8 weight vectors of a Q5_K block at `p` (4 bytes of each of 8 rows per vector,
        /// as [`load_nibbles`]): each value's nibble with its high bit at bit 4, from the
        /// block's word of high bits (`layout::q5_high_bit_at`: vector `m` takes bit `m` of
        /// each byte), so unsigned values 0-31.
        ///
        /// # Safety
        /// `p` must point at a group's block of 160 bytes.
        #[inline]
        #[target_feature(enable = $features)]
        pub(in super::super) unsafe fn load_q5(p: *const u8) -> [__m256i; 8] {
            // SAFETY: the caller's block holds 128 bytes of nibbles, then 32 of high bits.
            let (mut weights, bits) = unsafe {
                (
                    load_nibbles(p),
                    _mm256_loadu_si256(p.add(128) as *const __m256i),
                )
            };
            let placed = [
                _mm256_slli_epi16::<4>(bits),
                _mm256_slli_epi16::<3>(bits),
                _mm256_slli_epi16::<2>(bits),
                _mm256_slli_epi16::<1>(bits),
                bits,
                _mm256_srli_epi16::<1>(bits),
                _mm256_srli_epi16::<2>(bits),
                _mm256_srli_epi16::<3>(bits),
            ];
            let top = _mm256_set1_epi8(0x10);
            for (w, v) in weights.iter_mut().zip(placed) {
                *w = _mm256_or_si256(*w, _mm256_and_si256(v, top));
            }
            weights
        }

        /// A Q4_K or 5-bit block's dot products with the activation block at `a`, times the
        /// rows' sub-block scale (`scale`, 16-bit in both halves of a lane) in `vpmaddwd`:
        /// Q4_K's nibble products summed in 16 bits over the block ([`nibble_sums16`]), Q5_K's
        /// over each half of its vectors (4 x 2 x 31 x 127 fits, 8 would not).
        ///
        /// # Safety
        /// `a` must point at a block's 32 bytes.
        #[inline]
        #[target_feature(enable = $features)]
        unsafe fn k_dot<const Q: u8>(
            weights: &[__m256i; 8],
            a: *const u8,
            scale: __m256i,
        ) -> __m256i {
            if Q != quant_code::Q5K {
                // SAFETY: as the caller's.
                return _mm256_madd_epi16(unsafe { nibble_sums16(weights, a) }, scale);
            }
            let mut sums = [_mm256_setzero_si256(); 2];
            for (j, w) in weights.iter().enumerate() {
                // SAFETY: j < 8 and the caller's block has 32 bytes.
                let a4 = unsafe { broadcast4(a, j) };
                sums[j / 4] = _mm256_add_epi16(sums[j / 4], _mm256_maddubs_epi16(*w, a4));
            }
            _mm256_add_epi32(
                _mm256_madd_epi16(sums[0], scale),
                _mm256_madd_epi16(sums[1], scale),
            )
        }

        /// The `pshufb` patterns of Q4_K's unpacked sub-block scales: sub-block `q`'s scale
        /// (of 4) into both 16-bit halves of its row's lane, and minimums `2h, 2h + 1` into the
        /// two halves ([`sub_scale_spread`]).
        #[inline]
        #[target_feature(enable = $features)]
        pub(in super::super) fn k_spreads() -> ([__m256i; 4], [__m256i; 2]) {
            let spread = |first: usize, second: usize| {
                let pattern = sub_scale_spread(first, second);
                // SAFETY: the pattern holds 16 bytes.
                _mm256_broadcastsi128_si256(unsafe {
                    _mm_loadu_si128(pattern.as_ptr() as *const __m128i)
                })
            };
            (
                std::array::from_fn(|q| spread(q, q)),
                std::array::from_fn(|h| spread(2 * h, 2 * h + 1)),
            )
        }

        /// A group super-block's packed sub-block scales at `p` ([`packed_scales_at`]),
        /// unpacked to 8 rows' 32-bit words of 6-bit values, byte `i` of a word for sub-block
        /// `i` of 4: the scales of sub-blocks 0-3, then 4-7, the minimums of 0-3, then 4-7
        /// (GGUF's `get_scale_min_k4` for 8 rows at once).
        ///
        /// # Safety
        /// `p` must point at a group super-block's 96 bytes.
        #[inline]
        #[target_feature(enable = $features)]
        pub(in super::super) unsafe fn unpack_k_scales(p: *const u8) -> [__m256i; 4] {
            // SAFETY: the caller's 96 bytes hold the three words.
            let [u0, u1, u2] = std::array::from_fn(|w| unsafe {
                _mm256_loadu_si256(p.add(32 * w) as *const __m256i)
            });
            let (low6, low4, top2) = (
                _mm256_set1_epi8(0x3F),
                _mm256_set1_epi8(0x0F),
                _mm256_set1_epi8(0x30),
            );
            // sub-blocks 4-7: the low (scales) or high (minimums) nibble of word 2, and bits
            // 6-7 of word 0 (scales) or 1 (minimums) as bits 4-5
            let high = |nibbles: __m256i, word: __m256i| {
                _mm256_or_si256(
                    _mm256_and_si256(nibbles, low4),
                    _mm256_and_si256(_mm256_srli_epi32::<2>(word), top2),
                )
            };
            [
                _mm256_and_si256(u0, low6),
                high(u2, u0),
                _mm256_and_si256(u1, low6),
                high(_mm256_srli_epi32::<4>(u2), u1),
            ]
        }

        /// As [`quant_tile`] for Q4_K and Q5_K (format `Q`) against activations quantized per
        /// super-block: a sub-block's 16-bit sums ([`k_dot`]) are multiplied by its rows' 6-bit
        /// scales in `vpmaddwd` (which widens them too) and summed in 32 bits over the
        /// super-block; the
        /// minimums meet the activations' block sums in integers as well (16-bit pairs of
        /// sub-blocks, 4 `vpmaddwd` per super-block), so only the super-block's `d · d_a` and
        /// `dmin · d_a` are applied in floats (no overflow: 8 x 2 x 31496 x 63 and
        /// 8 x 63 x 32 x 127 fit in 32 bits).
        ///
        /// # Safety
        /// As [`quant_tile`]'s; the activations' grain must be the super-block.
        #[target_feature(enable = $features)]
        pub(in super::super) unsafe fn k_tile<const Q: u8, const T: usize, const N: usize>(
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
            let (scale_spread, min_spread) = k_spreads();
            let tokens: [_; T] = std::array::from_fn(|t| act.token(t0 + t));
            let sums: [_; T] = std::array::from_fn(|t| act.block_sums(t0 + t));
            let mut acc = [[_mm256_setzero_ps(); T]; N];
            for s in 0..blocks / SUB_BLOCKS {
                let k: [usize; N] =
                    std::array::from_fn(|n| (units.at(n) * blocks / SUB_BLOCKS + s) * GROUP);
                // SAFETY: the groups exist, so their super-block s's scales do.
                let unpacked = k.map(|k| unsafe {
                    unpack_k_scales(w.sub_scales.as_ptr().add(packed_scales_at(k)))
                });
                let mut dots = [[_mm256_setzero_si256(); T]; N];
                for j in 0..SUB_BLOCKS {
                    let b = s * SUB_BLOCKS + j;
                    for n in 0..N {
                        let at = (units.at(n) * blocks + b) * GROUP;
                        let p = w.quants.as_ptr().wrapping_add(at * bytes);
                        prefetch_ahead(p, ahead, GROUP * bytes);
                        let scale = _mm256_shuffle_epi8(unpacked[n][j / 4], scale_spread[j % 4]);
                        // SAFETY: the group exists, so its block b does.
                        let weights = unsafe {
                            if Q == quant_code::Q5K {
                                load_q5(p)
                            } else {
                                load_nibbles(p)
                            }
                        };
                        for t in 0..T {
                            // SAFETY: every token row has `blocks` blocks of 32 bytes.
                            let scaled = unsafe {
                                let a = tokens[t].0.as_ptr().add(b) as *const u8;
                                k_dot::<Q>(&weights, a, scale)
                            };
                            dots[n][t] = _mm256_add_epi32(dots[n][t], scaled);
                        }
                    }
                }
                for n in 0..N {
                    let mins: [__m256i; SUB_BLOCKS / 2] = std::array::from_fn(|pair| {
                        _mm256_shuffle_epi8(unpacked[n][2 + pair / 2], min_spread[pair % 2])
                    });
                    // SAFETY: the group's super-block s has its d and dmin.
                    let (d, dmin) = unsafe {
                        let halves =
                            |p: *const u16| _mm256_cvtph_ps(_mm_loadu_si128(p as *const __m128i));
                        (
                            halves(w.scales.as_ptr().add(k[n])),
                            halves(w.mins.as_ptr().add(k[n])),
                        )
                    };
                    for t in 0..T {
                        // SAFETY: the token row's super-block s has 8 block sums and scales.
                        let (da, min_dot) = unsafe {
                            let bs = sums[t].as_ptr().add(s * SUB_BLOCKS);
                            let mut min_dot = _mm256_setzero_si256();
                            for (pair, m) in mins.iter().enumerate() {
                                let pair_sums =
                                    std::ptr::read_unaligned(bs.add(2 * pair) as *const i32);
                                let products = _mm256_madd_epi16(*m, _mm256_set1_epi32(pair_sums));
                                min_dot = _mm256_add_epi32(min_dot, products);
                            }
                            (
                                _mm256_set1_ps(*tokens[t].1.get_unchecked(s * SUB_BLOCKS)),
                                min_dot,
                            )
                        };
                        let dots = _mm256_cvtepi32_ps(dots[n][t]);
                        acc[n][t] = _mm256_fmadd_ps(dots, _mm256_mul_ps(d, da), acc[n][t]);
                        let mins = _mm256_cvtepi32_ps(min_dot);
                        acc[n][t] = _mm256_fnmadd_ps(mins, _mm256_mul_ps(dmin, da), acc[n][t]);
                    }
                }
            }
            // SAFETY: the caller owns the tile's cells.
            unsafe { store_groups(&acc, w.rows, units, t0, out) }
        }

        /// The `pshufb` patterns of signed sub-block scales (Q6_K, Q3_K, Q2_K, IQ4_XS;
        /// [`signed_scale_spread`], then shifted right by 8): scale `i` (of a word's 4) into
        /// both 16-bit halves of its row's lane, and pairs of scales `2q, 2q + 1` into the two
        /// halves.
        #[inline]
        #[target_feature(enable = $features)]
        pub(in super::super) fn signed_scale_spreads() -> ([__m256i; 4], [__m256i; 2]) {
            let spread = |first: usize, second: usize| {
                let pattern = signed_scale_spread(first, second);
                // SAFETY: the pattern holds 16 bytes.
                _mm256_broadcastsi128_si256(unsafe {
                    _mm_loadu_si128(pattern.as_ptr() as *const __m128i)
                })
            };
            (
                std::array::from_fn(|i| spread(i, i)),
                std::array::from_fn(|q| spread(2 * q, 2 * q + 1)),
            )
        }

        /// The 8 weight vectors of a Q6_K block at `p` (4 bytes of each of 8 rows per vector,
        /// as [`load_nibbles`]): each value's nibble with its high 2 bits at bits 4-5, from the
        /// block's two words of high bits (`layout::q6k_high_bits_at`: vector `4 h + f` takes
        /// bits `2 f` of each byte of word `h`), so unsigned values 0-63.
        ///
        /// # Safety
        /// `p` must point at a group's block of 192 bytes.
        #[inline]
        #[target_feature(enable = $features)]
        pub(in super::super) unsafe fn load_q6(p: *const u8) -> [__m256i; 8] {
            // SAFETY: the caller's block holds 128 bytes of nibbles, then 64 of high bits.
            let mut weights = unsafe { load_nibbles(p) };
            let top = _mm256_set1_epi8(0x30);
            for h in 0..2 {
                // SAFETY: as above.
                let bits = unsafe { _mm256_loadu_si256(p.add(128 + 32 * h) as *const __m256i) };
                let placed = [
                    _mm256_slli_epi16::<4>(bits),
                    _mm256_slli_epi16::<2>(bits),
                    bits,
                    _mm256_srli_epi16::<2>(bits),
                ];
                for (f, v) in placed.iter().enumerate() {
                    let high = _mm256_and_si256(*v, top);
                    weights[4 * h + f] = _mm256_or_si256(weights[4 * h + f], high);
                }
            }
            weights
        }

        /// A Q6_K block's dot products with the activation block at `a`, each half's scaled
        /// by its rows' scales (`scales[h]`, 16-bit in both halves of a lane): pairs of
        /// vectors' products summed in 16 bits (2 x 2 x 63 x 127 fits), then multiplied by the
        /// scale and widened in `vpmaddwd`.
        ///
        /// # Safety
        /// `a` must point at a block's 32 bytes.
        #[inline]
        #[target_feature(enable = $features)]
        unsafe fn q6_dot(weights: &[__m256i; 8], a: *const u8, scales: [__m256i; 2]) -> __m256i {
            let mut dots = [_mm256_setzero_si256(); 2];
            for pair in 0..4 {
                let j = 2 * pair;
                // SAFETY: j + 1 < 8 and the caller's block has 32 bytes.
                let (a0, a1) = unsafe { (broadcast4(a, j), broadcast4(a, j + 1)) };
                let sum16 = _mm256_add_epi16(
                    _mm256_maddubs_epi16(weights[j], a0),
                    _mm256_maddubs_epi16(weights[j + 1], a1),
                );
                let scaled = _mm256_madd_epi16(sum16, scales[pair / 2]);
                dots[pair % 2] = _mm256_add_epi32(dots[pair % 2], scaled);
            }
            _mm256_add_epi32(dots[0], dots[1])
        }

        /// As [`quant_tile`] for Q6_K against activations quantized per super-block: the
        /// unsigned 6-bit values' dots are scaled by their 16-value sub-block's signed scale in
        /// integers ([`q6_dot`]) and summed over the super-block; the offset 32 comes off in
        /// integers too, as 32 times the scales' dot with the activations' half-block sums
        /// (pairs of sub-blocks, 8 `vpmaddwd` per super-block), so only `d · d_a` is applied
        /// in floats (no overflow: 256 x 128 x 63 x 127 and 256 x 128 x 32 x 127 fit in 32
        /// bits).
        ///
        /// # Safety
        /// As [`quant_tile`]'s; the activations' grain must be the super-block.
        #[target_feature(enable = $features)]
        pub(in super::super) unsafe fn q6k_tile<const T: usize, const N: usize>(
            w: &QuantRows,
            units: Units,
            act: &QuantizedActivations,
            t0: usize,
            out: Output,
        ) {
            let blocks = w.blocks;
            let ahead = quant_ahead::<T>(blocks, Q6K_BLOCK_BYTES);
            let (scale_spread, pair_spread) = signed_scale_spreads();
            let spread = |word: __m256i, pattern: __m256i| {
                _mm256_srai_epi16::<8>(_mm256_shuffle_epi8(word, pattern))
            };
            let tokens: [_; T] = std::array::from_fn(|t| act.token(t0 + t));
            let half_sums: [_; T] = std::array::from_fn(|t| act.half_sums(t0 + t));
            let mut acc = [[_mm256_setzero_ps(); T]; N];
            for s in 0..blocks / SUB_BLOCKS {
                let k: [usize; N] =
                    std::array::from_fn(|n| (units.at(n) * blocks / SUB_BLOCKS + s) * GROUP);
                let words: [[__m256i; 4]; N] = k.map(|k| {
                    // SAFETY: the groups exist, so their super-block s's 4 words of scales do.
                    std::array::from_fn(|i| unsafe {
                        let p = w.sub_scales.as_ptr().add(q6k_scales_at(k) + 32 * i);
                        _mm256_loadu_si256(p as *const __m256i)
                    })
                });
                let mut dots = [[_mm256_setzero_si256(); T]; N];
                for j in 0..SUB_BLOCKS {
                    let b = s * SUB_BLOCKS + j;
                    for n in 0..N {
                        let at = (units.at(n) * blocks + b) * GROUP;
                        let p = w.quants.as_ptr().wrapping_add(at * Q6K_BLOCK_BYTES);
                        prefetch_ahead(p, ahead, GROUP * Q6K_BLOCK_BYTES);
                        // the block's scales 2j and 2j + 1: word j / 2, bytes 2 (j % 2) and on
                        let word = words[n][j / 2];
                        let scales = [
                            spread(word, scale_spread[2 * (j % 2)]),
                            spread(word, scale_spread[2 * (j % 2) + 1]),
                        ];
                        // SAFETY: the group exists, so its block b does.
                        let weights = unsafe { load_q6(p) };
                        for t in 0..T {
                            // SAFETY: every token row has `blocks` blocks of 32 bytes.
                            let dot = unsafe {
                                let a = tokens[t].0.as_ptr().add(b) as *const u8;
                                q6_dot(&weights, a, scales)
                            };
                            dots[n][t] = _mm256_add_epi32(dots[n][t], dot);
                        }
                    }
                }
                for n in 0..N {
                    let pairs: [__m256i; SUB_BLOCKS] =
                        std::array::from_fn(|q| spread(words[n][q / 2], pair_spread[q % 2]));
                    // SAFETY: the group's super-block s has its d.
                    let d = unsafe {
                        _mm256_cvtph_ps(_mm_loadu_si128(
                            w.scales.as_ptr().add(k[n]) as *const __m128i
                        ))
                    };
                    for t in 0..T {
                        // SAFETY: the token row's super-block s has 16 half sums and a scale.
                        let (da, offsets) = unsafe {
                            let hs = half_sums[t].as_ptr().add(2 * s * SUB_BLOCKS);
                            let mut offsets = _mm256_setzero_si256();
                            for (q, sc) in pairs.iter().enumerate() {
                                let pair_sums =
                                    std::ptr::read_unaligned(hs.add(2 * q) as *const i32);
                                let products = _mm256_madd_epi16(*sc, _mm256_set1_epi32(pair_sums));
                                offsets = _mm256_add_epi32(offsets, products);
                            }
                            (
                                _mm256_set1_ps(*tokens[t].1.get_unchecked(s * SUB_BLOCKS)),
                                offsets,
                            )
                        };
                        let total = _mm256_sub_epi32(dots[n][t], _mm256_slli_epi32::<5>(offsets));
                        let total = _mm256_cvtepi32_ps(total);
                        acc[n][t] = _mm256_fmadd_ps(total, _mm256_mul_ps(d, da), acc[n][t]);
                    }
                }
            }
            // SAFETY: the caller owns the tile's cells.
            unsafe { store_groups(&acc, w.rows, units, t0, out) }
        }

        /// Eight stored values at `p` as f32.
        #[target_feature(enable = $features)]
        unsafe fn load_float<const F: u8>(p: *const u8) -> __m256 {
            // SAFETY: the caller points at 8 readable values.
            unsafe {
                match F {
                    float_code::F32 => _mm256_loadu_ps(p as *const f32),
                    float_code::F16 => _mm256_cvtph_ps(_mm_loadu_si128(p as *const __m128i)),
                    _ => _mm256_castsi256_ps(_mm256_slli_epi32(
                        _mm256_cvtepu16_epi32(_mm_loadu_si128(p as *const __m128i)),
                        16,
                    )),
                }
            }
        }

        /// The stored value at `p` as f32.
        #[target_feature(enable = $features)]
        unsafe fn load_one<const F: u8>(p: *const u8) -> f32 {
            // SAFETY: the caller points at one readable value.
            unsafe {
                match F {
                    float_code::F32 => std::ptr::read_unaligned(p as *const f32),
                    float_code::F16 => f16_to_f32(std::ptr::read_unaligned(p as *const u16)),
                    _ => f32::from_bits((std::ptr::read_unaligned(p as *const u16) as u32) << 16),
                }
            }
        }

        /// The `R` float rows of `units` times tokens `t0..t0+T` of `x`, prefetching each
        /// row's stream [`FLOAT_AHEAD_BYTES`] ahead, once per cache line (near a row's end, the
        /// place is in the row after it: the next tile's, in the same stream; past the
        /// matrix's end, the hint is dropped).
        ///
        /// # Safety
        /// The CPU must have the features; rows and tokens must exist; the output cells
        /// must belong to this tile.
        #[target_feature(enable = $features)]
        pub(in super::super) unsafe fn float_tile<
            V: Copy,
            const F: u8,
            const R: usize,
            const T: usize,
        >(
            w: &FloatRows<V>,
            units: Units,
            x: &[f32],
            t0: usize,
            out: Output,
        ) {
            let cols = w.cols;
            let size = std::mem::size_of::<V>();
            let main = cols / 8 * 8;
            let base = w.values.as_ptr() as *const u8;
            let rows: [*const u8; R] =
                std::array::from_fn(|r| base.wrapping_add(units.at(r) * cols * size));
            let mut acc = [[_mm256_setzero_ps(); T]; R];
            let mut c = 0;
            while c < main {
                let mut weights = [_mm256_setzero_ps(); R];
                if (c * size) % 64 == 0 {
                    for row in rows {
                        let next = row.wrapping_add(c * size + FLOAT_AHEAD_BYTES);
                        _mm_prefetch::<_MM_HINT_T0>(next as *const i8);
                    }
                }
                for r in 0..R {
                    // SAFETY: the tile's row r exists and c + 8 <= cols.
                    weights[r] = unsafe { load_float::<F>(rows[r].add(c * size)) };
                }
                for t in 0..T {
                    // SAFETY: token t0 + t exists and c + 8 <= cols.
                    let xv = unsafe { _mm256_loadu_ps(x.as_ptr().add((t0 + t) * cols + c)) };
                    for r in 0..R {
                        acc[r][t] = _mm256_fmadd_ps(weights[r], xv, acc[r][t]);
                    }
                }
                c += 8;
            }
            for r in 0..R {
                for t in 0..T {
                    let mut total = sum_lanes(acc[r][t]);
                    for c in main..cols {
                        // SAFETY: in bounds as above.
                        let v = unsafe { load_one::<F>(rows[r].add(c * size)) };
                        total += v * x[(t0 + t) * cols + c];
                    }
                    // SAFETY: the caller owns these cells.
                    unsafe { out.write(t0 + t, units.at(r), total) };
                }
            }
        }
    };
}
