//! Portable tiles: the same arithmetic as the SIMD ones, one value at a time.

use super::activations::{QuantizedActivations, BLOCK};
use super::format::{float_code, quant_code, IQ4_VALUES};
use super::layout::{QuantRows, GROUP};
use super::micro::{Column, MicroTile, MICRO_ROWS};
use super::tile::{FloatRows, Output, Units};
use half::{bf16, f16};

/// The 8 rows of each of the `N` groups of `units` times tokens `t0..t0+T`. Q4_K's sub-block
/// scales apply block by block in floats here: the same products as the SIMD tiles' integer
/// sums, rounded per block instead of once per super-block (Q5_K's too; Q6_K's in integers per
/// block).
///
/// # Safety
/// The groups and tokens must exist and the output cells must belong to this tile.
pub(super) unsafe fn quant_tile<const Q: u8, const T: usize, const N: usize>(
    w: &QuantRows,
    units: Units,
    act: &QuantizedActivations,
    t0: usize,
    out: Output,
) {
    for g in (0..N).map(|n| units.at(n)) {
        for lane in 0..GROUP.min(w.rows - g * GROUP) {
            for t in t0..t0 + T {
                let (blocks, scales, scaled_sums) = act.token(t);
                let mut total = 0f32;
                for b in 0..w.blocks {
                    let a = &blocks[b].0;
                    if Q == quant_code::IQ4XS {
                        let (d, sc) = w.iq4xs_scale(g, b, lane);
                        let dot = iq4_dot(w, (g, b, lane), a) * sc;
                        total += dot as f32 * (d * scales[b]);
                        continue;
                    }
                    if Q == quant_code::Q6K {
                        total += q6k_block(w, (g, b, lane), a) * scales[b];
                        continue;
                    }
                    if Q == quant_code::Q3K || Q == quant_code::Q2K {
                        let sums = &act.half_sums(t)[2 * b..2 * b + 2];
                        let sums = sums.try_into().expect("two halves");
                        total += low_k_block::<Q>(w, (g, b, lane), a, sums) * scales[b];
                        continue;
                    }
                    let dot = block_dot::<Q>(w, (g, b, lane), a);
                    let (d, shift) = w.scale_shift(Q, g, b, lane);
                    total += dot as f32 * (d * scales[b]);
                    if Q == quant_code::Q4_1 || Q == quant_code::Q5_1 {
                        total += shift * scaled_sums[b];
                    } else if Q == quant_code::Q4K || Q == quant_code::Q5K {
                        total += shift * scales[b] * act.block_sums(t)[b] as f32;
                    }
                }
                // SAFETY: the caller owns (t, row).
                unsafe { out.write(t, g * GROUP + lane, total) };
            }
        }
    }
}

/// The integer dot product of row `lane` of group `g`'s block `b` (its stored values, less
/// Q4_0's offset 8 or Q5_0's 16) with the activation block `a`.
fn block_dot<const Q: u8>(
    w: &QuantRows,
    (g, b, lane): (usize, usize, usize),
    a: &[i8; BLOCK],
) -> i32 {
    if Q == quant_code::IQ4NL {
        return iq4_dot(w, (g, b, lane), a);
    }
    if matches!(Q, quant_code::Q5K | quant_code::Q5_0 | quant_code::Q5_1) {
        let offset = if Q == quant_code::Q5_0 { 16 } else { 0 };
        return (0..BLOCK)
            .map(|e| (w.q5_value(g, b, lane, e) - offset) * i32::from(a[e]))
            .sum();
    }
    let quant_bytes = if Q == quant_code::Q8_0 { 32 } else { 16 };
    // the stored nibbles' offset from their signed values (Q8_0's bytes are signed already)
    let offset = if Q == quant_code::Q4_0 { 8 } else { 0 };
    let at = (g * w.blocks + b) * GROUP;
    let mut dot = 0i32;
    for j in 0..quant_bytes / 4 {
        for i in 0..4 {
            let byte = w.quants[at * quant_bytes + j * 4 * GROUP + lane * 4 + i];
            let k = 4 * j + i;
            dot += if Q == quant_code::Q8_0 {
                byte as i8 as i32 * a[k] as i32
            } else {
                ((byte & 15) as i32 - offset) * a[k] as i32
                    + ((byte >> 4) as i32 - offset) * a[k + BLOCK / 2] as i32
            };
        }
    }
    dot
}

/// The integer dot product of row `lane` of group `g`'s IQ4 block `b` (its nibbles looked up
/// in [`IQ4_VALUES`]) with the activation block `a`.
fn iq4_dot(w: &QuantRows, (g, b, lane): (usize, usize, usize), a: &[i8; BLOCK]) -> i32 {
    (0..BLOCK)
        .map(|e| i32::from(IQ4_VALUES[w.nibble(g, b, lane, e)]) * i32::from(a[e]))
        .sum()
}

/// Row `lane` of group `g`'s Q6_K block `b` times the activation block `a`: each sub-block's
/// integer dot of signed values times its scale, summed, times `d`.
fn q6k_block(w: &QuantRows, (g, b, lane): (usize, usize, usize), a: &[i8; BLOCK]) -> f32 {
    let mut dot = 0i32;
    let mut d = 0.0;
    for h in 0..2 {
        let (row_d, sc) = w.q6k_scales(g, b, lane, h);
        let half: i32 = (16 * h..16 * h + 16)
            .map(|e| w.q6k_value(g, b, lane, e) * i32::from(a[e]))
            .sum();
        dot += sc * half;
        d = row_d;
    }
    dot as f32 * d
}

