//! Peak compute: GFLOP/s of the tuned engine's matrix product (its own kernels, or candle's
//! `QMatMul` for the types they do not cover) for each data type, at the shape of a prefill
//! (128 tokens x 4096 x 4096).

use crate::engine::kernels::ActivationScratch;
use crate::engine::linear::Linear;
use crate::engine::EngineError;
use crate::model::WeightDtype;
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// Tokens (rows) of the activation matrix.
pub const GEMM_M: usize = 128;
/// Input and output width of the weight matrix.
pub const GEMM_K: usize = 4096;

/// GFLOP/s of one data type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GemmResult {
    /// The weight data type (a llama.cpp mix is measured in the type of most of its matrices,
    /// [`WeightDtype::ggml`]).
    pub dtype: WeightDtype,
    /// Median of the passes, 10^9 floating-point operations per second (2 per multiply-add).
    /// Before the passes' spread was recorded, the best of 3.
    pub gflop_s: f64,
    /// (slowest - fastest pass) / median, percent; absent in calibrations from before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spread_pct: Option<f64>,
    /// What the checks of the calibration found doubtful about the figure.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<GemmFlag>,
}

/// A doubt about a GEMM figure that remeasuring did not clear.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GemmFlag {
    /// Its passes disagreed by more than the calibration allows.
    Noisy,
    /// It is below the figure of one core: something else took cores meanwhile.
    BelowOneCore,
}

impl GemmFlag {
    /// Short name for `calibrate`'s table.
    pub fn name(self) -> &'static str {
        match self {
            GemmFlag::Noisy => "noisy",
            GemmFlag::BelowOneCore => "below 1 core",
        }
    }
}

/// The median of `seconds` (not empty) and their spread, (slowest - fastest) / median, percent.
fn median_and_spread(seconds: &mut [f64]) -> (f64, f64) {
    seconds.sort_unstable_by(f64::total_cmp);
    let n = seconds.len();
    let median = if n % 2 == 1 {
        seconds[n / 2]
    } else {
        (seconds[n / 2 - 1] + seconds[n / 2]) / 2.0
    };
    (median, 100.0 * (seconds[n - 1] - seconds[0]) / median)
}

/// Measures `dtypes` with the current process's thread pool: after a warm-up product, the
/// median of `passes` (at least 1) timed products each, with their spread.
pub fn measure(dtypes: &[WeightDtype], passes: usize) -> Result<Vec<GemmResult>, EngineError> {
    let dev = Device::Cpu;
    let input = Tensor::randn(0f32, 1.0, (GEMM_M, GEMM_K), &dev)?;
    let x = input.flatten_all()?.to_vec1::<f32>()?;
    let mut out = vec![0f32; GEMM_M * GEMM_K];
    let mut scratch = ActivationScratch::default();
    let w = Tensor::randn(0f32, 0.02, (GEMM_K, GEMM_K), &dev)?;
    let flops = 2.0 * (GEMM_M * GEMM_K * GEMM_K) as f64;
    dtypes
        .iter()
        .map(|&dtype| {
            let matmul = Linear::quantized(&w, dtype.tensor_type())?;
            let mut product =
                || Linear::products(&[&matmul], &x, GEMM_M, &mut scratch, &mut [&mut out]);
            product()?;
            let mut seconds = Vec::with_capacity(passes.max(1));
            for _ in 0..passes.max(1) {
                let start = Instant::now();
                product()?;
                seconds.push(start.elapsed().as_secs_f64());
            }
            let (median, spread_pct) = median_and_spread(&mut seconds);
            Ok(GemmResult {
                dtype,
                gflop_s: flops / median / 1e9,
                spread_pct: Some(spread_pct),
                flags: Vec::new(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_ignores_one_slow_pass_and_the_spread_shows_it() {
        let (median, spread) = median_and_spread(&mut [1.0, 3.0, 1.1, 0.9, 1.0]);
        assert_eq!(median, 1.0);
        assert!((spread - 210.0).abs() < 1e-9, "{spread}");
        assert_eq!(median_and_spread(&mut [2.0, 1.0]), (1.5, 100.0 / 1.5));
    }
}
