//! x86-64 tiles: the same tile code compiled twice, for AVX2 (`vpmaddubsw` dots, 16 vector
//! registers) and for AVX-512 VL + VNNI (`vpdpbusd` dots, 32 vector registers). Both work on
//! 256-bit vectors: one vector is one block of 32 quantized values or 8 floats.

/// Tile code shared by both levels; expects `load_bytes`, `dot_nibbles`, `dot_bytes` and
/// `BYTE_OFFSET` in the expanding module.
macro_rules! tiles {
    ($features:literal) => {
        use super::super::activations::QuantizedActivations;
        use super::super::tile::{float_code, quant_code, FloatRows, Output, QuantRows};
        use std::arch::x86_64::*;

        #[target_feature(enable = $features)]
        fn f16_to_f32(h: u16) -> f32 {
            _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h as i32)))
        }

        #[target_feature(enable = $features)]
        fn sum_lanes(v: __m256) -> f32 {
            let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
            let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
            _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps(s, s, 1)))
        }

        /// 16 bytes of nibbles as 32 unsigned bytes: low nibbles first, then high ones.
        #[target_feature(enable = $features)]
        unsafe fn load_nibbles(p: *const u8) -> __m256i {
            // SAFETY: the caller points at 16 readable bytes.
            let q = unsafe { _mm_loadu_si128(p as *const __m128i) };
            let both = _mm256_set_m128i(_mm_srli_epi16(q, 4), q);
            _mm256_and_si256(both, _mm256_set1_epi8(0x0F))
        }

        /// Quantized rows `r0..r0+R` times tokens `t0..t0+T`.
        ///
        /// # Safety
        /// The CPU must have the features; rows and tokens must exist; the output cells
        /// must belong to this tile.
        #[target_feature(enable = $features)]
        pub(in super::super) unsafe fn quant_tile<const Q: u8, const R: usize, const T: usize>(
            w: &QuantRows,
            r0: usize,
            act: &QuantizedActivations,
            t0: usize,
            out: Output,
        ) {
            let blocks = w.blocks;
            let quant_bytes = if Q == quant_code::Q8_0 { 32 } else { 16 };
            let offset = match Q {
                quant_code::Q4_0 => 8.0,
                quant_code::Q4_1 => 0.0,
                _ => BYTE_OFFSET,
            };
            let tokens: [_; T] = std::array::from_fn(|t| act.token(t0 + t));
            let mut acc = [[_mm256_setzero_ps(); T]; R];
            let mut correction = [[0f32; T]; R];
            for b in 0..blocks {
                let mut weights = [_mm256_setzero_si256(); R];
                let mut scale = [0f32; R];
                let mut shift = [0f32; R];
                for r in 0..R {
                    let at = (r0 + r) * blocks + b;
                    // SAFETY: row r0 + r exists, so its block b does.
                    unsafe {
                        let p = w.quants.as_ptr().add(at * quant_bytes);
                        weights[r] = if Q == quant_code::Q8_0 {
                            load_bytes(p)
                        } else {
                            load_nibbles(p)
                        };
                        scale[r] = f16_to_f32(*w.scales.get_unchecked(at));
                        let min = if Q == quant_code::Q4_1 {
                            f16_to_f32(*w.mins.get_unchecked(at))
                        } else {
                            0.0
                        };
                        shift[r] = min - offset * scale[r];
                    }
                }
                for t in 0..T {
                    let (quants, scales, sums) = tokens[t];
                    // SAFETY: every token row has `blocks` blocks.
                    let (a, d, s) = unsafe {
                        (
                            _mm256_load_si256(quants.as_ptr().add(b) as *const __m256i),
                            *scales.get_unchecked(b),
                            *sums.get_unchecked(b),
                        )
                    };
                    for r in 0..R {
                        let dot = if Q == quant_code::Q8_0 {
                            dot_bytes(weights[r], a)
                        } else {
                            dot_nibbles(weights[r], a)
                        };
                        acc[r][t] = _mm256_fmadd_ps(
                            _mm256_cvtepi32_ps(dot),
                            _mm256_set1_ps(scale[r] * d),
                            acc[r][t],
                        );
                        correction[r][t] += shift[r] * s;
                    }
                }
            }
            for r in 0..R {
                for t in 0..T {
                    // SAFETY: the caller owns these cells.
                    unsafe { out.write(t0 + t, r0 + r, sum_lanes(acc[r][t]) + correction[r][t]) };
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

        /// Float rows `r0..r0+R` times tokens `t0..t0+T` of `x`.
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
            r0: usize,
            x: &[f32],
            t0: usize,
            out: Output,
        ) {
            let cols = w.cols;
            let size = std::mem::size_of::<V>();
            let main = cols / 8 * 8;
            let base = w.values.as_ptr() as *const u8;
            let mut acc = [[_mm256_setzero_ps(); T]; R];
            let mut c = 0;
            while c < main {
                let mut weights = [_mm256_setzero_ps(); R];
                for r in 0..R {
                    // SAFETY: row r0 + r exists and c + 8 <= cols.
                    weights[r] = unsafe { load_float::<F>(base.add(((r0 + r) * cols + c) * size)) };
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
                        let v = unsafe { base.add(((r0 + r) * cols + c) * size) };
                        // SAFETY: v points at one stored value.
                        let v = unsafe {
                            match F {
                                float_code::F32 => *(v as *const f32),
                                float_code::F16 => f16_to_f32(std::ptr::read_unaligned(v as *const u16)),
                                _ => f32::from_bits((std::ptr::read_unaligned(v as *const u16) as u32) << 16),
                            }
                        };
                        total += v * x[(t0 + t) * cols + c];
                    }
                    // SAFETY: the caller owns these cells.
                    unsafe { out.write(t0 + t, r0 + r, total) };
                }
            }
        }
    };
}

