//! Prefill attention in blocks, as flash attention computes it: a block of query positions, with
//! the query heads that share their KV head, goes over its keys in tiles. Each row keeps its
//! running softmax statistics (largest score so far and the sum of `e^(score - largest)`) and an
//! unnormalized output that is rescaled when its largest score grows, so a tile's keys and values
//! are read from memory once per block instead of once per query position. A tile is widened to
//! f32 once ([`KvFormat::widen_panels`], [`KvFormat::widen_rows`]) and then read from the L1 and
//! L2 by each group of rows through the f32 format's loops, so narrow formats pay their widening
//! once per block, not once per group. The diagonal tile masks each row's keys after its own
//! position.

use super::{group_values, Attention, Softmax, MOST_ROWS};
use crate::kv_cache::PANEL;
use crate::kv_format::{Head, KvFormat};
use crate::multiversion;
use crate::team::{self, SharedMut};
use crate::vector::{exp, exp_shifted_sum, max};
use std::cell::RefCell;
use std::ops::Range;

/// Most query positions per block, one work unit: with 4 heads per KV head, 128 rows of 64
/// values (32 KB of queries, 32 KB of outputs) that stay in the L2 while the tiles stream by,
/// so each tile of keys and values is read from memory once per 128 rows.
const MOST_BLOCK_POSITIONS: usize = 32;
/// Fewest query positions per block, when a short prompt's blocks are halved to give every
/// thread [`UNITS_PER_THREAD`] units.
const LEAST_BLOCK_POSITIONS: usize = 8;
/// Work units per thread that keep the threads evenly busy although the latest blocks cost
/// the most.
const UNITS_PER_THREAD: usize = 4;

/// Query positions per block for `seq` new positions of `heads` (sequence, KV head) pairs on
/// `threads` threads: the most, halved while the units are too few to share.
fn block_positions(seq: usize, heads: usize, threads: usize) -> usize {
    let mut positions = MOST_BLOCK_POSITIONS;
    while positions > LEAST_BLOCK_POSITIONS
        && heads * seq.div_ceil(positions) < UNITS_PER_THREAD * threads
    {
        positions /= 2;
    }
    positions
}

/// Keys per tile (a multiple of [`PANEL`]): a tile's keys and values widened to f32 take 128 KB
/// for a 64-value head (256 KB for 128 values), so they stay in the L2 for every group of rows
/// that reads them.
const TILE_KEYS: usize = 256;

/// One thread's scratch for a block: its rows' unnormalized outputs `[rows][head_dim]` and
/// softmax statistics, the tile's keys (panels `[TILE_KEYS / PANEL][head_dim][PANEL]`) and
/// values (`[TILE_KEYS][head_dim]`) as f32, one group's scores over the tile
/// `[MOST_ROWS][TILE_KEYS]`.
#[derive(Debug, Default)]
struct Tiles {
    outputs: Vec<f32>,
    keys: Vec<f32>,
    values: Vec<f32>,
    stats: Vec<Softmax>,
    scores: Vec<f32>,
}

thread_local! {
    /// Each thread's block scratch.
    static TILES: RefCell<Tiles> = RefCell::new(Tiles::default());
}

/// The query rows of one block: positions `first..first + positions` of one sequence, each with
/// the `rep` query heads that share a KV head; row `r` is position `r / rep`'s head `r % rep`.
#[derive(Clone, Copy)]
struct Block<'a> {
    /// From the first position's first row on; each position's rows are `stride` values after
    /// the previous one's.
    q: &'a [f32],
    stride: usize,
    rep: usize,
    head_dim: usize,
    /// Cache position of the block's first query.
    first: usize,
    positions: usize,
    /// Factor of the scores, `1 / sqrt(head_dim)`.
    scale: f32,
}

impl Block<'_> {
    /// Query rows.
    fn rows(&self) -> usize {
        self.positions * self.rep
    }

    /// Row `r`'s query vector.
    fn row(&self, r: usize) -> &[f32] {
        let at = r / self.rep * self.stride + r % self.rep * self.head_dim;
        &self.q[at..at + self.head_dim]
    }

    /// Keys row `r` attends to: `0..` its position `+ 1`.
    fn keys(&self, r: usize) -> usize {
        self.first + r / self.rep + 1
    }
}

