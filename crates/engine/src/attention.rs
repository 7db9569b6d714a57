//! Fused causal grouped-query attention over the KV cache: scores, softmax and the weighted sum
//! of values in one pass per query, with no score matrix, mask or copy of keys per head.
//!
//! The query heads that share a KV head are computed together, so every key panel and value
//! row read from cache serves all of them. Prefill goes over the keys in tiles for blocks of
//! query positions (`blocked`), as flash attention does. In decode, when there are too few KV
//! heads to keep every thread busy (SmolLM2 has 3), each query's keys are split into ranges
//! computed in parallel and the ranges' normalized outputs are combined by their softmax
//! weights, as flash-decoding does.

mod blocked;

use super::kv_cache::{LayerCache, PANEL};
use super::kv_format::{Head, KvFormat};
use super::team::{self, SharedMut};
use super::vector::{exp_shifted_sum, max};
use crate::multiversion;
use std::cell::RefCell;
use std::ops::Range;

/// Query heads computed together (their accumulators stay in registers).
const MOST_ROWS: usize = 4;
/// f32 values each thread's attention scratch holds per cache position (the scores of
/// [`MOST_ROWS`] rows): with the threads and the context, the engine's attention
/// memory, for there is no layer-wide score matrix.
pub const SCRATCH_VALUES_PER_POSITION: usize = MOST_ROWS;
/// Work items per thread that splitting decode's keys aims for, so that the threads claiming
/// them finish close together.
const SPLIT_ITEMS_PER_THREAD: usize = 8;
/// Fewest keys of one range of a split query.
const MIN_SPLIT_KEYS: usize = 64;

/// Softmax statistics of one query row over a range of keys: its largest score and the sum of
/// `e^(score - top)` over the range, by which the range's output is normalized.
#[derive(Debug, Clone, Copy, Default)]
struct Softmax {
    top: f32,
    total: f32,
}

/// One thread's scratch: the scores of up to `MOST_ROWS` rows over the cache's capacity, and
/// the softmax statistics of a query's rows when the caller keeps none.
#[derive(Debug, Default)]
struct Scratch {
    scores: Vec<f32>,
    stats: Vec<Softmax>,
}

