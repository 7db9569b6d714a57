//! The types a KV cache stores its values in, and how attention widens them back to f32.
//!
//! Widening is plain integer and float arithmetic on each value's bits, written so that the
//! compiler vectorizes it at every instruction-set level that
//! [`multiversion!`](crate::multiversion) builds: a panel of f16 keys becomes f32 lanes in
//! registers, never in a buffer, so attention reads half the bytes of an f32 cache.

use crate::model::KvDtype;
use half::{bf16, f16};

/// A value type of the KV cache.
pub trait KvElement: Copy + Default + Send + Sync + std::fmt::Debug + 'static {
    /// The cache type this element makes.
    const DTYPE: KvDtype;

    /// `x` rounded to this type (to nearest, ties to even).
    fn narrow(x: f32) -> Self;

    /// This value as f32 (exact: every value of the type is an f32).
    fn widen(self) -> f32;
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

    #[test]
    fn narrowing_rounds_to_the_nearest_value() {
        assert_eq!(f16::narrow(1.0 + 1.0 / 4096.0).widen(), 1.0);
        assert_eq!(f16::narrow(65504.0).widen(), 65504.0);
        assert_eq!(bf16::narrow(1.0 + 1.0 / 512.0).widen(), 1.0);
        assert_eq!(f32::narrow(0.1).widen(), 0.1);
    }
}
