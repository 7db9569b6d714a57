//! Activations quantized to 8 bits per value in blocks of 32, the form the integer kernels
//! multiply quantized weights with (ggml's Q8_0/Q8_1 with an f32 scale).

use super::super::team::{self, SharedMut};
use std::ops::Range;

/// Values per quantization block, for weights and activations alike.
pub const BLOCK: usize = 32;

/// Blocks from which quantization is split across the team (below, one thread is quicker
/// than a meeting).
const PARALLEL_BLOCKS: usize = 4096;

/// The 32 quantized values of one block, aligned for one 256-bit load.
#[repr(C, align(32))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuantBlock(pub [i8; BLOCK]);

/// `tokens` rows of `features` values, each block of 32 stored as `d * q` with `q` in
/// [-127, 127], plus `d * sum(q)` per block (the term the offset and minimum corrections need).
#[derive(Debug, Default)]
pub struct QuantizedActivations {
    tokens: usize,
    blocks_per_token: usize,
    quants: Vec<QuantBlock>,
    scales: Vec<f32>,
    scaled_sums: Vec<f32>,
}

impl QuantizedActivations {
    /// Quantizes `x`, `tokens` rows of `features` values each (`features` a multiple of 32),
    /// reusing this value's buffers.
    pub fn quantize(&mut self, x: &[f32], features: usize) {
        assert!(
            features.is_multiple_of(BLOCK),
            "{features} features are not a multiple of {BLOCK}"
        );
        assert!(x.len().is_multiple_of(features), "ragged activations");
        let blocks = x.len() / BLOCK;
        self.tokens = x.len() / features;
        self.blocks_per_token = features / BLOCK;
        self.quants.resize(blocks, QuantBlock([0; BLOCK]));
        self.scales.resize(blocks, 0.0);
        self.scaled_sums.resize(blocks, 0.0);
        let (quants, scales, sums) = (
            SharedMut::new(&mut self.quants),
            SharedMut::new(&mut self.scales),
            SharedMut::new(&mut self.scaled_sums),
        );
        let quantize_blocks = |range: Range<usize>| {
            // SAFETY: the ranges of different shares are disjoint.
            let (q, d, s) = unsafe {
                (
                    quants.slice(range.clone()),
                    scales.slice(range.clone()),
                    sums.slice(range.clone()),
                )
            };
            quantize_blocks(&x[range.start * BLOCK..range.end * BLOCK], q, d, s);
        };
        if blocks < PARALLEL_BLOCKS {
            quantize_blocks(0..blocks);
        } else {
            team::parallel(team::width(), &|share, shares| {
                let per = blocks.div_ceil(shares);
                quantize_blocks((share * per).min(blocks)..((share + 1) * per).min(blocks));
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

    /// Token `t`'s blocks, their scales `d` and their `d * sum(q)`.
    pub fn token(&self, t: usize) -> (&[QuantBlock], &[f32], &[f32]) {
        let range = t * self.blocks_per_token..(t + 1) * self.blocks_per_token;
        (
            &self.quants[range.clone()],
            &self.scales[range.clone()],
            &self.scaled_sums[range],
        )
    }
}

/// Quantizes the blocks of 32 values of `x` into `quants`, their `scales` and `scaled_sums`.
fn quantize_blocks(
    x: &[f32],
    quants: &mut [QuantBlock],
    scales: &mut [f32],
    scaled_sums: &mut [f32],
) {
    for (i, values) in x.chunks_exact(BLOCK).enumerate() {
        let amax = values.iter().fold(0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        let inverse = if d > 0.0 { 1.0 / d } else { 0.0 };
        let mut sum = 0i32;
        for (q, v) in quants[i].0.iter_mut().zip(values) {
            // rounds half away from zero as `f32::round` does, without the libm call that
            // the portable build makes of it (the largest f32 below 0.5, then truncation)
            let scaled = v * inverse;
            *q = (scaled + 0.499_999_97_f32.copysign(scaled)) as i8;
            sum += *q as i32;
        }
        // the scale is kept at f16 precision, as ggml's Q8_0 stores it, so products agree
        // with llama.cpp's and candle's to the last rounding of the sums
        let d = half::f16::from_f32(d).to_f32();
        scales[i] = d;
        scaled_sums[i] = d * sum as f32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantization_keeps_values_within_half_a_step() {
        let x: Vec<f32> = (0..96)
            .map(|i| ((i * 37 % 23) as f32 - 11.0) * 0.13)
            .collect();
        let mut a = QuantizedActivations::default();
        a.quantize(&x, 96);
        assert_eq!((a.tokens(), a.blocks_per_token()), (1, 3));
        let (blocks, d, s) = a.token(0);
        for (b, values) in x.chunks(BLOCK).enumerate() {
            let sum: i32 = blocks[b].0.iter().map(|&q| q as i32).sum();
            assert!((s[b] - d[b] * sum as f32).abs() < 1e-6);
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
    fn large_inputs_split_across_threads_quantize_as_one_thread_does() {
        let features = 1024;
        let tokens = 2 * PARALLEL_BLOCKS * BLOCK / features + 1;
        let x: Vec<f32> = (0..tokens * features)
            .map(|i| ((i * 7919 % 1013) as f32 - 506.0) / 97.0)
            .collect();
        let mut split = QuantizedActivations::default();
        split.quantize(&x, features);
        let blocks = x.len() / BLOCK;
        let mut quants = vec![QuantBlock([0; BLOCK]); blocks];
        let (mut scales, mut sums) = (vec![0f32; blocks], vec![0f32; blocks]);
        quantize_blocks(&x, &mut quants, &mut scales, &mut sums);
        assert_eq!(split.quants, quants);
        assert_eq!(split.scales, scales);
        assert_eq!(split.scaled_sums, sums);
    }

    #[test]
    fn rounding_is_half_away_from_zero_like_f32_round() {
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
        ];
        x[..probes.len()].copy_from_slice(&probes);
        a.quantize(&x, 32);
        let got: Vec<i8> = a.token(0).0[0].0[..probes.len()].to_vec();
        let want: Vec<i8> = probes.iter().map(|v| v.round() as i8).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn an_all_zero_block_has_zero_scale() {
        let mut a = QuantizedActivations::default();
        a.quantize(&[0.0; 64], 32);
        assert_eq!(a.tokens(), 2);
        assert_eq!(a.token(1).1, &[0.0]);
        assert!(a.token(1).0[0].0.iter().all(|&q| q == 0));
    }
}
