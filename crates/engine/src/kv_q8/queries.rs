//! Query rows quantized as q8_0 blocks, as llama.cpp quantizes them for its q8_0 keys, and
//! their scores against one panel of q8_0 keys in integers: each block's dot product is exact
//! in i32, then scaled by the query's and the keys' `d` in f32, so every instruction-set level
//! computes the same scores to the bit.

use super::super::kernels::BLOCK;
use super::super::kv_element::KvElement;
use super::super::kv_format::{scale_scores, PANEL};
use super::{quantize_block, GROUP};
use half::f16;

/// Most values per head a q8_0 cache holds: its quantized queries live on the stack.
pub const MOST_HEAD_DIM: usize = 256;
/// Most blocks of one query row.
const MOST_BLOCKS: usize = MOST_HEAD_DIM / BLOCK;

/// `R` query rows of `blocks · 32` values quantized as q8_0 blocks.
#[derive(Debug, Clone, Copy)]
pub struct QuantizedQueries<const R: usize> {
    /// Each row's values as integers in [-127, 127], in order.
    pub(super) q: [[i8; MOST_HEAD_DIM]; R],
    /// Each row's block scales `d` (f16 values as f32).
    pub(super) d: [[f32; MOST_BLOCKS]; R],
    /// Each row's `Σ q` per block: what the keys' unsigned form adds at AVX-512, 128 times.
    pub(super) sums: [[i32; MOST_BLOCKS]; R],
    /// Blocks per row.
    pub(super) blocks: usize,
}

impl<const R: usize> QuantizedQueries<R> {
    /// The rows `q` (each `head_dim` values, a multiple of 32 up to [`MOST_HEAD_DIM`]) with
    /// ggml's `quantize_row_q8_0`.
    #[inline(always)]
    pub fn new(q: [&[f32]; R]) -> Self {
        let blocks = q[0].len() / BLOCK;
        assert!(
            blocks * BLOCK == q[0].len() && blocks <= MOST_BLOCKS,
            "a q8_0 query row is whole blocks, at most {MOST_HEAD_DIM} values"
        );
        let mut out = QuantizedQueries {
            q: [[0; MOST_HEAD_DIM]; R],
            d: [[0.0; MOST_BLOCKS]; R],
            sums: [[0; MOST_BLOCKS]; R],
            blocks,
        };
        for (r, row) in q.iter().enumerate() {
            for (b, x) in row.chunks_exact(BLOCK).enumerate() {
                let (d, values) = quantize_block(x);
                out.q[r][b * BLOCK..][..BLOCK].copy_from_slice(&values);
                out.d[r][b] = d.widen();
                out.sums[r][b] = values.iter().map(|&v| i32::from(v)).sum();
            }
        }
        out
    }

    /// Row `r`'s 4 values of group `t` (values `4t..4t + 4`) as one little-endian word, the
    /// operand of an integer dot over a key group.
    #[inline(always)]
    pub(super) fn word(&self, r: usize, t: usize) -> i32 {
        let v = &self.q[r][t * GROUP..][..GROUP];
        i32::from_le_bytes([v[0] as u8, v[1] as u8, v[2] as u8, v[3] as u8])
    }
}

/// Scores of `q` (times `scale`) against one panel of `keys` (`[head_dim / 4][PANEL][4]`)
/// whose block scales are `scales` (`[blocks][PANEL]`), in portable Rust.
#[inline(always)]
pub(super) fn panel_scores_scalar<const R: usize>(
    q: &QuantizedQueries<R>,
    scale: f32,
    keys: &[i8],
    scales: &[f16],
) -> [[f32; PANEL]; R] {
    let mut acc = [[0f32; PANEL]; R];
    for b in 0..q.blocks {
        let mut dots = [[0i32; PANEL]; R];
        for t in b * BLOCK / GROUP..(b + 1) * BLOCK / GROUP {
            let group = &keys[t * GROUP * PANEL..][..GROUP * PANEL];
            for (l, key) in group.chunks_exact(GROUP).enumerate() {
                for (r, dots) in dots.iter_mut().enumerate() {
                    let v = &q.q[r][t * GROUP..][..GROUP];
                    dots[l] += (0..GROUP)
                        .map(|i| i32::from(v[i]) * i32::from(key[i]))
                        .sum::<i32>();
                }
            }
        }
        let dk: [f32; PANEL] = std::array::from_fn(|l| scales[b * PANEL + l].widen());
        for r in 0..R {
            for l in 0..PANEL {
                acc[r][l] = (dots[r][l] as f32).mul_add(q.d[r][b] * dk[l], acc[r][l]);
            }
        }
    }
    scale_scores(&mut acc, scale);
    acc
}