thread_local! {
    /// Each thread's scratch.
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
    /// The calling thread's partial outputs of split queries, `[item][rows][head_dim]`, and
    /// their statistics, `[item][rows]`.
    static PARTIALS: RefCell<(Vec<f32>, Vec<Softmax>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// Attention of the `seq` new positions `pos..pos+seq` of every sequence over the cached
/// positions `0..=` their own: `q` and `out` are `[batch, seq, heads, head_dim]` f32, the
/// cache already holds the new positions' keys and values (widened to f32 as they are read).
pub fn causal_attention<F: KvFormat>(
    q: &[f32],
    cache: LayerCache<F>,
    heads: usize,
    seq: usize,
    pos: usize,
    out: &mut [f32],
) {
    let s = cache.shape;
    let d = s.head_dim;
    let rep = heads / s.kv_heads;
    assert_eq!(
        heads,
        rep * s.kv_heads,
        "query heads are a multiple of KV heads"
    );
    assert!(pos + seq <= s.capacity, "the cache holds the new positions");
    assert_eq!(q.len(), s.batch * seq * heads * d, "queries are whole rows");
    assert_eq!(out.len(), q.len(), "one output per query");
    let attention = Attention {
        q,
        cache,
        heads,
        rep,
        scale: 1.0 / (d as f32).sqrt(),
    };
    let splits = key_splits(s.batch * s.kv_heads, seq, pos + 1, team::width());
    if splits > 1 {
        return attention.split_decode(pos + 1, splits, out);
    }
    if seq > 1 {
        return attention.prefill(seq, pos, out);
    }
    let units = s.batch * s.kv_heads;
    let shared = SharedMut::new(out);
    team::parallel(team::width(), &|share, shares| {
        for u in (share..units).step_by(shares) {
            let (b, g) = (u / s.kv_heads, u % s.kv_heads);
            let at = (b * heads + g * rep) * d;
            // SAFETY: the rows of sequence b's heads of group g belong to this unit only.
            let rows = unsafe { shared.slice(at..at + rep * d) };
            attention.attend(b, g, at, 0..pos + 1, rows, &mut []);
        }
    });
}

/// Ranges that each query's keys are split into: 1 (none) but in decode when the sequences'
/// KV heads (`units`) are too few to give `threads` threads [`SPLIT_ITEMS_PER_THREAD`] items
/// each, and each range keeps at least [`MIN_SPLIT_KEYS`] of the `keys`.
fn key_splits(units: usize, seq: usize, keys: usize, threads: usize) -> usize {
    if seq != 1 || threads < 2 {
        return 1;
    }
    (SPLIT_ITEMS_PER_THREAD * threads)
        .div_ceil(units)
        .min(keys / MIN_SPLIT_KEYS)
        .max(1)
}

/// What every query of one attention call reads.
#[derive(Clone, Copy)]
struct Attention<'a, F: KvFormat> {
    q: &'a [f32],
    cache: LayerCache<'a, F>,
    heads: usize,
    /// Query heads per KV head.
    rep: usize,
    /// Factor of the scores, `1 / sqrt(head_dim)`.
    scale: f32,
}

impl<F: KvFormat> Attention<'_, F> {
    /// The rows at `at` of `q` (the heads of sequence `b` that share KV head `g`) over the keys
    /// in `keys` (starting at a panel), normalized into `out`; their softmax statistics go to
    /// `stats` when it has a slot per row.
    fn attend(
        &self,
        b: usize,
        g: usize,
        at: usize,
        keys: std::ops::Range<usize>,
        out: &mut [f32],
        stats: &mut [Softmax],
    ) {
        let d = self.cache.shape.head_dim;
        let query = Query {
            rows: &self.q[at..at + self.rep * d],
            head_dim: d,
            first: keys.start,
            keys: keys.end,
            scale: self.scale,
        };
        SCRATCH.with_borrow_mut(|scratch| {
            let Scratch { scores, stats: own } = scratch;
            scores.resize(MOST_ROWS * self.cache.shape.capacity, 0.0);
            let stats = if stats.len() == self.rep {
                stats
            } else {
                own.resize(self.rep, Softmax::default());
                own
            };
            let (keys, values) = (self.cache.keys(b, g), self.cache.values(b, g));
            attend::<F>(query, keys, values, scores, out, stats);
        })
    }

    /// Decode (one position per sequence, attending to `keys` keys) with each query's keys in
    /// `splits` ranges of whole panels: every (sequence, KV head, range) is a work item the
    /// threads claim, and each query's output is its ranges' outputs weighted by their share
    /// of the softmax.
    fn split_decode(&self, keys: usize, splits: usize, out: &mut [f32]) {
        let s = self.cache.shape;
        let (d, rep) = (s.head_dim, self.rep);
        let per = keys.div_ceil(splits).next_multiple_of(PANEL);
        let splits = keys.div_ceil(per);
        let units = s.batch * s.kv_heads;
        let items = units * splits;
        PARTIALS.with_borrow_mut(|(outputs, stats)| {
            outputs.resize(items * rep * d, 0.0);
            stats.resize(items * rep, Softmax::default());
            let (shared_outputs, shared_stats) = (SharedMut::new(outputs), SharedMut::new(stats));
            team::parallel(items, &|item, _| {
                let (u, range) = (item / splits, item % splits);
                let (b, g) = (u / s.kv_heads, u % s.kv_heads);
                let at = (b * self.heads + g * rep) * d;
                let first = range * per;
                // SAFETY: item's partial rows and statistics are its own.
                let (partial, partial_stats) = unsafe {
                    (
                        shared_outputs.slice(item * rep * d..(item + 1) * rep * d),
                        shared_stats.slice(item * rep..(item + 1) * rep),
                    )
                };
                self.attend(
                    b,
                    g,
                    at,
                    first..(first + per).min(keys),
                    partial,
                    partial_stats,
                );
            });
            for u in 0..units {
                let (b, g) = (u / s.kv_heads, u % s.kv_heads);
                for r in 0..rep {
                    let stat = |range: usize| stats[(u * splits + range) * rep + r];
                    let top = (0..splits)
                        .map(|i| stat(i).top)
                        .fold(f32::NEG_INFINITY, f32::max);
                    // each range's share of the softmax's normalizer
                    let weight = |range: usize| stat(range).total * (stat(range).top - top).exp();
                    let inverse = 1.0 / (0..splits).map(weight).sum::<f32>();
                    let at = (b * self.heads + g * rep + r) * d;
                    let row = &mut out[at..at + d];
                    row.fill(0.0);
                    for range in 0..splits {
                        let w = weight(range) * inverse;
                        let part = &outputs[((u * splits + range) * rep + r) * d..][..d];
                        for (o, p) in row.iter_mut().zip(part) {
                            *o += w * p;
                        }
                    }
                }
            }
        })
    }
}

