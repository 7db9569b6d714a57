//! Latency and throughput of one instance at a batch size, from the machine's ceilings
//! (roofline): decode streams the weights and the KV cache, prefill is compute bound.

use crate::calibrate::Calibration;
use crate::model::flops::{decode_flops_per_step, prefill_flops};
use crate::model::{KvDtype, LlamaConfig, StepWeights, WeightDtype};
use serde::{Deserialize, Serialize};

/// Latency and throughput of one instance at one batch size.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Point {
    /// Sequences per batch.
    pub batch: usize,
    /// Time to first token, ms.
    pub ttft_ms: f64,
    /// Time per output token (one decode step of the batch), ms.
    pub tpot_ms: f64,
    /// Decode throughput of the instance, tokens/s.
    pub tok_s: f64,
    /// Decode tokens per joule of RAPL package and DRAM energy, where measured runs have it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tok_per_j: Option<f64>,
}

/// The roofline model of one instance of a model on calibrated ceilings.
#[derive(Debug, Clone, PartialEq)]
pub struct Roofline {
    /// The model's shape.
    pub config: LlamaConfig,
    /// What a forward pass reads of the weights (each matrix once; of an untied embedding
    /// table, the rows looked up).
    pub weights: StepWeights,
    /// KV cache data type.
    pub kv: KvDtype,
    /// Prompt tokens prefilled per sequence.
    pub prompt_tokens: usize,
    /// Tokens in each sequence's KV cache at the decode step modelled (the full context: the
    /// slowest step).
    pub context: usize,
    /// Read bandwidth of one instance's cores, GB/s.
    pub instance_gb_s: f64,
    /// Read bandwidth of the whole machine, GB/s, shared by instances running side by side.
    pub machine_gb_s: f64,
    /// GEMM rate of one instance's cores in the model's dtype, GFLOP/s.
    pub gflop_s: f64,
    /// Most cores the calibration measured with (ceilings of more cores are those of these).
    pub calibrated_cores: usize,
}

/// Why no roofline can be drawn from a calibration.
pub fn ceilings(
    calibration: &Calibration,
    dtype: WeightDtype,
    cores_per_instance: usize,
    machine_cores: usize,
) -> Result<(f64, f64, f64), String> {
    let instance_gb_s = calibration
        .read_gb_s(cores_per_instance, false)
        .ok_or("the calibration has no bandwidth figures")?;
    let machine_gb_s = calibration
        .read_gb_s(machine_cores, false)
        .unwrap_or(instance_gb_s);
    let gflop_s = calibration
        .gflop_s(dtype, cores_per_instance, false)
        .ok_or(format!(
        "the calibration has no GEMM figure for {dtype}: run llamaperf calibrate --dtypes {dtype}"
    ))?;
    Ok((instance_gb_s, machine_gb_s, gflop_s))
}

impl Roofline {
    /// One instance at `batch` while `instances` instances share the machine's bandwidth:
    /// a decode step takes the longer of streaming weights + KV cache and computing its FLOPs;
    /// the prefill the longer of its FLOPs and streaming the weights once.
    pub fn at(&self, batch: usize, instances: usize) -> Point {
        let gb_s = self
            .instance_gb_s
            .min(self.machine_gb_s / instances.max(1) as f64);
        let (bytes_s, flop_s) = (gb_s * 1e9, self.gflop_s * 1e9);
        let kv_bytes =
            self.config.kv_bytes_per_token(self.kv) as f64 * self.context as f64 * batch as f64;
        let step_s = ((self.weights.bytes(batch) as f64 + kv_bytes) / bytes_s)
            .max(decode_flops_per_step(&self.config, batch, self.context) / flop_s);
        let prefill_s = (prefill_flops(&self.config, batch, 0, self.prompt_tokens) / flop_s)
            .max(self.weights.bytes(batch * self.prompt_tokens) as f64 / bytes_s);
        Point {
            batch,
            ttft_ms: prefill_s * 1e3,
            tpot_ms: step_s * 1e3,
            tok_s: batch as f64 / step_s,
            tok_per_j: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::find_preset;

    fn llama_8b_q4k() -> Roofline {
        let p = find_preset("llama-3.1-8b").unwrap();
        Roofline {
            weights: p.step_weights(WeightDtype::Q4K),
            config: p.config,
            kv: KvDtype::F16,
            prompt_tokens: 512,
            context: 4096,
            instance_gb_s: 100.0,
            machine_gb_s: 300.0,
            gflop_s: 2000.0,
            calibrated_cores: 64,
        }
    }

    #[test]
    fn decode_at_batch_one_is_bandwidth_bound() {
        let r = llama_8b_q4k();
        let p = r.at(1, 1);
        // the embedding table is untied: a step reads its one row
        let weights = r.weights.whole_bytes + r.weights.row_bytes;
        let bytes = weights as f64 + 131_072.0 * 4096.0;
        assert!((p.tpot_ms - bytes / 100e9 * 1e3).abs() < 1e-9, "{p:?}");
        assert!((p.tok_s - 1e3 / p.tpot_ms).abs() < 1e-9);
        let prefill = prefill_flops(&r.config, 1, 0, 512) / 2000e9 * 1e3;
        assert!((p.ttft_ms - prefill).abs() < 1e-9, "{p:?}");
    }

    #[test]
    fn instances_share_the_machine_bandwidth() {
        let r = llama_8b_q4k();
        // Three instances get 100 GB/s each, six only 50.
        assert_eq!(r.at(1, 3).tpot_ms, r.at(1, 1).tpot_ms);
        assert!((r.at(1, 6).tpot_ms - 2.0 * r.at(1, 1).tpot_ms).abs() < 1e-9);
    }

    #[test]
    fn large_batches_become_compute_bound_and_throughput_saturates() {
        let r = llama_8b_q4k();
        let big = r.at(512, 1);
        let flops = decode_flops_per_step(&r.config, 512, 4096) / 2000e9 * 1e3;
        let weights = r.weights.whole_bytes + 512 * r.weights.row_bytes;
        let bytes = (weights as f64 + 131_072.0 * 4096.0 * 512.0) / 100e9 * 1e3;
        assert!((big.tpot_ms - flops.max(bytes)).abs() < 1e-9);
        assert!(r.at(8, 1).tok_s > r.at(1, 1).tok_s * 4.0);
        assert!(r.at(2, 1).tpot_ms > r.at(1, 1).tpot_ms);
    }
}
