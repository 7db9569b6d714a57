//! Arithmetic written so that the compiler vectorizes it: fixed-width lane arrays, a
//! polynomial `exp`, and [`multiversion!`](crate::multiversion) to compile one body for each
//! instruction-set level and pick the active one at run time.

/// f32 lanes of the widest vector the code is written for (one AVX-512 register; two AVX2
/// registers).
pub const LANES: usize = 16;

/// Defines a function whose `#[inline(always)]` body is compiled for AVX-512, for AVX2 + FMA +
/// F16C and for the portable baseline, and runs the build of [`Isa::active`](super::kernels::Isa::active).
/// A function with one type parameter and at most one `usize` constant
/// (`fn name<T: Bound, const N: usize>(...) => body`) is built so for each pair it is called
/// with. Each level's build is a function of its own, never inlined, so one called from
/// another's body keeps its own registers.
#[macro_export]
macro_rules! multiversion {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident : $ty:ty),* $(,)?) $(-> $ret:ty)? => $body:path) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[inline(never)]
                #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
                fn avx512($($arg: $ty),*) $(-> $ret)? {
                    $body($($arg),*)
                }
                #[inline(never)]
                #[target_feature(enable = "avx2,fma,f16c")]
                fn avx2($($arg: $ty),*) $(-> $ret)? {
                    $body($($arg),*)
                }
                match $crate::kernels::Isa::active() {
                    // SAFETY: the active level is one this CPU supports.
                    $crate::kernels::Isa::Avx512 => return unsafe { avx512($($arg),*) },
                    // SAFETY: as above.
                    $crate::kernels::Isa::Avx2 => return unsafe { avx2($($arg),*) },
                    $crate::kernels::Isa::Scalar => {}
                }
            }
            $body($($arg),*)
        }
    };
    ($(#[$meta:meta])* $vis:vis fn $name:ident<$g:ident : $bound:path $(, const $c:ident : usize)?>($($arg:ident : $ty:ty),* $(,)?) $(-> $ret:ty)? => $body:ident) => {
        $(#[$meta])*
        $vis fn $name<$g: $bound $(, const $c: usize)?>($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[inline(never)]
                #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
                fn avx512<$g: $bound $(, const $c: usize)?>($($arg: $ty),*) $(-> $ret)? {
                    $body::<$g $(, $c)?>($($arg),*)
                }
                #[inline(never)]
                #[target_feature(enable = "avx2,fma,f16c")]
                fn avx2<$g: $bound $(, const $c: usize)?>($($arg: $ty),*) $(-> $ret)? {
                    $body::<$g $(, $c)?>($($arg),*)
                }
                match $crate::kernels::Isa::active() {
                    // SAFETY: the active level is one this CPU supports.
                    $crate::kernels::Isa::Avx512 => return unsafe { avx512::<$g $(, $c)?>($($arg),*) },
                    // SAFETY: as above.
                    $crate::kernels::Isa::Avx2 => return unsafe { avx2::<$g $(, $c)?>($($arg),*) },
                    $crate::kernels::Isa::Scalar => {}
                }
            }
            $body::<$g $(, $c)?>($($arg),*)
        }
    };
}

/// Defines `fn name(isa: Isa, ...)`: the body of [`multiversion!`] compiled the same way, run
/// at the level `isa` (which must be [available](super::kernels::Isa::available)), so tests
/// check each level's build of a kernel, not only the active one's.
#[macro_export]
macro_rules! multiversion_at {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident : $ty:ty),* $(,)?) $(-> $ret:ty)? => $body:path) => {
        $(#[$meta])*
        $vis fn $name(isa: $crate::kernels::Isa, $($arg: $ty),*) $(-> $ret)? {
            assert!(
                isa.unavailable_reason().is_none(),
                "{isa} is not available: {:?}",
                isa.unavailable_reason()
            );
            #[cfg(target_arch = "x86_64")]
            {
                #[inline(never)]
                #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
                fn avx512($($arg: $ty),*) $(-> $ret)? {
                    $body($($arg),*)
                }
                #[inline(never)]
                #[target_feature(enable = "avx2,fma,f16c")]
                fn avx2($($arg: $ty),*) $(-> $ret)? {
                    $body($($arg),*)
                }
                match isa {
                    // SAFETY: the level is available, so this CPU supports it (asserted above).
                    $crate::kernels::Isa::Avx512 => return unsafe { avx512($($arg),*) },
                    // SAFETY: as above.
                    $crate::kernels::Isa::Avx2 => return unsafe { avx2($($arg),*) },
                    $crate::kernels::Isa::Scalar => {}
                }
            }
            $body($($arg),*)
        }
    };
}

