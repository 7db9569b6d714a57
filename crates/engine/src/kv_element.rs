//! The types a KV cache stores its values in, and how attention widens them back to f32.
//!
//! Attention widens a lane array at a time ([`KvElement::widen_lanes`]) in registers, never in
//! a buffer, so it reads half the bytes of an f32 cache. bf16 is a shift that the compiler
//! vectorizes at every instruction-set level that [`multiversion!`](crate::multiversion)
//! builds; f16 is F16C's `vcvtph2ps` where the active level has it ([`F16c`]), and otherwise
//! branch-free integer and float arithmetic on its bits (about 2.5x slower than the
//! instruction).

use crate::kernels::Isa;
use crate::model::KvDtype;
use crate::vector::LANES;
use half::{bf16, f16};

/// Proof that this process converts halves with F16C: the active instruction-set level is AVX2
/// or AVX-512, both of which need it. Loops [`detect`](F16c::detect) it once, not per lane
/// array, since the check is an atomic load the compiler cannot hoist.
#[derive(Debug, Clone, Copy)]
pub struct F16c {
    /// The active level is AVX-512: a lane array widens in one 512-bit `vcvtph2ps`. Two 256-bit
    /// ones, stored as halves and read back as one vector, made f16 decode attention 1.2-1.5x
    /// slower.
    wide: bool,
}

impl F16c {
    /// One where the [active](Isa::active) level has F16C, `None` where it is portable (no
    /// x86_64, or `LLAMAPERF_ISA=scalar`).
    #[inline(always)]
    pub fn detect() -> Option<F16c> {
        let isa = Isa::active();
        (cfg!(target_arch = "x86_64") && isa >= Isa::Avx2).then_some(F16c {
            wide: isa == Isa::Avx512,
        })
    }

    /// `body(f16c)` with `f16c` a constant in each of its arms, so that a loop inside `body`
    /// is compiled once per mode and tests none per lane array. `body` must be inlined
    /// (`#[inline(always)]` on the closure): out of line it is compiled without the level's
    /// features, and every `mul_add` becomes a libm call.
    #[inline(always)]
    pub fn unswitch<R>(f16c: Option<F16c>, body: impl Fn(Option<F16c>) -> R) -> R {
        match f16c {
            None => body(None),
            Some(F16c { wide: true }) => body(Some(F16c { wide: true })),
            Some(F16c { wide: false }) => body(Some(F16c { wide: false })),
        }
    }
}

/// A value type of the KV cache.
pub trait KvElement: Copy + Default + Send + Sync + std::fmt::Debug + 'static {
    /// The cache type this element makes.
    const DTYPE: KvDtype;

    /// `x` rounded to this type (to nearest, ties to even).
    fn narrow(x: f32) -> Self;

    /// This value as f32 (exact: every value of the type is an f32).
    fn widen(self) -> f32;

    /// What [`widen_lanes`](KvElement::widen_lanes) of this type may use: F16C where it
    /// converts with it and this process has it ([`F16c::detect`]), else `None`, so that other
    /// types' loops read no atomic.
    #[inline(always)]
    fn f16c() -> Option<F16c> {
        None
    }

    /// `LANES` values as f32, each as [`widen`](KvElement::widen) widens it; `f16c` (from
    /// [`f16c`](KvElement::f16c)) lets a type use the instruction.
    #[inline(always)]
    fn widen_lanes(lanes: &[Self; LANES], _f16c: Option<F16c>) -> [f32; LANES] {
        std::array::from_fn(|l| lanes[l].widen())
    }
}

impl KvElement for f32 {
    const DTYPE: KvDtype = KvDtype::F32;

    #[inline(always)]
    fn narrow(x: f32) -> Self {
        x
    }

    #[inline(always)]
    fn widen(self) -> f32 {
        self
    }
}

impl KvElement for f16 {
    const DTYPE: KvDtype = KvDtype::F16;

    #[inline(always)]
    fn narrow(x: f32) -> Self {
        f16::from_f32(x)
    }

    /// The half's exponent and mantissa shifted into an f32's fields, then scaled by
    /// `2^(127-15)` to rebias the exponent (subnormals come out right of the same product);
    /// infinities and NaNs get an all-ones exponent back. Branch-free, so it vectorizes.
    #[inline(always)]
    fn widen(self) -> f32 {
        const REBIAS: f32 = f32::from_bits((127 + 112) << 23); // 2^112
        const HALF_INFINITY: u32 = 0x7c00;
        let bits = u32::from(self.to_bits());
        let magnitude = bits & 0x7fff;
        let scaled = (f32::from_bits(magnitude << 13) * REBIAS).to_bits();
        let special = if magnitude >= HALF_INFINITY {
            0xff << 23
        } else {
            0
        };
        f32::from_bits(scaled | special | (bits & 0x8000) << 16)
    }

    #[inline(always)]
    fn f16c() -> Option<F16c> {
        F16c::detect()
    }

