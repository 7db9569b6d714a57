//! The instruction set's peak rates, measured as likwid-bench's `peakflops` measures them:
//! independent chains of one arithmetic instruction in registers, no memory, so the core
//! issues them as fast as its pipes allow. A pass's operations over its time is the hard roof
//! of any kernel that multiplies with that instruction on that core.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Independent accumulator chains of every kernel: more than latency x pipes of any current
/// core (4 cycles x 2 pipes), and with the two operands within 16 registers. They are named
/// variables (`chains!`), not an array: an array of 16 made the release build shuffle and
/// spill registers between the FMAs, which then issued at half rate (34 of 59 GFLOP/s).
const CHAINS: usize = 12;

/// One arithmetic instruction whose issue rate bounds a class of matrix kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeakKernel {
    /// Double-precision FMA (`vfmadd231pd`), as likwid's `peakflops_avx512_fma` runs it: the
    /// figure to compare with likwid, bounding no kernel of the engine.
    F64Fma,
    /// Single-precision FMA (`vfmadd231ps`): the roof of f32 and f16 weights (widened to f32).
    F32Fma,
    /// Unsigned x signed 8-bit dot into 32-bit lanes (`vpdpbusd`, AVX512-VNNI): the roof of
    /// the quantized weights, multiplied against 8-bit activations.
    Int8Dot,
    /// BF16 pair dot into f32 lanes (`vdpbf16ps`, AVX512-BF16): the roof of BF16 weights.
    Bf16Dot,
}

impl PeakKernel {
    /// Every kernel, in the order `calibrate` shows them.
    pub const ALL: [PeakKernel; 4] = [
        PeakKernel::F64Fma,
        PeakKernel::F32Fma,
        PeakKernel::Int8Dot,
        PeakKernel::Bf16Dot,
    ];

    /// Name in `calibration.json` and in `calibrate`'s table.
    pub fn name(self) -> &'static str {
        match self {
            PeakKernel::F64Fma => "f64_fma",
            PeakKernel::F32Fma => "f32_fma",
            PeakKernel::Int8Dot => "int8_dot",
            PeakKernel::Bf16Dot => "bf16_dot",
        }
    }

    /// The vector width this CPU runs the kernel at, in bits; `None` when it cannot (no FMA,
    /// no VNNI, no BF16 dot, not x86-64).
    pub fn width_bits(self) -> Option<u32> {
        #[cfg(target_arch = "x86_64")]
        {
            let avx512 = is_x86_feature_detected!("avx512f");
            match self {
                PeakKernel::F64Fma | PeakKernel::F32Fma if avx512 => Some(512),
                PeakKernel::F64Fma | PeakKernel::F32Fma
                    if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") =>
                {
                    Some(256)
                }
                PeakKernel::Int8Dot if avx512 && is_x86_feature_detected!("avx512vnni") => {
                    Some(512)
                }
                PeakKernel::Bf16Dot if avx512 && is_x86_feature_detected!("avx512bf16") => {
                    Some(512)
                }
                _ => None,
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            None
        }
    }

    /// Operations one instruction of `width_bits` does, counting a multiply-add as 2 (as
    /// prefill's FLOPs count them): lanes x products per lane x 2.
    pub fn ops_per_instruction(self, width_bits: u32) -> u64 {
        let per_32_bits = match self {
            PeakKernel::F64Fma => 1,
            PeakKernel::F32Fma => 2,
            PeakKernel::Int8Dot => 8,
            PeakKernel::Bf16Dot => 4,
        };
        u64::from(width_bits / 32) * per_32_bits
    }

    /// Runs `rounds` rounds of the kernel's chains on this thread; the operations done
    /// (multiply-adds count 2), or `None` when this CPU cannot run it.
    pub fn run(self, rounds: u64) -> Option<u64> {
        let width = self.width_bits()?;
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: `width_bits` returned this width only because the CPU has the features
            // each kernel enables.
            let sink = unsafe {
                match (self, width) {
                    (PeakKernel::F64Fma, 512) => x86::f64_fma_512(rounds),
                    (PeakKernel::F64Fma, _) => x86::f64_fma_256(rounds),
                    (PeakKernel::F32Fma, 512) => x86::f32_fma_512(rounds),
                    (PeakKernel::F32Fma, _) => x86::f32_fma_256(rounds),
                    (PeakKernel::Int8Dot, _) => x86::int8_dot_512(rounds),
                    (PeakKernel::Bf16Dot, _) => x86::bf16_dot_512(rounds),
                }
            };
            std::hint::black_box(sink);
            Some(rounds * CHAINS as u64 * self.ops_per_instruction(width))
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (rounds, width);
            None
        }
    }
}