/// Query heads of one position that share a KV head.
#[derive(Clone, Copy)]
struct Query<'a> {
    /// The heads' query vectors, `[rows][head_dim]`.
    rows: &'a [f32],
    head_dim: usize,
    /// Positions it attends to: `first..keys`, `first` a multiple of [`PANEL`].
    first: usize,
    keys: usize,
    /// Factor of the scores, `1 / sqrt(head_dim)`.
    scale: f32,
}

multiversion! {
    /// Attention of `query` over `keys` (panels) and `values` (rows) into `out` (`[rows][head_dim]`),
    /// normalized over the query's keys, with each row's softmax statistics in `stats`; `scores`
    /// is scratch.
    fn attend<F: KvFormat>(query: Query, keys: Head<F::Stored>, values: Head<F::Stored>, scores: &mut [f32], out: &mut [f32], stats: &mut [Softmax]) => attend_rows
}

#[inline(always)]
fn attend_rows<F: KvFormat>(
    query: Query,
    keys: Head<F::Stored>,
    values: Head<F::Stored>,
    scores: &mut [f32],
    out: &mut [f32],
    stats: &mut [Softmax],
) {
    let d = query.head_dim;
    let rows = query.rows.len() / d;
    let mut r0 = 0;
    while r0 < rows {
        let n = (rows - r0).min(MOST_ROWS);
        let part = Query {
            rows: &query.rows[r0 * d..(r0 + n) * d],
            ..query
        };
        let out = &mut out[r0 * d..(r0 + n) * d];
        let stats = &mut stats[r0..r0 + n];
        match n {
            1 => attend_group::<F, 1>(part, keys, values, scores, out, stats),
            2 => attend_group::<F, 2>(part, keys, values, scores, out, stats),
            3 => attend_group::<F, 3>(part, keys, values, scores, out, stats),
            _ => attend_group::<F, 4>(part, keys, values, scores, out, stats),
        }
        r0 += n;
    }
}

/// [`attend_rows`] for exactly `R` heads; `scores` is their scratch.
#[inline(always)]
fn attend_group<F: KvFormat, const R: usize>(
    query: Query,
    keys: Head<F::Stored>,
    values: Head<F::Stored>,
    scores: &mut [f32],
    out: &mut [f32],
    stats: &mut [Softmax],
) {
    let d = query.head_dim;
    let first = query.first / PANEL;
    let panels = query.keys.div_ceil(PANEL) - first;
    let n = query.keys - query.first;
    let stride = panels * PANEL;
    // scales per panel: `[row_scales][PANEL]`
    let panel_scales = keys.scales.len() / (keys.stored.len() / d);
    let q = F::queries::<R>(std::array::from_fn(|r| &query.rows[r * d..(r + 1) * d]));
    for p in 0..panels {
        let panel = first + p;
        let acc = F::panel_scores::<R>(
            &q,
            query.scale,
            &keys.stored[panel * d * PANEL..(panel + 1) * d * PANEL],
            &keys.scales[panel * panel_scales * PANEL..(panel + 1) * panel_scales * PANEL],
        );
        for (r, acc) in acc.iter().enumerate() {
            scores[r * stride + p * PANEL..][..PANEL].copy_from_slice(acc);
        }
    }
    let mut inverse = [0f32; R];
    for (r, (inv, stat)) in inverse.iter_mut().zip(stats.iter_mut()).enumerate() {
        let row = &mut scores[r * stride..r * stride + n];
        let top = max(row);
        let total = exp_shifted_sum(row, top);
        *stat = Softmax { top, total };
        *inv = 1.0 / total;
    }
    group_values::<F, R>(
        scores,
        stride,
        values,
        query.first..query.keys,
        d,
        (inverse, None),
        out,
    );
}

