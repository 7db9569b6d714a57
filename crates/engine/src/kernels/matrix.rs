//! A weight matrix in the layout the kernels read: GGUF's blocks split into one stream of
//! quantized values and one of scales per row, or plain float rows.

use super::activations::BLOCK;
use super::format::{quant_code_of, WeightFormat, IQ4_VALUES};
use super::layout::{
    iq4xs_scales_at, packed_scales_at, q5_high_bit_at, q6k_high_bits_at, q6k_scales_at, QuantRows,
    GROUP, IQ4XS_SCALE_BYTES, PACKED_SCALE_BYTES, Q2K_SCALE_BYTES, Q6K_BLOCK_BYTES,
    Q6K_SCALE_BYTES, SUB_BLOCKS,
};
use llamaperf_os::HugeBuffer;

/// The values of a matrix, by kind.
#[derive(Debug)]
pub(super) enum Values {
    /// Row-major f32.
    F32(HugeBuffer<f32>),
    /// Row-major f16 or bf16 bit patterns.
    Half(HugeBuffer<u16>),
    /// Rows in groups of [`GROUP`] (the last group padded with zero rows), each group block by
    /// block: the block's quantized bytes of the group's rows interleaved 4 bytes at a time
    /// (`row 0 bytes 0..4, row 1 bytes 0..4, …, row 7 bytes 0..4, row 0 bytes 4..8, …`), then
    /// the rows' f16 scales and (Q4_1) f16 minimums, 8 per block.
    ///
    /// Q4_K's nibbles are re-paired to Q4_0's order (byte `i` holds values `i` and `i + 16` of
    /// its sub-block); `scales` and `mins` then hold `d` and `dmin` per super-block, and
    /// `sub_scales` the 8 rows' 6-bit `sc` and `m` of the 8 sub-blocks, packed as in the file
    /// ([`packed_scales_at`]). Q5_K's are Q4_K's, each block's nibbles followed by its values'
    /// high bits in 4 bytes per row ([`q5_high_bit_at`]), interleaved 4 bytes at a time.
    ///
    /// Q6_K's blocks of 32 hold 16 bytes of nibbles in Q4_0's order, then the values' high 2
    /// bits in 8 bytes ([`q6k_high_bits_at`]), interleaved 4 bytes at a time like the nibbles;
    /// `scales` holds `d` per super-block, `sub_scales` the 8 rows' 16 signed scales
    /// ([`q6k_scales_at`]), and `mins` is empty.
    ///
    /// Q2_K's and Q3_K's blocks of 32 hold the values' (low) 2 bits in 8 bytes, placed as
    /// Q6_K's high bits, and Q3_K's then their high bits in 4 bytes, placed as the 5-bit
    /// formats' ([`q5_high_bit_at`]); `scales` holds `d` per super-block, `mins` Q2_K's `dmin`,
    /// and `sub_scales` Q3_K's 12 packed bytes of 6-bit scales per row ([`packed_scales_at`])
    /// or Q2_K's 16 bytes of scale and minimum nibbles ([`q6k_scales_at`]), as in the file.
    ///
    /// IQ4_NL's blocks are Q4_0's (nibbles in the same order, the f16 `d` in `scales`), their
    /// nibbles indices into [`IQ4_VALUES`](super::format::IQ4_VALUES). IQ4_XS's blocks of 32
    /// are too; `scales` holds `d` per super-block and `sub_scales` the 8 rows' 8 signed
    /// sub-block scales `ls − 32` ([`iq4xs_scales_at`]).
    Quant {
        quants: HugeBuffer<u8>,
        scales: HugeBuffer<u16>,
        mins: HugeBuffer<u16>,
        sub_scales: HugeBuffer<u8>,
    },
}

/// A `rows x cols` weight matrix; a product computes `x · Wᵀ` (one output per row).
#[derive(Debug)]
pub struct WeightMatrix {
    format: WeightFormat,
    rows: usize,
    cols: usize,
    pub(super) values: Values,
}

/// Why bytes cannot be read as a weight matrix.
#[derive(Debug, thiserror::Error)]
pub enum MatrixError {
    /// The byte count does not match the shape and format.
    #[error("{format} matrix of {rows} x {cols} needs {expected} bytes, got {actual}")]
    Size {
        /// The format.
        format: WeightFormat,
        /// Rows.
        rows: usize,
        /// Columns.
        cols: usize,
        /// Bytes the shape needs.
        expected: usize,
        /// Bytes given.
        actual: usize,
    },
    /// A quantized matrix whose rows are not whole blocks.
    #[error("{format} matrix has {cols} columns, not a multiple of {}", format.block_values())]
    Ragged {
        /// The format.
        format: WeightFormat,
        /// Columns.
        cols: usize,
    },
}

