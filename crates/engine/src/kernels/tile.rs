//! What a kernel tile reads and writes: a few weight rows against a few token rows.

use super::activations::QuantizedActivations;
use super::isa::cpu_is_intel;
use super::matrix::{sub_scale_min, WeightFormat, GROUP, SUB_BLOCKS};

/// Where a tile writes its results: output `(t, r)` lives at `ptr + t * stride + r`.
///
/// Tiles of one product write disjoint `(t, r)` cells, which is what makes sharing the
/// pointer between threads sound.
#[derive(Debug, Clone, Copy)]
pub(super) struct Output {
    pub ptr: *mut f32,
    pub stride: usize,
}

// SAFETY: every tile writes only its own cells (see the type's documentation).
unsafe impl Send for Output {}
// SAFETY: as above.
unsafe impl Sync for Output {}

impl Output {
    /// The same output seen from token `t0` and row `r0`: its cell `(0, 0)` is this one's
    /// `(t0, r0)`.
    pub fn at(self, t0: usize, r0: usize) -> Output {
        Output {
            // SAFETY: (t0, r0) is a cell of the output, so the offset stays inside it.
            ptr: unsafe { self.ptr.add(t0 * self.stride + r0) },
            stride: self.stride,
        }
    }

    /// The address of output `(t, r)`.
    ///
    /// # Safety
    /// `(t, r)` must be inside the output; writing it needs the ownership [`Output::write`]
    /// asks for.
    #[inline(always)]
    pub unsafe fn cell(self, t: usize, r: usize) -> *mut f32 {
        // SAFETY: the caller keeps (t, r) inside the buffer.
        unsafe { self.ptr.add(t * self.stride + r) }
    }

    /// Writes output `(t, r)`.
    ///
    /// # Safety
    /// `(t, r)` must be inside the output and written by no other tile.
    #[inline(always)]
    pub unsafe fn write(self, t: usize, r: usize, value: f32) {
        // SAFETY: the caller keeps (t, r) inside the buffer and exclusive to this tile.
        unsafe { *self.cell(t, r) = value }
    }
}

/// The const-generic code of a quantized format, so each format gets its own tile code.
pub(super) mod quant_code {
    /// ggml Q4_0.
    pub const Q4_0: u8 = 0;
    /// ggml Q4_1.
    pub const Q4_1: u8 = 1;
    /// ggml Q8_0.
    pub const Q8_0: u8 = 2;
    /// ggml Q4_K.
    pub const Q4K: u8 = 3;
}

/// The const-generic code of a float format.
pub(super) mod float_code {
    /// f32.
    pub const F32: u8 = 0;
    /// f16.
    pub const F16: u8 = 1;
    /// bf16.
    pub const BF16: u8 = 2;
}

/// Bytes ahead of its reads that a single-token quantized tile prefetches each of its groups'
/// streams of quantized values. The hardware prefetchers alone leave the memory idle: on 2
/// Zen 3 cores, prefetching streamed Q4_0, Q8_0 and Q4_K decode products 8-15% faster (medians
/// of 25 interleaved passes over 300 MB of 8192 x 2048 matrices); with two streams per tile
/// ([`QUANT_DECODE_GROUPS`]), 768 bytes each gained more than 1-1.5 KiB or none (Q4_K 9-10%
/// slower at 1536). On Intel, 1536: on 2 Xeon (Sapphire/Emerald Rapids) cores, 1B decode read
/// a pure read's 83-89% against 76-86% at 768 (Q4_0 79 -> 85%, Q4_K 76 -> 83%, Q4_1 81 -> 86%,
/// Q8_0 86 -> 89%; 3 alternating runs each), and 3072 was no better.
pub(super) fn quant_ahead_bytes() -> usize {
    if cpu_is_intel() {
        1536
    } else {
        768
    }
}

/// Bytes ahead that a float tile prefetches each of its row streams, once per cache line: with
/// the tile's rows in separate streams ([`Units`]), F16 and BF16 products of 8 tokens ran 3-6%
/// faster at 512 than with no prefetch on 2 Zen 3 cores (256 gained a little less; single
/// tokens, already streaming at the read bandwidth, were the same within the noise).
pub(super) const FLOAT_AHEAD_BYTES: usize = 512;

