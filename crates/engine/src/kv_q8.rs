//! The q8_0 KV cache, as llama.cpp's: each block of 32 values of a row (one head's key or value
//! of one position) stored as 8-bit integers `q` with one f16 scale `d` (34 bytes per 32
//! values, against 64 in f16), quantized as they are appended with ggml's x86 arithmetic
//! (`d = amax / 127`, `q = round(x · 127 / amax)` to even).
//!
//! Attention reads the integers directly: the scores of a key panel sum `q_j · k_j` per block
//! in f32 lanes over the panel's positions and scale each block's sum by its positions' `d`;
//! the sum of values scales each position's probability by its block's `d` once, then sums
//! `p · d · q` over the positions. Queries stay f32, so a score's only rounding is the keys'.

use super::kernels::{nearest_even, BLOCK};
use super::kv_element::KvElement;
use super::kv_format::{scale_scores, settle, Head, KvFormat, PANEL};
use super::vector::LANES;
use crate::model::KvDtype;
use half::f16;
use std::ops::Range;

/// The q8_0 format: blocks of [`BLOCK`] 8-bit values with an f16 scale.
#[derive(Debug, Clone, Copy)]
pub struct Q8_0;

/// Quantizes one block of `x` (32 values): its scale, and its values as integers in
/// [-127, 127], with ggml's `quantize_row_q8_0` on x86.
#[inline(always)]
fn quantize_block(x: &[f32]) -> (f16, [i8; BLOCK]) {
    let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
    let inverse = if amax > 0.0 { 127.0 / amax } else { 0.0 };
    let q = std::array::from_fn(|j| nearest_even(x[j] * inverse).clamp(-127, 127) as i8);
    (f16::from_f32(amax / 127.0), q)
}

impl KvFormat for Q8_0 {
    const DTYPE: KvDtype = KvDtype::Q8_0;
    const BLOCK: Option<usize> = Some(BLOCK);
    type Stored = i8;

    #[inline(always)]
    fn store(
        row: &[f32],
        stored: &mut [i8],
        stride: usize,
        scales: &mut [f16],
        scale_stride: usize,
    ) {
        for (b, block) in row.chunks_exact(BLOCK).enumerate() {
            let (d, q) = quantize_block(block);
            scales[b * scale_stride] = d;
            for (j, q) in q.into_iter().enumerate() {
                stored[(b * BLOCK + j) * stride] = q;
            }
        }
    }

    #[inline(always)]
    fn panel_scores<const R: usize>(
        q: [&[f32]; R],
        scale: f32,
        keys: &[i8],
        scales: &[f16],
    ) -> [[f32; PANEL]; R] {
        let q: [&[f32]; R] = std::array::from_fn(|r| &q[r][..keys.len() / PANEL]);
        let mut acc = [[0f32; PANEL]; R];
        let blocks = keys
            .chunks_exact(BLOCK * PANEL)
            .zip(scales.chunks_exact(PANEL));
        for (b, (block, d)) in blocks.enumerate() {
            let mut sums = [[0f32; PANEL]; R];
            for (j, key) in block.chunks_exact(PANEL).enumerate() {
                let key: &[i8; PANEL] = key.try_into().expect("a panel row");
                let key: [f32; PANEL] = std::array::from_fn(|l| f32::from(key[l]));
                for r in 0..R {
                    let qj = q[r][b * BLOCK + j];
                    for l in 0..PANEL {
                        sums[r][l] = qj.mul_add(key[l], sums[r][l]);
                    }
                }
            }
            let d: [f32; PANEL] = std::array::from_fn(|l| d[l].widen());
            for r in 0..R {
                for l in 0..PANEL {
                    acc[r][l] = sums[r][l].mul_add(d[l], acc[r][l]);
                }
            }
        }
        scale_scores(&mut acc, scale);
        acc
    }

    #[inline(always)]
    fn widen_panels(keys: Head<i8>, panels: Range<usize>, d: usize, out: &mut [f32]) {
        let blocks = d / BLOCK;
        for (p, out) in panels.zip(out.chunks_exact_mut(d * PANEL)) {
            let stored = &keys.stored[p * d * PANEL..][..d * PANEL];
            let scales = &keys.scales[p * blocks * PANEL..][..blocks * PANEL];
            let rows = stored.chunks_exact(PANEL).zip(out.chunks_exact_mut(PANEL));
            for (j, (key, out)) in rows.enumerate() {
                let scales = &scales[j / BLOCK * PANEL..][..PANEL];
                for ((o, q), s) in out.iter_mut().zip(key).zip(scales) {
                    *o = f32::from(*q) * s.widen();
                }
            }
        }
    }

    #[inline(always)]
    fn widen_rows(values: Head<i8>, positions: Range<usize>, d: usize, out: &mut [f32]) {
        let capacity = values.stored.len() / d;
        for (p, out) in positions.zip(out.chunks_exact_mut(d)) {
            let row = &values.stored[p * d..][..d];
            for (b, (q, out)) in row
                .chunks_exact(BLOCK)
                .zip(out.chunks_exact_mut(BLOCK))
                .enumerate()
            {
                let s = values.scales[b * capacity + p].widen();
                for (o, q) in out.iter_mut().zip(q) {
                    *o = f32::from(*q) * s;
                }
            }
        }
    }