/// `e^x` to within 3 ulp for `x` in [-87, 88] (clamped outside: about 1.6e-38 below, 1.7e38
/// above), in plain arithmetic: `2^n · p(r)` with `x = n·ln 2 + r`, `|r| <= ln 2 / 2` and `p` the
/// degree-6 Taylor polynomial.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // 1.5 · 2^23: adding it rounds to an integer that its low mantissa bits then hold
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let shifted = x * std::f32::consts::LOG2_E + ROUND;
    let n = shifted - ROUND;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let p = 1.0 / 720.0;
    let p = p * r + 1.0 / 120.0;
    let p = p * r + 1.0 / 24.0;
    let p = p * r + 1.0 / 6.0;
    let p = p * r + 0.5;
    let p = p * r + 1.0;
    let p = p * r + 1.0;
    let exponent = shifted
        .to_bits()
        .wrapping_sub(ROUND.to_bits())
        .wrapping_add(127)
        << 23;
    p * f32::from_bits(exponent)
}

/// The largest value of `x` (`-inf` when empty).
#[inline(always)]
pub fn max(x: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let mut chunks = x.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (m, v) in lanes.iter_mut().zip(chunk) {
            *m = m.max(*v);
        }
    }
    let tail = chunks
        .remainder()
        .iter()
        .fold(f32::NEG_INFINITY, |m, v| m.max(*v));
    lanes.iter().fold(tail, |m, v| m.max(*v))
}

/// Replaces every `x` by `e^(x - shift)` and returns their sum.
#[inline(always)]
pub fn exp_shifted_sum(x: &mut [f32], shift: f32) -> f32 {
    let mut lanes = [0f32; LANES];
    let mut chunks = x.chunks_exact_mut(LANES);
    for chunk in &mut chunks {
        for (s, v) in lanes.iter_mut().zip(chunk.iter_mut()) {
            *v = exp(*v - shift);
            *s += *v;
        }
    }
    let mut tail = 0.0;
    for v in chunks.into_remainder() {
        *v = exp(*v - shift);
        tail += *v;
    }
    lanes.iter().sum::<f32>() + tail
}

/// The sum of `x · x`: each square rounded to f32, summed in f64 as ggml's RMSNorm sums them,
/// so the sum (to f32) does not depend on the order of the additions.
#[inline(always)]
pub fn sum_of_squares(x: &[f32]) -> f64 {
    let mut lanes = [0f64; LANES];
    let mut chunks = x.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (s, v) in lanes.iter_mut().zip(chunk) {
            *s += f64::from(v * v);
        }
    }
    let tail: f64 = chunks.remainder().iter().map(|v| f64::from(v * v)).sum();
    lanes.iter().sum::<f64>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_within_three_ulp_of_the_library_over_its_range() {
        let mut worst = 0f32;
        let mut x = -87.0f32;
        while x <= 88.0 {
            let want = x.exp();
            let ulp = f32::from_bits(want.to_bits() + 1) - want;
            worst = worst.max((exp(x) - want).abs() / ulp);
            x += 0.001_7;
        }
        assert!(worst <= 3.0, "worst error {worst} ulp");
        assert_eq!(exp(0.0), 1.0);
        assert!(exp(f32::NEG_INFINITY) < 2e-38);
        assert!(exp(-1000.0) >= 0.0);
    }

    #[test]
    fn reductions_cover_the_lanes_and_the_tail() {
        let x: Vec<f32> = (0..37).map(|i| ((i * 7) % 11) as f32 - 5.0).collect();
        assert_eq!(max(&x), 5.0);
        assert_eq!(max(&[]), f32::NEG_INFINITY);
        let want: f32 = x.iter().map(|v| v * v).sum();
        assert!((sum_of_squares(&x) - want as f64).abs() < 1e-3);
        // in f64 the order of the additions does not reach the f32 result
        let wide: Vec<f32> = (0..576)
            .map(|i| ((i * 7919 % 1013) as f32 - 506.0) / 97.0)
            .collect();
        let reversed: Vec<f32> = wide.iter().rev().copied().collect();
        assert_eq!(
            sum_of_squares(&wide) as f32,
            sum_of_squares(&reversed) as f32
        );
        let mut y = x.clone();
        let sum = exp_shifted_sum(&mut y, 5.0);
        for (a, b) in y.iter().zip(&x) {
            assert!((a - (b - 5.0).exp()).abs() < 1e-6);
        }
        assert!((sum - y.iter().sum::<f32>()).abs() < 1e-5);
    }
}
