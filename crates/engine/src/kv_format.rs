//! How a KV cache stores one head's keys or values, and the two loops of attention that read
//! them: the scores of query rows against a panel of keys, and the probability-weighted sum of
//! values. The float types ([`KvElement`]: f32, f16, bf16) store each value alone; q8_0
//! (`kv_q8`) stores 8-bit values in blocks that share an f16 scale.
//!
//! The loops are `#[inline(always)]`, so they are compiled into attention's
//! [`multiversion!`](crate::multiversion) body at each instruction-set level, and written in
//! plain arithmetic over lane arrays that the compiler vectorizes there; f16 lanes widen with
//! F16C's `vcvtph2ps` at the SIMD levels ([`KvElement::widen_lanes`]).

use super::kernels::Isa;
use super::kv_element::{F16c, KvElement};
use super::vector::LANES;
use crate::model::KvDtype;
use half::f16;
use std::ops::Range;

/// Positions per key panel: one vector of scores.
pub const PANEL: usize = LANES;

/// One head's stored keys or values of one sequence, with their block scales.
#[derive(Debug, Clone, Copy)]
pub struct Head<'a, S> {
    /// Stored values: keys as panels of `head_dim · PANEL` values (`[head_dim][PANEL]`, or the
    /// format's own order: [`KvFormat::store_key`]), values by position `[capacity][head_dim]`.
    pub stored: &'a [S],
    /// One scale per block: keys' as panels `[capacity / PANEL][blocks][PANEL]`, values'
    /// `[blocks][capacity]` (`blocks` a row's); empty for a format without scales.
    pub scales: &'a [f16],
}

/// A storage format of the KV cache and the loops of attention over it.
pub trait KvFormat: Copy + std::fmt::Debug + Send + Sync + 'static {
    /// The cache type this format makes.
    const DTYPE: KvDtype;

    /// Values per block that share one scale; `None` for a format that stores no scales.
    const BLOCK: Option<usize>;

    /// Most values per head the format's attention takes (`usize::MAX`: no limit).
    const MOST_HEAD_DIM: usize = usize::MAX;

    /// What one value is stored as.
    type Stored: Copy + Default + Send + Sync + std::fmt::Debug + 'static;

    /// `R` query rows as [`KvFormat::panel_scores`] reads them.
    type Queries<'a, const R: usize>;

    /// Stores `row` (one head's key or value of one position): value `j` at `stored[j * stride]`
    /// and block `b`'s scale at `scales[b * scale_stride]`.
    fn store(
        row: &[f32],
        stored: &mut [Self::Stored],
        stride: usize,
        scales: &mut [f16],
        scale_stride: usize,
    );

    /// Stores `row` as the key at `lane` of `panel` (one panel's `head_dim · PANEL` values),
    /// its block scales in `scales` (the panel's `[blocks][PANEL]`); by default value `j` at
    /// `panel[j · PANEL + lane]`.
    #[inline(always)]
    fn store_key(row: &[f32], panel: &mut [Self::Stored], lane: usize, scales: &mut [f16]) {
        Self::store(
            row,
            &mut panel[lane..],
            PANEL,
            scales_from(scales, lane),
            PANEL,
        );
    }

    /// The `R` query rows `q` (each `head_dim` values) as [`KvFormat::panel_scores`] reads
    /// them.
    fn queries<const R: usize>(q: [&[f32]; R]) -> Self::Queries<'_, R>;

    /// Scores of the `R` query rows `q` (times `scale`) against the `PANEL` keys of one panel:
    /// `keys` is the panel's `head_dim · PANEL` values, `scales` `[blocks][PANEL]`.
    fn panel_scores<const R: usize>(
        q: &Self::Queries<'_, R>,
        scale: f32,
        keys: &[Self::Stored],
        scales: &[f16],
    ) -> [[f32; PANEL]; R];

    /// The keys of `panels` of `keys` (one head's, `head_dim` values per position) as f32 in
    /// the same layout, `[panels][head_dim][PANEL]`, into `out`.
    fn widen_panels(
        keys: Head<Self::Stored>,
        panels: Range<usize>,
        head_dim: usize,
        out: &mut [f32],
    );

    /// The values of `positions` of `values` (one head's) as f32 rows, `[positions][head_dim]`,
    /// into `out`.
    fn widen_rows(
        values: Head<Self::Stored>,
        positions: Range<usize>,
        head_dim: usize,
        out: &mut [f32],
    );

    /// `out[r][c] = inverse[r] · Σ_j weights[r · stride + j] · value(first + j, c)` over the
    /// `positions` `first..` of `values` (one head's, `head_dim` values per position), into
    /// `out` (`[R][head_dim]`), plus `keep[r] · out[r][c]` (what `out` held, rescaled) when
    /// `keep` is given.
    #[allow(clippy::too_many_arguments)]
    fn weighted_values<const R: usize>(
        weights: &[f32],
        stride: usize,
        values: Head<Self::Stored>,
        positions: Range<usize>,
        head_dim: usize,
        inverse: [f32; R],
        keep: Option<[f32; R]>,
        out: &mut [f32],
    );
}

