//! The interleaved layout of quantized weight rows: groups of [`GROUP`] rows, the k-quants'
//! sub-block scales (Q3_K's, Q4_K's and Q5_K's packed, Q6_K's signed bytes, Q2_K's nibble
//! pairs), and [`QuantRows`], the view of a matrix in that layout that tiles read.

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

/// Bytes of one row's block of 32 5-bit values (Q5_0, Q5_1, Q5_K): 16 bytes of nibbles (Q4_0's
/// order), then the values' high bits in 4 bytes ([`q5_high_bit_at`]).
pub(super) const Q5_BLOCK_BYTES: usize = 20;

/// Where a 5-bit format's high bit of value `e` (0..32) of a row's block sits: the byte of the block's 4
/// high-bit bytes (`e % 4`) and the bit in it (`e / 4`). So the high bits of the 4 values of each
/// row that weight vector `m` holds (`4 m .. 4 m + 4`, see `load_nibbles`) are bit `m` of each
/// byte of the word, one shift away from bit 4.
pub(super) fn q5_high_bit_at(e: usize) -> (usize, u32) {
    (e % 4, (e / 4) as u32)
}

/// Bytes of one row's signed 8-bit sub-block scales in a Q6_K super-block (one per 16 values).
pub(super) const Q6K_SCALE_BYTES: usize = 16;

/// Bytes of one row's block of 32 Q6_K values: 16 bytes of nibbles (Q4_0's order: byte `i`
/// holds values `i` and `i + 16`), then 8 bytes of the values' high 2 bits.
pub(super) const Q6K_BLOCK_BYTES: usize = 24;

/// Where the sub-block scales of the Q6_K group super-block whose first entry is `at`
/// (`(group · supers + super) · GROUP`) start in `sub_scales`: 16 signed bytes per row, as four
/// 32-byte vectors of 32-bit words, word `w` (scales `4w..4w+4`) of the 8 rows side by side.
pub(super) fn q6k_scales_at(at: usize) -> usize {
    at * Q6K_SCALE_BYTES
}

/// Where Q6_K's high 2 bits of value `e` (0..32) of a row's block sit: the byte of the block's
/// 8 high-bit bytes (two 32-bit words; `e = 16 h + 4 f + k` is in word `h`, byte `k`) and the
/// bit position `2 f` in it. So the high bits of the 4 values of each row that one weight vector
/// holds (`4 m .. 4 m + 4`, see `load_nibbles`) come out of one word with one shift.
pub(super) fn q6k_high_bits_at(e: usize) -> (usize, u32) {
    (4 * (e / 16) + e % 4, 2 * (e % 16 / 4) as u32)
}

/// Bytes of one row's block of 32 Q2_K values: their 2 bits in 8 bytes, placed as Q6_K's high
/// 2 bits ([`q6k_high_bits_at`]).
pub(super) const Q2K_BLOCK_BYTES: usize = 8;

/// Bytes of one row's block of 32 Q3_K values: their low 2 bits in 8 bytes, placed as Q2_K's,
/// then their high bits in 4 bytes, placed as the 5-bit formats' ([`q5_high_bit_at`]).
pub(super) const Q3K_BLOCK_BYTES: usize = 12;

/// Bytes of one row's Q2_K sub-block scales in a super-block: one per 16 values, the scale in
/// the low nibble and the minimum in the high one, kept as the file has them at
/// [`q6k_scales_at`].
pub(super) const Q2K_SCALE_BYTES: usize = 16;

/// Bytes of one row's IQ4_XS sub-block scales in a super-block: one signed `ls − 32` per 32
/// values (the file packs the 6-bit `ls` in 6 bytes; unpacked, the kernels spread them with
/// one shuffle, for 2 more bytes per 136).
pub(super) const IQ4XS_SCALE_BYTES: usize = 8;

/// Where the signed sub-block scales of the IQ4_XS group super-block whose first entry is `at`
/// (`(group · supers + super) · GROUP`) start in `sub_scales`: 8 signed bytes per row, as two
/// 32-byte vectors of 32-bit words, word `w` (scales `4w..4w+4`) of the 8 rows side by side.
pub(super) fn iq4xs_scales_at(at: usize) -> usize {
    at * IQ4XS_SCALE_BYTES
}