impl fmt::Display for PeakKernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// [`CHAINS`] accumulators starting at `init`, each stepped `rounds` times by `step` (a
/// closure-like `|acc| expression`), as named variables the compiler keeps in registers; the
/// accumulators at the end, as an array.
#[cfg(target_arch = "x86_64")]
macro_rules! chains {
    ($rounds:expr, $init:expr, |$acc:ident| $step:expr) => {{
        let init = $init;
        let [mut c0, mut c1, mut c2, mut c3, mut c4, mut c5] = [init; 6];
        let [mut c6, mut c7, mut c8, mut c9, mut c10, mut c11] = [init; 6];
        for _ in 0..$rounds {
            c0 = {
                let $acc = c0;
                $step
            };
            c1 = {
                let $acc = c1;
                $step
            };
            c2 = {
                let $acc = c2;
                $step
            };
            c3 = {
                let $acc = c3;
                $step
            };
            c4 = {
                let $acc = c4;
                $step
            };
            c5 = {
                let $acc = c5;
                $step
            };
            c6 = {
                let $acc = c6;
                $step
            };
            c7 = {
                let $acc = c7;
                $step
            };
            c8 = {
                let $acc = c8;
                $step
            };
            c9 = {
                let $acc = c9;
                $step
            };
            c10 = {
                let $acc = c10;
                $step
            };
            c11 = {
                let $acc = c11;
                $step
            };
        }
        [c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11]
    }};
}