/// Groups of a single-token quantized tile: two groups from the two halves of the thread's
/// rows, so two streams of weights are in flight. On 2 Zen 3 cores Q4_0, Q4_1 and Q8_0 decode
/// products streamed 7-11% faster than with one group (Q4_K, then bound by its arithmetic,
/// 1-8%); three or four groups gained less (medians of 25-40 interleaved passes over 300 MB),
/// and with Q4_K's integer scales, three reached 8-14% less of a side-by-side pure read than two
/// in whole 1B decode (Q4_0: 8-9% less).
pub(super) const QUANT_DECODE_GROUPS: usize = 2;

/// The units (row groups of a quantized matrix, rows of a float one) a tile multiplies:
/// `first`, `first + step`, `first + 2 step`, … — one from each part of the thread's chunk, so
/// the tile reads as many long sequential streams of weights at once, and the next tile
/// (`first + 1`) goes on with each stream. A single stream, or a tile's rows side by side (4
/// KiB rows, each its own short stream), leaves the memory idle: on 2 Zen 3 cores, decode
/// products over 4 rows a quarter of the chunk apart streamed F16 and BF16 17-23% faster than
/// over 4 adjacent rows and F32 7-12%; with 8 tokens, F16 and BF16 17-24%, F32 11-16%.
#[derive(Debug, Clone, Copy)]
pub(super) struct Units {
    /// The first unit.
    pub first: usize,
    /// Units from one of the tile's units to the next (irrelevant for a tile of one unit).
    pub step: usize,
}

impl Units {
    /// The tile's `k`-th unit.
    #[inline(always)]
    pub fn at(self, k: usize) -> usize {
        self.first + k * self.step
    }
}

/// Block-quantized weight rows in the interleaved layout (see `matrix::Values::Quant`).
#[derive(Debug, Clone, Copy)]
pub(super) struct QuantRows<'a> {
    /// Real rows (the last group may hold fewer).
    pub rows: usize,
    /// Blocks of 32 per row.
    pub blocks: usize,
    /// Quantized values, group by group, block by block, interleaved.
    pub quants: &'a [u8],
    /// f16 scales, 8 per group block.
    pub scales: &'a [u16],
    /// f16 minimums, 8 per group block (Q4_1; Q4_K's `dmin` per super-block; else empty).
    pub mins: &'a [u16],
    /// Q4_K's 6-bit sub-block scales and minimums, packed
    /// ([`packed_scales_at`](super::matrix::packed_scales_at); else empty).
    pub sub_scales: &'a [u8],
}

impl QuantRows<'_> {
    /// Scale and additive correction coefficient of row `lane` of group `g`, block `b`, as
    /// f32: a value is `scale · q + shift` for its stored integer `q`.
    pub fn scale_shift(&self, code: u8, g: usize, b: usize, lane: usize) -> (f32, f32) {
        let half = |bits: u16| half::f16::from_bits(bits).to_f32();
        let at = (g * self.blocks + b) * GROUP + lane;
        match code {
            quant_code::Q4_0 => (half(self.scales[at]), -8.0 * half(self.scales[at])),
            quant_code::Q4_1 => (half(self.scales[at]), half(self.mins[at])),
            quant_code::Q4K => {
                let k = (g * self.blocks / SUB_BLOCKS + b / SUB_BLOCKS) * GROUP;
                let j = b % SUB_BLOCKS;
                let (sc, m) = sub_scale_min(self.sub_scales, k, j, lane);
                (
                    half(self.scales[k + lane]) * f32::from(sc),
                    -half(self.mins[k + lane]) * f32::from(m),
                )
            }
            _ => (half(self.scales[at]), 0.0),
        }
    }
}

/// Float weight rows as the float tiles read them.
#[derive(Debug, Clone, Copy)]
pub(super) struct FloatRows<'a, V> {
    /// Values per row.
    pub cols: usize,
    /// Row-major values.
    pub values: &'a [V],
}

/// A quantized tile: the 8 rows of each of its `N` groups against tokens `t0..t0+T`.
pub(super) type QuantTile = unsafe fn(&QuantRows, Units, &QuantizedActivations, usize, Output);

/// A float tile: its `R` rows against tokens `t0..t0+T` of `x` (`cols` values per token).
pub(super) type FloatTile<V> = unsafe fn(&FloatRows<V>, Units, &[f32], usize, Output);

/// The const-generic code of a quantized weight format.
pub(super) fn quant_code_of(format: WeightFormat) -> u8 {
    match format {
        WeightFormat::Q4_0 => quant_code::Q4_0,
        WeightFormat::Q4_1 => quant_code::Q4_1,
        WeightFormat::Q4K => quant_code::Q4K,
        _ => quant_code::Q8_0,
    }
}
