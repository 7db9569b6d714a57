//! Every kernel against a plain reference, on random inputs with odd sizes, at every
//! instruction-set level this process may run ([`Isa::available`]); the levels it may not run
//! are named in the test output with the reason.

use super::format::{quant_code, IQ4_VALUES};
use super::layout::GROUP;
use super::*;
use half::{bf16, f16};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const FORMATS: [WeightFormat; 15] = [
    WeightFormat::F32,
    WeightFormat::F16,
    WeightFormat::Bf16,
    WeightFormat::Q8_0,
    WeightFormat::Q4_0,
    WeightFormat::Q4_1,
    WeightFormat::Q5_0,
    WeightFormat::Q5_1,
    WeightFormat::Q4K,
    WeightFormat::Q5K,
    WeightFormat::Q6K,
    WeightFormat::Q3K,
    WeightFormat::Q2K,
    WeightFormat::Iq4Nl,
    WeightFormat::Iq4Xs,
];

/// Random GGUF bytes of `format` for a `rows x cols` matrix.
fn random_matrix(rng: &mut StdRng, format: WeightFormat, rows: usize, cols: usize) -> Vec<u8> {
    let half = |v: f32| f16::from_f32(v).to_le_bytes();
    let mut bytes = Vec::new();
    match format {
        WeightFormat::F32 => {
            (0..rows * cols).for_each(|_| bytes.extend(rng.random_range(-1f32..1.0).to_le_bytes()))
        }
        WeightFormat::F16 => {
            (0..rows * cols).for_each(|_| bytes.extend(half(rng.random_range(-1.0..1.0))))
        }
        WeightFormat::Bf16 => (0..rows * cols)
            .for_each(|_| bytes.extend(bf16::from_f32(rng.random_range(-1.0..1.0)).to_le_bytes())),
        WeightFormat::Q4K | WeightFormat::Q5K => {
            for _ in 0..rows * cols / 256 {
                bytes.extend(half(rng.random_range(0.001..0.01)));
                bytes.extend(half(rng.random_range(0.0..0.01)));
                let mut rest = vec![0u8; format.ggml_block_bytes() - 4];
                rng.fill(&mut rest[..]);
                bytes.extend(rest);
            }
        }
        WeightFormat::Q6K => {
            for _ in 0..rows * cols / 256 {
                // ql, qh and the signed scales, every bit pattern
                let mut rest = [0u8; 208];
                rng.fill(&mut rest[..]);
                bytes.extend(rest);
                bytes.extend(half(rng.random_range(0.0001..0.001)));
            }
        }
        WeightFormat::Q3K => {
            for _ in 0..rows * cols / 256 {
                // hmask, qs and the packed scales, every bit pattern
                let mut rest = [0u8; 108];
                rng.fill(&mut rest[..]);
                bytes.extend(rest);
                bytes.extend(half(rng.random_range(0.001..0.01)));
            }
        }
        WeightFormat::Iq4Xs => {
            for _ in 0..rows * cols / 256 {
                bytes.extend(half(rng.random_range(0.0001..0.001)));
                // scales_h, scales_l and qs, every bit pattern
                let mut rest = [0u8; 134];
                rng.fill(&mut rest[..]);
                bytes.extend(rest);
            }
        }
        WeightFormat::Q2K => {
            for _ in 0..rows * cols / 256 {
                // the scale and minimum nibbles and qs, every bit pattern
                let mut rest = [0u8; 80];
                rng.fill(&mut rest[..]);
                bytes.extend(rest);
                bytes.extend(half(rng.random_range(0.001..0.01)));
                bytes.extend(half(rng.random_range(0.0..0.01)));
            }
        }
        _ => {
            for _ in 0..rows * cols / BLOCK {
                bytes.extend(half(rng.random_range(0.001..0.05)));
                if matches!(format, WeightFormat::Q4_1 | WeightFormat::Q5_1) {
                    bytes.extend(half(rng.random_range(-0.4..0.0)));
                }
                // Q8_0's bytes, the nibbles, or the 5-bit formats' qh and nibbles
                let n = format.quant_bytes();
                let mut q = vec![0u8; n];
                rng.fill(&mut q[..]);
                if format == WeightFormat::Q8_0 {
                    // -128 is outside ggml's range [-127, 127]
                    q.iter_mut().filter(|v| **v == 0x80).for_each(|v| *v = 0x81);
                }
                bytes.extend(q);
            }
        }
    }
    bytes
}