/// AVX2 + FMA + F16C.
pub(super) mod avx2 {
    tiles!("avx2,fma,f16c");

    /// Q8_0 bytes stay signed: the sign trick below needs no offset.
    const BYTE_OFFSET: f32 = 0.0;

    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn load_bytes(p: *const u8) -> __m256i {
        // SAFETY: the caller points at 32 readable bytes.
        unsafe { _mm256_loadu_si256(p as *const __m256i) }
    }

    /// Unsigned nibbles times signed bytes, 8 lanes of partial sums (no overflow: 2·15·127).
    #[target_feature(enable = "avx2,fma,f16c")]
    fn dot_nibbles(w: __m256i, a: __m256i) -> __m256i {
        _mm256_madd_epi16(_mm256_maddubs_epi16(w, a), _mm256_set1_epi16(1))
    }

    /// Signed bytes times signed bytes as |w| times sign(w)·a (no overflow: 2·128·127).
    #[target_feature(enable = "avx2,fma,f16c")]
    fn dot_bytes(w: __m256i, a: __m256i) -> __m256i {
        let products = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(a, w));
        _mm256_madd_epi16(products, _mm256_set1_epi16(1))
    }
}

/// AVX-512 F/BW/VL + VNNI on 256-bit vectors.
pub(super) mod avx512 {
    tiles!("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni");

    /// Q8_0 bytes are loaded as `w + 128` (unsigned), which `vpdpbusd` needs.
    const BYTE_OFFSET: f32 = 128.0;

    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
    unsafe fn load_bytes(p: *const u8) -> __m256i {
        // SAFETY: the caller points at 32 readable bytes.
        let w = unsafe { _mm256_loadu_si256(p as *const __m256i) };
        _mm256_xor_si256(w, _mm256_set1_epi8(-128))
    }

    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
    fn dot_nibbles(w: __m256i, a: __m256i) -> __m256i {
        _mm256_dpbusd_epi32(_mm256_setzero_si256(), w, a)
    }

    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
    fn dot_bytes(w: __m256i, a: __m256i) -> __m256i {
        _mm256_dpbusd_epi32(_mm256_setzero_si256(), w, a)
    }
}