multiversion! {
    /// [`KvFormat::weighted_values`] of one group of `R` rows, as a function of its own at each
    /// level: inlined into attention's body (decode's or prefill's blocks), the constants its
    /// outer loops hoisted took the registers, and the loop kept its accumulators on the stack.
    pub(super) fn group_values<F: KvFormat, const R: usize>(weights: &[f32], stride: usize, values: Head<F::Stored>, positions: Range<usize>, d: usize, settling: ([f32; R], Option<[f32; R]>), out: &mut [f32]) => group_values_body
}

#[inline(always)]
fn group_values_body<F: KvFormat, const R: usize>(
    weights: &[f32],
    stride: usize,
    values: Head<F::Stored>,
    positions: Range<usize>,
    d: usize,
    (inverse, keep): ([f32; R], Option<[f32; R]>),
    out: &mut [f32],
) {
    F::weighted_values::<R>(weights, stride, values, positions, d, inverse, keep, out)
}

#[cfg(test)]
mod tests {
    use super::super::kv_cache::KvCache;
    use super::super::kv_element::KvElement;
    use super::super::kv_q8::tests::{random, rounded};
    use super::super::kv_q8::Q8_0;
    use super::*;
    use candle_core::{Device, Tensor, D};
    use half::{bf16, f16};

    /// Textbook attention with keys and values repeated per head and an explicit causal mask,
    /// `[batch, heads, seq, d]` queries over `[batch, kv_heads, keys, d]`; returns
    /// `[batch, seq, heads, d]` flattened.
    fn textbook(q: &Tensor, k: &Tensor, v: &Tensor, pos: usize) -> Vec<f32> {
        let (b, h, s, d) = q.dims4().unwrap();
        let kvh = k.dim(1).unwrap();
        let rep = h / kvh;
        let keys = k.dim(2).unwrap();
        let repeat = |t: &Tensor| {
            Tensor::cat(&vec![t.unsqueeze(2).unwrap(); rep], 2)
                .unwrap()
                .reshape((b, h, keys, d))
                .unwrap()
        };
        let (k, v) = (repeat(k), repeat(v));
        let scores = (q.matmul(&k.t().unwrap()).unwrap() / (d as f64).sqrt()).unwrap();
        let mask: Vec<f32> = (0..s)
            .flat_map(|i| {
                (0..keys).map(move |j| if j <= pos + i { 0.0 } else { f32::NEG_INFINITY })
            })
            .collect();
        let mask = Tensor::from_vec(mask, (s, keys), &Device::Cpu).unwrap();
        let p = candle_nn::ops::softmax(&scores.broadcast_add(&mask).unwrap(), D::Minus1).unwrap();
        p.matmul(&v)
            .unwrap()
            .transpose(1, 2)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap()
    }

    /// `[batch, n, heads, d]` rows as a `[batch, heads, n, d]` tensor.
    fn by_head(x: &[f32], b: usize, n: usize, h: usize, d: usize) -> Tensor {
        Tensor::from_slice(x, (b, n, h, d), &Device::Cpu)
            .unwrap()
            .transpose(1, 2)
            .unwrap()
            .contiguous()
            .unwrap()
    }

    /// Fused attention over an `F` cache holding `k` and `v` (`[b, keys, kvh, d]`), written as
    /// prefill then decode would: the past in one write, then the `seq` new positions.
    #[allow(clippy::too_many_arguments)]
    fn fused<F: KvFormat>(
        q: &[f32],
        k: &[f32],
        v: &[f32],
        (b, h, kvh, d): (usize, usize, usize, usize),
        pos: usize,
        seq: usize,
    ) -> Vec<f32> {
        let keys = pos + seq;
        let mut cache = KvCache::<F>::new(1, b, kvh, keys + 3, d).unwrap();
        let split = |x: &[f32], from: usize, to: usize| -> Vec<f32> {
            (0..b)
                .flat_map(|s| x[(s * keys + from) * kvh * d..(s * keys + to) * kvh * d].to_vec())
                .collect()
        };
        cache
            .store(0, &split(k, 0, pos), &split(v, 0, pos), pos, 0)
            .unwrap();
        cache
            .store(0, &split(k, pos, keys), &split(v, pos, keys), seq, pos)
            .unwrap();
        let mut ours = vec![0f32; q.len()];
        causal_attention(q, cache.layer(0), h, seq, pos, &mut ours);
        ours
    }

