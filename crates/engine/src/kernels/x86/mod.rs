//! x86-64 kernels: the same tile and packing code compiled twice, for AVX2 (`vpmaddubsw` dots,
//! 16 vector registers) and for AVX-512 VL + VNNI (`vpdpbusd` dots, 32 vector registers), on
//! 256-bit vectors: one vector is one block of 32 quantized values or 8 floats. Float
//! prefill's micro-kernels are each level's own: 256-bit ones for AVX2 (`micro256`), 512-bit
//! ones for AVX-512 (`micro512`, BF16's with AVX512-BF16). At the AVX-512 level, quantized
//! tiles of two groups (`quant512`, and `low_k512` for Q3_K and Q2_K: each group's 256-bit
//! vectors in one half of a 512-bit one), F16 decode tiles (`float512`) and BF16 ones
//! (`bf16_dot`, with AVX512-BF16) are 512-bit as well; the 256-bit tiles serve a group left
//! without a pair, and F32 decode. Q3_K's and Q2_K's 256-bit tiles are `low_k_tiles!`.

#[macro_use]
mod tiles;
#[macro_use]
mod low_k;
#[macro_use]
mod packed;
pub(super) mod bf16_dot;
pub(super) mod float512;
pub(super) mod low_k512;
pub(super) mod micro256;
pub(super) mod micro512;
pub(super) mod quant512;

/// AVX2 + FMA + F16C.
pub(super) mod avx2 {
    tiles!("avx2,fma,f16c");
    low_k_tiles!("avx2,fma,f16c");
    packed!("avx2,fma,f16c");

    /// Q8_0 bytes stay signed: the sign trick below needs no offset.
    const BYTE_OFFSET: i32 = 0;

    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn load_bytes(p: *const u8) -> __m256i {
        // SAFETY: the caller points at 32 readable bytes.
        unsafe { _mm256_loadu_si256(p as *const __m256i) }
    }

    /// A block's dot products of unsigned nibbles with signed activation bytes: its 16-bit sums
    /// ([`nibble_sums16`]) widened to 32 bits once, one `vpmaddwd` per block.
    ///
    /// # Safety
    /// `a` must point at a block's 32 bytes.
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn dot_nibbles(weights: &[__m256i; 8], a: *const u8) -> __m256i {
        // SAFETY: as the caller's.
        let sums = unsafe { nibble_sums16(weights, a) };
        _mm256_madd_epi16(sums, _mm256_set1_epi16(1))
    }

    /// A block's dot products of signed bytes with signed activation bytes, as |w| times
    /// sign(w)·a, widened to 32 bits per vector (a pair of products, 2 x 128 x 127, nearly fills
    /// 16 bits).
    ///
    /// # Safety
    /// `a` must point at a block's 32 bytes.
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn dot_bytes(weights: &[__m256i; 8], a: *const u8) -> __m256i {
        let mut dots = [_mm256_setzero_si256(); 2];
        for (j, w) in weights.iter().enumerate() {
            // SAFETY: j < 8 and the caller's block has 32 bytes.
            let a4 = unsafe { broadcast4(a, j) };
            let products = _mm256_maddubs_epi16(_mm256_sign_epi8(*w, *w), _mm256_sign_epi8(a4, *w));
            let pairs = _mm256_madd_epi16(products, _mm256_set1_epi16(1));
            dots[j % 2] = _mm256_add_epi32(dots[j % 2], pairs);
        }
        _mm256_add_epi32(dots[0], dots[1])
    }
}

/// AVX-512 F/BW/VL + VNNI on 256-bit vectors.
pub(super) mod avx512 {
    tiles!("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni");
    low_k_tiles!("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni");
    packed!("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni");

    /// Q8_0 bytes are loaded as `w + 128` (unsigned), which `vpdpbusd` needs.
    const BYTE_OFFSET: i32 = 128;

    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
    unsafe fn load_bytes(p: *const u8) -> __m256i {
        // SAFETY: the caller points at 32 readable bytes.
        let w = unsafe { _mm256_loadu_si256(p as *const __m256i) };
        _mm256_xor_si256(w, _mm256_set1_epi8(-128))
    }

    /// A block's dot products of unsigned bytes (nibbles, or Q8_0's bytes offset by 128) with
    /// signed activation bytes: `vpdpbusd` accumulates 4 products per lane in 32 bits.
    ///
    /// # Safety
    /// `a` must point at a block's 32 bytes.
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
    unsafe fn dot_nibbles(weights: &[__m256i; 8], a: *const u8) -> __m256i {
        // two independent sums halve the chain of dependent dot instructions
        let mut dots = [_mm256_setzero_si256(); 2];
        for (j, w) in weights.iter().enumerate() {
            // SAFETY: j < 8 and the caller's block has 32 bytes.
            let a4 = unsafe { broadcast4(a, j) };
            dots[j % 2] = _mm256_dpbusd_epi32(dots[j % 2], *w, a4);
        }
        _mm256_add_epi32(dots[0], dots[1])
    }

    /// As [`dot_nibbles`]: `load_bytes` made Q8_0's bytes unsigned.
    ///
    /// # Safety
    /// `a` must point at a block's 32 bytes.
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
    unsafe fn dot_bytes(weights: &[__m256i; 8], a: *const u8) -> __m256i {
        // SAFETY: as the caller's.
        unsafe { dot_nibbles(weights, a) }
    }
}