/// `x · Wᵀ` in f64 from dequantized rows and the values the kernel really multiplies: `x`
/// rounded to BF16 if `bf16`, quantized if the weights are, else as it is.
fn reference(w: &WeightMatrix, x: &[f32], tokens: usize, bf16: bool) -> Vec<f64> {
    let cols = w.cols();
    let mut a = QuantizedActivations::default();
    let x_used: Vec<f32> = if bf16 {
        x.iter().map(|&v| bf16::from_f32(v).to_f32()).collect()
    } else if let Some(grain) = w.format().activation_grain() {
        a.quantize(x, cols, grain);
        (0..tokens)
            .flat_map(|t| {
                let (blocks, scales, _) = a.token(t);
                blocks
                    .iter()
                    .zip(scales)
                    .flat_map(|(b, d)| b.0.iter().map(move |&q| q as f32 * d))
                    .collect::<Vec<_>>()
            })
            .collect()
    } else {
        x.to_vec()
    };
    let mut out = vec![0f64; tokens * w.rows()];
    for r in 0..w.rows() {
        let row = w.dequantize_row(r);
        for t in 0..tokens {
            out[t * w.rows() + r] = row
                .iter()
                .zip(&x_used[t * cols..(t + 1) * cols])
                .map(|(&w, &x)| w as f64 * x as f64)
                .sum::<f64>()
                + q8_1_sum_rounding(w, &a, r, t);
        }
    }
    out
}

/// What Q4_1's and Q5_1's minimums add to row `r`'s product with token `t` because ggml's Q8_1 keeps an
/// activation block's `d · sum(q)` at f16 precision: `m · (s − d · sum(q))` over the blocks.
fn q8_1_sum_rounding(w: &WeightMatrix, a: &QuantizedActivations, r: usize, t: usize) -> f64 {
    if !matches!(w.format(), WeightFormat::Q4_1 | WeightFormat::Q5_1) {
        return 0.0;
    }
    let view = w.quant_rows().unwrap();
    let (_, scales, s) = a.token(t);
    let sums = a.block_sums(t);
    (0..view.blocks)
        .map(|b| {
            let (_, min) = view.scale_shift(quant_code::Q4_1, r / GROUP, b, r % GROUP);
            min as f64 * (s[b] as f64 - scales[b] as f64 * sums[b] as f64)
        })
        .sum()
}

fn check(format: WeightFormat, rows: usize, cols: usize, tokens: usize, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let bytes = random_matrix(&mut rng, format, rows, cols);
    let w = WeightMatrix::from_ggml(format, rows, cols, &bytes).unwrap();
    let x: Vec<f32> = (0..tokens * cols)
        .map(|_| rng.random_range(-2.0..2.0))
        .collect();
    check_product(&w, &x, tokens);
}

/// `w`'s product with `tokens` rows of `x` at every level against [`reference`].
fn check_product(w: &WeightMatrix, x: &[f32], tokens: usize) {
    for isa in Isa::available() {
        let bf16 = w.rounds_activations_to_bf16(isa, tokens);
        let expected = reference(w, x, tokens, bf16);
        let mut scratch = ActivationScratch::default();
        let mut out = vec![f32::NAN; tokens * w.rows()];
        w.product_with(
            isa,
            &mut Activations::new(x, tokens, &mut scratch),
            &mut out,
        );
        assert_close(w, x, &out, &expected, &format!("{tokens} tokens, {isa}"));
    }
}