/// Q3_K's 6-bit scale `j` (0..16, one per 16 values) from a super-block's 12 packed bytes: the
/// low 4 bits are the low (`j < 8`) or high nibble of byte `j % 8`, the high 2 bits bits
/// `2 (j / 4)` of byte `8 + j % 4`.
pub(super) fn q3k_scale_of(j: usize, packed: &[u8]) -> u8 {
    let low = (packed[j % 8] >> (4 * (j / 8))) & 15;
    let high = (packed[8 + j % 4] >> (2 * (j / 4))) & 3;
    low | high << 4
}

/// A `pshufb` pattern for 16 bytes of Q6_K's signed scales (4 rows, a 32-bit word each, byte
/// `i` of a word holding scale `i` of 4): each word's byte `first` to the high byte of its
/// low 16-bit half and byte `second` to that of its high half (the low bytes zero), so an
/// arithmetic shift right by 8 sign-extends them to 16 bits.
pub(super) const fn signed_scale_spread(first: usize, second: usize) -> [i8; 16] {
    let mut pattern = [-1i8; 16];
    let mut word = 0;
    while word < 4 {
        pattern[4 * word + 1] = (4 * word + first) as i8;
        pattern[4 * word + 3] = (4 * word + second) as i8;
        word += 1;
    }
    pattern
}

