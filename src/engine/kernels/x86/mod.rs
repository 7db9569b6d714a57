//! x86-64 kernels: the same code compiled twice, for AVX2 (`vpmaddubsw` dots, 16 vector
//! registers) and for AVX-512 VL + VNNI (`vpdpbusd` dots, 32 vector registers). Both work on
//! 256-bit vectors: one vector is one block of 32 quantized values or 8 floats.

#[macro_use]
mod tiles;
#[macro_use]
mod packed;
pub(super) mod bf16_dot;

/// AVX2 + FMA + F16C.
pub(super) mod avx2 {
    tiles!("avx2,fma,f16c");
    packed!("avx2,fma,f16c");

    /// Q8_0 bytes stay signed: the sign trick below needs no offset.
    const BYTE_OFFSET: f32 = 0.0;

    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn load_bytes(p: *const u8) -> __m256i {
        // SAFETY: the caller points at 32 readable bytes.
        unsafe { _mm256_loadu_si256(p as *const __m256i) }
    }

    /// `acc` plus unsigned nibbles times signed bytes, 4 products per lane (no overflow:
    /// 2·15·127 fits the 16-bit pairs).
    #[target_feature(enable = "avx2,fma,f16c")]
    fn dot_nibbles(acc: __m256i, w: __m256i, a: __m256i) -> __m256i {
        let pairs = _mm256_madd_epi16(_mm256_maddubs_epi16(w, a), _mm256_set1_epi16(1));
        _mm256_add_epi32(acc, pairs)
    }

    /// `acc` plus signed bytes times signed bytes, as |w| times sign(w)·a (no overflow:
    /// 2·128·127 fits the 16-bit pairs).
    #[target_feature(enable = "avx2,fma,f16c")]
    fn dot_bytes(acc: __m256i, w: __m256i, a: __m256i) -> __m256i {
        let products = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(a, w));
        _mm256_add_epi32(acc, _mm256_madd_epi16(products, _mm256_set1_epi16(1)))
    }
}

/// AVX-512 F/BW/VL + VNNI on 256-bit vectors.
pub(super) mod avx512 {
    tiles!("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni");
    packed!("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni");

    /// Q8_0 bytes are loaded as `w + 128` (unsigned), which `vpdpbusd` needs.
    const BYTE_OFFSET: f32 = 128.0;

    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
    unsafe fn load_bytes(p: *const u8) -> __m256i {
        // SAFETY: the caller points at 32 readable bytes.
        let w = unsafe { _mm256_loadu_si256(p as *const __m256i) };
        _mm256_xor_si256(w, _mm256_set1_epi8(-128))
    }

    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
    fn dot_nibbles(acc: __m256i, w: __m256i, a: __m256i) -> __m256i {
        _mm256_dpbusd_epi32(acc, w, a)
    }

    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
    fn dot_bytes(acc: __m256i, w: __m256i, a: __m256i) -> __m256i {
        _mm256_dpbusd_epi32(acc, w, a)
    }
}