/// Asserts that every output is within the rounding error of any summation order of `w`'s
/// product with `x`, bounded by the size of its terms.
fn assert_close(w: &WeightMatrix, x: &[f32], out: &[f32], expected: &[f64], case: &str) {
    let (format, rows, cols) = (w.format(), w.rows(), w.cols());
    let largest = x.iter().fold(0f32, |m, v| m.max(v.abs())) as f64;
    let magnitude: f64 = (0..cols)
        .map(|c| largest * w.dequantize_row(0)[c].abs() as f64)
        .sum();
    for (i, (got, want)) in out.iter().zip(expected).enumerate() {
        assert!(
            (*got as f64 - want).abs() <= 1e-5 * magnitude.max(1.0),
            "{format} {rows}x{cols}, {case}: output {i} is {got}, want {want}"
        );
    }
}

#[test]
fn every_format_matches_the_reference_at_every_level_with_odd_sizes() {
    let mut seed = 0;
    for format in FORMATS {
        let col_options: &[usize] = match format.block_values() {
            256 => &[256, 768],
            32 => &[32, 96, 160],
            _ => &[7, 16, 40, 100],
        };
        for &cols in col_options {
            for rows in [1, 3, 4, 5, 13, 29, 40] {
                for tokens in [1, 2, 3, 4, 5, 8, 9, 17] {
                    seed += 1;
                    check(format, rows, cols, tokens, seed);
                }
            }
        }
    }
}

#[test]
fn q4k_and_q5k_sums_at_their_largest_do_not_overflow() {
    // every value 15 (Q5_K: 31), every 6-bit scale and minimum 63, every activation at the
    // largest quantized value of one sign, then alternating by super-block: the integer sums of
    // a super-block reach their bound (Q4_K: 8 x 2 x 30480 x 63, Q5_K: 8 x 2 x 31496 x 63,
    // and 8 x 63 x 32 x 127)
    let (rows, cols) = (9, 1024);
    for format in [WeightFormat::Q4K, WeightFormat::Q5K] {
        let mut bytes = Vec::new();
        for _ in 0..rows * cols / 256 {
            bytes.extend(f16::from_f32(0.01).to_le_bytes());
            bytes.extend(f16::from_f32(0.002).to_le_bytes());
            bytes.extend(vec![0xFF; format.ggml_block_bytes() - 4]);
        }
        let w = WeightMatrix::from_ggml(format, rows, cols, &bytes).unwrap();
        let same = vec![-1.5f32; 2 * cols];
        let alternating: Vec<f32> = (0..2 * cols)
            .map(|i| if i / 256 % 2 == 0 { 3.0 } else { -3.0 })
            .collect();
        check_product(&w, &same, 2);
        check_product(&w, &alternating, 2);
        check_product(&w, &alternating[..cols], 1);
    }
}

#[test]
fn q5_0_and_q5_1_sums_at_their_largest_do_not_overflow() {
    // every 5-bit value 31 and every activation 127 in magnitude: AVX2's 16-bit sums of half a
    // block reach 4 x 2 x 31 x 127 (a whole block's would overflow)
    let (rows, cols) = (9, 256);
    for format in [WeightFormat::Q5_0, WeightFormat::Q5_1] {
        let mut bytes = Vec::new();
        for _ in 0..rows * cols / BLOCK {
            bytes.extend(f16::from_f32(0.01).to_le_bytes());
            if format == WeightFormat::Q5_1 {
                bytes.extend(f16::from_f32(-0.1).to_le_bytes());
            }
            bytes.extend([0xFF; 20]);
        }
        let w = WeightMatrix::from_ggml(format, rows, cols, &bytes).unwrap();
        check_product(&w, &vec![-1.5f32; 2 * cols], 2);
        check_product(&w, &vec![1.5f32; cols], 1);
    }
}