/// GGUF's blocks regrouped into the interleaved layout of [`Values::Quant`].
fn interleave(format: WeightFormat, rows: usize, cols: usize, bytes: &[u8]) -> Values {
    let blocks = cols / BLOCK;
    let (qb, bb) = (format.quant_bytes(), format.ggml_block_bytes());
    let header = bb - qb;
    let groups = rows.div_ceil(GROUP);
    let mut quants = HugeBuffer::zeroed(groups * blocks * GROUP * qb);
    let mut scales = HugeBuffer::zeroed(groups * blocks * GROUP);
    let mut mins = HugeBuffer::zeroed(if header == 4 { scales.len() } else { 0 });
    for r in 0..rows {
        let (group, lane) = (r / GROUP, r % GROUP);
        for b in 0..blocks {
            let block = &bytes[(r * blocks + b) * bb..(r * blocks + b + 1) * bb];
            let at = (group * blocks + b) * GROUP;
            scales[at + lane] = u16_at(block, 0);
            if header == 4 {
                mins[at + lane] = u16_at(block, 2);
            }
            let five_bits;
            let quant_bytes = if qb == 20 {
                five_bits = five_bit_block(&block[header..]);
                &five_bits[..]
            } else {
                &block[header..]
            };
            for (j, chunk) in quant_bytes.chunks_exact(4).enumerate() {
                let start = at * qb + j * 4 * GROUP + lane * 4;
                quants[start..start + 4].copy_from_slice(chunk);
            }
        }
    }
    Values::Quant {
        quants,
        scales,
        mins,
        sub_scales: HugeBuffer::zeroed(0),
    }
}

/// A Q5_0 or Q5_1 block's `qh` (bit `e` the high bit of value `e`) and nibbles, as the kernels
/// keep them: the nibbles, then the high bits placed by [`q5_high_bit_at`].
fn five_bit_block(file: &[u8]) -> [u8; 20] {
    let mut out = [0u8; 20];
    out[..16].copy_from_slice(&file[4..20]);
    let qh = u32::from_le_bytes([file[0], file[1], file[2], file[3]]);
    for e in 0..BLOCK {
        let (byte, bit) = q5_high_bit_at(e);
        out[16 + byte] |= (((qh >> e) & 1) as u8) << bit;
    }
    out
}

/// Q4_K's or Q5_K's super-blocks regrouped into the interleaved layout of [`Values::Quant`].
fn interleave_k(format: WeightFormat, rows: usize, cols: usize, bytes: &[u8]) -> Values {
    let (size, qb) = (format.ggml_block_bytes(), format.quant_bytes());
    let supers = cols / 256;
    let blocks = cols / BLOCK;
    let groups = rows.div_ceil(GROUP);
    let mut quants = HugeBuffer::zeroed(groups * blocks * GROUP * qb);
    let mut scales = HugeBuffer::zeroed(groups * supers * GROUP);
    let mut mins = HugeBuffer::zeroed(scales.len());
    let mut sub_scales = HugeBuffer::zeroed(groups * supers * GROUP * PACKED_SCALE_BYTES);
    for r in 0..rows {
        let (group, lane) = (r / GROUP, r % GROUP);
        for sb in 0..supers {
            let block = &bytes[(r * supers + sb) * size..(r * supers + sb + 1) * size];
            let at = (group * supers + sb) * GROUP;
            scales[at + lane] = u16_at(block, 0);
            mins[at + lane] = u16_at(block, 2);
            // Q5_K: 32 bytes of high bits (bit j of byte e for value e of sub-block j) first
            let (packed, high, nibbles) =
                (&block[4..16], &block[16..size - 128], &block[size - 128..]);
            for (w, word) in packed.chunks_exact(4).enumerate() {
                let start = packed_scales_at(at) + (w * GROUP + lane) * 4;
                sub_scales[start..start + 4].copy_from_slice(word);
            }
            for j in 0..SUB_BLOCKS {
                // value e of sub-block j is nibble (j % 2) of byte 32 * (j / 2) + e
                let value = |e: usize| (nibbles[32 * (j / 2) + e] >> (4 * (j % 2))) & 15;
                let mut paired: Vec<u8> =
                    (0..16).map(|i| value(i) | (value(i + 16) << 4)).collect();
                if !high.is_empty() {
                    let mut bits = [0u8; 4];
                    for (e, h) in high.iter().enumerate() {
                        let (byte, bit) = q5_high_bit_at(e);
                        bits[byte] |= ((h >> j) & 1) << bit;
                    }
                    paired.extend(bits);
                }
                let b = (group * blocks + sb * SUB_BLOCKS + j) * GROUP;
                for (c, chunk) in paired.chunks_exact(4).enumerate() {
                    let start = b * qb + c * 4 * GROUP + lane * 4;
                    quants[start..start + 4].copy_from_slice(chunk);
                }
            }
        }
    }
    Values::Quant {
        quants,
        scales,
        mins,
        sub_scales,
    }
}

