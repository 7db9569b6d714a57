//! Activations quantized to 8 bits per value, the form the integer kernels multiply quantized
//! weights with: one scale per block of 32 (ggml's Q8_0/Q8_1) or per super-block of 256 (ggml's
//! Q8_K, for Q4_K weights, whose sub-block scales then apply in integers across the super-block).

use super::super::team::{self, SharedMut};
use super::super::vector::LANES;
use crate::multiversion;
use std::ops::Range;

/// Values per quantization block, for weights and activations alike.
pub const BLOCK: usize = 32;

/// Values per super-block: Q4_K's, and the grain of the activations its products take.
pub const SUPER_BLOCK: usize = 256;

/// How many values share one activation scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grain {
    /// One scale per block of 32 values, at f16 precision (ggml's Q8_0).
    Block,
    /// One f32 scale per super-block of 256 values (ggml's Q8_K).
    SuperBlock,
}

impl Grain {
    /// Values per scale.
    pub fn values(self) -> usize {
        match self {
            Grain::Block => BLOCK,
            Grain::SuperBlock => SUPER_BLOCK,
        }
    }
}

/// Blocks from which quantization is split across the team (below, one thread is quicker
/// than a meeting).
const PARALLEL_BLOCKS: usize = 4096;

/// The 32 quantized values of one block, aligned for one 256-bit load.
#[repr(C, align(32))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuantBlock(pub [i8; BLOCK]);

/// `tokens` rows of `features` values, each block of 32 stored as `d * q` with `q` in
/// [-127, 127] and `d` its grain's scale (repeated for each block of a super-block), plus
/// `sum(q)` per block (which applies Q4_0's and Q8_0's offsets and Q4_K's minimums in
/// integers), `sum(q)` per half block of 16 (which applies Q6_K's offset under its 16-value
/// sub-block scales, as ggml's Q8_K `bsums`) and Q8_1's `s ≈ d · sum(q)` at f16 precision
/// (which meets Q4_1's minimums).
#[derive(Debug, Default)]
pub struct QuantizedActivations {
    tokens: usize,
    blocks_per_token: usize,
    quants: Vec<QuantBlock>,
    scales: Vec<f32>,
    sums: Vec<i16>,
    half_sums: Vec<i16>,
    scaled_sums: Vec<f32>,
}

impl QuantizedActivations {
    /// Quantizes `x`, `tokens` rows of `features` values each (`features` a multiple of the
    /// grain's values), one scale per `grain`, reusing this value's buffers.
    pub fn quantize(&mut self, x: &[f32], features: usize, grain: Grain) {
        let per_scale = grain.values();
        assert!(
            features.is_multiple_of(per_scale),
            "{features} features are not a multiple of {per_scale}"
        );
        assert!(x.len().is_multiple_of(features), "ragged activations");
        let blocks = x.len() / BLOCK;
        self.tokens = x.len() / features;
        self.blocks_per_token = features / BLOCK;
        self.quants.resize(blocks, QuantBlock([0; BLOCK]));
        self.scales.resize(blocks, 0.0);
        self.sums.resize(blocks, 0);
        self.half_sums.resize(2 * blocks, 0);
        self.scaled_sums.resize(blocks, 0.0);
        let out = Quantized {
            quants: SharedMut::new(&mut self.quants),
            scales: SharedMut::new(&mut self.scales),
            sums: SharedMut::new(&mut self.sums),
            half_sums: SharedMut::new(&mut self.half_sums),
            scaled_sums: SharedMut::new(&mut self.scaled_sums),
        };
        // shares are whole grains: a multiple of 8 blocks is one of both
        let grains = blocks * BLOCK / per_scale;
        let quantize_grains = |range: Range<usize>| {
            let per = per_scale / BLOCK;
            // SAFETY: the ranges of different shares are disjoint.
            let blocks = unsafe { out.slices(range.start * per..range.end * per) };
            quantize_blocks(
                &x[range.start * per_scale..range.end * per_scale],
                grain,
                blocks,
            );
        };
        if blocks < PARALLEL_BLOCKS {
            quantize_grains(0..grains);
        } else {
            team::parallel(team::width(), &|share, shares| {
                let per = grains.div_ceil(shares);
                quantize_grains((share * per).min(grains)..((share + 1) * per).min(grains));
            });
        }
    }