#[test]
fn q6k_sums_at_their_largest_do_not_overflow() {
    // every 6-bit value 63 and every scale -128, then every value 0 (q - 32 = -32) and every
    // scale 127, every activation at the largest quantized value of one sign, then alternating
    // by super-block: the 16-bit pair sums (2 x 2 x 63 x 127) and the 32-bit super-block sums
    // (256 x 128 x 63 x 127, and the offsets' 256 x 128 x 32 x 127) reach their bounds
    let (rows, cols) = (9, 1024);
    for (quants, scale) in [(0xFF, 0x80), (0x00, 0x7F)] {
        let mut bytes = Vec::new();
        for _ in 0..rows * cols / 256 {
            bytes.extend([quants; 192]);
            bytes.extend([scale; 16]);
            bytes.extend(f16::from_f32(0.0001).to_le_bytes());
        }
        let w = WeightMatrix::from_ggml(WeightFormat::Q6K, rows, cols, &bytes).unwrap();
        let same = vec![-1.5f32; 2 * cols];
        let alternating: Vec<f32> = (0..2 * cols)
            .map(|i| if i / 256 % 2 == 0 { 3.0 } else { -3.0 })
            .collect();
        check_product(&w, &same, 2);
        check_product(&w, &alternating, 2);
        check_product(&w, &alternating[..cols], 1);
    }
}

#[test]
fn q3k_and_q2k_sums_at_their_largest_do_not_overflow() {
    // Q3_K: every value 7 with every scale 63 (31 signed), then every value 0 (q - 4 = -4) with
    // every scale 0 (-32); Q2_K: every value 3, every scale and minimum 15; every activation
    // at the largest quantized value of one sign, then alternating by super-block: the 16-bit
    // sums of a half block (4 x 2 x 7 x 127) and the 32-bit super-block sums reach their bounds
    let (rows, cols) = (9, 1024);
    let q3k = |fill: u8| {
        let mut block = vec![fill; 108];
        block.extend(f16::from_f32(0.001).to_le_bytes());
        (WeightFormat::Q3K, block)
    };
    let mut q2k = vec![0xFF; 80];
    q2k.extend(f16::from_f32(0.01).to_le_bytes());
    q2k.extend(f16::from_f32(0.002).to_le_bytes());
    for (format, block) in [q3k(0xFF), q3k(0x00), (WeightFormat::Q2K, q2k)] {
        let bytes = block.repeat(rows * cols / 256);
        let w = WeightMatrix::from_ggml(format, rows, cols, &bytes).unwrap();
        let same = vec![-1.5f32; 2 * cols];
        let alternating: Vec<f32> = (0..2 * cols)
            .map(|i| if i / 256 % 2 == 0 { 3.0 } else { -3.0 })
            .collect();
        check_product(&w, &same, 2);
        check_product(&w, &alternating, 2);
        check_product(&w, &alternating[..cols], 1);
    }
}

#[test]
fn iq4_sums_at_their_largest_do_not_overflow() {
    // every index 0 (the table's -127) with every IQ4_XS scale 0 (ls - 32 = -32), then every
    // index 15 (113) with every scale 63 (31); every activation at the largest quantized value
    // of one sign, then alternating by super-block: AVX2's 16-bit pairs (2 x 127 x 127) and
    // the 32-bit super-block sums (8 x 32 x 127 x 127 x 32) reach their bounds
    let (rows, cols) = (9, 1024);
    let d = f16::from_f32(0.001).to_le_bytes();
    for (nibbles, scales_h, scales_l) in [(0x00, 0x00, 0x00), (0xFF, 0xFF, 0xFF)] {
        let mut nl = d.to_vec();
        nl.extend([nibbles; 16]);
        let mut xs = d.to_vec();
        xs.extend([scales_h; 2]);
        xs.extend([scales_l; 4]);
        xs.extend([nibbles; 128]);
        for (format, block) in [(WeightFormat::Iq4Nl, nl), (WeightFormat::Iq4Xs, xs)] {
            let per_block = format.block_values();
            let bytes = block.repeat(rows * cols / per_block);
            let w = WeightMatrix::from_ggml(format, rows, cols, &bytes).unwrap();
            let same = vec![-1.5f32; 2 * cols];
            let alternating: Vec<f32> = (0..2 * cols)
                .map(|i| if i / 256 % 2 == 0 { 3.0 } else { -3.0 })
                .collect();
            check_product(&w, &same, 2);
            check_product(&w, &alternating, 2);
            check_product(&w, &alternating[..cols], 1);
        }
    }
}

