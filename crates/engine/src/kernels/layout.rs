//! The interleaved layout of quantized weight rows: groups of [`GROUP`] rows, Q4_K's packed
//! sub-block scales, and [`QuantRows`], the view of a matrix in that layout that tiles read.

use super::format::quant_code;

/// Weight rows per interleaved group: one 256-bit vector holds 4 bytes of each.
pub(super) const GROUP: usize = 8;

/// Sub-blocks per Q4_K super-block.
pub(super) const SUB_BLOCKS: usize = 8;

/// Bytes of one row's packed 6-bit sub-block scales and minimums in a Q4_K super-block.
pub(super) const PACKED_SCALE_BYTES: usize = 12;

/// Where the packed sub-block scales of the group super-block whose first entry is `at`
/// (`(group · supers + super) · GROUP`) start in `sub_scales`: GGUF's 12 bytes per row kept
/// packed (the matrix streams no more bytes than the file holds), as three 32-byte vectors of
/// 32-bit words, word `w` of the 8 rows side by side (`row 0 bytes 4w..4w+4, row 1 …`), which
/// the kernels unpack for 8 rows at once with a few vector shifts and masks.
pub(super) fn packed_scales_at(at: usize) -> usize {
    at * PACKED_SCALE_BYTES
}

/// A `pshufb` pattern for 16 bytes of unpacked sub-block scales or minimums (4 rows, a 32-bit
/// word each, byte `i` of a word holding sub-block `i` of 4): each word's byte `first` to its
/// low 16-bit half and byte `second` to its high half, zero-extended. `(q, q)` spreads one
/// sub-block's scale over both halves of its row's lane; `(q, q + 1)` a pair of minimums.
pub(super) const fn sub_scale_spread(first: usize, second: usize) -> [i8; 16] {
    let mut pattern = [-1i8; 16];
    let mut word = 0;
    while word < 4 {
        pattern[4 * word] = (4 * word + first) as i8;
        pattern[4 * word + 2] = (4 * word + second) as i8;
        word += 1;
    }
    pattern
}

/// Sub-block `j`'s 6-bit scale and minimum of row `lane` of the group super-block at `at`
/// ([`packed_scales_at`]).
pub(super) fn sub_scale_min(sub_scales: &[u8], at: usize, j: usize, lane: usize) -> (u8, u8) {
    let start = packed_scales_at(at);
    let packed: [u8; PACKED_SCALE_BYTES] =
        std::array::from_fn(|i| sub_scales[start + (i / 4 * GROUP + lane) * 4 + i % 4]);
    scale_min_k4(j, &packed)
}

/// Sub-block `j`'s 6-bit scale and minimum from a Q4_K super-block's 12 packed bytes.
fn scale_min_k4(j: usize, packed: &[u8]) -> (u8, u8) {
    if j < 4 {
        (packed[j] & 63, packed[j + 4] & 63)
    } else {
        (
            (packed[j + 4] & 0x0F) | ((packed[j - 4] >> 6) << 4),
            (packed[j + 4] >> 4) | ((packed[j] >> 6) << 4),
        )
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
    /// Q4_K's 6-bit sub-block scales and minimums, packed ([`packed_scales_at`]; else empty).
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