impl<F: KvFormat> Attention<'_, F> {
    /// Prefill of the `seq` new positions `pos..pos+seq` of every sequence into `out`: each
    /// (sequence, KV head, block of [`block_positions`] positions) is a work unit the threads
    /// claim, a head's latest (costliest) blocks first.
    pub(super) fn prefill(&self, seq: usize, pos: usize, out: &mut [f32]) {
        let s = self.cache.shape;
        let (d, rep) = (s.head_dim, self.rep);
        let per_block = block_positions(seq, s.batch * s.kv_heads, team::width());
        let blocks = seq.div_ceil(per_block);
        let units = s.batch * s.kv_heads * blocks;
        let stride = self.heads * d;
        let shared = SharedMut::new(out);
        team::parallel(units, &|u, _| {
            let (b, g) = (u / (s.kv_heads * blocks), u / blocks % s.kv_heads);
            let first = (blocks - 1 - u % blocks) * per_block;
            let at = ((b * seq + first) * self.heads + g * rep) * d;
            let block = Block {
                q: &self.q[at..],
                stride,
                rep,
                head_dim: d,
                first: pos + first,
                positions: (seq - first).min(per_block),
                scale: self.scale,
            };
            TILES.with_borrow_mut(|tiles| {
                let rows = block.rows();
                tiles.outputs.resize(rows * d, 0.0);
                tiles.stats.resize(rows, Softmax::default());
                tiles.keys.resize(TILE_KEYS * d, 0.0);
                tiles.values.resize(TILE_KEYS * d, 0.0);
                tiles.scores.resize(MOST_ROWS * TILE_KEYS, 0.0);
                let (keys, values) = (self.cache.keys(b, g), self.cache.values(b, g));
                attend_tiles::<F>(block, keys, values, tiles);
                for i in 0..block.positions {
                    let at = at + i * stride;
                    // SAFETY: the rows of this block's positions' heads of group g belong to
                    // this unit only.
                    let out = unsafe { shared.slice(at..at + rep * d) };
                    for (h, row) in out.chunks_exact_mut(d).enumerate() {
                        let r = i * rep + h;
                        let inverse = 1.0 / tiles.stats[r].total;
                        for (o, x) in row.iter_mut().zip(&tiles.outputs[r * d..]) {
                            *o = x * inverse;
                        }
                    }
                }
            });
        });
    }
}

multiversion! {
    /// `block`'s rows over their keys (`keys` as panels, `values` as rows), tile by tile: the
    /// rows' unnormalized outputs go to `tiles.outputs` and their softmax statistics to
    /// `tiles.stats`.
    fn attend_tiles<F: KvFormat>(block: Block, keys: Head<F::Stored>, values: Head<F::Stored>, tiles: &mut Tiles) => attend_tiles_body
}

#[inline(always)]
fn attend_tiles_body<F: KvFormat>(
    block: Block,
    keys: Head<F::Stored>,
    values: Head<F::Stored>,
    tiles: &mut Tiles,
) {
    let rows = block.rows();
    tiles.outputs[..rows * block.head_dim].fill(0.0);
    tiles.stats[..rows].fill(Softmax {
        top: f32::NEG_INFINITY,
        total: 0.0,
    });
    let end = block.keys(rows - 1);
    for start in (0..end).step_by(TILE_KEYS) {
        let tile = start..(start + TILE_KEYS).min(end);
        let panels = start / PANEL..tile.end.div_ceil(PANEL);
        F::widen_panels(keys, panels, block.head_dim, &mut tiles.keys);
        F::widen_rows(values, tile.clone(), block.head_dim, &mut tiles.values);
        for r0 in (0..rows).step_by(MOST_ROWS) {
            let group = (r0, tile.clone());
            match (rows - r0).min(MOST_ROWS) {
                1 => tile_group::<1>(block, group, tiles),
                2 => tile_group::<2>(block, group, tiles),
                3 => tile_group::<3>(block, group, tiles),
                _ => tile_group::<4>(block, group, tiles),
            }
        }
    }
}

/// The `R` rows of `block` from `r0` on over the keys of `tile` (starting at a panel, widened
/// into `tiles`): their scores, masked after each row's own position, update the rows'
/// statistics and outputs.
#[inline(always)]
fn tile_group<const R: usize>(block: Block, (r0, tile): (usize, Range<usize>), tiles: &mut Tiles) {
    let d = block.head_dim;
    // the keys of the tile that any of the rows attends to
    let end = tile.end.min(block.keys(r0 + R - 1));
    if end <= tile.start {
        return;
    }
    let n = end - tile.start;
    let q: [&[f32]; R] = std::array::from_fn(|k| block.row(r0 + k));
    for p in 0..n.div_ceil(PANEL) {
        let keys = &tiles.keys[p * d * PANEL..(p + 1) * d * PANEL];
        let acc = f32::panel_scores::<R>(&q, block.scale, keys, &[]);
        for (k, acc) in acc.iter().enumerate() {
            tiles.scores[k * TILE_KEYS + p * PANEL..][..PANEL].copy_from_slice(acc);
        }
    }
    let mut keep = [1f32; R];
    for (k, keep) in keep.iter_mut().enumerate() {
        let row = &mut tiles.scores[k * TILE_KEYS..][..n];
        let valid = block.keys(r0 + k).min(end).saturating_sub(tile.start);
        let (scores, masked) = row.split_at_mut(valid);
        masked.fill(0.0);
        if valid == 0 {
            continue;
        }
        let stat = &mut tiles.stats[r0 + k];
        let top = stat.top.max(max(scores));
        *keep = exp(stat.top - top);
        stat.total = stat.total * *keep + exp_shifted_sum(scores, top);
        stat.top = top;
    }
    let values = Head {
        stored: &tiles.values[..],
        scales: &[],
    };
    group_values::<f32, R>(
        &tiles.scores,
        TILE_KEYS,
        values,
        0..n,
        d,
        ([1.0; R], Some(keep)),
        &mut tiles.outputs[r0 * d..(r0 + R) * d],
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_prompt_takes_the_largest_blocks_and_a_short_one_shares_smaller_ones() {
        assert_eq!(block_positions(16384, 8, 2), MOST_BLOCK_POSITIONS);
        // 8 heads x 16 blocks of 32 = 128 units for 64 threads: halved once
        assert_eq!(block_positions(512, 8, 64), 16);
        assert_eq!(block_positions(10, 1, 384), LEAST_BLOCK_POSITIONS);
    }
}