#[test]
fn iq4_rows_dequantize_as_ggml_s_formula() {
    // ggml's dequantize_row_iq4_nl and _iq4_xs on one hand-made block each (llama.cpp's own
    // dequantization is compared on random blocks in the integration tests)
    let d = f16::from_f32(0.5);
    let mut nl = d.to_le_bytes().to_vec();
    nl.extend((0..16u8).map(|i| i | (15 - i) << 4));
    let w = WeightMatrix::from_ggml(WeightFormat::Iq4Nl, 1, 32, &nl).unwrap();
    let want: Vec<f32> = (0..32)
        .map(|e| 0.5 * f32::from(IQ4_VALUES[if e < 16 { e } else { 31 - e }]))
        .collect();
    assert_eq!(w.dequantize_row(0), want);
    // sub-block j's ls: low nibble j (scales_l), high bits 2 (j % 4) of scales_h
    let mut xs = d.to_le_bytes().to_vec();
    let ls: [u8; 8] = [0, 1, 17, 32, 33, 47, 62, 63];
    let high: u16 = (0..8).map(|j| u16::from(ls[j] >> 4) << (2 * j)).sum();
    xs.extend(high.to_le_bytes());
    xs.extend((0..4).map(|i| (ls[2 * i] & 15) | (ls[2 * i + 1] & 15) << 4));
    xs.extend((0..128u8).map(|i| (i % 16) | ((i + 3) % 16) << 4));
    let w = WeightMatrix::from_ggml(WeightFormat::Iq4Xs, 1, 256, &xs).unwrap();
    let row = w.dequantize_row(0);
    for (v, got) in row.iter().enumerate() {
        let (j, e) = (v / 32, v % 32);
        let byte = (16 * j + e % 16) as u8;
        let q = if e < 16 { byte % 16 } else { (byte + 3) % 16 };
        let dl = 0.5 * (f32::from(ls[j]) - 32.0);
        assert_eq!(*got, dl * f32::from(IQ4_VALUES[q as usize]), "value {v}");
    }
}

#[test]
fn q3k_and_q2k_products_agree_with_candles_qmatmul() {
    // candle quantizes the activations per super-block too (Q8_K), so the two differ by the
    // order of their float sums and by candle's own rounding of the activation scales
    use candle_core::quantized::{ggml_file::qtensor_from_ggml, GgmlDType, QMatMul};
    use candle_core::{Device, Module, Tensor};
    let mut rng = StdRng::seed_from_u64(31);
    for (format, ggml) in [
        (WeightFormat::Q3K, GgmlDType::Q3K),
        (WeightFormat::Q2K, GgmlDType::Q2K),
    ] {
        for (rows, cols, tokens) in [(37, 512, 1), (13, 768, 5), (24, 256, 17)] {
            let bytes = random_matrix(&mut rng, format, rows, cols);
            let w = WeightMatrix::from_ggml(format, rows, cols, &bytes).unwrap();
            let q = qtensor_from_ggml(ggml, &bytes, vec![rows, cols], &Device::Cpu).unwrap();
            let candle = QMatMul::from_qtensor(q).unwrap();
            let x: Vec<f32> = (0..tokens * cols)
                .map(|_| rng.random_range(-2.0..2.0))
                .collect();
            let input = Tensor::from_vec(x.clone(), (tokens, cols), &Device::Cpu).unwrap();
            let want: Vec<f32> = candle
                .forward(&input)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            let largest = x.iter().fold(0f32, |m, v| m.max(v.abs()));
            for isa in Isa::available() {
                let mut scratch = ActivationScratch::default();
                let mut out = vec![f32::NAN; tokens * rows];
                w.product_with(
                    isa,
                    &mut Activations::new(&x, tokens, &mut scratch),
                    &mut out,
                );
                for (i, (got, want)) in out.iter().zip(&want).enumerate() {
                    let row = w.dequantize_row(i % rows);
                    let magnitude: f32 = row.iter().map(|v| v.abs() * largest).sum();
                    assert!(
                        (got - want).abs() <= 1e-3 * magnitude,
                        "{format} {rows}x{cols}, {tokens} tokens, {isa}: output {i} is {got}, \
                         candle's {want}"
                    );
                }
            }
        }
    }
}