/// Q6_K's super-blocks regrouped into the interleaved layout of [`Values::Quant`].
fn interleave_q6k(rows: usize, cols: usize, bytes: &[u8]) -> Values {
    const SUPER: usize = 210;
    let supers = cols / 256;
    let blocks = cols / BLOCK;
    let groups = rows.div_ceil(GROUP);
    let mut quants = HugeBuffer::zeroed(groups * blocks * GROUP * Q6K_BLOCK_BYTES);
    let mut scales = HugeBuffer::zeroed(groups * supers * GROUP);
    let mut sub_scales = HugeBuffer::zeroed(groups * supers * GROUP * Q6K_SCALE_BYTES);
    for r in 0..rows {
        let (group, lane) = (r / GROUP, r % GROUP);
        for sb in 0..supers {
            let block = &bytes[(r * supers + sb) * SUPER..(r * supers + sb + 1) * SUPER];
            let at = (group * supers + sb) * GROUP;
            scales[at + lane] = u16_at(block, 208);
            for (w, word) in block[192..208].chunks_exact(4).enumerate() {
                let start = q6k_scales_at(at) + (w * GROUP + lane) * 4;
                sub_scales[start..start + 4].copy_from_slice(word);
            }
            for j in 0..SUB_BLOCKS {
                let value = |e: usize| q6k_file_value(block, 32 * j + e);
                let mut row_block = [0u8; Q6K_BLOCK_BYTES];
                for (i, byte) in row_block[..16].iter_mut().enumerate() {
                    *byte = (value(i) & 15) | ((value(i + 16) & 15) << 4);
                }
                for e in 0..BLOCK {
                    let (byte, shift) = q6k_high_bits_at(e);
                    row_block[16 + byte] |= (value(e) >> 4) << shift;
                }
                let b = (group * blocks + sb * SUB_BLOCKS + j) * GROUP;
                for (c, chunk) in row_block.chunks_exact(4).enumerate() {
                    let start = b * Q6K_BLOCK_BYTES + c * 4 * GROUP + lane * 4;
                    quants[start..start + 4].copy_from_slice(chunk);
                }
            }
        }
    }
    Values::Quant {
        quants,
        scales,
        mins: HugeBuffer::zeroed(0),
        sub_scales,
    }
}