/// Row `lane` of group `g`'s Q3_K or Q2_K block `b` times the activation block `a` (whose
/// halves sum to `half_sums`): Q3_K's sub-blocks' integer dots of signed values times their
/// signed scales, summed, times `d`; Q2_K's times their scales, summed, times `d`, less `dmin`
/// times the minimums' dot with the half sums.
fn low_k_block<const Q: u8>(
    w: &QuantRows,
    (g, b, lane): (usize, usize, usize),
    a: &[i8; BLOCK],
    half_sums: &[i16; 2],
) -> f32 {
    let offset = if Q == quant_code::Q3K { 4 } else { 0 };
    let (mut dot, mut min_dot) = (0i32, 0i32);
    let (mut d, mut dmin) = (0.0, 0.0);
    for (h, &sum) in half_sums.iter().enumerate() {
        let half: i32 = (16 * h..16 * h + 16)
            .map(|e| (w.low_k_value(Q, g, b, lane, e) - offset) * i32::from(a[e]))
            .sum();
        if Q == quant_code::Q3K {
            let (row_d, sc) = w.q3k_scale(g, b, lane, h);
            (dot, d) = (dot + sc * half, row_d);
        } else {
            let ((row_d, row_dmin), (sc, m)) = w.q2k_scale_min(g, b, lane, h);
            dot += sc * half;
            min_dot += m * i32::from(sum);
            (d, dmin) = (row_d, row_dmin);
        }
    }
    dot as f32 * d - min_dot as f32 * dmin
}

/// The `R` float rows of `units` times tokens `t0..t0+T` of `x`.
///
/// # Safety
/// The rows and tokens must exist and the output cells must belong to this tile.
pub(super) unsafe fn float_tile<V, const F: u8, const R: usize, const T: usize>(
    w: &FloatRows<V>,
    units: Units,
    x: &[f32],
    t0: usize,
    out: Output,
) where
    V: Copy + Into<Widen>,
{
    let cols = w.cols;
    for r in (0..R).map(|k| units.at(k)) {
        let row = &w.values[r * cols..(r + 1) * cols];
        for t in t0..t0 + T {
            let xs = &x[t * cols..(t + 1) * cols];
            let total: f32 = row
                .iter()
                .zip(xs)
                .map(|(&v, &x)| v.into().to_f32::<F>() * x)
                .sum();
            // SAFETY: the caller owns (t, r).
            unsafe { out.write(t, r, total) };
        }
    }
}

/// Packs rows `r0..r0+rows` (at most 16; the rest of the micro-panel is zeros), columns
/// `k0..k0+depth` of `w` into `out` (`depth` entries), one column per entry, as f32.
///
/// # Safety
/// The rows and columns must exist.
pub(super) unsafe fn pack<V: Copy + Into<Widen>, const F: u8>(
    w: &FloatRows<V>,
    r0: usize,
    rows: usize,
    k0: usize,
    depth: usize,
    out: &mut [Column],
) {
    for (k, column) in out.iter_mut().enumerate().take(depth) {
        for (r, value) in column.0.iter_mut().enumerate() {
            *value = if r < rows {
                w.values[(r0 + r) * w.cols + k0 + k].into().to_f32::<F>()
            } else {
                0.0
            };
        }
    }
}

/// The outputs of `T` tokens by a micro-panel's 16 rows, one column's outer product per step.
///
/// # Safety
/// `tile` must describe existing activations and output cells owned by this call.
pub(super) unsafe fn micro_kernel<const T: usize>(tile: MicroTile) {
    let mut acc = [[0f32; MICRO_ROWS]; T];
    for (k, column) in tile.panel.iter().enumerate().take(tile.depth) {
        for (t, acc) in acc.iter_mut().enumerate() {
            // SAFETY: every token of the tile has the panel's depth of columns.
            let b = unsafe { *tile.token(t).add(k) };
            for (a, w) in acc.iter_mut().zip(&column.0) {
                *a += w * b;
            }
        }
    }
    for (t, lanes) in acc.iter().enumerate() {
        // SAFETY: token t is the tile's.
        unsafe { tile.finish(t, lanes) };
    }
}

/// A stored float value before widening: f32 bits or a 16-bit pattern.
#[derive(Debug, Clone, Copy)]
pub(super) enum Widen {
    /// An f32.
    Full(f32),
    /// An f16 or bf16 bit pattern.
    Half(u16),
}

impl From<f32> for Widen {
    fn from(v: f32) -> Self {
        Widen::Full(v)
    }
}

impl From<u16> for Widen {
    fn from(v: u16) -> Self {
        Widen::Half(v)
    }
}

impl Widen {
    #[inline(always)]
    fn to_f32<const F: u8>(self) -> f32 {
        match self {
            Widen::Full(v) => v,
            Widen::Half(h) if F == float_code::F16 => f16::from_bits(h).to_f32(),
            Widen::Half(h) => bf16::from_bits(h).to_f32(),
        }
    }
}