#[test]
fn dequantized_rows_equal_candles_dequantization() {
    use candle_core::quantized::{ggml_file::qtensor_from_ggml, GgmlDType};
    let mut rng = StdRng::seed_from_u64(11);
    for (format, ggml) in [
        (WeightFormat::Q8_0, GgmlDType::Q8_0),
        (WeightFormat::Q4_0, GgmlDType::Q4_0),
        (WeightFormat::Q4_1, GgmlDType::Q4_1),
        (WeightFormat::Q5_0, GgmlDType::Q5_0),
        (WeightFormat::Q5_1, GgmlDType::Q5_1),
        (WeightFormat::Q4K, GgmlDType::Q4K),
        (WeightFormat::Q5K, GgmlDType::Q5K),
        (WeightFormat::Q6K, GgmlDType::Q6K),
        (WeightFormat::Q3K, GgmlDType::Q3K),
        (WeightFormat::Q2K, GgmlDType::Q2K),
        (WeightFormat::F16, GgmlDType::F16),
        (WeightFormat::Bf16, GgmlDType::BF16),
    ] {
        let (rows, cols) = (11, 512);
        let bytes = random_matrix(&mut rng, format, rows, cols);
        let w = WeightMatrix::from_ggml(format, rows, cols, &bytes).unwrap();
        let candle = qtensor_from_ggml(ggml, &bytes, vec![rows, cols], &candle_core::Device::Cpu)
            .unwrap()
            .dequantize(&candle_core::Device::Cpu)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        for (r, want) in candle.iter().enumerate() {
            let got = w.dequantize_row(r);
            for (c, (g, e)) in got.iter().zip(want).enumerate() {
                assert!(
                    (g - e).abs() <= 1e-6 * e.abs().max(1e-3),
                    "{format} ({r}, {c}): {g} vs {e}"
                );
            }
        }
    }
}

#[test]
fn float_prefill_over_packed_panels_matches_the_reference_with_ragged_edges() {
    // rows beyond one micro-panel and one panel, depths of one block (odd ones too: a half
    // panel's last column then has one step) and of several (a row of more than 8192 columns
    // is packed in equal blocks, the last one shorter), tokens in tiles of 6 (AVX2), 8
    // (AVX-512) or 12 (BF16 pairs) with a ragged last tile
    let mut seed = 500;
    for format in [WeightFormat::F32, WeightFormat::F16, WeightFormat::Bf16] {
        for (rows, cols, tokens) in [
            (37, 300, 23),
            (16, 256, 16),
            (70, 1100, 19),
            (5, 9, 30),
            (21, 1031, 17),
            (19, 8200, 16),
            (3, 9001, 23),
        ] {
            seed += 1;
            check(format, rows, cols, tokens, seed);
        }
    }
}

#[test]
fn large_products_split_across_threads_match_the_reference() {
    // decode (one chunk per thread), batch decode, and prefill (claimed shares)
    for (seed, format) in FORMATS.into_iter().enumerate() {
        for tokens in [1, 6, 17] {
            check(format, 259, 1024, tokens, 1000 + seed as u64);
        }
    }
}