    #[inline(always)]
    fn weighted_values<const R: usize>(
        weights: &[f32],
        stride: usize,
        values: Head<i8>,
        positions: Range<usize>,
        d: usize,
        inverse: [f32; R],
        keep: Option<[f32; R]>,
        out: &mut [f32],
        scratch: &mut [f32],
    ) {
        let n = positions.len();
        let capacity = values.stored.len() / d;
        let rows = &values.stored[positions.start * d..positions.end * d];
        for (b, scales) in values.scales.chunks_exact(capacity).enumerate() {
            // each position's probability times its block's scale, once for the block's lanes
            let scales = &scales[positions.clone()];
            for r in 0..R {
                let (w, scaled) = (&weights[r * stride..][..n], &mut scratch[r * n..][..n]);
                for ((s, w), d) in scaled.iter_mut().zip(w).zip(scales) {
                    *s = w * d.widen();
                }
            }
            let scaled: [&[f32]; R] = std::array::from_fn(|r| &scratch[r * n..][..n]);
            for c in (b * BLOCK..(b + 1) * BLOCK).step_by(LANES) {
                let mut acc = [[0f32; LANES]; R];
                for j in 0..n {
                    let v: &[i8; LANES] = rows[j * d + c..][..LANES].try_into().expect("lanes");
                    let v: [f32; LANES] = std::array::from_fn(|l| f32::from(v[l]));
                    for r in 0..R {
                        let p = scaled[r][j];
                        for l in 0..LANES {
                            acc[r][l] = p.mul_add(v[l], acc[r][l]);
                        }
                    }
                }
                for r in 0..R {
                    let keep = keep.map(|k| k[r]);
                    for l in 0..LANES {
                        settle(&mut out[r * d + c + l], acc[r][l], inverse[r], keep);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::kernels::Isa;
    use crate::multiversion_at;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// `x` quantized to q8_0 and back, row by row of `head_dim` values: what a q8_0 cache
    /// holds of it.
    pub(crate) fn rounded(x: &[f32]) -> Vec<f32> {
        x.chunks_exact(BLOCK)
            .flat_map(|block| {
                let (d, q) = quantize_block(block);
                q.map(|q| f32::from(q) * d.to_f32())
            })
            .collect()
    }

    /// Random values in [-2, 2), the same for the same seed.
    pub(crate) fn random(n: usize, seed: u64) -> Vec<f32> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..n).map(|_| rng.random_range(-2.0..2.0)).collect()
    }

    /// Rows of `D` values in the layouts of one head's cache of `CAPACITY` positions.
    const D: usize = 96;
    const CAPACITY: usize = 3 * PANEL;
    /// Query rows.
    const R: usize = 3;

    /// `x` (`[CAPACITY][D]`) stored as keys (panels) and as values (rows).
    struct Stored {
        keys: Vec<i8>,
        key_scales: Vec<f16>,
        values: Vec<i8>,
        value_scales: Vec<f16>,
    }

    fn store_all(x: &[f32]) -> Stored {
        let blocks = D / BLOCK;
        let mut s = Stored {
            keys: vec![0; CAPACITY * D],
            key_scales: vec![f16::ZERO; CAPACITY * blocks],
            values: vec![0; CAPACITY * D],
            value_scales: vec![f16::ZERO; CAPACITY * blocks],
        };
        for (p, row) in x.chunks_exact(D).enumerate() {
            let (panel, lane) = (p / PANEL, p % PANEL);
            Q8_0::store(
                row,
                &mut s.keys[panel * D * PANEL + lane..],
                PANEL,
                &mut s.key_scales[panel * blocks * PANEL + lane..],
                PANEL,
            );
            Q8_0::store(
                row,
                &mut s.values[p * D..],
                1,
                &mut s.value_scales[p..],
                CAPACITY,
            );
        }
        s
    }

    fn scores(q: &[f32], keys: &[i8], scales: &[f16]) -> [[f32; PANEL]; R] {
        Q8_0::panel_scores::<R>(std::array::from_fn(|r| &q[r * D..][..D]), 0.5, keys, scales)
    }

    multiversion_at! {
        fn scores_at(q: &[f32], keys: &[i8], scales: &[f16]) -> [[f32; PANEL]; R] => scores
    }

    fn sum_values(
        weights: &[f32],
        values: &[i8],
        scales: &[f16],
        positions: Range<usize>,
        keep: Option<[f32; R]>,
        out: &mut [f32],
    ) {
        let mut scratch = vec![0f32; R * positions.len()];
        let head = Head {
            stored: values,
            scales,
        };
        let inverse = [1.0, 0.5, 2.0];
        Q8_0::weighted_values::<R>(
            weights,
            CAPACITY,
            head,
            positions,
            D,
            inverse,
            keep,
            out,
            &mut scratch,
        );
    }

    multiversion_at! {
        fn sum_values_at(weights: &[f32], values: &[i8], scales: &[f16], positions: Range<usize>, keep: Option<[f32; R]>, out: &mut [f32]) => sum_values
    }

    #[test]
    fn quantization_is_ggml_s_on_x86() {
        let mut x = random(64, 7);
        // amax 2.5, and values whose x·127/amax lands on or next to a tie
        x[3] = 2.5;
        x[5] = 2.5 * 0.5 / 127.0;
        x[6] = -2.5 * 1.5 / 127.0;
        x[40..].fill(0.0);
        let mut stored = [0i8; 64];
        let mut scales = [f16::ZERO; 2];
        Q8_0::store(&x, &mut stored, 1, &mut scales, 1);
        assert_eq!(scales[0], f16::from_f32(2.5 / 127.0));
        for (j, v) in x[..32].iter().enumerate() {
            assert_eq!(
                stored[j],
                (v * (127.0 / 2.5)).round_ties_even() as i8,
                "{j}"
            );
        }
        // a block of zeros after one of 8 values: scale 0, every value 0
        let tail_amax = x[32..40].iter().fold(0f32, |m, v| m.max(v.abs()));
        assert_eq!(scales[1], f16::from_f32(tail_amax / 127.0));
        assert!(stored[40..].iter().all(|&q| q == 0));
        let (zero, q) = quantize_block(&[0.0; BLOCK]);
        assert_eq!((zero, q), (f16::ZERO, [0; BLOCK]));
    }

    #[test]
    fn stored_values_are_within_half_a_step_of_the_input() {
        let x = random(4 * D, 3);
        for (block, back) in x.chunks(BLOCK).zip(rounded(&x).chunks(BLOCK)) {
            let amax = block.iter().fold(0f32, |m, v| m.max(v.abs()));
            // half a step, plus the f16 rounding of the scale (2^-11) over 127 steps
            let step = amax / 127.0;
            for (v, b) in block.iter().zip(back) {
                assert!((v - b).abs() <= step / 2.0 + amax / 2048.0, "{v} {b}");
            }
        }
    }

    #[test]
    fn panel_scores_and_value_sums_equal_the_dequantized_reference_at_every_level() {
        let x = random(CAPACITY * D, 11);
        let q = random(R * D, 12);
        let back = rounded(&x);
        let stored = store_all(&x);
        let blocks = D / BLOCK;
        // weights of each row over the positions, stride CAPACITY
        let weights: Vec<f32> = random(R * CAPACITY, 13).iter().map(|w| w.abs()).collect();
        let inverse = [1.0f64, 0.5, 2.0];
        for isa in Isa::available() {
            for panel in 0..CAPACITY / PANEL {
                let got = scores_at(
                    isa,
                    &q,
                    &stored.keys[panel * D * PANEL..][..D * PANEL],
                    &stored.key_scales[panel * blocks * PANEL..][..blocks * PANEL],
                );
                for (r, got) in got.iter().enumerate() {
                    for (l, got) in got.iter().enumerate() {
                        let key = &back[(panel * PANEL + l) * D..][..D];
                        let want: f64 = (0..D)
                            .map(|j| 0.5 * f64::from(q[r * D + j]) * f64::from(key[j]))
                            .sum();
                        assert!(
                            (f64::from(*got) - want).abs() < 1e-5 * D as f64,
                            "{isa} panel {panel} row {r} lane {l}: {got} != {want}"
                        );
                    }
                }
            }
            // a range that starts inside the cache and ends before its capacity: written over
            // what `out` held (NaN), then added to it rescaled by `keep`
            let positions = 5..CAPACITY - 7;
            let keep = [0.25f32, 1.0, 3.0];
            let mut out = vec![f32::NAN; R * D];
            let sum = |keep: Option<[f32; R]>, out: &mut [f32]| {
                let (values, scales) = (&stored.values, &stored.value_scales);
                sum_values_at(isa, &weights, values, scales, positions.clone(), keep, out);
            };
            sum(None, &mut out);
            let mut kept = out.clone();
            sum(Some(keep), &mut kept);
            for r in 0..R {
                for c in 0..D {
                    let want: f64 = positions
                        .clone()
                        .enumerate()
                        .map(|(j, p)| {
                            f64::from(weights[r * CAPACITY + j]) * f64::from(back[p * D + c])
                        })
                        .sum::<f64>()
                        * inverse[r];
                    let got = f64::from(out[r * D + c]);
                    assert!(
                        (got - want).abs() < 1e-5 * positions.len() as f64,
                        "{isa} row {r} column {c}: {got} != {want}"
                    );
                    let want = want * (1.0 + f64::from(keep[r]));
                    let got = f64::from(kept[r * D + c]);
                    assert!(
                        (got - want).abs() < 2e-5 * positions.len() as f64,
                        "{isa} row {r} column {c} kept: {got} != {want}"
                    );
                }
            }
        }
    }
}
