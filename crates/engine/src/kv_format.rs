//! How a KV cache stores one head's keys or values, and the two loops of attention that read
//! them: the scores of query rows against a panel of keys, and the probability-weighted sum of
//! values. The float types ([`KvElement`]: f32, f16, bf16) store each value alone; q8_0
//! (`kv_q8`) stores 8-bit values in blocks that share an f16 scale.
//!
//! The loops are `#[inline(always)]`, so they are compiled into attention's
//! [`multiversion!`](crate::multiversion) body at each instruction-set level, and written in
//! plain arithmetic over lane arrays that the compiler vectorizes there; f16 lanes widen with
//! F16C's `vcvtph2ps` at the SIMD levels ([`KvElement::widen_lanes`]).

use super::kv_element::KvElement;
use super::vector::LANES;
use crate::model::KvDtype;
use half::f16;
use std::ops::Range;

/// Positions per key panel: one vector of scores.
pub const PANEL: usize = LANES;

/// One head's stored keys or values of one sequence, with their block scales.
#[derive(Debug, Clone, Copy)]
pub struct Head<'a, S> {
    /// Stored values: keys as panels `[capacity / PANEL][head_dim][PANEL]`, values by
    /// position `[capacity][head_dim]`.
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

    /// What one value is stored as.
    type Stored: Copy + Default + Send + Sync + std::fmt::Debug + 'static;

    /// Stores `row` (one head's key or value of one position): value `j` at `stored[j * stride]`
    /// and block `b`'s scale at `scales[b * scale_stride]`.
    fn store(
        row: &[f32],
        stored: &mut [Self::Stored],
        stride: usize,
        scales: &mut [f16],
        scale_stride: usize,
    );

    /// Scores of the `R` query rows `q` (each `head_dim` values, times `scale`) against the
    /// `PANEL` keys of one panel: `keys` is `[head_dim][PANEL]`, `scales` `[blocks][PANEL]`.
    fn panel_scores<const R: usize>(
        q: [&[f32]; R],
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
    /// `keep` is given; `scratch` holds at least `R · positions.len()` values.
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
        scratch: &mut [f32],
    );
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

impl<T: KvElement> KvFormat for T {
    const DTYPE: KvDtype = T::DTYPE;
    const BLOCK: Option<usize> = None;
    type Stored = T;

    #[inline(always)]
    fn store(row: &[f32], stored: &mut [T], stride: usize, _: &mut [f16], _: usize) {
        for (j, x) in row.iter().enumerate() {
            stored[j * stride] = T::narrow(*x);
        }
    }

    #[inline(always)]
    fn panel_scores<const R: usize>(
        q: [&[f32]; R],
        scale: f32,
        keys: &[T],
        _: &[f16],
    ) -> [[f32; PANEL]; R] {
        let f16c = T::f16c();
        let mut acc = [[0f32; PANEL]; R];
        for (j, key) in keys.chunks_exact(PANEL).enumerate() {
            let key = T::widen_lanes(key.try_into().expect("a panel row"), f16c);
            for r in 0..R {
                let qj = q[r][j] * scale;
                for l in 0..PANEL {
                    acc[r][l] += qj * key[l];
                }
            }
        }
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
        _: &mut [f32],
    ) {
        let n = positions.len();
        let values = &values.stored[positions.start * d..positions.end * d];
        let full = d / LANES * LANES;
        let f16c = T::f16c();
        for c in (0..full).step_by(LANES) {
            let mut acc = [[0f32; LANES]; R];
            for j in 0..n {
                let v = values[j * d + c..][..LANES].try_into().expect("a lane row");
                let v = T::widen_lanes(v, f16c);
                for r in 0..R {
                    let p = weights[r * stride + j];
                    for l in 0..LANES {
                        acc[r][l] += p * v[l];
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
        for c in full..d {
            for r in 0..R {
                let sum: f32 = (0..n)
                    .map(|j| weights[r * stride + j] * values[j * d + c].widen())
                    .sum();
                settle(&mut out[r * d + c], sum, inverse[r], keep.map(|k| k[r]));
            }
        }
    }
}
