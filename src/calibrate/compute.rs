//! Peak compute: GFLOP/s of the tuned engine's matrix product (its own kernels, or candle's
//! `QMatMul` for the types they do not cover) for each data type, at the shape of a prefill
//! (128 tokens x 4096 x 4096).

use crate::engine::kernels::ActivationScratch;
use crate::engine::linear::Linear;
use crate::engine::EngineError;
use crate::model::WeightDtype;
use candle_core::quantized::QTensor;
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// Tokens (rows) of the activation matrix.
pub const GEMM_M: usize = 128;
/// Input and output width of the weight matrix.
pub const GEMM_K: usize = 4096;

/// GFLOP/s of one data type.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GemmResult {
    /// The weight data type.
    pub dtype: WeightDtype,
    /// Best of the passes, 10^9 floating-point operations per second (2 per multiply-add).
    pub gflop_s: f64,
}

/// Measures `dtypes` with the current process's thread pool, best of `repeats` passes each.
pub fn measure(dtypes: &[WeightDtype], repeats: usize) -> Result<Vec<GemmResult>, EngineError> {
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
            let matmul = Linear::from_qtensor(QTensor::quantize(&w, dtype.ggml())?)?;
            let mut product =
                || Linear::products(&[&matmul], &x, GEMM_M, &mut scratch, &mut [&mut out]);
            product()?;
            let mut best = f64::MAX;
            for _ in 0..repeats {
                let start = Instant::now();
                product()?;
                best = best.min(start.elapsed().as_secs_f64());
            }
            Ok(GemmResult {
                dtype,
                gflop_s: flops / best / 1e9,
            })
        })
        .collect()
}
