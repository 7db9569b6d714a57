//! The packed-panel kernels of float prefill (see `kernels::packed`): packing weight rows into
//! micro-panels, and the micro-kernel that adds one column's outer product per step.

/// Packing and micro-kernel code shared by both levels; expanded after `tiles!` in the same
/// module, whose `load_float`, `load_one` and imports it uses.
macro_rules! packed {
    ($features:literal) => {
        use super::super::packed::{Column, MicroTile, MICRO_ROWS};

        /// Eight vectors of eight values transposed: lane `j` of vector `i` becomes lane `i` of
        /// vector `j`.
        #[target_feature(enable = $features)]
        fn transpose8(r: [__m256; 8]) -> [__m256; 8] {
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
        /// zeros), columns `k0..k0+out.len()` of `w` into `out`, one column per entry, as f32:
        /// eight rows by eight columns are loaded, widened and transposed at a time.
        ///
        /// # Safety
        /// The CPU must have the features; the rows and columns must exist.
        #[target_feature(enable = $features)]
        pub(in super::super) unsafe fn pack<V: Copy, const F: u8>(
            w: &FloatRows<V>,
            r0: usize,
            rows: usize,
            k0: usize,
            out: &mut [Column],
        ) {
            let (cols, depth) = (w.cols, out.len());
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
                for (k, column) in out.iter_mut().enumerate().skip(main) {
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

        /// The outputs of `T` tokens by a micro-panel's 16 rows: each step loads one column
        /// (two vectors of rows), broadcasts each token's activation of that column and
        /// multiply-adds, so the 2·T accumulators stay in registers for the whole depth.
        ///
        /// # Safety
        /// The CPU must have the features; `tile` must describe existing activations and
        /// output cells owned by this call.
        // (t, h) index loops keep the accumulators in registers
        #[allow(clippy::needless_range_loop)]
        #[target_feature(enable = $features)]
        pub(in super::super) unsafe fn micro_kernel<const T: usize>(tile: MicroTile) {
            let mut acc = [[_mm256_setzero_ps(); 2]; T];
            // SAFETY: the tile's tokens exist.
            let x: [*const f32; T] = std::array::from_fn(|t| unsafe { tile.token(t) });
            for (k, column) in tile.panel.iter().enumerate() {
                let lo = _mm256_load_ps(column.0.as_ptr());
                // SAFETY: a column holds 16 aligned floats.
                let hi = _mm256_load_ps(unsafe { column.0.as_ptr().add(8) });
                for t in 0..T {
                    // SAFETY: every token has the panel's depth of columns from x[t].
                    let b = _mm256_set1_ps(unsafe { *x[t].add(k) });
                    acc[t][0] = _mm256_fmadd_ps(lo, b, acc[t][0]);
                    acc[t][1] = _mm256_fmadd_ps(hi, b, acc[t][1]);
                }
            }
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
    };
}
