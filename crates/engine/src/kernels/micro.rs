//! What a micro-kernel of float prefill reads and writes: the columns of a packed micro-panel,
//! the tile of one call, and how many tokens one call takes at each vector width.

use super::tile::Output;

/// Rows of a micro-panel: two 256-bit vectors of f32, or one 512-bit vector.
pub(super) const MICRO_ROWS: usize = 16;
/// Most tokens of one micro-kernel call in 256-bit registers (AVX2's 16 hold 12 sums).
pub(super) const MICRO_TOKENS: usize = 6;
/// Most tokens of one micro-kernel call in 512-bit registers (AVX-512's 32; see
/// `x86::micro512`): fewer tokens do fewer multiply-adds per load of weights, and more need
/// more activation pointers than the general registers hold.
pub(super) const WIDE_MICRO_TOKENS: usize = 8;
/// Most tokens of one pair micro-kernel call: `vdpbf16ps` takes longer than an FMA, and Zen 5
/// issues two 512-bit ones per cycle, so it needs more independent sums than the FMA
/// micro-kernels' 8 to keep from waiting on its own results; 12 sums still fit the 32
/// registers.
#[cfg(target_arch = "x86_64")]
pub(super) const PAIR_MICRO_TOKENS: usize = 12;

/// One 64-byte column of a micro-panel, aligned for vector loads: one depth step of its 16
/// rows as f32 ([`PanelForm::Wide`](super::packed::PanelForm::Wide)), two steps of 16 raw f16
/// values, step by step ([`PanelForm::Half`](super::packed::PanelForm::Half)), or two steps of
/// 16 BF16 values, row by row ([`PanelForm::Pairs`](super::packed::PanelForm::Pairs)).
#[repr(C, align(64))]
#[derive(Debug, Clone, Copy)]
pub(super) struct Column(pub [f32; MICRO_ROWS]);

/// What one micro-kernel call reads and writes, for activations of type `X` (f32, or BF16
/// bit patterns for [`PanelForm::Pairs`](super::packed::PanelForm::Pairs)).
#[derive(Debug, Clone, Copy)]
pub(super) struct MicroTile<'a, X = f32> {
    /// The packed micro-panel: one column per step of the depth, or per two steps in a half
    /// or pair panel.
    pub panel: &'a [Column],
    /// Steps of the depth (columns of the activations) this call multiplies.
    pub depth: usize,
    /// The first token's activation at the panel's first column.
    pub x: *const X,
    /// Values from one token's activations to the next.
    pub x_stride: usize,
    /// The outputs, seen from the tile's first token and row.
    pub out: Output,
    /// Rows of the micro-panel that exist (the others are padding).
    pub rows: usize,
    /// Whether to add to the outputs (depth blocks after the first) instead of writing them.
    pub accumulate: bool,
}

impl<X> MicroTile<'_, X> {
    /// Token `t`'s activations from the panel's first column.
    ///
    /// # Safety
    /// Token `t` must be one of the tile's.
    #[inline(always)]
    pub unsafe fn token(&self, t: usize) -> *const X {
        // SAFETY: the caller keeps t inside the tile, whose tokens exist.
        unsafe { self.x.add(t * self.x_stride) }
    }

    /// Writes (or adds) `lanes`, token `t`'s outputs of the micro-panel's rows, for the rows
    /// that exist.
    ///
    /// # Safety
    /// Token `t` must be one of the tile's.
    #[inline(always)]
    pub unsafe fn finish(&self, t: usize, lanes: &[f32; MICRO_ROWS]) {
        for (r, value) in lanes.iter().enumerate().take(self.rows) {
            // SAFETY: the tile owns its cells (t, r) for the rows that exist.
            unsafe {
                let cell = self.out.cell(t, r);
                *cell = if self.accumulate {
                    *cell + value
                } else {
                    *value
                };
            }
        }
    }
}