#[test]
fn quantized_activations_stay_close_to_the_float_product() {
    let mut rng = StdRng::seed_from_u64(7);
    let (rows, cols) = (8, 256);
    let bytes = random_matrix(&mut rng, WeightFormat::Q8_0, rows, cols);
    let w = WeightMatrix::from_ggml(WeightFormat::Q8_0, rows, cols, &bytes).unwrap();
    let x: Vec<f32> = (0..cols).map(|_| rng.random_range(-1.0..1.0)).collect();
    let mut scratch = ActivationScratch::default();
    let mut out = vec![0.0; rows];
    w.product(&mut Activations::new(&x, 1, &mut scratch), &mut out);
    for (r, got) in out.iter().enumerate() {
        let row = w.dequantize_row(r);
        let exact: f32 = row.iter().zip(&x).map(|(w, x)| w * x).sum();
        let scale: f32 = row.iter().zip(&x).map(|(w, x)| (w * x).abs()).sum();
        assert!(
            (got - exact).abs() < 0.01 * scale,
            "row {r}: {got} vs {exact}"
        );
    }
}

#[test]
fn wrong_sizes_are_refused() {
    let err = WeightMatrix::from_ggml(WeightFormat::Q4_0, 2, 64, &[0; 71]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Q4_0 matrix of 2 x 64 needs 72 bytes, got 71"
    );
    let err = WeightMatrix::from_ggml(WeightFormat::Q8_0, 2, 48, &[0; 102]).unwrap_err();
    assert!(err.to_string().contains("not a multiple of 32"), "{err}");
}

