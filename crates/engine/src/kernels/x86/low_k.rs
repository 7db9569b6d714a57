//! The 256-bit tiles of Q3_K and Q2_K, the k-quants of 16-value sub-blocks and 2- or 3-bit
//! values.

/// Tile code of Q3_K and Q2_K, shared by both levels; expects the helpers of `tiles!`
/// (`broadcast4`, `prefetch_ahead`, `quant_ahead`, `store_groups`, `signed_scale_spreads`) and its
/// imports in the expanding module.
macro_rules! low_k_tiles {
    ($features:literal) => {
        use super::super::layout::{Q2K_BLOCK_BYTES, Q3K_BLOCK_BYTES};

        /// A group super-block's packed Q3_K scales at `p` ([`packed_scales_at`]), unpacked to
        /// 8 rows' 32-bit words of signed scales `sc − 32`, word `i` byte `k` for sub-block
        /// `4 i + k` (the layout of Q6_K's scales): ggml's unpacking of `aux` for 8 rows at once.
        ///
        /// # Safety
        /// `p` must point at a group super-block's 96 bytes.
        #[inline]
        #[target_feature(enable = $features)]
        pub(in super::super) unsafe fn unpack_q3k_scales(p: *const u8) -> [__m256i; 4] {
            // SAFETY: the caller's 96 bytes hold the three words.
            let [u0, u1, u2] = std::array::from_fn(|w| unsafe {
                _mm256_loadu_si256(p.add(32 * w) as *const __m256i)
            });
            let (low4, top2, bias) = (
                _mm256_set1_epi8(0x0F),
                _mm256_set1_epi8(0x30),
                _mm256_set1_epi8(32),
            );
            // the low 4 bits from a nibble of word 0 or 1, the high 2 from bits 2 (j / 4) of
            // word 2, moved to bits 4-5
            let six = |nibbles: __m256i, high: __m256i| {
                let value = _mm256_or_si256(
                    _mm256_and_si256(nibbles, low4),
                    _mm256_and_si256(high, top2),
                );
                _mm256_sub_epi8(value, bias)
            };
            [
                six(u0, _mm256_slli_epi32::<4>(u2)),
                six(u1, _mm256_slli_epi32::<2>(u2)),
                six(_mm256_srli_epi32::<4>(u0), u2),
                six(_mm256_srli_epi32::<4>(u1), _mm256_srli_epi32::<2>(u2)),
            ]
        }

        /// A group super-block's Q2_K scale nibbles at `p` ([`q6k_scales_at`]): the 8 rows'
        /// 4-bit scales and minimums, each as 4 words of bytes in Q6_K's scale layout.
        ///
        /// # Safety
        /// `p` must point at a group super-block's 128 bytes.
        #[inline]
        #[target_feature(enable = $features)]
        pub(in super::super) unsafe fn unpack_q2k_scales(
            p: *const u8,
        ) -> ([__m256i; 4], [__m256i; 4]) {
            let low4 = _mm256_set1_epi8(0x0F);
            // SAFETY: the caller's 128 bytes hold the four words.
            let words: [__m256i; 4] = std::array::from_fn(|w| unsafe {
                _mm256_loadu_si256(p.add(32 * w) as *const __m256i)
            });
            (
                words.map(|w| _mm256_and_si256(w, low4)),
                words.map(|w| _mm256_and_si256(_mm256_srli_epi16::<4>(w), low4)),
            )
        }

        /// The 8 weight vectors of a Q2_K or Q3_K block at `p` (4 bytes of each of 8 rows per
        /// vector, values `4 m .. 4 m + 4` in vector `m`): the 2 bits of vector `4 h + f` are
        /// bits `2 f` of each byte of word `h` (`layout::q6k_high_bits_at`), Q3_K's high bit
        /// is bit `m` of each byte of its third word (`layout::q5_high_bit_at`), moved to bit
        /// 2: unsigned values 0-3 or 0-7.
        ///
        /// # Safety
        /// `p` must point at a group's block of 64 (Q2_K) or 96 (Q3_K) bytes.
        #[inline]
        #[target_feature(enable = $features)]
        pub(in super::super) unsafe fn load_low_k<const Q: u8>(p: *const u8) -> [__m256i; 8] {
            let mask = _mm256_set1_epi8(3);
            let mut weights = [_mm256_setzero_si256(); 8];
            for h in 0..2 {
                // SAFETY: the caller's block holds 64 bytes of 2-bit values.
                let bits = unsafe { _mm256_loadu_si256(p.add(32 * h) as *const __m256i) };
                let placed = [
                    bits,
                    _mm256_srli_epi16::<2>(bits),
                    _mm256_srli_epi16::<4>(bits),
                    _mm256_srli_epi16::<6>(bits),
                ];
                for (f, v) in placed.iter().enumerate() {
                    weights[4 * h + f] = _mm256_and_si256(*v, mask);
                }
            }
            if Q == quant_code::Q3K {
                // SAFETY: a Q3_K block has 32 bytes of high bits after them.
                let bits = unsafe { _mm256_loadu_si256(p.add(64) as *const __m256i) };
                let placed = [
                    _mm256_slli_epi16::<2>(bits),
                    _mm256_slli_epi16::<1>(bits),
                    bits,
                    _mm256_srli_epi16::<1>(bits),
                    _mm256_srli_epi16::<2>(bits),
                    _mm256_srli_epi16::<3>(bits),
                    _mm256_srli_epi16::<4>(bits),
                    _mm256_srli_epi16::<5>(bits),
                ];
                let bit2 = _mm256_set1_epi8(4);
                for (w, v) in weights.iter_mut().zip(placed) {
                    *w = _mm256_or_si256(*w, _mm256_and_si256(v, bit2));
                }
            }
            weights
        }

        /// A Q2_K or Q3_K block's dot products with the activation block at `a`, each half's
        /// times its rows' sub-block scales (`scales[h]`, 16-bit in both halves of a lane): a
        /// half's 4 vectors of products summed in 16 bits (4 x 2 x 7 x 127 fits), then
        /// multiplied by the scale and widened in `vpmaddwd`.
        ///
        /// # Safety
        /// `a` must point at a block's 32 bytes.
        #[inline]
        #[target_feature(enable = $features)]
        unsafe fn low_k_dot(weights: &[__m256i; 8], a: *const u8, scales: [__m256i; 2]) -> __m256i {
            let mut dots = [_mm256_setzero_si256(); 2];
            for (h, dot) in dots.iter_mut().enumerate() {
                let mut sums = [_mm256_setzero_si256(); 2];
                for f in 0..4 {
                    let m = 4 * h + f;
                    // SAFETY: m < 8 and the caller's block has 32 bytes.
                    let a4 = unsafe { broadcast4(a, m) };
                    let products = _mm256_maddubs_epi16(weights[m], a4);
                    sums[f % 2] = _mm256_add_epi16(sums[f % 2], products);
                }
                *dot = _mm256_madd_epi16(_mm256_add_epi16(sums[0], sums[1]), scales[h]);
            }
            _mm256_add_epi32(dots[0], dots[1])
        }

        /// As [`quant_tile`] for Q3_K and Q2_K (format `Q`) against activations quantized per
        /// super-block, as [`q6k_tile`] does Q6_K: the unsigned values' dots are scaled by their
        /// 16-value sub-block's scale in integers ([`low_k_dot`]) and summed over the
        /// super-block; Q3_K's offset 4 comes off in integers as 4 times the signed scales' dot
        /// with the activations' half-block sums, Q2_K's minimums meet those sums in integers,
        /// so only `d · d_a` (and Q2_K's `dmin · d_a`) is applied in floats (no overflow:
        /// 256 x 32 x 7 x 127 and 256 x 32 x 4 x 127 fit in 32 bits).
        ///
        /// # Safety
        /// As [`quant_tile`]'s; the activations' grain must be the super-block.
        #[target_feature(enable = $features)]
        pub(in super::super) unsafe fn low_k_tile<const Q: u8, const T: usize, const N: usize>(
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
                // the scales (Q3_K's signed) and the words the half sums meet: Q3_K's scales
                // again, Q2_K's minimums
                let words: [([__m256i; 4], [__m256i; 4]); N] = k.map(|k| {
                    // SAFETY: the groups exist, so their super-block s's scales do.
                    unsafe {
                        if q3 {
                            let p = w.sub_scales.as_ptr().add(packed_scales_at(k));
                            let scales = unpack_q3k_scales(p);
                            (scales, scales)
                        } else {
                            unpack_q2k_scales(w.sub_scales.as_ptr().add(q6k_scales_at(k)))
                        }
                    }
                });
                let mut dots = [[_mm256_setzero_si256(); T]; N];
                for j in 0..SUB_BLOCKS {
                    let b = s * SUB_BLOCKS + j;
                    for n in 0..N {
                        let at = (units.at(n) * blocks + b) * GROUP;
                        let p = w.quants.as_ptr().wrapping_add(at * bytes);
                        prefetch_ahead(p, ahead, GROUP * bytes);
                        // the block's scales 2j and 2j + 1: word j / 2, bytes 2 (j % 2) and on
                        let word = words[n].0[j / 2];
                        let scales = [
                            spread(word, scale_spread[2 * (j % 2)]),
                            spread(word, scale_spread[2 * (j % 2) + 1]),
                        ];
                        // SAFETY: the group exists, so its block b does.
                        let weights = unsafe { load_low_k::<Q>(p) };
                        for t in 0..T {
                            // SAFETY: every token row has `blocks` blocks of 32 bytes.
                            let dot = unsafe {
                                let a = tokens[t].0.as_ptr().add(b) as *const u8;
                                low_k_dot(&weights, a, scales)
                            };
                            dots[n][t] = _mm256_add_epi32(dots[n][t], dot);
                        }
                    }
                }
                for n in 0..N {
                    let pairs: [__m256i; SUB_BLOCKS] =
                        std::array::from_fn(|q| spread(words[n].1[q / 2], pair_spread[q % 2]));
                    // SAFETY: the group's super-block s has its d (and Q2_K's dmin).
                    let (d, dmin) = unsafe {
                        let halves =
                            |p: *const u16| _mm256_cvtph_ps(_mm_loadu_si128(p as *const __m128i));
                        let dmin = if q3 {
                            _mm256_setzero_ps()
                        } else {
                            halves(w.mins.as_ptr().add(k[n]))
                        };
                        (halves(w.scales.as_ptr().add(k[n])), dmin)
                    };
                    for t in 0..T {
                        // SAFETY: the token row's super-block s has 16 half sums and a scale.
                        let (da, pair_dot) = unsafe {
                            let hs = half_sums[t].as_ptr().add(2 * s * SUB_BLOCKS);
                            let mut pair_dot = _mm256_setzero_si256();
                            for (q, sc) in pairs.iter().enumerate() {
                                let pair_sums =
                                    std::ptr::read_unaligned(hs.add(2 * q) as *const i32);
                                let products = _mm256_madd_epi16(*sc, _mm256_set1_epi32(pair_sums));
                                pair_dot = _mm256_add_epi32(pair_dot, products);
                            }
                            (
                                _mm256_set1_ps(*tokens[t].1.get_unchecked(s * SUB_BLOCKS)),
                                pair_dot,
                            )
                        };
                        if q3 {
                            let total =
                                _mm256_sub_epi32(dots[n][t], _mm256_slli_epi32::<2>(pair_dot));
                            let total = _mm256_cvtepi32_ps(total);
                            acc[n][t] = _mm256_fmadd_ps(total, _mm256_mul_ps(d, da), acc[n][t]);
                        } else {
                            let total = _mm256_cvtepi32_ps(dots[n][t]);
                            acc[n][t] = _mm256_fmadd_ps(total, _mm256_mul_ps(d, da), acc[n][t]);
                            let mins = _mm256_cvtepi32_ps(pair_dot);
                            acc[n][t] = _mm256_fnmadd_ps(mins, _mm256_mul_ps(dmin, da), acc[n][t]);
                        }
                    }
                }
            }
            // SAFETY: the caller owns the tile's cells.
            unsafe { store_groups(&acc, w.rows, units, t0, out) }
        }
    };
}