    /// With F16C, `vcvtph2ps` (inlined into the levels that enable the feature, called from
    /// the portable build); without, [`widen`](KvElement::widen) lane by lane.
    #[inline(always)]
    fn widen_lanes(lanes: &[Self; LANES], f16c: Option<F16c>) -> [f32; LANES] {
        #[cfg(target_arch = "x86_64")]
        if let Some(F16c { wide }) = f16c {
            // SAFETY: an `F16c` exists only where this CPU has F16C, a wide one only where it
            // has AVX-512 too.
            return unsafe {
                if wide {
                    widen_f16c_512(lanes)
                } else {
                    widen_f16c(lanes)
                }
            };
        }
        let _ = f16c;
        std::array::from_fn(|l| lanes[l].widen())
    }
}

/// `lanes` as f32 by `vcvtph2ps`, 8 at a time: exact, as F16C converts every half (NaNs stay
/// NaNs, quieted).
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx,f16c")]
fn widen_f16c(lanes: &[f16; LANES]) -> [f32; LANES] {
    use std::arch::x86_64::{_mm256_cvtph_ps, _mm256_storeu_ps, _mm_loadu_si128};
    let mut out = [0f32; LANES];
    for (o, h) in out.chunks_exact_mut(8).zip(lanes.chunks_exact(8)) {
        // SAFETY: `h` holds 8 halves (16 bytes) to read and `o` 8 floats to write, both
        // unaligned accesses.
        unsafe {
            _mm256_storeu_ps(
                o.as_mut_ptr(),
                _mm256_cvtph_ps(_mm_loadu_si128(h.as_ptr().cast())),
            )
        };
    }
    out
}

/// `lanes` as f32 by one 512-bit `vcvtph2ps`, exact as [`widen_f16c`].
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx512f,f16c")]
fn widen_f16c_512(lanes: &[f16; LANES]) -> [f32; LANES] {
    use std::arch::x86_64::{_mm256_loadu_si256, _mm512_cvtph_ps};
    // SAFETY: `lanes` holds 16 halves (32 bytes) to read unaligned; the 16 floats of a 512-bit
    // vector are an array of 16.
    unsafe { std::mem::transmute(_mm512_cvtph_ps(_mm256_loadu_si256(lanes.as_ptr().cast()))) }
}

impl KvElement for bf16 {
    const DTYPE: KvDtype = KvDtype::Bf16;

    #[inline(always)]
    fn narrow(x: f32) -> Self {
        bf16::from_f32(x)
    }

    /// The upper half of an f32's bits.
    #[inline(always)]
    fn widen(self) -> f32 {
        f32::from_bits(u32::from(self.to_bits()) << 16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::multiversion_at;

    #[test]
    fn every_half_widens_as_the_half_crate_converts_it() {
        for bits in 0..=u16::MAX {
            let (h, b) = (f16::from_bits(bits), bf16::from_bits(bits));
            let (ours, want) = (h.widen(), h.to_f32());
            assert!(
                ours.to_bits() == want.to_bits() || (ours.is_nan() && want.is_nan()),
                "f16 {bits:#06x}: {ours} != {want}"
            );
            let (ours, want) = (b.widen(), b.to_f32());
            assert!(
                ours.to_bits() == want.to_bits() || (ours.is_nan() && want.is_nan()),
                "bf16 {bits:#06x}: {ours} != {want}"
            );
        }
    }

    multiversion_at! {
        fn halves_at(lanes: &[f16; LANES], f16c: Option<F16c>) -> [f32; LANES] => f16::widen_lanes
    }

    multiversion_at! {
        fn brains_at(lanes: &[bf16; LANES], f16c: Option<F16c>) -> [f32; LANES] => bf16::widen_lanes
    }

    #[test]
    fn every_half_widens_in_lanes_as_the_half_crate_converts_it_at_every_level() {
        let mut ways = vec![None];
        if let Some(detected) = F16c::detect() {
            // both widths where this CPU has AVX-512
            ways.push(Some(F16c { wide: false }));
            ways.extend(detected.wide.then_some(Some(detected)));
        }
        if ways.len() == 1 {
            println!(
                "F16C not used in this process ({}): software path only",
                Isa::active()
            );
        }
        for isa in Isa::available() {
            for f16c in ways.iter().copied() {
                for first in (0..=u16::MAX).step_by(LANES) {
                    let bits: [u16; LANES] = std::array::from_fn(|l| first + l as u16);
                    let h = bits.map(f16::from_bits);
                    let b = bits.map(bf16::from_bits);
                    let (ours, theirs) = (halves_at(isa, &h, f16c), brains_at(isa, &b, f16c));
                    for l in 0..LANES {
                        for (ours, want, ty) in [
                            (ours[l], h[l].to_f32(), "f16"),
                            (theirs[l], b[l].to_f32(), "bf16"),
                        ] {
                            assert!(
                                ours.to_bits() == want.to_bits()
                                    || (ours.is_nan() && want.is_nan()),
                                "{isa} {f16c:?} {ty} {:#06x}: {ours} != {want}",
                                bits[l]
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn narrowing_rounds_to_the_nearest_value() {
        assert_eq!(f16::narrow(1.0 + 1.0 / 4096.0).widen(), 1.0);
        assert_eq!(f16::narrow(65504.0).widen(), 65504.0);
        assert_eq!(bf16::narrow(1.0 + 1.0 / 512.0).widen(), 1.0);
        assert_eq!(f32::narrow(0.1).widen(), 0.1);
    }
}