/// `scales` from `at` on; empty for a format that stores no scales.
#[inline(always)]
pub(crate) fn scales_from(scales: &mut [f16], at: usize) -> &mut [f16] {
    if scales.is_empty() {
        scales
    } else {
        &mut scales[at..]
    }
}

/// Sets `out` to `sum · inverse`, plus `keep · out` when `keep` is given: how
/// [`KvFormat::weighted_values`] writes each output.
#[inline(always)]
pub(crate) fn settle(out: &mut f32, sum: f32, inverse: f32, keep: Option<f32>) {
    *out = match keep {
        Some(keep) => keep * *out + sum * inverse,
        None => sum * inverse,
    };
}

/// Settles the sums `acc` of `R` rows' `G` lane arrays of columns from `c` on into `out`
/// (`[R][d]`), each as [`settle`] does. Inlined, so that the loop that summed `acc` keeps it in
/// registers: behind a call (a closure the compiler kept out of line) `acc` lived on the stack
/// and the loop stored every accumulator on every position.
#[inline(always)]
pub(crate) fn settle_lanes<const R: usize, const G: usize>(
    acc: &[[[f32; LANES]; G]; R],
    c: usize,
    d: usize,
    (inverse, keep): ([f32; R], Option<[f32; R]>),
    out: &mut [f32],
) {
    for (r, acc) in acc.iter().enumerate() {
        let keep = keep.map(|k| k[r]);
        for (g, acc) in acc.iter().enumerate() {
            let out = &mut out[r * d + c + g * LANES..][..LANES];
            for (o, &sum) in out.iter_mut().zip(acc) {
                settle(o, sum, inverse[r], keep);
            }
        }
    }
}

/// Multiplies each of `scores` by `scale` (attention's `1/√head_dim`): once per score rather
/// than once per query value, how [`KvFormat::panel_scores`] applies it. A row at a time: a
/// flattened iterator kept the scores on the stack, one scalar product each.
#[inline(always)]
pub(crate) fn scale_scores<const R: usize>(scores: &mut [[f32; PANEL]; R], scale: f32) {
    for row in scores.iter_mut() {
        for x in row.iter_mut() {
            *x *= scale;
        }
    }
}

/// Widens `stored` into the start of `out`, as far as both reach, a lane array at a time.
#[inline(always)]
fn widen_into<T: KvElement>(stored: &[T], out: &mut [f32]) {
    let n = stored.len().min(out.len());
    let f16c = T::f16c();
    let mut from = stored[..n].chunks_exact(LANES);
    let mut to = out[..n].chunks_exact_mut(LANES);
    for (o, x) in (&mut to).zip(&mut from) {
        o.copy_from_slice(&T::widen_lanes(x.try_into().expect("a lane row"), f16c));
    }
    for (o, x) in to.into_remainder().iter_mut().zip(from.remainder()) {
        *o = x.widen();
    }
}

/// Independent accumulators attention's loops keep per row and lane array: two at AVX-512, whose
/// 32 registers hold them, so that an FMA does not wait on the one before (4 cycles, 2 per
/// cycle); one at AVX2, whose 16 registers one set of 4 rows already fills.
#[inline(always)]
pub(crate) fn accumulator_sets() -> usize {
    if Isa::active() == Isa::Avx512 {
        2
    } else {
        1
    }
}

/// Unscaled scores of the `R` rows `q` (each `keys.len() / PANEL` values) against one panel of
/// `keys` (`[head_dim][PANEL]`), summed in `S` interleaved sets of key rows.
#[inline(always)]
fn panel_dots<T: KvElement, const R: usize, const S: usize>(
    q: [&[f32]; R],
    keys: &[T],
) -> [[f32; PANEL]; R] {
    let d = keys.len() / PANEL;
    let q: [&[f32]; R] = std::array::from_fn(|r| &q[r][..d]);
    let f16c = T::f16c();
    let mut acc = [[[0f32; PANEL]; R]; S];
    let mut rows = keys.chunks_exact(S * PANEL);
    for (i, group) in (&mut rows).enumerate() {
        for (s, acc) in acc.iter_mut().enumerate() {
            let key = group[s * PANEL..][..PANEL].try_into().expect("a panel row");
            let key = T::widen_lanes(key, f16c);
            for r in 0..R {
                let qj = q[r][i * S + s];
                for l in 0..PANEL {
                    acc[r][l] = qj.mul_add(key[l], acc[r][l]);
                }
            }
        }
    }
    let first = d / S * S;
    for (k, key) in rows.remainder().chunks_exact(PANEL).enumerate() {
        let key = T::widen_lanes(key.try_into().expect("a panel row"), f16c);
        for r in 0..R {
            let qj = q[r][first + k];
            for l in 0..PANEL {
                acc[0][r][l] = qj.mul_add(key[l], acc[0][r][l]);
            }
        }
    }
    let mut sum = acc[0];
    for set in &acc[1..] {
        for r in 0..R {
            for l in 0..PANEL {
                sum[r][l] += set[r][l];
            }
        }
    }
    sum
}