    /// Number of token rows.
    pub fn tokens(&self) -> usize {
        self.tokens
    }

    /// Number of blocks in each token row.
    pub fn blocks_per_token(&self) -> usize {
        self.blocks_per_token
    }

    /// Token `t`'s blocks, their scales `d` and their `s` (Q8_1's f16 `d · sum(q)`).
    pub fn token(&self, t: usize) -> (&[QuantBlock], &[f32], &[f32]) {
        let range = t * self.blocks_per_token..(t + 1) * self.blocks_per_token;
        (
            &self.quants[range.clone()],
            &self.scales[range.clone()],
            &self.scaled_sums[range],
        )
    }

    /// Token `t`'s `sum(q)` per block.
    pub fn block_sums(&self, t: usize) -> &[i16] {
        &self.sums[t * self.blocks_per_token..(t + 1) * self.blocks_per_token]
    }

    /// Token `t`'s `sum(q)` per half block of 16 values (two per block).
    pub fn half_sums(&self, t: usize) -> &[i16] {
        &self.half_sums[2 * t * self.blocks_per_token..2 * (t + 1) * self.blocks_per_token]
    }
}

/// The buffers of [`QuantizedActivations`], shared between the threads that fill them.
struct Quantized<'a> {
    quants: SharedMut<'a, QuantBlock>,
    scales: SharedMut<'a, f32>,
    sums: SharedMut<'a, i16>,
    half_sums: SharedMut<'a, i16>,
    scaled_sums: SharedMut<'a, f32>,
}

/// The blocks of one share of [`QuantizedActivations`].
struct Blocks<'a> {
    quants: &'a mut [QuantBlock],
    scales: &'a mut [f32],
    sums: &'a mut [i16],
    half_sums: &'a mut [i16],
    scaled_sums: &'a mut [f32],
}

impl Quantized<'_> {
    /// Blocks `range` of every buffer.
    ///
    /// # Safety
    /// No other live slice may overlap `range`.
    unsafe fn slices(&self, range: Range<usize>) -> Blocks<'_> {
        // SAFETY: the caller keeps the ranges of live slices disjoint.
        unsafe {
            Blocks {
                quants: self.quants.slice(range.clone()),
                scales: self.scales.slice(range.clone()),
                sums: self.sums.slice(range.clone()),
                half_sums: self.half_sums.slice(2 * range.start..2 * range.end),
                scaled_sums: self.scaled_sums.slice(range),
            }
        }
    }
}

