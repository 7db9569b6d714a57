//! The tiles of the dot-product kernels: a group of 8 interleaved quantized rows, or a few float
//! rows, against a few tokens, summed along the rows.

/// Tile code shared by both levels; expects `load_bytes`, `dot_nibbles`, `dot_bytes` and
/// `BYTE_OFFSET` in the expanding module.
///
/// `dot_nibbles(weights, a)` and `dot_bytes(weights, a)` take the 8 weight vectors of a block
/// (4 bytes of each of 8 rows per vector: unsigned nibbles, or Q8_0's bytes as `load_bytes` gives
/// them) and the block's 32 activation bytes, and return the 8 rows' integer dot products.
macro_rules! tiles {
    ($features:literal) => {
        use super::super::activations::QuantizedActivations;
        use super::super::matrix::{GROUP, SUB_BLOCKS};
        use super::super::tile::{
            float_code, quant_code, FloatRows, Output, QuantRows, Units, FLOAT_AHEAD_BYTES,
            QUANT_AHEAD_BYTES,
        };
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

        /// The 8 rows of each of the `N` groups of `units` times tokens `t0..t0+T`: each
        /// 256-bit weight vector holds 4 bytes of each row, multiplied by the same 4
        /// activation bytes broadcast, so the 8 lanes accumulate the 8 rows and scales apply as
        /// vectors. With one token it prefetches each group's stream [`QUANT_AHEAD_BYTES`]
        /// ahead of its block; with more (one group), the group after it (the group is walked
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
            // quantized bytes of one row's block: 32 bytes, or 32 nibbles
            let bytes = if Q == quant_code::Q8_0 { 32 } else { 16 };
            let offset = _mm256_set1_ps(match Q {
                quant_code::Q4_0 => 8.0,
                quant_code::Q8_0 => BYTE_OFFSET,
                _ => 0.0,
            });
            // One token: each group's stream, a little ahead. More tokens: the next group,
            // which later token tiles would otherwise find the memory idle for.
            let ahead = if T == 1 {
                QUANT_AHEAD_BYTES
            } else {
                blocks * GROUP * bytes
            };
            let tokens: [_; T] = std::array::from_fn(|t| act.token(t0 + t));
            let mut acc = [[_mm256_setzero_ps(); T]; N];
            // Q4_K: each group's super-block d and -dmin, widened once for its 8 blocks
            let mut super_d = [_mm256_setzero_ps(); N];
            let mut super_neg_dmin = [_mm256_setzero_ps(); N];
            for b in 0..blocks {
                for n in 0..N {
                    let g = units.at(n);
                    let at = (g * blocks + b) * GROUP;
                    let mut weights = [_mm256_setzero_si256(); 8];
                    let next = w.quants.as_ptr().wrapping_add(at * bytes + ahead);
                    for line in (0..GROUP * bytes).step_by(64) {
                        _mm_prefetch::<_MM_HINT_T0>(next.wrapping_add(line) as *const i8);
                    }
                    // SAFETY: group g exists, so its block b does (8 rows, padded).
                    let (scale, shift) = unsafe {
                        let p = w.quants.as_ptr().add(at * bytes);
                        if Q == quant_code::Q8_0 {
                            for (j, v) in weights.iter_mut().enumerate() {
                                *v = load_bytes(p.add(32 * j));
                            }
                        } else {
                            let mask = _mm256_set1_epi8(0x0F);
                            for j in 0..4 {
                                let v = _mm256_loadu_si256(p.add(32 * j) as *const __m256i);
                                weights[j] = _mm256_and_si256(v, mask);
                                weights[j + 4] = _mm256_and_si256(_mm256_srli_epi16(v, 4), mask);
                            }
                        }
                        let halves =
                            |p: *const u16| _mm256_cvtph_ps(_mm_loadu_si128(p as *const __m128i));
                        if Q == quant_code::Q4K {
                            let k = (g * blocks / SUB_BLOCKS + b / SUB_BLOCKS) * GROUP;
                            let j = b % SUB_BLOCKS;
                            let bytes = |e: usize| {
                                let p = w.sub_scales.as_ptr().add((k * 2 + e) * GROUP);
                                _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(
                                    p as *const __m128i,
                                )))
                            };
                            if j == 0 {
                                super_d[n] = halves(w.scales.as_ptr().add(k));
                                super_neg_dmin[n] = _mm256_sub_ps(
                                    _mm256_setzero_ps(),
                                    halves(w.mins.as_ptr().add(k)),
                                );
                            }
                            (
                                _mm256_mul_ps(super_d[n], bytes(j)),
                                _mm256_mul_ps(super_neg_dmin[n], bytes(SUB_BLOCKS + j)),
                            )
                        } else {
                            let scale = halves(w.scales.as_ptr().add(at));
                            let min = if Q == quant_code::Q4_1 {
                                halves(w.mins.as_ptr().add(at))
                            } else {
                                _mm256_setzero_ps()
                            };
                            (scale, _mm256_fnmadd_ps(offset, scale, min))
                        }
                    };
                    for t in 0..T {
                        let (quants, scales, sums) = tokens[t];
                        // SAFETY: every token row has `blocks` blocks.
                        let (a, d, s) = unsafe {
                            (
                                quants.as_ptr().add(b) as *const u8,
                                *scales.get_unchecked(b),
                                *sums.get_unchecked(b),
                            )
                        };
                        // SAFETY: a block has 32 bytes.
                        let dot = unsafe {
                            if Q == quant_code::Q8_0 {
                                dot_bytes(&weights, a)
                            } else {
                                dot_nibbles(&weights, a)
                            }
                        };
                        let scaled = _mm256_mul_ps(scale, _mm256_set1_ps(d));
                        acc[n][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), scaled, acc[n][t]);
                        acc[n][t] = _mm256_fmadd_ps(shift, _mm256_set1_ps(s), acc[n][t]);
                    }
                }
            }
            for (n, group) in acc.iter().enumerate() {
                let g = units.at(n);
                let rows = GROUP.min(w.rows - g * GROUP);
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
