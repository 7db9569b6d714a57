//! What a kernel tile reads and writes: a few weight rows against a few token rows.

use super::activations::QuantizedActivations;
use super::isa::{cpu_is_intel, Isa};
use super::layout::QuantRows;
use std::sync::OnceLock;

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

/// Bytes ahead of its reads that a single-token quantized tile prefetches each of its groups'
/// streams of quantized values, or `None` for no software prefetch: it depends on the cores
/// (their memory latency and their own prefetchers). Intel's hardware prefetchers alone leave
/// the memory idle between requests, and 1536 bytes kept it busiest; so did 768 on AMD cores
/// without AVX-512 (Zen 3). On AMD cores with it (Zen 4) every distance tried slowed decode:
/// the hardware prefetchers alone streamed up to 1.3 times faster per core. Read once per
/// process, as tiles ask once per call.
pub(super) fn quant_ahead_bytes() -> Option<usize> {
    static AHEAD: OnceLock<Option<usize>> = OnceLock::new();
    *AHEAD.get_or_init(|| {
        if cpu_is_intel() {
            Some(1536)
        } else if Isa::Avx512.supported() {
            None
        } else {
            Some(768)
        }
    })
}

/// Bytes ahead that a float tile prefetches each of its row streams ([`Units`]), once per cache
/// line: a tile of several tokens spends long enough on each line that its own loads leave the
/// memory idle in between (a single token's tile already streams at the read bandwidth).
pub(super) const FLOAT_AHEAD_BYTES: usize = 512;

/// Groups of a single-token quantized tile: two groups from the two halves of the thread's
/// rows, so two streams of weights are in flight. Two streams keep more loads in flight than
/// one; more take registers and instructions per block without reading any faster.
pub(super) const QUANT_DECODE_GROUPS: usize = 2;

/// The units (row groups of a quantized matrix, rows of a float one) a tile multiplies:
/// `first`, `first + step`, `first + 2 step`, … — one from each part of the thread's chunk, so
/// the tile reads as many long sequential streams of weights at once, and the next tile
/// (`first + 1`) goes on with each stream. A single stream, or a tile's rows side by side (4
/// KiB rows, each its own short stream), leaves the memory idle: several long streams keep more
/// loads in flight, each one long enough for the prefetchers to follow.
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