multiversion! {
    /// Quantizes `x` with one scale per `grain` into `out`'s blocks of 32, with ggml's x86
    /// arithmetic, so products agree with llama.cpp's to the order of their float sums: per block
    /// (Q8_0/Q8_1), `d = amax / 127` kept at f16 precision, `q = round(x · 127 / amax)` to even,
    /// and `s = d · sum(q)` rounded to f16 with the f32 `d`, as Q8_1 stores it; per super-block
    /// (Q8_K), `d = 1 / (−127 / max)` for the signed value of largest magnitude, so `d` and `q`
    /// may be negative, with `q` clamped to 127.
    fn quantize_blocks(x: &[f32], grain: Grain, out: Blocks<'_>) => quantize_blocks_body
}

/// [`quantize_blocks`]' portable body, written lane-wise so each level's build vectorizes it.
#[inline(always)]
fn quantize_blocks_body(x: &[f32], grain: Grain, out: Blocks<'_>) {
    let per = grain.values() / BLOCK;
    for (g, values) in x.chunks_exact(grain.values()).enumerate() {
        let (d, inverse) = match grain {
            Grain::Block => {
                let amax = extremes(values).magnitude();
                let inverse = if amax > 0.0 { 127.0 / amax } else { 0.0 };
                (amax / 127.0, inverse)
            }
            Grain::SuperBlock => match extremes(values).signed_largest(values) {
                0.0 => (0.0, 0.0),
                max => {
                    let inverse = -127.0 / max;
                    (1.0 / inverse, inverse)
                }
            },
        };
        let stored = match grain {
            Grain::Block => half::f16::from_f32(d).to_f32(),
            Grain::SuperBlock => d,
        };
        for (i, block) in values.chunks_exact(BLOCK).enumerate() {
            let b = g * per + i;
            let block: &[f32; BLOCK] = block.try_into().expect("whole blocks");
            let mut quants = [0i32; BLOCK];
            for (q, v) in quants.iter_mut().zip(block) {
                *q = nearest_even(v * inverse).min(127);
            }
            let halves: [i32; 2] = [0, 1].map(|h| quants[h * HALF..][..HALF].iter().sum());
            out.quants[b].0 = quants.map(|q| q as i8);
            let sum = halves[0] + halves[1];
            out.scales[b] = stored;
            // 32 values of at most 127 in magnitude
            out.sums[b] = sum as i16;
            out.half_sums[2 * b] = halves[0] as i16;
            out.half_sums[2 * b + 1] = halves[1] as i16;
            out.scaled_sums[b] = half::f16::from_f32(d * sum as f32).to_f32();
        }
    }
}

/// Values per half block, the span of Q6_K's and Q3_K's sub-block scales.
const HALF: usize = BLOCK / 2;

/// The largest and the smallest value of a grain (NaN ignored, as `f32::max` does).
#[derive(Debug, Clone, Copy)]
struct Extremes {
    largest: f32,
    smallest: f32,
}

/// The extremes of `values` (a whole number of blocks), taken in [`LANES`] lanes so the
/// comparisons vectorize.
#[inline(always)]
fn extremes(values: &[f32]) -> Extremes {
    let (mut largest, mut smallest) = ([0f32; LANES], [0f32; LANES]);
    for chunk in values.chunks_exact(LANES) {
        for ((l, s), &v) in largest.iter_mut().zip(&mut smallest).zip(chunk) {
            *l = if v > *l { v } else { *l };
            *s = if v < *s { v } else { *s };
        }
    }
    Extremes {
        largest: largest
            .into_iter()
            .fold(0.0, |m, v| if v > m { v } else { m }),
        smallest: smallest
            .into_iter()
            .fold(0.0, |m, v| if v < m { v } else { m }),
    }
}

impl Extremes {
    /// The largest magnitude.
    fn magnitude(self) -> f32 {
        self.largest.max(-self.smallest)
    }

    /// The first of `values` (whose extremes these are) of the largest magnitude, with its
    /// sign: where a value and its negation both have it, whichever comes first.
    fn signed_largest(self, values: &[f32]) -> f32 {
        if self.largest > -self.smallest {
            self.largest
        } else if self.largest < -self.smallest {
            self.smallest
        } else {
            values
                .iter()
                .copied()
                .find(|v| v.abs() == self.largest)
                .unwrap_or(0.0)
        }
    }
}

/// `v` rounded to the nearest integer, ties to even, for |v| < 2²²: the float addition of
/// 1.5 · 2²³ rounds away the fraction (ggml's `nearest_int`, and what `_mm256_round_ps` does
/// to the values quantization meets), without the libm call a portable build makes.
pub fn nearest_even(v: f32) -> i32 {
    const MAGIC: f32 = 12_582_912.0;
    ((v + MAGIC).to_bits() & 0x007f_ffff) as i32 - 0x0040_0000
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::Isa;
    use crate::multiversion_at;

    /// `x`'s value at `i` of a smooth, signed test pattern.
    fn pattern(i: usize) -> f32 {
        ((i * 37 % 23) as f32 - 11.0) * 0.13
    }

    #[test]
    fn quantization_keeps_values_within_half_a_step() {
        let x: Vec<f32> = (0..96).map(pattern).collect();
        let mut a = QuantizedActivations::default();
        a.quantize(&x, 96, Grain::Block);
        assert_eq!((a.tokens(), a.blocks_per_token()), (1, 3));
        let (blocks, d, s) = a.token(0);
        for (b, values) in x.chunks(BLOCK).enumerate() {
            let sum: i32 = blocks[b].0.iter().map(|&q| q as i32).sum();
            assert_eq!(a.block_sums(0)[b] as i32, sum);
            for h in 0..2 {
                let half: i32 = blocks[b].0[16 * h..16 * h + 16]
                    .iter()
                    .map(|&q| q as i32)
                    .sum();
                assert_eq!(a.half_sums(0)[2 * b + h] as i32, half);
            }
            let amax = values.iter().fold(0f32, |m, v| m.max(v.abs()));
            assert_eq!(d[b], half::f16::from_f32(amax / 127.0).to_f32());
            let exact = amax / 127.0 * sum as f32;
            assert_eq!(s[b], half::f16::from_f32(exact).to_f32(), "Q8_1's f16 s");
            assert_eq!(
                blocks[b].0.iter().map(|q| q.unsigned_abs()).max(),
                Some(127)
            );
            for (q, v) in blocks[b].0.iter().zip(values) {
                // half a step, plus the f16 rounding of the scale over 127 steps
                assert!((*q as f32 * d[b] - v).abs() <= d[b] / 2.0 + 127.0 * d[b] / 2048.0);
            }
        }
    }

    #[test]
    fn super_blocks_share_one_scale_over_256_values() {
        // the second super-block's last block is 100 times larger than the others, so only it
        // reaches 127 and the others' steps are the super-block's, not their own
        let x: Vec<f32> = (0..2 * SUPER_BLOCK)
            .map(|i| pattern(i) * if i / BLOCK == 15 { 100.0 } else { 1.0 })
            .collect();
        let mut a = QuantizedActivations::default();
        a.quantize(&x, 2 * SUPER_BLOCK, Grain::SuperBlock);
        let (blocks, d, s) = a.token(0);
        for (b, values) in x.chunks(BLOCK).enumerate() {
            let first = b / 8 * 8;
            let max = x[first * BLOCK..(first + 8) * BLOCK]
                .iter()
                .fold(0f32, |m, &v| if v.abs() > m.abs() { v } else { m });
            // ggml's Q8_K: the signed largest value maps to -127
            let want = 1.0 / (-127.0 / max);
            assert_eq!(d[b], want, "block {b}'s scale is its super-block's");
            let sum: i32 = blocks[b].0.iter().map(|&q| q as i32).sum();
            assert_eq!(a.block_sums(0)[b] as i32, sum);
            assert_eq!(s[b], half::f16::from_f32(d[b] * sum as f32).to_f32());
            for (q, v) in blocks[b].0.iter().zip(values) {
                assert!((*q as f32 * d[b] - v).abs() <= d[b] * 0.5001);
            }
        }
        let peak = |b: usize| blocks[b].0.iter().map(|q| q.unsigned_abs()).max();
        assert_eq!(peak(15), Some(127));
        assert!(peak(8) < Some(20), "{:?}", peak(8));
    }

    /// The buffers of [`QuantizedActivations`] for the blocks of an input, filled by one call.
    #[derive(Debug, PartialEq)]
    struct Filled {
        quants: Vec<QuantBlock>,
        scales: Vec<f32>,
        sums: Vec<i16>,
        half_sums: Vec<i16>,
        scaled_sums: Vec<f32>,
    }

    impl Filled {
        /// `x` quantized by `quantize` in one call.
        fn by(x: &[f32], quantize: impl FnOnce(Blocks<'_>)) -> Filled {
            let blocks = x.len() / BLOCK;
            let mut f = Filled {
                quants: vec![QuantBlock([0; BLOCK]); blocks],
                scales: vec![0.0; blocks],
                sums: vec![0; blocks],
                half_sums: vec![0; 2 * blocks],
                scaled_sums: vec![0.0; blocks],
            };
            quantize(Blocks {
                quants: &mut f.quants,
                scales: &mut f.scales,
                sums: &mut f.sums,
                half_sums: &mut f.half_sums,
                scaled_sums: &mut f.scaled_sums,
            });
            f
        }
    }

    #[test]
    fn large_inputs_split_across_threads_quantize_as_one_thread_does() {
        let features = 1024;
        let tokens = 2 * PARALLEL_BLOCKS * BLOCK / features + 1;
        let x: Vec<f32> = (0..tokens * features)
            .map(|i| ((i * 7919 % 1013) as f32 - 506.0) / 97.0)
            .collect();
        for grain in [Grain::Block, Grain::SuperBlock] {
            let mut split = QuantizedActivations::default();
            split.quantize(&x, features, grain);
            let whole = Filled::by(&x, |out| quantize_blocks(&x, grain, out));
            assert_eq!(split.quants, whole.quants);
            assert_eq!(split.scales, whole.scales);
            assert_eq!(split.sums, whole.sums);
            assert_eq!(split.half_sums, whole.half_sums);
            assert_eq!(split.scaled_sums, whole.scaled_sums);
        }
    }

    multiversion_at! {
        fn quantize_blocks_at(x: &[f32], grain: Grain, out: Blocks<'_>) => quantize_blocks_body
    }

    #[test]
    fn every_level_takes_the_first_value_of_largest_magnitude_with_its_sign() {
        // super-blocks whose largest magnitude comes negative first, positive first, once
        // negative, once positive, and none at all
        let mut x: Vec<f32> = (0..5 * SUPER_BLOCK).map(|i| pattern(i) * 0.1).collect();
        x[3] = -2.0;
        x[200] = 2.0;
        x[SUPER_BLOCK + 17] = 2.0;
        x[SUPER_BLOCK + 255] = -2.0;
        x[2 * SUPER_BLOCK + 40] = -3.0;
        x[3 * SUPER_BLOCK + 129] = 3.0;
        x[4 * SUPER_BLOCK..].fill(0.0);
        let firsts = [-2.0, 2.0, -3.0, 3.0, 0.0];
        for isa in Isa::available() {
            for grain in [Grain::Block, Grain::SuperBlock] {
                let got = Filled::by(&x, |out| quantize_blocks_at(isa, &x, grain, out));
                assert_eq!(
                    got,
                    Filled::by(&x, |out| quantize_blocks_body(&x, grain, out))
                );
                if grain == Grain::SuperBlock {
                    for (s, first) in firsts.iter().enumerate() {
                        let want = if *first == 0.0 { 0.0 } else { first / -127.0 };
                        let d = got.scales[s * SUPER_BLOCK / BLOCK];
                        assert!(
                            (d - want).abs() <= want.abs() * 1e-6,
                            "{isa} super-block {s}: {d}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn rounding_is_to_nearest_even_like_ggml_on_x86() {
        let mut a = QuantizedActivations::default();
        // amax 127 makes the scale 1, so each value is its own quantized value
        let mut x = vec![0.0f32; 32];
        let probes = [
            127.0,
            0.5,
            -0.5,
            1.5,
            -2.5,
            0.49999997,
            -0.49999997,
            2.4999998,
            100.5,
            3.5,
            -126.5,
        ];
        x[..probes.len()].copy_from_slice(&probes);
        a.quantize(&x, 32, Grain::Block);
        let got: Vec<i8> = a.token(0).0[0].0[..probes.len()].to_vec();
        let want: Vec<i8> = probes.iter().map(|v| v.round_ties_even() as i8).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn an_all_zero_block_has_zero_scale() {
        let mut a = QuantizedActivations::default();
        a.quantize(&[0.0; 64], 32, Grain::Block);
        assert_eq!(a.tokens(), 2);
        assert_eq!(a.token(1).1, &[0.0]);
        assert!(a.token(1).0[0].0.iter().all(|&q| q == 0));
    }
}