/// A `pshufb` pattern for 16 bytes of IQ4_XS's signed scales (4 rows, a 32-bit word each,
/// byte `i` of a word holding scale `i` of 4): each word's byte `i` to its top byte (the others
/// zero), so an arithmetic shift right by 24 sign-extends it to 32 bits.
pub(super) const fn signed_scale_top(i: usize) -> [i8; 16] {
    let mut pattern = [-1i8; 16];
    let mut word = 0;
    while word < 4 {
        pattern[4 * word + 3] = (4 * word + i) as i8;
        word += 1;
    }
    pattern
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
    /// f16 minimums, 8 per group block (Q4_1, Q5_1; the k-quants' `dmin` per super-block; else
    /// empty).
    pub mins: &'a [u16],
    /// Q4_K's 6-bit sub-block scales and minimums and Q3_K's 6-bit scales, packed
    /// ([`packed_scales_at`]); Q6_K's signed scales and Q2_K's scale and minimum nibbles
    /// ([`q6k_scales_at`]); else empty.
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
            quant_code::Q5_0 => (half(self.scales[at]), -16.0 * half(self.scales[at])),
            quant_code::Q4_1 | quant_code::Q5_1 => (half(self.scales[at]), half(self.mins[at])),
            quant_code::Q4K | quant_code::Q5K => {
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

    /// A 5-bit format's stored value `e` (0..32) of row `lane` of group `g`'s block `b`.
    pub fn q5_value(&self, g: usize, b: usize, lane: usize, e: usize) -> i32 {
        let start = (g * self.blocks + b) * GROUP * Q5_BLOCK_BYTES;
        let byte = |i: usize| self.quants[start + i / 4 * 4 * GROUP + lane * 4 + i % 4];
        let low = (byte(e % 16) >> (4 * (e / 16))) & 15;
        let (at, bit) = q5_high_bit_at(e);
        let high = (byte(16 + at) >> bit) & 1;
        i32::from(low | high << 4)
    }

    /// Q6_K's value `e` (0..32) of row `lane` of group `g`'s block `b`, less its offset 32.
    pub fn q6k_value(&self, g: usize, b: usize, lane: usize, e: usize) -> i32 {
        let start = (g * self.blocks + b) * GROUP * Q6K_BLOCK_BYTES;
        let byte = |i: usize| self.quants[start + i / 4 * 4 * GROUP + lane * 4 + i % 4];
        let low = (byte(e % 16) >> (4 * (e / 16))) & 15;
        let (at, shift) = q6k_high_bits_at(e);
        let high = (byte(16 + at) >> shift) & 3;
        i32::from(low | high << 4) - 32
    }

    /// Q6_K's `d` and signed scale of sub-block `h` (0..2, 16 values each) of row `lane` of
    /// group `g`'s block `b`.
    pub fn q6k_scales(&self, g: usize, b: usize, lane: usize, h: usize) -> (f32, i32) {
        let k = (g * self.blocks / SUB_BLOCKS + b / SUB_BLOCKS) * GROUP;
        let i = 2 * (b % SUB_BLOCKS) + h;
        let sc = self.sub_scales[q6k_scales_at(k) + (i / 4 * GROUP + lane) * 4 + i % 4] as i8;
        (
            half::f16::from_bits(self.scales[k + lane]).to_f32(),
            i32::from(sc),
        )
    }

    /// IQ4_XS's `d` and signed scale `ls − 32` of row `lane` of group `g`'s block `b`.
    pub fn iq4xs_scale(&self, g: usize, b: usize, lane: usize) -> (f32, i32) {
        let k = (g * self.blocks / SUB_BLOCKS + b / SUB_BLOCKS) * GROUP;
        let j = b % SUB_BLOCKS;
        let sc = self.sub_scales[iq4xs_scales_at(k) + (j / 4 * GROUP + lane) * 4 + j % 4] as i8;
        (
            half::f16::from_bits(self.scales[k + lane]).to_f32(),
            i32::from(sc),
        )
    }

    /// The nibble `e` (0..32) of row `lane` of group `g`'s block `b`, in Q4_0's order (byte
    /// `i` holds values `i` and `i + 16`): an IQ4 format's index into its table.
    pub fn nibble(&self, g: usize, b: usize, lane: usize, e: usize) -> usize {
        let start = (g * self.blocks + b) * GROUP * 16;
        let i = e % 16;
        let byte = self.quants[start + i / 4 * 4 * GROUP + lane * 4 + i % 4];
        usize::from((byte >> (4 * (e / 16))) & 15)
    }

    /// Q2_K's or Q3_K's stored value `e` (0..32) of row `lane` of group `g`'s block `b`: its 2
    /// bits, and Q3_K's high bit as bit 2 (so 0..4 or 0..8; Q3_K's signed value is this less 4).
    pub fn low_k_value(&self, code: u8, g: usize, b: usize, lane: usize, e: usize) -> i32 {
        let bytes = if code == quant_code::Q3K {
            Q3K_BLOCK_BYTES
        } else {
            Q2K_BLOCK_BYTES
        };
        let start = (g * self.blocks + b) * GROUP * bytes;
        let byte = |i: usize| self.quants[start + i / 4 * 4 * GROUP + lane * 4 + i % 4];
        let (at, shift) = q6k_high_bits_at(e);
        let low = (byte(at) >> shift) & 3;
        let high = if code == quant_code::Q3K {
            let (at, bit) = q5_high_bit_at(e);
            (byte(8 + at) >> bit) & 1
        } else {
            0
        };
        i32::from(low | high << 2)
    }

    /// Q3_K's `d` and signed scale (`sc − 32`) of sub-block `h` (0..2, 16 values each) of row
    /// `lane` of group `g`'s block `b`.
    pub fn q3k_scale(&self, g: usize, b: usize, lane: usize, h: usize) -> (f32, i32) {
        let k = (g * self.blocks / SUB_BLOCKS + b / SUB_BLOCKS) * GROUP;
        let start = packed_scales_at(k);
        let packed: [u8; PACKED_SCALE_BYTES] =
            std::array::from_fn(|i| self.sub_scales[start + (i / 4 * GROUP + lane) * 4 + i % 4]);
        let sc = q3k_scale_of(2 * (b % SUB_BLOCKS) + h, &packed);
        (
            half::f16::from_bits(self.scales[k + lane]).to_f32(),
            i32::from(sc) - 32,
        )
    }

    /// Q2_K's `(d, dmin)` and 4-bit `(sc, m)` of sub-block `h` (0..2, 16 values each) of row
    /// `lane` of group `g`'s block `b`.
    pub fn q2k_scale_min(
        &self,
        g: usize,
        b: usize,
        lane: usize,
        h: usize,
    ) -> ((f32, f32), (i32, i32)) {
        let half = |bits: u16| half::f16::from_bits(bits).to_f32();
        let k = (g * self.blocks / SUB_BLOCKS + b / SUB_BLOCKS) * GROUP;
        let i = 2 * (b % SUB_BLOCKS) + h;
        let byte = self.sub_scales[q6k_scales_at(k) + (i / 4 * GROUP + lane) * 4 + i % 4];
        (
            (half(self.scales[k + lane]), half(self.mins[k + lane])),
            (i32::from(byte & 15), i32::from(byte >> 4)),
        )
    }
}
