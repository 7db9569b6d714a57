//! How close a run came to the machine's ceilings: decode bandwidth and prefill compute.

use super::record::RunRecord;
use crate::calibrate::Calibration;
use crate::model::flops::{decode_bytes_per_step, prefill_flops};
use crate::model::WeightDtype;
use crate::planning::RunSpec;
use serde::{Deserialize, Serialize};

/// Achieved rates and their share of the calibrated ceilings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Roofline {
    /// (weight bytes + KV bytes read per step) / mean decode step, GB/s.
    pub decode_gb_s: Option<f64>,
    /// Prefill FLOPs / mean TTFT, GFLOP/s.
    pub prefill_gflop_s: f64,
    /// `decode_gb_s` as a percentage of the calibrated read bandwidth of the run's placement
    /// (the L3 domains it spans, its cores); none for a run in cache.
    pub decode_pct_roofline: Option<f64>,
    /// `prefill_gflop_s` as a percentage of the calibrated GEMM rate of its dtype and cores.
    pub prefill_pct_roofline: Option<f64>,
    /// `prefill_gflop_s` as a percentage of the instruction set's peak (the hard roof) of the
    /// instruction its dtype multiplies with, on its cores.
    #[serde(default)]
    pub prefill_pct_peak: Option<f64>,
    /// Whether what a decode step reads (weights and the KV cache at the run's last step) fits
    /// in the L3 of the run's placement; `None` when the placement's L3 is unknown.
    pub in_cache: Option<bool>,
}

impl Roofline {
    /// The roofline figures of `record`, measured running `spec`; percentages only with a
    /// `calibration`.
    pub fn of(spec: &RunSpec, record: &RunRecord, calibration: Option<&Calibration>) -> Self {
        let run = &spec.config;
        let config = &record.model.config;
        let prompt = spec.prompt.tokens();
        let weights = record.model.step_weights();
        let decode_gb_s = record.summary.tpot_ms.map(|t| {
            decode_bytes_per_step(
                config,
                &weights,
                run.batch,
                run.depth + prompt,
                run.gen_tokens,
                record.kv_dtype,
            ) / (t.mean / 1e3)
                / 1e9
        });
        let context = (run.depth + prompt + run.gen_tokens) as u64;
        let kv_bytes = config.kv_bytes_per_token(record.kv_dtype) * context * run.batch as u64;
        let in_cache = record
            .shape
            .filter(|s| s.l3_bytes > 0)
            .map(|s| weights.bytes(run.batch) + kv_bytes <= s.l3_bytes);
        let prefill_gflop_s = prefill_flops(config, run.batch, run.depth, prompt)
            / (record.summary.ttft_ms.mean / 1e3)
            / 1e9;
        // the ceilings of the run's physical cores, SMT state and L3 domains; a record without
        // its shape (not read from a results folder) is taken as one thread per core
        let shape = record.shape.unwrap_or(crate::machine::PlacementShape {
            cores: spec.threads(),
            smt: false,
            l3_bytes: 0,
            l3_domains: 0,
            numa_nodes: 0,
        });
        let (cores, smt) = (shape.cores, shape.smt);
        let dtype = spec
            .model
            .dtype
            .or_else(|| record.model.dtype.parse::<WeightDtype>().ok());
        let pct = |value: f64, ceiling: Option<f64>| {
            ceiling.filter(|c| *c > 0.0).map(|c| 100.0 * value / c)
        };
        Roofline {
            decode_gb_s,
            prefill_gflop_s,
            // a run in cache reads from the L3, which no DRAM ceiling bounds
            decode_pct_roofline: decode_gb_s
                .filter(|_| in_cache != Some(true))
                .and_then(|v| pct(v, calibration.and_then(|c| c.read_ceiling(&shape)))),
            prefill_pct_roofline: pct(
                prefill_gflop_s,
                calibration
                    .zip(dtype)
                    .and_then(|(c, d)| c.gflop_s(d, cores, smt)),
            ),
            prefill_pct_peak: pct(
                prefill_gflop_s,
                calibration
                    .zip(dtype)
                    .and_then(|(c, d)| c.isa_peak_gflop_s(d, cores, smt)),
            ),
            in_cache,
        }
    }
}