/// Q2_K's or Q3_K's super-blocks regrouped into the interleaved layout of [`Values::Quant`].
fn interleave_low_k(format: WeightFormat, rows: usize, cols: usize, bytes: &[u8]) -> Values {
    let (size, qb) = (format.ggml_block_bytes(), format.quant_bytes());
    let q3 = format == WeightFormat::Q3K;
    let supers = cols / 256;
    let blocks = cols / BLOCK;
    let groups = rows.div_ceil(GROUP);
    let mut quants = HugeBuffer::zeroed(groups * blocks * GROUP * qb);
    let mut scales = HugeBuffer::zeroed(groups * supers * GROUP);
    let mut mins = HugeBuffer::zeroed(if q3 { 0 } else { scales.len() });
    let scale_bytes = if q3 {
        PACKED_SCALE_BYTES
    } else {
        Q2K_SCALE_BYTES
    };
    let mut sub_scales = HugeBuffer::zeroed(groups * supers * GROUP * scale_bytes);
    for r in 0..rows {
        let (group, lane) = (r / GROUP, r % GROUP);
        for sb in 0..supers {
            let block = &bytes[(r * supers + sb) * size..(r * supers + sb + 1) * size];
            let at = (group * supers + sb) * GROUP;
            // Q3_K: hmask, qs, 12 bytes of scales, d; Q2_K: 16 bytes of scales, qs, d, dmin
            let (file_scales, d) = if q3 {
                (&block[96..108], u16_at(block, 108))
            } else {
                mins[at + lane] = u16_at(block, 82);
                (&block[..16], u16_at(block, 80))
            };
            scales[at + lane] = d;
            for (w, word) in file_scales.chunks_exact(4).enumerate() {
                // both places are `at · bytes + (w · GROUP + lane) · 4`
                let start = at * scale_bytes + (w * GROUP + lane) * 4;
                sub_scales[start..start + 4].copy_from_slice(word);
            }
            for j in 0..SUB_BLOCKS {
                let mut row_block = [0u8; 12];
                for e in 0..BLOCK {
                    let value = low_k_file_value(format, block, 32 * j + e);
                    let (byte, shift) = q6k_high_bits_at(e);
                    row_block[byte] |= (value & 3) << shift;
                    if q3 {
                        let (byte, bit) = q5_high_bit_at(e);
                        row_block[8 + byte] |= (value >> 2) << bit;
                    }
                }
                let b = (group * blocks + sb * SUB_BLOCKS + j) * GROUP;
                for (c, chunk) in row_block[..qb].chunks_exact(4).enumerate() {
                    let start = b * qb + c * 4 * GROUP + lane * 4;
                    quants[start..start + 4].copy_from_slice(chunk);
                }
            }
        }
    }
    Values::Quant {
        quants,
        scales,
        mins,
        sub_scales,
    }
}

/// IQ4_XS's super-blocks (`d`, `scales_h`, `scales_l[4]`, `qs[128]`: sub-block `j`'s 16 bytes
/// of nibbles in Q4_0's order at `qs[16 j]`) regrouped into the interleaved layout of
/// [`Values::Quant`].
fn interleave_iq4xs(rows: usize, cols: usize, bytes: &[u8]) -> Values {
    let size = WeightFormat::Iq4Xs.ggml_block_bytes();
    let supers = cols / 256;
    let blocks = cols / BLOCK;
    let groups = rows.div_ceil(GROUP);
    let mut quants = HugeBuffer::zeroed(groups * blocks * GROUP * 16);
    let mut scales = HugeBuffer::zeroed(groups * supers * GROUP);
    let mut sub_scales = HugeBuffer::zeroed(groups * supers * GROUP * IQ4XS_SCALE_BYTES);
    for r in 0..rows {
        let (group, lane) = (r / GROUP, r % GROUP);
        for sb in 0..supers {
            let block = &bytes[(r * supers + sb) * size..(r * supers + sb + 1) * size];
            let at = (group * supers + sb) * GROUP;
            scales[at + lane] = u16_at(block, 0);
            let high = u16_at(block, 2);
            let signed: [u8; IQ4XS_SCALE_BYTES] = std::array::from_fn(|j| {
                let low = (block[4 + j / 2] >> (4 * (j % 2))) & 15;
                let ls = low | (((high >> (2 * j)) & 3) as u8) << 4;
                (ls as i8 - 32) as u8
            });
            for (w, word) in signed.chunks_exact(4).enumerate() {
                let start = iq4xs_scales_at(at) + (w * GROUP + lane) * 4;
                sub_scales[start..start + 4].copy_from_slice(word);
            }
            for j in 0..SUB_BLOCKS {
                let nibbles = &block[8 + 16 * j..8 + 16 * (j + 1)];
                let b = (group * blocks + sb * SUB_BLOCKS + j) * GROUP;
                for (c, chunk) in nibbles.chunks_exact(4).enumerate() {
                    let start = b * 16 + c * 4 * GROUP + lane * 4;
                    quants[start..start + 4].copy_from_slice(chunk);
                }
            }
        }
    }
    Values::Quant {
        quants,
        scales,
        mins: HugeBuffer::zeroed(0),
        sub_scales,
    }
}

/// The stored value `v` (0..256) of a GGUF Q2_K or Q3_K super-block: in each half of 128
/// values, quarter `k`'s 2 bits are bits `2k` of `qs`'s 32 bytes of the half; Q3_K's high bit
/// (bit 2 here) is bit `v / 32` of `hmask`'s byte `v % 32`.
fn low_k_file_value(format: WeightFormat, block: &[u8], v: usize) -> u8 {
    let (half, quarter, l) = (v / 128, v % 128 / 32, v % 32);
    let qs = if format == WeightFormat::Q3K { 32 } else { 16 };
    let low = (block[qs + 32 * half + l] >> (2 * quarter)) & 3;
    if format == WeightFormat::Q3K {
        low | ((block[l] >> (v / 32)) & 1) << 2
    } else {
        low
    }
}