/// The chains, one function per instruction and width. Each returns the sum of its
/// accumulators, so the chains are live; its operands pass through `black_box`, so nothing
/// folds at compile time.
#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;
    use std::hint::black_box;

    /// `acc = acc * 0.999999 + 1e-6` stays near 1: no overflow, no subnormals.
    const SCALE: f64 = 0.999_999;
    /// The addend of the float chains.
    const ADD: f64 = 1e-6;

    /// Double-precision FMA chains, 512 bits.
    #[target_feature(enable = "avx512f")]
    pub(super) fn f64_fma_512(rounds: u64) -> f64 {
        let (a, b) = (
            _mm512_set1_pd(black_box(SCALE)),
            _mm512_set1_pd(black_box(ADD)),
        );
        let acc = chains!(rounds, _mm512_set1_pd(black_box(0.5)), |c| {
            _mm512_fmadd_pd(c, a, b)
        });
        acc.iter().map(|c| _mm512_reduce_add_pd(*c)).sum()
    }

    /// Double-precision FMA chains, 256 bits.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn f64_fma_256(rounds: u64) -> f64 {
        let (a, b) = (
            _mm256_set1_pd(black_box(SCALE)),
            _mm256_set1_pd(black_box(ADD)),
        );
        let acc = chains!(rounds, _mm256_set1_pd(black_box(0.5)), |c| {
            _mm256_fmadd_pd(c, a, b)
        });
        let sum = acc
            .iter()
            .fold(_mm256_setzero_pd(), |s, c| _mm256_add_pd(s, *c));
        let mut lanes = [0f64; 4];
        // SAFETY: `lanes` holds 256 bits.
        unsafe { _mm256_storeu_pd(lanes.as_mut_ptr(), sum) };
        lanes.iter().sum()
    }

    /// Single-precision FMA chains, 512 bits.
    #[target_feature(enable = "avx512f")]
    pub(super) fn f32_fma_512(rounds: u64) -> f64 {
        let a = _mm512_set1_ps(black_box(SCALE as f32));
        let b = _mm512_set1_ps(black_box(ADD as f32));
        let acc = chains!(rounds, _mm512_set1_ps(black_box(0.5)), |c| {
            _mm512_fmadd_ps(c, a, b)
        });
        acc.iter()
            .map(|c| f64::from(_mm512_reduce_add_ps(*c)))
            .sum()
    }

    /// Single-precision FMA chains, 256 bits.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn f32_fma_256(rounds: u64) -> f64 {
        let a = _mm256_set1_ps(black_box(SCALE as f32));
        let b = _mm256_set1_ps(black_box(ADD as f32));
        let acc = chains!(rounds, _mm256_set1_ps(black_box(0.5)), |c| {
            _mm256_fmadd_ps(c, a, b)
        });
        let sum = acc
            .iter()
            .fold(_mm256_setzero_ps(), |s, c| _mm256_add_ps(s, *c));
        let mut lanes = [0f32; 8];
        // SAFETY: `lanes` holds 256 bits.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), sum) };
        lanes.iter().map(|&v| f64::from(v)).sum()
    }

    /// `vpdpbusd` chains: each lane adds four products of ones (wrapping is harmless).
    #[target_feature(enable = "avx512f,avx512vnni")]
    pub(super) fn int8_dot_512(rounds: u64) -> f64 {
        let ones = _mm512_set1_epi8(black_box(1));
        let acc = chains!(rounds, _mm512_set1_epi32(black_box(0)), |c| {
            _mm512_dpbusd_epi32(c, ones, ones)
        });
        acc.iter()
            .map(|c| f64::from(_mm512_reduce_add_epi32(*c)))
            .sum()
    }

    /// `vdpbf16ps` chains: each lane adds two products of 2^-10 (it grows by 2^-19 a round,
    /// far from overflow).
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub(super) fn bf16_dot_512(rounds: u64) -> f64 {
        // 0x3A80 is 2^-10 in BF16
        let bits = _mm512_set1_epi16(black_box(0x3A80));
        // SAFETY: both types are 512 bits of plain data.
        let pairs = unsafe { std::mem::transmute::<__m512i, __m512bh>(bits) };
        let acc = chains!(rounds, _mm512_set1_ps(black_box(0.0)), |c| {
            _mm512_dpbf16_ps(c, pairs, pairs)
        });
        acc.iter()
            .map(|c| f64::from(_mm512_reduce_add_ps(*c)))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    #[test]
    fn operations_count_lanes_products_and_two_per_multiply_add() {
        assert_eq!(PeakKernel::F64Fma.ops_per_instruction(512), 16);
        assert_eq!(PeakKernel::F32Fma.ops_per_instruction(512), 32);
        assert_eq!(PeakKernel::F32Fma.ops_per_instruction(256), 16);
        assert_eq!(PeakKernel::Int8Dot.ops_per_instruction(512), 128);
        assert_eq!(PeakKernel::Bf16Dot.ops_per_instruction(512), 64);
    }

    #[test]
    fn kernels_run_where_the_cpu_has_their_instructions() {
        for kernel in PeakKernel::ALL {
            match kernel.width_bits() {
                Some(width) => {
                    let ops = kernel.run(1000).expect("runs at its width");
                    assert_eq!(
                        ops,
                        1000 * CHAINS as u64 * kernel.ops_per_instruction(width)
                    );
                }
                None => {
                    // past libtest's capture, which hides what a passing test prints
                    let _ = writeln!(
                        std::io::stderr(),
                        "skipped {kernel}: this CPU lacks its instructions"
                    );
                    assert_eq!(kernel.run(1000), None);
                }
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn chains_compute_what_they_claim() {
        // 10 rounds of acc * 0.999999 + 1e-6 from 0.5 in every lane of every chain
        let mut one = 0.5f64;
        for _ in 0..10 {
            one = one.mul_add(0.999_999, 1e-6);
        }
        if PeakKernel::F64Fma.width_bits() == Some(512) {
            // SAFETY: the CPU has AVX-512F (checked just above).
            let sum = unsafe { x86::f64_fma_512(10) };
            assert!((sum - one * 8.0 * CHAINS as f64).abs() < 1e-9, "{sum}");
        }
        if PeakKernel::Int8Dot.width_bits().is_some() {
            // SAFETY: the CPU has AVX512-VNNI (checked just above).
            let sum = unsafe { x86::int8_dot_512(10) };
            assert_eq!(sum, (10 * 4 * 16 * CHAINS) as f64);
        }
        if PeakKernel::Bf16Dot.width_bits().is_some() {
            // SAFETY: the CPU has AVX512-BF16 (checked just above).
            let sum = unsafe { x86::bf16_dot_512(10) };
            let expected = 10.0 * 2.0 * 2f64.powi(-20) * 16.0 * CHAINS as f64;
            assert!((sum - expected).abs() < 1e-9, "{sum} vs {expected}");
        }
    }
}
