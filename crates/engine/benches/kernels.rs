//! Throughput of the tuned engine's matrix kernels against candle's `QMatMul` on one
//! Llama-3.2-1B feed-forward shape (8192 x 2048), for decode (1 token), batch-8 decode (8
//! tokens) and prefill (128).
//!
//! `cargo bench --bench kernels` prints, per format: our GB/s of weights streamed (decode, both
//! batches) and GFLOP/s (prefill) at every instruction-set level, and candle's, on all rayon
//! threads. Decode calls take the next of a ring of copies of the matrix, 256 MB in all: one
//! 8192 x 2048 matrix (9-67 MB) would sit in a large L3 and the GB/s would be the cache's, not
//! the memory's.
//! `LLAMAPERF_BENCH_CPU=1` times by CPU time instead of wall-clock, for a busy machine.
//! Format names after `--` (`cargo bench --bench kernels -- Q3K Q2K`) measure only those.

use candle_core::quantized::{ggml_file::qtensor_from_ggml, GgmlDType, QMatMul};
use candle_core::{Device, Module, Tensor};
use llamaperf_engine::kernels::{ActivationScratch, Activations, Isa, WeightFormat, WeightMatrix};
use std::time::Instant;

#[path = "common/cpu_time.rs"]
mod cpu_time;
use cpu_time::{median, CallClock};

/// The matrix of `cargo bench`: one feed-forward projection of Llama-3.2-1B.
const ROWS: usize = 8192;
const COLS: usize = 2048;
/// Tokens of the three products: decode, batch-8 decode, prefill.
const TOKENS: [usize; 3] = [1, 8, PREFILL];
/// Tokens of the prefill product, which is compute-bound and reuses one matrix.
const PREFILL: usize = 128;
/// The matrix when `cargo test` runs this file as a smoke test (no `--bench` argument).
const SMOKE: usize = 256;
/// Bytes of the ring of copies that decode calls stream from, far beyond the caches.
const RING_BYTES: usize = 256 << 20;

fn bytes_of(format: WeightFormat, n: usize) -> Vec<u8> {
    let mut state = 0x2545F4914F6CDD1Du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let scale = half::f16::from_f32(0.01).to_le_bytes();
    let mut out = Vec::new();
    let mut push_block = |header: usize, quants: usize| {
        for _ in 0..header {
            out.extend(scale);
        }
        out.extend((0..quants).map(|_| (next() % 255) as u8));
    };
    match format {
        WeightFormat::F32 => (0..n).for_each(|_| out.extend(0.01f32.to_le_bytes())),
        WeightFormat::F16 => (0..n).for_each(|_| out.extend(scale)),
        WeightFormat::Bf16 => {
            (0..n).for_each(|_| out.extend(half::bf16::from_f32(0.01).to_le_bytes()))
        }
        WeightFormat::Q8_0 => (0..n / 32).for_each(|_| push_block(1, 32)),
        WeightFormat::Q4_0 => (0..n / 32).for_each(|_| push_block(1, 16)),
        WeightFormat::Q4_1 => (0..n / 32).for_each(|_| push_block(2, 16)),
        WeightFormat::Q5_0 => (0..n / 32).for_each(|_| push_block(1, 20)),
        WeightFormat::Q5_1 => (0..n / 32).for_each(|_| push_block(2, 20)),
        WeightFormat::Q4K => (0..n / 256).for_each(|_| push_block(2, 140)),
        WeightFormat::Q5K => (0..n / 256).for_each(|_| push_block(2, 172)),
        // ql, qh and the scales before d
        WeightFormat::Q6K => (0..n / 256).for_each(|_| {
            push_block(0, 208);
            push_block(1, 0);
        }),
        // hmask, qs and the packed scales before d
        WeightFormat::Q3K => (0..n / 256).for_each(|_| {
            push_block(0, 108);
            push_block(1, 0);
        }),
        // the scale and minimum nibbles and qs before d and dmin
        WeightFormat::Q2K => (0..n / 256).for_each(|_| {
            push_block(0, 80);
            push_block(2, 0);
        }),
        WeightFormat::Iq4Nl => (0..n / 32).for_each(|_| push_block(1, 16)),
        // scales_h, scales_l and qs after d
        WeightFormat::Iq4Xs => (0..n / 256).for_each(|_| push_block(1, 134)),
    }
    out
}

