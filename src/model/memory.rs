//! How much memory one instance of a run needs: weights, KV cache and activations.

use super::{KvDtype, LlamaConfig};
use serde::{Deserialize, Serialize};

/// Estimated memory of one instance, bytes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MemoryEstimate {
    /// Weights as stored (read into memory, not mapped).
    pub weights_bytes: u64,
    /// KV cache: `2 * layers * kv_heads * head_dim * bytes * context * batch`.
    pub kv_cache_bytes: u64,
    /// Largest live activations during the prefill: the residual stream and its projections,
    /// the FFN intermediates, one layer's attention scores and the logits.
    pub activation_bytes: u64,
}

impl MemoryEstimate {
    /// The estimate for `batch` sequences of `context` tokens, `prompt` of them prefilled at once,
    /// with a KV cache of `kv` values (a run's own: `RunConfig::kv_dtype`).
    pub fn new(
        config: &LlamaConfig,
        weights_bytes: u64,
        batch: usize,
        prompt: usize,
        context: usize,
        kv: KvDtype,
    ) -> Self {
        let (b, p, ctx) = (batch as u64, prompt as u64, context as u64);
        let f32_bytes = 4u64;
        let per_token = (4 * config.hidden + 2 * config.kv_dim() + 3 * config.ffn) as u64;
        let scores = config.heads as u64 * p * ctx;
        MemoryEstimate {
            weights_bytes,
            kv_cache_bytes: config.kv_bytes_per_token(kv) * ctx * b,
            activation_bytes: f32_bytes * b * (p * per_token + scores + config.vocab as u64),
        }
    }

    /// Weights + KV cache + activations.
    pub fn total_bytes(&self) -> u64 {
        self.weights_bytes + self.kv_cache_bytes + self.activation_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{find_preset, KvDtype, WeightDtype};

    #[test]
    fn llama_3_1_8b_kv_cache_by_hand() {
        let p = find_preset("llama-3.1-8b").unwrap();
        let e = MemoryEstimate::new(
            &p.config,
            p.weight_bytes(WeightDtype::Q4K),
            4,
            512,
            1024,
            KvDtype::F32,
        );
        // 2 (K and V) x 32 layers x 8 kv heads x 128 dims x 4 bytes x 1024 tokens x 4 sequences.
        assert_eq!(e.kv_cache_bytes, 2 * 32 * 8 * 128 * 4 * 1024 * 4);
        assert_eq!(e.weights_bytes, p.weight_bytes(WeightDtype::Q4K));
        let scores = 32 * 512 * 1024;
        let per_token = 4 * 4096 + 2 * 1024 + 3 * 14336;
        assert_eq!(
            e.activation_bytes,
            4 * 4 * (512 * per_token + scores + 128_256)
        );
        assert_eq!(
            e.total_bytes(),
            e.weights_bytes + e.kv_cache_bytes + e.activation_bytes
        );
    }
}