/// Says in the test output that `test` did not run, or not at every level, and why. It writes
/// to stderr itself: libtest shows what `eprintln!` prints only for a failing test.
fn skipped(test: &str, reason: &str) {
    use std::io::Write;
    // one write, so that the line is not cut by another test's output
    let line = format!("skipped: {test}: {reason}\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// Why the BF16-dot kernels cannot run in this process, if they cannot.
#[cfg(target_arch = "x86_64")]
fn bf16_dot_unavailable() -> Option<String> {
    Isa::Avx512
        .unavailable_reason()
        .or_else(|| (!Isa::Avx512.has_bf16_dot()).then(|| "this CPU lacks avx512bf16".into()))
}

#[test]
fn the_active_level_is_the_best_available_one_and_the_others_say_why_not() {
    let available = Isa::available();
    assert_eq!(Isa::active(), *available.last().unwrap());
    assert_eq!(
        available[0],
        Isa::Scalar,
        "scalar runs anywhere, under any cap"
    );
    for isa in Isa::ALL {
        match isa.unavailable_reason() {
            None => assert!(available.contains(&isa) && isa <= Isa::active()),
            Some(reason) => {
                assert!(!available.contains(&isa) && isa > Isa::active(), "{isa}");
                skipped(&format!("every kernel test at {isa}"), &reason);
            }
        }
    }
}

#[test]
fn products_of_several_matrices_with_one_input_equal_the_single_products() {
    let mut rng = StdRng::seed_from_u64(21);
    let (cols, tokens) = (512, 9);
    let matrices: Vec<WeightMatrix> = [
        (WeightFormat::Q4_0, 40),
        (WeightFormat::Bf16, 13),
        (WeightFormat::Q4K, 8),
        (WeightFormat::F32, 5),
    ]
    .into_iter()
    .map(|(format, rows)| {
        let bytes = random_matrix(&mut rng, format, rows, cols);
        WeightMatrix::from_ggml(format, rows, cols, &bytes).unwrap()
    })
    .collect();
    let x: Vec<f32> = (0..tokens * cols)
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();
    for isa in Isa::available() {
        let mut scratch = ActivationScratch::default();
        let mut outs: Vec<Vec<f32>> = matrices
            .iter()
            .map(|w| vec![f32::NAN; tokens * w.rows()])
            .collect();
        let mut views: Vec<&mut [f32]> = outs.iter_mut().map(Vec::as_mut_slice).collect();
        let refs: Vec<&WeightMatrix> = matrices.iter().collect();
        WeightMatrix::products_with(
            isa,
            &refs,
            &mut Activations::new(&x, tokens, &mut scratch),
            &mut views,
        );
        for (w, shared) in matrices.iter().zip(&outs) {
            let mut scratch = ActivationScratch::default();
            let mut single = vec![f32::NAN; tokens * w.rows()];
            w.product_with(
                isa,
                &mut Activations::new(&x, tokens, &mut scratch),
                &mut single,
            );
            assert_eq!(&single, shared, "{} at {isa}", w.format());
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[test]
fn bf16_rounding_matches_half_to_the_bit_at_every_length() {
    if let Some(reason) = bf16_dot_unavailable() {
        return skipped(
            "bf16_rounding_matches_half_to_the_bit_at_every_length",
            &reason,
        );
    }
    let mut rng = StdRng::seed_from_u64(11);
    for len in 0..50 {
        let mut x: Vec<f32> = (0..len).map(|_| rng.random_range(-3.0..3.0)).collect();
        // ties: halfway between two BF16 values, with an even and an odd lower neighbour
        for (i, v) in x.iter_mut().enumerate().filter(|(i, _)| i % 3 == 0) {
            *v = f32::from_bits((v.to_bits() & 0xFFFF_0000) | 0x8000 | ((i as u32 & 1) << 16));
        }
        let mut out = vec![0xDEADu16; len];
        // SAFETY: the CPU has AVX512-BF16 (checked above).
        unsafe { x86::bf16_dot::round(&x, &mut out) };
        let expected: Vec<u16> = x.iter().map(|&v| bf16::from_f32(v).to_bits()).collect();
        assert_eq!(out, expected, "{len} values");
    }
}

#[cfg(target_arch = "x86_64")]
#[test]
fn bf16_pair_panels_match_the_reference_on_every_cpu_that_runs_them() {
    // prefill takes them only where they outrun widening ([`Isa::packs_bf16_pairs`]), so they
    // are checked here directly, in 3 chunks, wherever AVX512-BF16 can run them
    if let Some(reason) = bf16_dot_unavailable() {
        return skipped(
            "bf16_pair_panels_match_the_reference_on_every_cpu_that_runs_them",
            &reason,
        );
    }
    for (seed, (rows, cols, tokens)) in [(37, 300, 23), (5, 9, 30), (19, 8200, 16), (3, 9001, 23)]
        .into_iter()
        .enumerate()
    {
        let mut rng = StdRng::seed_from_u64(600 + seed as u64);
        let bytes = random_matrix(&mut rng, WeightFormat::Bf16, rows, cols);
        let w = WeightMatrix::from_ggml(WeightFormat::Bf16, rows, cols, &bytes).unwrap();
        let x: Vec<f32> = (0..tokens * cols)
            .map(|_| rng.random_range(-2.0..2.0))
            .collect();
        let mut bits = vec![0u16; x.len()];
        // SAFETY: the CPU has AVX512-BF16 (checked above).
        unsafe { x86::bf16_dot::round(&x, &mut bits) };
        let matrix::Values::Half(values) = &w.values else {
            panic!("BF16 weights are kept as 16-bit values")
        };
        let mut out = vec![f32::NAN; tokens * rows];
        let output = tile::Output {
            ptr: out.as_mut_ptr(),
            stride: rows,
        };
        let rows_of_w = tile::FloatRows { cols, values };
        let share = packed::packed_bf16_share(rows_of_w, &bits, tokens, output);
        (0..3).for_each(|c| share(c, 3));
        let expected = reference(&w, &x, tokens, true);
        assert_close(
            &w,
            &x,
            &out,
            &expected,
            &format!("{tokens} tokens, pair panels"),
        );
    }
}
