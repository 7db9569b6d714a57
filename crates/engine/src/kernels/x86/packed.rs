//! The packed-panel code of float prefill (see `kernels::packed`) shared by both levels: packing
//! weight rows into micro-panels, and the micro-kernels' output prefetch and stores (the
//! micro-kernels themselves are in `micro256` and `micro512`).

/// Packing code shared by both levels, and the micro-kernels' output helpers; expanded after
/// `tiles!` in the same module, whose `load_float`, `load_one` and imports it uses.
macro_rules! packed {
    ($features:literal) => {
        use super::super::micro::{Column, MicroTile, MICRO_ROWS};

        /// Eight vectors of eight values transposed: lane `j` of vector `i` becomes lane `i` of
        /// vector `j`.
        #[target_feature(enable = $features)]
        pub(in super::super) fn transpose8(r: [__m256; 8]) -> [__m256; 8] {
            let t0 = _mm256_unpacklo_ps(r[0], r[1]);
            let t1 = _mm256_unpackhi_ps(r[0], r[1]);
            let t2 = _mm256_unpacklo_ps(r[2], r[3]);
            let t3 = _mm256_unpackhi_ps(r[2], r[3]);
            let t4 = _mm256_unpacklo_ps(r[4], r[5]);
            let t5 = _mm256_unpackhi_ps(r[4], r[5]);
            let t6 = _mm256_unpacklo_ps(r[6], r[7]);
            let t7 = _mm256_unpackhi_ps(r[6], r[7]);
            // columns 0 to 3 of rows 0-3 (low halves) and of rows 4-7, and 4 to 7 (high halves)
            let s0 = _mm256_shuffle_ps::<0x44>(t0, t2);
            let s1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
            let s2 = _mm256_shuffle_ps::<0x44>(t1, t3);
            let s3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
            let s4 = _mm256_shuffle_ps::<0x44>(t4, t6);
            let s5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
            let s6 = _mm256_shuffle_ps::<0x44>(t5, t7);
            let s7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
            [
                _mm256_permute2f128_ps::<0x20>(s0, s4),
                _mm256_permute2f128_ps::<0x20>(s1, s5),
                _mm256_permute2f128_ps::<0x20>(s2, s6),
                _mm256_permute2f128_ps::<0x20>(s3, s7),
                _mm256_permute2f128_ps::<0x31>(s0, s4),
                _mm256_permute2f128_ps::<0x31>(s1, s5),
                _mm256_permute2f128_ps::<0x31>(s2, s6),
                _mm256_permute2f128_ps::<0x31>(s3, s7),
            ]
        }

        /// Packs rows `r0..r0+rows` (at most [`MICRO_ROWS`]; the rest of the micro-panel is
        /// zeros), columns `k0..k0+depth` of `w` into `out` (`depth` entries), one column per
        /// entry, as f32: eight rows by eight columns are loaded, widened and transposed at a
        /// time.
        ///
        /// # Safety
        /// The CPU must have the features; the rows and columns must exist.
        #[target_feature(enable = $features)]
        pub(in super::super) unsafe fn pack<V: Copy, const F: u8>(
            w: &FloatRows<V>,
            r0: usize,
            rows: usize,
            k0: usize,
            depth: usize,
            out: &mut [Column],
        ) {
            let cols = w.cols;
            let size = std::mem::size_of::<V>();
            let base = w.values.as_ptr() as *const u8;
            let at = |r: usize, k: usize| {
                // SAFETY: the caller guarantees row r0 + r and column k0 + k exist.
                unsafe { base.add(((r0 + r) * cols + k0 + k) * size) }
            };
            let main = depth / 8 * 8;
            for half in (0..MICRO_ROWS).step_by(8) {
                let real = rows.saturating_sub(half).min(8);
                for k in (0..main).step_by(8) {
                    let mut v = [_mm256_setzero_ps(); 8];
                    for (i, v) in v.iter_mut().enumerate().take(real) {
                        // SAFETY: eight values of an existing row from column k0 + k.
                        *v = unsafe { load_float::<F>(at(half + i, k)) };
                    }
                    for (j, column) in transpose8(v).into_iter().enumerate() {
                        // SAFETY: a column holds 16 aligned floats; half + 8 <= 16.
                        unsafe { _mm256_store_ps(out[k + j].0.as_mut_ptr().add(half), column) };
                    }
                }
                for (k, column) in out.iter_mut().enumerate().take(depth).skip(main) {
                    for i in 0..8 {
                        column.0[half + i] = if i < real {
                            // SAFETY: an existing value.
                            unsafe { load_one::<F>(at(half + i, k)) }
                        } else {
                            0.0
                        };
                    }
                }
            }
        }

        /// Starts loading the tile's output cells into L1, where [`store_sums`] reads and
        /// writes them a whole depth later: one token's 16 rows are one or two cache lines,
        /// and the lines of 6 tokens are far apart (a token's outputs are a row of the output
        /// matrix), so without it each call ends in up to 12 misses to L3 that its sums wait
        /// on.
        ///
        /// # Safety
        /// The CPU must have the features.
        #[target_feature(enable = $features)]
        pub(in super::super) unsafe fn prefetch_outputs<const T: usize, X>(tile: &MicroTile<X>) {
            for t in 0..T {
                // SAFETY: the tile's first row of token t is a cell of the output.
                let first = unsafe { tile.out.cell(t, 0) } as *const i8;
                // a prefetch never faults: the last row's line may lie past a short tile
                _mm_prefetch::<_MM_HINT_T0>(first);
                _mm_prefetch::<_MM_HINT_T0>(first.wrapping_add(4 * (MICRO_ROWS - 1)));
            }
        }

        /// Writes (or adds) a micro-kernel's sums, two vectors of 16 rows per token, to the
        /// tile's outputs. The sums come by value: a micro-kernel that lent its accumulators
        /// to this call (not inlined into it) kept them in memory through its whole loop.
        ///
        /// # Safety
        /// The CPU must have the features; the tile must own its output cells.
        #[allow(clippy::needless_range_loop)]
        #[target_feature(enable = $features)]
        pub(in super::super) unsafe fn store_sums<const T: usize, X>(
            tile: &MicroTile<X>,
            acc: [[__m256; 2]; T],
        ) {
            for t in 0..T {
                // SAFETY: the tile owns its output cells.
                let out = unsafe { tile.out.cell(t, 0) };
                if tile.rows == MICRO_ROWS {
                    for h in 0..2 {
                        // SAFETY: 16 rows of token t's outputs are this tile's.
                        unsafe {
                            let p = out.add(8 * h);
                            let v = if tile.accumulate {
                                _mm256_add_ps(_mm256_loadu_ps(p), acc[t][h])
                            } else {
                                acc[t][h]
                            };
                            _mm256_storeu_ps(p, v);
                        }
                    }
                } else {
                    let mut lanes = [0f32; MICRO_ROWS];
                    // SAFETY: lanes holds 16 floats.
                    unsafe {
                        _mm256_storeu_ps(lanes.as_mut_ptr(), acc[t][0]);
                        _mm256_storeu_ps(lanes.as_mut_ptr().add(8), acc[t][1]);
                    }
                    // SAFETY: as above, for the tile's rows.
                    unsafe { tile.finish(t, &lanes) };
                }
            }
        }

        /// Eight vectors of eight 16-bit values transposed: value `j` of vector `i` becomes
        /// value `i` of vector `j`.
        #[target_feature(enable = $features)]
        fn transpose8x16(a: [__m128i; 8]) -> [__m128i; 8] {
            let b0 = _mm_unpacklo_epi16(a[0], a[1]);
            let b1 = _mm_unpackhi_epi16(a[0], a[1]);
            let b2 = _mm_unpacklo_epi16(a[2], a[3]);
            let b3 = _mm_unpackhi_epi16(a[2], a[3]);
            let b4 = _mm_unpacklo_epi16(a[4], a[5]);
            let b5 = _mm_unpackhi_epi16(a[4], a[5]);
            let b6 = _mm_unpacklo_epi16(a[6], a[7]);
            let b7 = _mm_unpackhi_epi16(a[6], a[7]);
            // columns 0-1, 2-3 (from b0, b2) and 4-5, 6-7 (from b1, b3) of rows 0-3; same for 4-7
            let c0 = _mm_unpacklo_epi32(b0, b2);
            let c1 = _mm_unpackhi_epi32(b0, b2);
            let c2 = _mm_unpacklo_epi32(b1, b3);
            let c3 = _mm_unpackhi_epi32(b1, b3);
            let c4 = _mm_unpacklo_epi32(b4, b6);
            let c5 = _mm_unpackhi_epi32(b4, b6);
            let c6 = _mm_unpacklo_epi32(b5, b7);
            let c7 = _mm_unpackhi_epi32(b5, b7);
            [
                _mm_unpacklo_epi64(c0, c4),
                _mm_unpackhi_epi64(c0, c4),
                _mm_unpacklo_epi64(c1, c5),
                _mm_unpackhi_epi64(c1, c5),
                _mm_unpacklo_epi64(c2, c6),
                _mm_unpackhi_epi64(c2, c6),
                _mm_unpacklo_epi64(c3, c7),
                _mm_unpackhi_epi64(c3, c7),
            ]
        }

        /// Where rows `8 * half..8 * half + 8` of depth step `k` of a half micro-panel go:
        /// step `k` takes the 32 bytes at `32 * k` (its column's first or second half).
        ///
        /// # Safety
        /// Step `k` must be one of the micro-panel's (`k / 2 < ` its columns).
        #[inline(always)]
        unsafe fn half_slot(out: *mut Column, k: usize, half: usize) -> *mut u16 {
            // SAFETY: the step's 16 values of 2 bytes lie inside column k / 2.
            unsafe { (out as *mut u16).add(k * MICRO_ROWS + 8 * half) }
        }

        /// Packs rows `r0..r0+rows` (at most [`MICRO_ROWS`]; the rest of the micro-panel is
        /// zeros), columns `k0..k0+depth` of `w`'s 16-bit values into `out` as they are
        /// stored, two depth steps per column (a half panel): eight rows by eight
        /// columns are loaded and transposed at a time. The second step of the last column of
        /// an odd depth is zeros.
        ///
        /// # Safety
        /// The CPU must have the features; `V` must be 16 bits wide; the rows and columns must
        /// exist and `out` must hold `depth.div_ceil(2)` columns.
        #[target_feature(enable = $features)]
        pub(in super::super) unsafe fn pack_half<V: Copy>(
            w: &FloatRows<V>,
            r0: usize,
            rows: usize,
            k0: usize,
            depth: usize,
            out: &mut [Column],
        ) {
            assert_eq!(std::mem::size_of::<V>(), 2);
            let cols = w.cols;
            let base = w.values.as_ptr() as *const u16;
            // SAFETY: the caller guarantees row r0 + r and column k0 + k exist.
            let at = |r: usize, k: usize| unsafe { base.add((r0 + r) * cols + k0 + k) };
            let panel = out.as_mut_ptr();
            let main = depth / 8 * 8;
            for half in 0..2 {
                let real = rows.saturating_sub(8 * half).min(8);
                for k in (0..main).step_by(8) {
                    let mut v = [_mm_setzero_si128(); 8];
                    for (i, v) in v.iter_mut().enumerate().take(real) {
                        // SAFETY: eight values of an existing row from column k0 + k.
                        *v = unsafe { _mm_loadu_si128(at(8 * half + i, k) as *const __m128i) };
                    }
                    for (j, step) in transpose8x16(v).into_iter().enumerate() {
                        // SAFETY: step k + j < depth is the micro-panel's; its slot is 16
                        // aligned bytes.
                        unsafe {
                            _mm_store_si128(half_slot(panel, k + j, half) as *mut __m128i, step)
                        };
                    }
                }
                for k in main..depth.next_multiple_of(2) {
                    for i in 0..8 {
                        let value = if i < real && k < depth {
                            // SAFETY: an existing value.
                            unsafe { *at(8 * half + i, k) }
                        } else {
                            0
                        };
                        // SAFETY: step k is the micro-panel's (the last column's second step
                        // included).
                        unsafe { *half_slot(panel, k, half).add(i) = value };
                    }
                }
            }
        }
    };
}
