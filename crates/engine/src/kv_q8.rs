//! The q8_0 KV cache, as llama.cpp's: each block of 32 values of a row (one head's key or value
//! of one position) stored as 8-bit integers `q` with one f16 scale `d` (34 bytes per 32
//! values, against 64 in f16), quantized as they are appended with ggml's x86 arithmetic
//! (`d = amax / 127`, `q = round(x · 127 / amax)` to even).
//!
//! Decode's scores are integer dot products, as llama.cpp's: the query rows are quantized to
//! q8_0 blocks too ([`QuantizedQueries`]), and a key panel keeps each position's values in
//! groups of 4 (`[head_dim / 4][PANEL][4]`), the words that `vpdpbusd` and `vpmaddubsw`
//! multiply; each block's exact i32 dot is scaled by both `d`s. The sum of values scales each
//! position's probability by its block's `d` once, then sums `p · d · q` over the positions in
//! f32. Prefill widens the keys to f32 and keeps its queries f32.

mod queries;
#[cfg(target_arch = "x86_64")]
mod x86;

pub use queries::{QuantizedQueries, MOST_HEAD_DIM};

use super::kernels::{nearest_even, Isa, BLOCK};
use super::kv_element::KvElement;
use super::kv_format::{accumulator_sets, settle_lanes, Head, KvFormat, PANEL};
use super::vector::LANES;
use crate::model::KvDtype;
use half::f16;
use std::ops::Range;

/// Values of one position that a key panel keeps together: one word of an integer dot.
const GROUP: usize = 4;

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

/// Positions whose weights [`value_lanes`] scales at once, on the stack.
const CHUNK: usize = 64;

/// `Σ_j weights[r][j] · value(first + j, c + g · LANES + l)` for the `G` lane arrays from
/// column `c` on (a half block, or whole blocks, at most 2) over the `positions` `first..` of
/// `values`, one pass over the rows: each chunk of positions has its weights scaled by their
/// blocks' `d` first.
#[inline(always)]
fn value_lanes<const R: usize, const G: usize>(
    weights: [&[f32]; R],
    values: Head<i8>,
    positions: Range<usize>,
    d: usize,
    c: usize,
) -> [[[f32; LANES]; G]; R] {
    let capacity = values.stored.len() / d;
    assert!(
        G == 1 || c.is_multiple_of(BLOCK),
        "lane arrays of whole blocks"
    );
    let first = c / BLOCK;
    let blocks = (G * LANES).div_ceil(BLOCK);
    let n = positions.len();
    let mut acc = [[[0f32; LANES]; G]; R];
    let mut scaled = [[[0f32; CHUNK]; 2]; R];
    for start in (0..n).step_by(CHUNK) {
        let m = CHUNK.min(n - start);
        let at = positions.start + start;
        for (r, scaled) in scaled.iter_mut().enumerate() {
            let w = &weights[r][start..][..m];
            for (k, scaled) in scaled[..blocks].iter_mut().enumerate() {
                let scales = &values.scales[(first + k) * capacity + at..][..m];
                for ((s, w), d) in scaled[..m].iter_mut().zip(w).zip(scales) {
                    *s = w * d.widen();
                }
            }
        }
        let rows = &values.stored[at * d..][..m * d];
        for i in 0..m {
            let row = &rows[i * d + c..][..G * LANES];
            for g in 0..G {
                let k = g * LANES / BLOCK;
                let v: &[i8; LANES] = row[g * LANES..][..LANES].try_into().expect("lanes");
                let v: [f32; LANES] = std::array::from_fn(|l| f32::from(v[l]));
                for r in 0..R {
                    let p = scaled[r][k][i];
                    for l in 0..LANES {
                        acc[r][g][l] = p.mul_add(v[l], acc[r][g][l]);
                    }
                }
            }
        }
    }
    acc
}