/// candle's type of `format`, where candle has one (it has no IQ4 types).
fn ggml_type(format: WeightFormat) -> Option<GgmlDType> {
    Some(match format {
        WeightFormat::F32 => GgmlDType::F32,
        WeightFormat::F16 => GgmlDType::F16,
        WeightFormat::Bf16 => GgmlDType::BF16,
        WeightFormat::Q8_0 => GgmlDType::Q8_0,
        WeightFormat::Q4_0 => GgmlDType::Q4_0,
        WeightFormat::Q4_1 => GgmlDType::Q4_1,
        WeightFormat::Q5_0 => GgmlDType::Q5_0,
        WeightFormat::Q5_1 => GgmlDType::Q5_1,
        WeightFormat::Q4K => GgmlDType::Q4K,
        WeightFormat::Q5K => GgmlDType::Q5K,
        WeightFormat::Q6K => GgmlDType::Q6K,
        WeightFormat::Q3K => GgmlDType::Q3K,
        WeightFormat::Q2K => GgmlDType::Q2K,
        WeightFormat::Iq4Nl | WeightFormat::Iq4Xs => return None,
    })
}

/// Median seconds per call of `f` over enough calls to fill about half a second, by the clock
/// `LLAMAPERF_BENCH_CPU` asks for (see `cpu_time`).
/// In a smoke test (`full` false) `f` runs once, timed by wall-clock.
fn median_s(full: bool, mut f: impl FnMut()) -> f64 {
    if !full {
        let t = Instant::now();
        f();
        return t.elapsed().as_secs_f64();
    }
    let clock = CallClock::from_env();
    f();
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < 5 || (start.elapsed().as_secs_f64() < 0.5 && times.len() < 200) {
        times.push(clock.seconds(&mut f));
    }
    median(times)
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let chosen: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let (rows, cols) = if full { (ROWS, COLS) } else { (SMOKE, SMOKE) };
    let formats = [
        WeightFormat::Q2K,
        WeightFormat::Q3K,
        WeightFormat::Q4_0,
        WeightFormat::Q4_1,
        WeightFormat::Q5_0,
        WeightFormat::Q5_1,
        WeightFormat::Q4K,
        WeightFormat::Q5K,
        WeightFormat::Q6K,
        WeightFormat::Iq4Nl,
        WeightFormat::Iq4Xs,
        WeightFormat::Q8_0,
        WeightFormat::F16,
        WeightFormat::Bf16,
        WeightFormat::F32,
    ];
    println!(
        "{rows}x{cols}, {} threads; decode (1 and 8 tokens): GB/s of weights, prefill (128 \
         tokens): GFLOP/s",
        rayon::current_num_threads()
    );
    println!(
        "{:<6} {:<8} {:>10} {:>10} {:>10}",
        "format", "kernel", "decode", "decode b8", "prefill"
    );
    let formats = formats
        .into_iter()
        .filter(|f| chosen.is_empty() || chosen.contains(&f.to_string()));
    for format in formats {
        let bytes = bytes_of(format, rows * cols);
        let matrix = || WeightMatrix::from_ggml(format, rows, cols, &bytes).unwrap();
        let w = matrix();
        let copies = if full {
            (RING_BYTES / w.bytes()).max(1)
        } else {
            1
        };
        let ring: Vec<WeightMatrix> = std::iter::once(w)
            .chain((1..copies).map(|_| matrix()))
            .collect();
        let gb = ring[0].bytes() as f64 / 1e9;
        let gflop = 2.0 * (rows * cols * PREFILL) as f64 / 1e9;
        for isa in Isa::available() {
            let mut results = Vec::new();
            for tokens in TOKENS {
                let x = vec![0.5f32; tokens * cols];
                let mut out = vec![0f32; tokens * rows];
                let mut scratch = ActivationScratch::default();
                let mut call = 0;
                results.push(median_s(full, || {
                    let w = &ring[if tokens == PREFILL { 0 } else { call % copies }];
                    call += 1;
                    w.product_with(
                        isa,
                        &mut Activations::new(&x, tokens, &mut scratch),
                        &mut out,
                    )
                }));
            }
            println!(
                "{:<6} {:<8} {:>10.1} {:>10.1} {:>10.1}",
                format.to_string(),
                isa.name(),
                gb / results[0],
                gb / results[1],
                gflop / results[2]
            );
        }
        drop(ring);
        let Some(ggml) = ggml_type(format) else {
            continue;
        };
        let candle: Vec<QMatMul> = (0..copies)
            .map(|_| {
                let q = qtensor_from_ggml(ggml, &bytes, vec![rows, cols], &Device::Cpu).unwrap();
                QMatMul::from_qtensor(q).unwrap()
            })
            .collect();
        let mut results = Vec::new();
        for tokens in TOKENS {
            let x = Tensor::full(0.5f32, (1, tokens, cols), &Device::Cpu).unwrap();
            let mut call = 0;
            results.push(median_s(full, || {
                let m = &candle[if tokens == PREFILL { 0 } else { call % copies }];
                call += 1;
                m.forward(&x).unwrap();
            }));
        }
        println!(
            "{:<6} {:<8} {:>10.1} {:>10.1} {:>10.1}",
            format.to_string(),
            "candle",
            gb / results[0],
            gb / results[1],
            gflop / results[2]
        );
    }
}