/// The stored 6-bit value `v` (0..256) of a GGUF Q6_K super-block (`ql[128]`, `qh[64]`,
/// `scales[16]`, `d`): in each half of 128 values, quarter `k`'s low nibbles are the low
/// (`k < 2`) or high nibbles of `ql`'s 32 bytes `k % 2`, its high 2 bits bits `2k` of `qh`.
fn q6k_file_value(block: &[u8], v: usize) -> u8 {
    let (half, quarter, l) = (v / 128, v % 128 / 32, v % 32);
    let low = (block[64 * half + 32 * (quarter % 2) + l] >> (4 * (quarter / 2))) & 15;
    let high = (block[128 + 32 * half + l] >> (2 * quarter)) & 3;
    low | high << 4
}

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

impl WeightMatrix {
    /// Reads a matrix stored in GGUF's layout (`rows` rows of `cols` values, little-endian).
    pub fn from_ggml(
        format: WeightFormat,
        rows: usize,
        cols: usize,
        bytes: &[u8],
    ) -> Result<Self, MatrixError> {
        if !cols.is_multiple_of(format.block_values()) {
            return Err(MatrixError::Ragged { format, cols });
        }
        let expected = rows * cols / format.block_values() * format.ggml_block_bytes();
        if bytes.len() != expected {
            return Err(MatrixError::Size {
                format,
                rows,
                cols,
                expected,
                actual: bytes.len(),
            });
        }
        let values = match format {
            WeightFormat::F32 => {
                let mut values = HugeBuffer::zeroed(rows * cols);
                for (v, b) in values.iter_mut().zip(bytes.chunks_exact(4)) {
                    *v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                }
                Values::F32(values)
            }
            WeightFormat::F16 | WeightFormat::Bf16 => {
                let mut values = HugeBuffer::zeroed(rows * cols);
                for (i, v) in values.iter_mut().enumerate() {
                    *v = u16_at(bytes, 2 * i);
                }
                Values::Half(values)
            }
            WeightFormat::Q4K | WeightFormat::Q5K => interleave_k(format, rows, cols, bytes),
            WeightFormat::Q6K => interleave_q6k(rows, cols, bytes),
            WeightFormat::Q2K | WeightFormat::Q3K => interleave_low_k(format, rows, cols, bytes),
            WeightFormat::Iq4Xs => interleave_iq4xs(rows, cols, bytes),
            _ => interleave(format, rows, cols, bytes),
        };
        Ok(WeightMatrix {
            format,
            rows,
            cols,
            values,
        })
    }

    /// The storage format.
    pub fn format(&self) -> WeightFormat {
        self.format
    }

    /// Number of rows (outputs of a product).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns (inputs of a product).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Bytes the values occupy in memory (what one product streams).
    pub fn bytes(&self) -> usize {
        match &self.values {
            Values::F32(v) => 4 * v.len(),
            Values::Half(v) => 2 * v.len(),
            Values::Quant {
                quants,
                scales,
                mins,
                sub_scales,
            } => quants.len() + 2 * (scales.len() + mins.len()) + sub_scales.len(),
        }
    }

