//! Quantizing f32 values into ggml's IQ4_NL and IQ4_XS blocks, which candle cannot write: a
//! simple quantizer (nearest table entry, then the least-squares scale of those entries), not
//! llama.cpp's search over scales, but its blocks are valid and dequantize close to the input.

use crate::kernels::IQ4_VALUES;
use half::f16;

/// Values per IQ4_NL block, and per sub-block of an IQ4_XS super-block.
const BLOCK: usize = 32;
/// Values per IQ4_XS super-block.
const SUPER_BLOCK: usize = 256;

/// The index of the entry of [`IQ4_VALUES`] nearest to `x` (in table units).
fn nearest_index(x: f32) -> u8 {
    let mut best = 0;
    for (i, &v) in IQ4_VALUES.iter().enumerate() {
        if (x - f32::from(v)).abs() < (x - f32::from(IQ4_VALUES[best])).abs() {
            best = i;
        }
    }
    best as u8
}

/// The table indices of `values` at scale `d` (all 0 for a zero scale).
fn indices(values: &[f32], d: f32) -> Vec<u8> {
    let inverse = if d == 0.0 { 0.0 } else { 1.0 / d };
    values.iter().map(|&x| nearest_index(x * inverse)).collect()
}

/// The scale of one block of 32 `values`: the value of largest magnitude maps to the table's
/// end of largest magnitude (-127), then the scale is refitted by least squares to the indices
/// that gives.
fn block_scale(values: &[f32]) -> f32 {
    let largest = values
        .iter()
        .copied()
        .fold(0f32, |m, x| if x.abs() > m.abs() { x } else { m });
    if largest == 0.0 {
        return 0.0;
    }
    let first = largest / f32::from(IQ4_VALUES[0]);
    let q = indices(values, first);
    let (mut qx, mut qq) = (0f32, 0f32);
    for (&x, &i) in values.iter().zip(&q) {
        let v = f32::from(IQ4_VALUES[usize::from(i)]);
        qx += v * x;
        qq += v * v;
    }
    if qq > 0.0 {
        qx / qq
    } else {
        first
    }
}

/// Packs 32 indices as ggml does: byte `j` holds index `j` in its low nibble and `j + 16` in
/// its high one.
fn pack(q: &[u8], out: &mut Vec<u8>) {
    out.extend((0..BLOCK / 2).map(|j| q[j] | (q[j + BLOCK / 2] << 4)));
}

/// IQ4_NL blocks of `values` (a multiple of 32 of them): per block an f16 scale `d` and 16
/// bytes of indices, meaning `d · IQ4_VALUES[q]`; 18 bytes per 32 values.
pub fn quantize_iq4_nl(values: &[f32]) -> Vec<u8> {
    assert!(values.len().is_multiple_of(BLOCK), "whole blocks of 32");
    let mut out = Vec::with_capacity(values.len() / BLOCK * 18);
    for block in values.chunks_exact(BLOCK) {
        let d = f16::from_f32(block_scale(block));
        out.extend(d.to_le_bytes());
        pack(&indices(block, d.to_f32()), &mut out);
    }
    out
}

/// IQ4_XS super-blocks of `values` (a multiple of 256 of them): per super-block an f16 scale
/// `d`, the 6-bit scale `ls` of each of its 8 sub-blocks of 32 (low 4 bits in `scales_l`, high
/// 2 bits in `scales_h`) and the indices packed as IQ4_NL's, meaning
/// `d · (ls − 32) · IQ4_VALUES[q]`; 136 bytes per 256 values.
pub fn quantize_iq4_xs(values: &[f32]) -> Vec<u8> {
    assert!(
        values.len().is_multiple_of(SUPER_BLOCK),
        "whole blocks of 256"
    );
    let mut out = Vec::with_capacity(values.len() / SUPER_BLOCK * 136);
    for sup in values.chunks_exact(SUPER_BLOCK) {
        let scales: Vec<f32> = sup.chunks_exact(BLOCK).map(block_scale).collect();
        let largest = scales
            .iter()
            .copied()
            .fold(0f32, |m, s| if s.abs() > m.abs() { s } else { m });
        // the sub-block scale of largest magnitude becomes -32 times d
        let d = f16::from_f32(-largest / 32.0);
        let d32 = d.to_f32();
        let levels: Vec<i32> = scales
            .iter()
            .map(|&s| {
                let l = if d32 == 0.0 { 0.0 } else { s / d32 };
                (l.round() as i32).clamp(-32, 31)
            })
            .collect();
        let mut scales_h = 0u16;
        let mut scales_l = [0u8; SUPER_BLOCK / 64];
        for (ib, &l) in levels.iter().enumerate() {
            let ls = (l + 32) as u16;
            scales_l[ib / 2] |= ((ls & 0xf) as u8) << (4 * (ib % 2));
            scales_h |= (ls >> 4) << (2 * ib);
        }
        out.extend(d.to_le_bytes());
        out.extend(scales_h.to_le_bytes());
        out.extend(scales_l);
        for (block, &l) in sup.chunks_exact(BLOCK).zip(&levels) {
            pack(&indices(block, d32 * l as f32), &mut out);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::{WeightFormat, WeightMatrix};
    use rand::SeedableRng;
    use rand_distr::{Distribution, Normal};

    /// Root mean square of the difference of `got` from `want`, relative to that of `want`.
    fn relative_rms_error(got: &[f32], want: &[f32]) -> f32 {
        let err: f32 = got.iter().zip(want).map(|(g, w)| (g - w).powi(2)).sum();
        let norm: f32 = want.iter().map(|w| w * w).sum();
        (err / norm).sqrt()
    }

    #[test]
    fn iq4_blocks_dequantize_close_to_their_source() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let normal = Normal::new(0f32, 0.02).unwrap();
        let (rows, cols) = (8, 1024);
        let values: Vec<f32> = (0..rows * cols).map(|_| normal.sample(&mut rng)).collect();
        for (format, bytes) in [
            (WeightFormat::Iq4Nl, quantize_iq4_nl(&values)),
            (WeightFormat::Iq4Xs, quantize_iq4_xs(&values)),
        ] {
            let w = WeightMatrix::from_ggml(format, rows, cols, &bytes).unwrap();
            let got: Vec<f32> = (0..rows).flat_map(|r| w.dequantize_row(r)).collect();
            // 4 bits on normal values: about 10% error, as llama.cpp's own quantizer gives
            let e = relative_rms_error(&got, &values);
            assert!(e < 0.13, "{format}: relative RMS error {e}");
        }
    }

    #[test]
    fn iq4_xs_keeps_sub_blocks_of_different_sizes_and_zeros() {
        // a loud sub-block, a quiet one, a zero one: each keeps its own scale
        let mut values = vec![0f32; 256];
        for (i, v) in values.iter_mut().enumerate().take(64) {
            let amplitude = if i < 32 { 1.0 } else { 0.1 };
            *v = amplitude * ((i % 7) as f32 - 3.0);
        }
        let bytes = quantize_iq4_xs(&values);
        assert_eq!(bytes.len(), 136);
        let w = WeightMatrix::from_ggml(WeightFormat::Iq4Xs, 1, 256, &bytes).unwrap();
        let got = w.dequantize_row(0);
        for (range, tolerance) in [(0..32, 0.15), (32..64, 0.25)] {
            let e = relative_rms_error(&got[range.clone()], &values[range]);
            assert!(e < tolerance, "relative RMS error {e}");
        }
        assert!(got[64..].iter().all(|&v| v == 0.0));
        assert_eq!(quantize_iq4_nl(&[0.0; 32])[..2], [0, 0], "a zero scale");
    }
}