/// Scores of `q` (times `scale`) against one panel of `keys` (`[head_dim / 4][PANEL][4]`)
/// whose block scales are `scales` (`[blocks][PANEL]`), at the level `isa`.
#[inline(always)]
pub fn panel_scores_at<const R: usize>(
    isa: Isa,
    q: &QuantizedQueries<R>,
    scale: f32,
    keys: &[i8],
    scales: &[f16],
) -> [[f32; PANEL]; R] {
    assert_eq!(keys.len(), q.blocks * BLOCK * PANEL, "one panel of keys");
    assert_eq!(scales.len(), q.blocks * PANEL, "one panel of scales");
    #[cfg(target_arch = "x86_64")]
    {
        match isa {
            // SAFETY: the caller runs a level this CPU supports, and the lengths are asserted.
            Isa::Avx512 => return unsafe { x86::panel_scores_512(q, scale, keys, scales) },
            // SAFETY: as above.
            Isa::Avx2 => return unsafe { x86::panel_scores_256(q, scale, keys, scales) },
            Isa::Scalar => {}
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = isa;
    queries::panel_scores_scalar(q, scale, keys, scales)
}

/// Where value `j` of the key at `lane` sits in its panel (`[head_dim / 4][PANEL][4]`).
#[inline(always)]
fn key_index(j: usize, lane: usize) -> usize {
    (j / GROUP) * GROUP * PANEL + lane * GROUP + j % GROUP
}

/// Quantizes `row` block by block: block `b`'s scale goes to `scales[scale_at(b)]`, value `j`
/// of the row to `stored[value_at(j)]`.
#[inline(always)]
fn store_blocks(
    row: &[f32],
    (scales, scale_at): (&mut [f16], impl Fn(usize) -> usize),
    (stored, value_at): (&mut [i8], impl Fn(usize) -> usize),
) {
    for (b, block) in row.chunks_exact(BLOCK).enumerate() {
        let (d, q) = quantize_block(block);
        scales[scale_at(b)] = d;
        for (j, q) in q.into_iter().enumerate() {
            stored[value_at(b * BLOCK + j)] = q;
        }
    }
}

impl KvFormat for Q8_0 {
    const DTYPE: KvDtype = KvDtype::Q8_0;
    const BLOCK: Option<usize> = Some(BLOCK);
    const MOST_HEAD_DIM: usize = MOST_HEAD_DIM;
    type Stored = i8;
    type Queries<'a, const R: usize> = QuantizedQueries<R>;

    #[inline(always)]
    fn store(
        row: &[f32],
        stored: &mut [i8],
        stride: usize,
        scales: &mut [f16],
        scale_stride: usize,
    ) {
        store_blocks(
            row,
            (scales, |b| b * scale_stride),
            (stored, |j| j * stride),
        );
    }

    #[inline(always)]
    fn store_key(row: &[f32], panel: &mut [i8], lane: usize, scales: &mut [f16]) {
        store_blocks(
            row,
            (scales, |b| b * PANEL + lane),
            (panel, |j| key_index(j, lane)),
        );
    }

    #[inline(always)]
    fn queries<const R: usize>(q: [&[f32]; R]) -> QuantizedQueries<R> {
        QuantizedQueries::new(q)
    }

    #[inline(always)]
    fn panel_scores<const R: usize>(
        q: &QuantizedQueries<R>,
        scale: f32,
        keys: &[i8],
        scales: &[f16],
    ) -> [[f32; PANEL]; R] {
        panel_scores_at(Isa::active(), q, scale, keys, scales)
    }

    #[inline(always)]
    fn widen_panels(keys: Head<i8>, panels: Range<usize>, d: usize, out: &mut [f32]) {
        let blocks = d / BLOCK;
        for (p, out) in panels.zip(out.chunks_exact_mut(d * PANEL)) {
            let stored = &keys.stored[p * d * PANEL..][..d * PANEL];
            let scales = &keys.scales[p * blocks * PANEL..][..blocks * PANEL];
            for (j, out) in out.chunks_exact_mut(PANEL).enumerate() {
                let scales = &scales[j / BLOCK * PANEL..][..PANEL];
                for (l, (o, s)) in out.iter_mut().zip(scales).enumerate() {
                    *o = f32::from(stored[key_index(j, l)]) * s.widen();
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
    ) {
        let n = positions.len();
        let weights: [&[f32]; R] = std::array::from_fn(|r| &weights[r * stride..][..n]);
        let wide = accumulator_sets() == 2;
        let mut c = 0;
        while c < d {
            let groups = if wide && c + 2 * LANES <= d {
                let acc = value_lanes::<R, 2>(weights, values, positions.clone(), d, c);
                settle_lanes(&acc, c, d, (inverse, keep), out);
                2
            } else {
                let acc = value_lanes::<R, 1>(weights, values, positions.clone(), d, c);
                settle_lanes(&acc, c, d, (inverse, keep), out);
                1
            };
            c += groups * LANES;
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
            Q8_0::store_key(
                row,
                &mut s.keys[panel * D * PANEL..][..D * PANEL],
                lane,
                &mut s.key_scales[panel * blocks * PANEL..][..blocks * PANEL],
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

    /// Scores of the rows `q` (`[R][D]`, quantized) against one panel, at the level `isa`.
    fn scores_at(isa: Isa, q: &[f32], keys: &[i8], scales: &[f16]) -> [[f32; PANEL]; R] {
        let q = QuantizedQueries::new(std::array::from_fn(|r| &q[r * D..][..D]));
        panel_scores_at(isa, &q, 0.5, keys, scales)
    }

    fn sum_values(
        weights: &[f32],
        values: &[i8],
        scales: &[f16],
        positions: Range<usize>,
        keep: Option<[f32; R]>,
        out: &mut [f32],
    ) {
        let head = Head {
            stored: values,
            scales,
        };
        let inverse = [1.0, 0.5, 2.0];
        Q8_0::weighted_values::<R>(weights, CAPACITY, head, positions, D, inverse, keep, out);
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
    fn value_sums_of_one_or_two_lane_arrays_per_pass_are_the_same_sums() {
        // AVX2 sums a lane array per pass over the rows, AVX-512 a whole block's two: each
        // lane's sum is the same FMAs in the same order
        let stored = store_all(&random(CAPACITY * D, 21));
        let weights = random(R * CAPACITY, 22);
        let weights: [&[f32]; R] = std::array::from_fn(|r| &weights[r * CAPACITY..][..40]);
        let head = Head {
            stored: &stored.values[..],
            scales: &stored.value_scales[..],
        };
        for c in (0..D).step_by(BLOCK) {
            let two = value_lanes::<R, 2>(weights, head, 3..43, D, c);
            for g in 0..2 {
                let one = value_lanes::<R, 1>(weights, head, 3..43, D, c + g * LANES);
                for (r, (one, two)) in one.iter().zip(&two).enumerate() {
                    assert_eq!(one[0], two[g], "column {c} array {g} row {r}");
                }
            }
        }
    }

    #[test]
    fn integer_scores_are_exact_where_every_product_is_largest() {
        // keys and queries of one magnitude quantize to ±127 everywhere; with the same signs
        // each block's dot is 32 · 127², the most AVX2's 16-bit pairs and AVX-512's offset
        // keys meet, and with opposite signs its negative
        let signs: Vec<f32> = (0..D)
            .map(|j| if j % 3 == 0 { -1.0 } else { 1.0 })
            .collect();
        let x: Vec<f32> = (0..CAPACITY)
            .flat_map(|p| signs.iter().map(move |s| if p % 2 == 0 { *s } else { -*s }))
            .collect();
        let q: Vec<f32> = (0..R).flat_map(|_| signs.clone()).collect();
        let stored = store_all(&x);
        let blocks = D / BLOCK;
        let d = f16::from_f32(1.0 / 127.0).to_f32();
        let block = (32 * 127 * 127) as f32 * (d * d);
        let want = block * blocks as f32 * 0.5;
        for isa in Isa::available() {
            let keys = &stored.keys[..D * PANEL];
            let got = scores_at(isa, &q, keys, &stored.key_scales[..blocks * PANEL]);
            for (r, row) in got.iter().enumerate() {
                for (l, got) in row.iter().enumerate() {
                    let want = if l % 2 == 0 { want } else { -want };
                    assert!(
                        (got - want).abs() <= want.abs() * 1e-6,
                        "{isa} {r} {l}: {got}"
                    );
                }
            }
        }
    }

    #[test]
    fn panel_scores_and_value_sums_equal_the_dequantized_reference_at_every_level() {
        let x = random(CAPACITY * D, 11);
        let q = random(R * D, 12);
        // the keys as stored, and the queries as decode quantizes them
        let (back, query) = (rounded(&x), rounded(&q));
        let stored = store_all(&x);
        let blocks = D / BLOCK;
        // weights of each row over the positions, stride CAPACITY
        let weights: Vec<f32> = random(R * CAPACITY, 13).iter().map(|w| w.abs()).collect();
        let inverse = [1.0f64, 0.5, 2.0];
        for isa in Isa::available() {
            for panel in 0..CAPACITY / PANEL {
                let keys = &stored.keys[panel * D * PANEL..][..D * PANEL];
                let scales = &stored.key_scales[panel * blocks * PANEL..][..blocks * PANEL];
                let got = scores_at(isa, &q, keys, scales);
                // integer dots scaled in one order: every level's scores are the scalar's
                assert_eq!(got, scores_at(Isa::Scalar, &q, keys, scales), "{isa}");
                for (r, got) in got.iter().enumerate() {
                    for (l, got) in got.iter().enumerate() {
                        let key = &back[(panel * PANEL + l) * D..][..D];
                        let want: f64 = (0..D)
                            .map(|j| 0.5 * f64::from(query[r * D + j]) * f64::from(key[j]))
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