    /// The quantized values as the tiles read them (`None` for float matrices).
    pub(super) fn quant_rows(&self) -> Option<QuantRows<'_>> {
        match &self.values {
            Values::Quant {
                quants,
                scales,
                mins,
                sub_scales,
            } => Some(QuantRows {
                rows: self.rows,
                blocks: self.cols / BLOCK,
                quants,
                scales,
                mins,
                sub_scales,
            }),
            _ => None,
        }
    }

    /// Row `r` as f32 values: the plain reference the kernels are tested against.
    pub fn dequantize_row(&self, r: usize) -> Vec<f32> {
        let cols = self.cols;
        match &self.values {
            Values::F32(v) => v[r * cols..(r + 1) * cols].to_vec(),
            Values::Half(v) => {
                let mut row = vec![0f32; cols];
                widen(self.format, &v[r * cols..(r + 1) * cols], &mut row);
                row
            }
            Values::Quant { quants, .. } => {
                let view = self.quant_rows().expect("a quantized matrix");
                let code = quant_code_of(self.format);
                let blocks = cols / BLOCK;
                let qb = self.format.quant_bytes();
                let (group, lane) = (r / GROUP, r % GROUP);
                let mut row = Vec::with_capacity(cols);
                for b in 0..blocks {
                    let table = |e: usize| f32::from(IQ4_VALUES[view.nibble(group, b, lane, e)]);
                    if self.format == WeightFormat::Iq4Nl {
                        let (d, _) = view.scale_shift(code, group, b, lane);
                        row.extend((0..BLOCK).map(|e| d * table(e)));
                        continue;
                    }
                    if self.format == WeightFormat::Iq4Xs {
                        // as ggml: d times the sub-block's signed scale, then times the value
                        let (d, sc) = view.iq4xs_scale(group, b, lane);
                        let dl = d * sc as f32;
                        row.extend((0..BLOCK).map(|e| dl * table(e)));
                        continue;
                    }
                    if self.format == WeightFormat::Q6K {
                        // as ggml: d times the sub-block's scale, then times the signed value
                        row.extend((0..BLOCK).map(|e| {
                            let (d, sc) = view.q6k_scales(group, b, lane, e / 16);
                            d * sc as f32 * view.q6k_value(group, b, lane, e) as f32
                        }));
                        continue;
                    }
                    if self.format == WeightFormat::Q3K {
                        // as ggml: d times the sub-block's signed scale, then times the value
                        row.extend((0..BLOCK).map(|e| {
                            let (d, sc) = view.q3k_scale(group, b, lane, e / 16);
                            let q = view.low_k_value(code, group, b, lane, e) - 4;
                            d * sc as f32 * q as f32
                        }));
                        continue;
                    }
                    if self.format == WeightFormat::Q2K {
                        // as ggml: d · sc times the value, less dmin · m
                        row.extend((0..BLOCK).map(|e| {
                            let ((d, dmin), (sc, m)) = view.q2k_scale_min(group, b, lane, e / 16);
                            let q = view.low_k_value(code, group, b, lane, e);
                            d * sc as f32 * q as f32 - dmin * m as f32
                        }));
                        continue;
                    }
                    if self.format.quant_bytes() == 20 {
                        let (d, offset) = view.scale_shift(code, group, b, lane);
                        let q = |e: usize| view.q5_value(group, b, lane, e);
                        if self.format == WeightFormat::Q5_0 {
                            // as ggml: the signed value times the scale, one rounding
                            row.extend((0..BLOCK).map(|e| d * (q(e) - 16) as f32));
                        } else {
                            row.extend((0..BLOCK).map(|e| d * q(e) as f32 + offset));
                        }
                        continue;
                    }
                    let at = (group * blocks + b) * GROUP;
                    let (d, offset) = view.scale_shift(code, group, b, lane);
                    // this row's bytes of the block, in GGUF order
                    let q: Vec<u8> = (0..qb / 4)
                        .flat_map(|j| {
                            let start = at * qb + j * 4 * GROUP + lane * 4;
                            quants[start..start + 4].iter().copied()
                        })
                        .collect();
                    match self.format {
                        WeightFormat::Q8_0 => row.extend(q.iter().map(|&v| d * (v as i8) as f32)),
                        // as ggml: the signed value times the scale, one rounding
                        WeightFormat::Q4_0 => {
                            row.extend(q.iter().map(|&v| d * ((v & 15) as i32 - 8) as f32));
                            row.extend(q.iter().map(|&v| d * ((v >> 4) as i32 - 8) as f32));
                        }
                        _ => {
                            row.extend(q.iter().map(|&v| d * (v & 15) as f32 + offset));
                            row.extend(q.iter().map(|&v| d * (v >> 4) as f32 + offset));
                        }
                    }
                }
                row
            }
        }
    }
}

/// Widens 16-bit float bit patterns `from` (f16 or bf16 by `format`) into `to` (same length).
pub(super) fn widen(format: WeightFormat, from: &[u16], to: &mut [f32]) {
    use half::slice::{HalfBitsSliceExt, HalfFloatSliceExt};
    if format == WeightFormat::F16 {
        from.reinterpret_cast::<half::f16>()
            .convert_to_f32_slice(to)
    } else {
        from.reinterpret_cast::<half::bf16>()
            .convert_to_f32_slice(to)
    }
}