    /// Largest absolute difference of two equally long outputs.
    fn max_difference(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).fold(0f32, |m, (a, b)| m.max((a - b).abs()))
    }

    /// Fused attention over an `F` cache equals textbook attention over the keys and values
    /// as `F` stores them (`rounded`: the only difference a narrower cache makes) and the
    /// queries as its decode reads them (`queries`).
    fn check_in<F: KvFormat>(
        rounded: fn(&[f32]) -> Vec<f32>,
        queries: fn(&[f32]) -> Vec<f32>,
        (b, h, kvh, d): (usize, usize, usize, usize),
        pos: usize,
        seq: usize,
    ) {
        let keys = pos + seq;
        let q = random(b * seq * h * d, 1);
        let k = random(b * keys * kvh * d, 2);
        let v = random(b * keys * kvh * d, 3);
        let ours = fused::<F>(&q, &k, &v, (b, h, kvh, d), pos, seq);
        let read = if seq == 1 { queries(&q) } else { q };
        let want = textbook(
            &by_head(&read, b, seq, h, d),
            &by_head(&rounded(&k), b, keys, kvh, d),
            &by_head(&rounded(&v), b, keys, kvh, d),
            pos,
        );
        let diff = max_difference(&ours, &want);
        assert!(
            diff < 1e-5,
            "{:?} b{b} h{h}/{kvh} d{d} pos{pos} seq{seq}: max difference {diff}",
            F::DTYPE
        );
    }

    /// [`check_in`] a cache of a float type `T`.
    fn check_as<T: KvElement>(b: usize, h: usize, kvh: usize, d: usize, pos: usize, seq: usize) {
        let rounded = |x: &[f32]| -> Vec<f32> { x.iter().map(|x| T::narrow(*x).widen()).collect() };
        check_in::<T>(rounded, <[f32]>::to_vec, (b, h, kvh, d), pos, seq);
    }

    fn check(b: usize, h: usize, kvh: usize, d: usize, pos: usize, seq: usize) {
        check_as::<f32>(b, h, kvh, d, pos, seq);
    }

    /// Runs `f` on a rayon pool of `threads` threads, so work splits as on a multi-core host
    /// whatever this one has.
    fn on_threads(threads: usize, f: impl FnOnce() + Send) {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(f);
    }

    #[test]
    fn decode_with_keys_split_into_ranges_equals_textbook_attention() {
        // few KV heads over 4 threads: each query's keys are split (ragged last range)
        assert!(key_splits(3, 1, 301, 4) > 1);
        assert_eq!(key_splits(3, 5, 301, 4), 1, "prefill is never split");
        assert_eq!(
            key_splits(3, 1, 301, 1),
            1,
            "one thread has nothing to balance"
        );
        on_threads(4, || {
            check(1, 9, 3, 64, 300, 1);
            check(2, 4, 1, 16, 130, 1);
            check(1, 2, 2, 24, 700, 1);
        });
    }

    #[test]
    fn fused_attention_equals_textbook_attention() {
        // prefill (pos 0), decode (seq 1), odd head counts and head sizes, several panels; 48
        // and 21 values: a lane array after a pair, and an odd count of key rows
        check(1, 8, 2, 64, 0, 37);
        check(1, 4, 2, 48, 0, 40);
        check(1, 4, 2, 21, 10, 1);
        check(2, 6, 2, 32, 5, 1);
        check(2, 9, 3, 24, 20, 3);
        check(1, 10, 2, 16, 0, 1);
        check(1, 4, 4, 8, 40, 18);
    }

    #[test]
    fn blocked_prefill_over_several_key_tiles_equals_textbook_attention_in_every_format() {
        on_threads(4, || {
            // (b, h, kvh, d, pos, seq): a prompt from 0 and prompt chunks after cached context,
            // over tiles of 256 keys and blocks of 8 to 32 positions that neither ends on; 1, 3
            // and 4 query heads per KV head; a chunk whose last row alone reaches a new tile
            for (b, h, kvh, d, pos, seq) in [
                (1, 4, 4, 32, 0, 600),
                (1, 6, 2, 32, 300, 333),
                (2, 8, 2, 32, 517, 45),
                (1, 3, 1, 64, 255, 2),
            ] {
                check_as::<f32>(b, h, kvh, d, pos, seq);
                check_as::<f16>(b, h, kvh, d, pos, seq);
                check_as::<bf16>(b, h, kvh, d, pos, seq);
                check_in::<Q8_0>(rounded, rounded, (b, h, kvh, d), pos, seq);
            }
        });
    }

    #[test]
    fn half_caches_equal_textbook_attention_over_rounded_keys_and_values() {
        on_threads(4, || {
            for (b, h, kvh, d, pos, seq) in [
                (1, 8, 2, 64, 0, 37),
                (2, 9, 3, 24, 20, 3),
                (1, 9, 3, 64, 300, 1),
            ] {
                check_as::<f16>(b, h, kvh, d, pos, seq);
                check_as::<bf16>(b, h, kvh, d, pos, seq);
            }
        });
    }

    #[test]
    fn f16_cache_agrees_with_f32_cache_within_f16_rounding() {
        // Keys and values in [-2, 2) round to f16 within 2^-11 relative, so each by at most
        // e = 2^-10. A score (q·k/sqrt(d), |q_j| < 2) moves by at most 2·e·d/sqrt(d) = 2e·sqrt(d);
        // the softmax weights by a factor within e^(±2·that), and the output (a weighted mean
        // of values below 2 in size) by at most 2·(e^(4e·sqrt(d)) - 1) + e.
        let (b, h, kvh, d, pos, seq) = (1, 9, 3, 64, 300, 1);
        let e = 2f32.powi(-10);
        let bound = 2.0 * ((4.0 * e * (d as f32).sqrt()).exp() - 1.0) + e;
        let keys = pos + seq;
        let q = random(b * seq * h * d, 1);
        let k = random(b * keys * kvh * d, 2);
        let v = random(b * keys * kvh * d, 3);
        let wide = fused::<f32>(&q, &k, &v, (b, h, kvh, d), pos, seq);
        let half = fused::<f16>(&q, &k, &v, (b, h, kvh, d), pos, seq);
        let diff = max_difference(&wide, &half);
        assert!(diff < bound, "max difference {diff}, bound {bound}");
        assert!(diff > 0.0, "the f16 cache rounds something");
    }

    #[test]
    fn q8_0_cache_equals_textbook_attention_over_its_dequantized_keys_and_values() {
        on_threads(4, || {
            // prefill (f32 queries) from 0 and at an offset (batch 2), split decode (q8_0
            // queries), 96-value heads
            for (b, h, kvh, d, pos, seq) in [
                (1, 8, 2, 64, 0, 37),
                (2, 9, 3, 32, 20, 3),
                (1, 9, 3, 64, 300, 1),
                (2, 4, 1, 96, 130, 1),
            ] {
                check_in::<Q8_0>(rounded, rounded, (b, h, kvh, d), pos, seq);
            }
        });
    }

    #[test]
    fn q8_0_cache_agrees_with_f32_cache_within_its_rounding() {
        // Keys, values and decode's queries in [-2, 2) move by at most half a step of their
        // block, amax / 254 < 2^-7, plus the f16 rounding of the scale (2^-11 · amax < 2^-10):
        // e < 2^-7 + 2^-10. As for f16 above, with the queries' share as large as the keys',
        // the output moves by at most 2·(e^(8e·sqrt(d)) - 1) + e.
        let (b, h, kvh, d, pos, seq) = (1, 9, 3, 64, 300, 1);
        let e = 2f32.powi(-7) + 2f32.powi(-10);
        let bound = 2.0 * ((8.0 * e * (d as f32).sqrt()).exp() - 1.0) + e;
        let keys = pos + seq;
        let q = random(b * seq * h * d, 1);
        let k = random(b * keys * kvh * d, 2);
        let v = random(b * keys * kvh * d, 3);
        let wide = fused::<f32>(&q, &k, &v, (b, h, kvh, d), pos, seq);
        let eight = fused::<Q8_0>(&q, &k, &v, (b, h, kvh, d), pos, seq);
        let diff = max_difference(&wide, &eight);
        assert!(diff < bound, "max difference {diff}, bound {bound}");
        assert!(diff > 0.0, "the q8_0 cache rounds something");
    }
}