/// `Σ_j weights[r][j] · values[j · d + c + l]` for the `G` lane arrays of each position's
/// values from column `c` on, over the `weights[r].len()` positions of `values`.
#[inline(always)]
fn weighted_lanes<T: KvElement, const R: usize, const G: usize>(
    weights: [&[f32]; R],
    values: &[T],
    d: usize,
    c: usize,
) -> [[[f32; LANES]; G]; R] {
    let n = weights[0].len();
    let weights: [&[f32]; R] = std::array::from_fn(|r| &weights[r][..n]);
    F16c::unswitch(
        T::f16c(),
        #[inline(always)]
        |f16c| {
            let mut acc = [[[0f32; LANES]; G]; R];
            // checked once here, not per position: with the check in the loop, prefill's
            // blocks stored every accumulator on every position
            assert!(c + G * LANES <= d, "lane arrays past the row");
            for (j, row) in values.chunks_exact(d).take(n).enumerate() {
                let row = &row[c..c + G * LANES];
                for g in 0..G {
                    let v = T::widen_lanes(
                        row[g * LANES..][..LANES].try_into().expect("a lane row"),
                        f16c,
                    );
                    for r in 0..R {
                        let p = weights[r][j];
                        for l in 0..LANES {
                            acc[r][g][l] = p.mul_add(v[l], acc[r][g][l]);
                        }
                    }
                }
            }
            acc
        },
    )
}

impl<T: KvElement> KvFormat for T {
    const DTYPE: KvDtype = T::DTYPE;
    const BLOCK: Option<usize> = None;
    type Stored = T;
    type Queries<'a, const R: usize> = [&'a [f32]; R];

    #[inline(always)]
    fn store(row: &[f32], stored: &mut [T], stride: usize, _: &mut [f16], _: usize) {
        for (j, x) in row.iter().enumerate() {
            stored[j * stride] = T::narrow(*x);
        }
    }

    #[inline(always)]
    fn queries<const R: usize>(q: [&[f32]; R]) -> [&[f32]; R] {
        q
    }

    #[inline(always)]
    fn panel_scores<const R: usize>(
        q: &[&[f32]; R],
        scale: f32,
        keys: &[T],
        _: &[f16],
    ) -> [[f32; PANEL]; R] {
        let mut acc = if accumulator_sets() == 2 {
            panel_dots::<T, R, 2>(*q, keys)
        } else {
            panel_dots::<T, R, 1>(*q, keys)
        };
        scale_scores(&mut acc, scale);
        acc
    }

    #[inline(always)]
    fn widen_panels(keys: Head<T>, panels: Range<usize>, d: usize, out: &mut [f32]) {
        widen_into(
            &keys.stored[panels.start * d * PANEL..panels.end * d * PANEL],
            out,
        );
    }

    #[inline(always)]
    fn widen_rows(values: Head<T>, positions: Range<usize>, d: usize, out: &mut [f32]) {
        widen_into(&values.stored[positions.start * d..positions.end * d], out);
    }

    #[inline(always)]
    fn weighted_values<const R: usize>(
        weights: &[f32],
        stride: usize,
        values: Head<T>,
        positions: Range<usize>,
        d: usize,
        inverse: [f32; R],
        keep: Option<[f32; R]>,
        out: &mut [f32],
    ) {
        let n = positions.len();
        let values = &values.stored[positions.start * d..positions.end * d];
        let weights: [&[f32]; R] = std::array::from_fn(|r| &weights[r * stride..][..n]);
        let full = d / LANES * LANES;
        let mut c = 0;
        // at AVX-512, 4 lane arrays per pass (a 64-value row of 4 rows in 16 accumulators), so
        // the values stream from memory in order, once
        if accumulator_sets() == 2 {
            while c + 4 * LANES <= full {
                let acc = weighted_lanes::<T, R, 4>(weights, values, d, c);
                settle_lanes(&acc, c, d, (inverse, keep), out);
                c += 4 * LANES;
            }
            while c + 2 * LANES <= full {
                let acc = weighted_lanes::<T, R, 2>(weights, values, d, c);
                settle_lanes(&acc, c, d, (inverse, keep), out);
                c += 2 * LANES;
            }
        }
        while c < full {
            let acc = weighted_lanes::<T, R, 1>(weights, values, d, c);
            settle_lanes(&acc, c, d, (inverse, keep), out);
            c += LANES;
        }
        for c in full..d {
            for r in 0..R {
                let sum: f32 = (0..n)
                    .map(|j| weights[r][j] * values[j * d + c].widen())
                    .sum();
                settle(&mut out[r * d + c], sum, inverse[r], keep.map(|k| k[r]));
            }
        }
    }
}
