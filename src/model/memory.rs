//! How much memory one instance of a run needs: weights, KV cache and activations.

use super::{KvDtype, LlamaConfig};
use llamaperf_engine::attention::SCRATCH_VALUES_PER_POSITION;
use serde::{Deserialize, Serialize};

/// Estimated memory of one instance, bytes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MemoryEstimate {
    /// Weights as stored (read into memory, not mapped).
    pub weights_bytes: u64,
    /// KV cache: `2 * layers * kv_heads * head_dim * bytes * context * batch`.
    pub kv_cache_bytes: u64,
    /// Largest live activations during the prefill: the residual stream and its projections,
    /// the FFN intermediates, the attention scores held at once ([`ScoreMemory`]) and the logits.
    pub activation_bytes: u64,
}

/// How an engine holds a layer's attention scores while it prefills a prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScoreMemory {
    /// Every prompt position over the whole context at once (candle, PyTorch; the bound when
    /// the engine is not known).
    Whole,
    /// At most this many prompt tokens at a time, over the whole context (llama.cpp's
    /// `n_ubatch`).
    Pieces(usize),
    /// Tiles of keys, as flash attention (tuned): no layer-wide matrix, only each of `threads`
    /// threads' scratch over the context ([`SCRATCH_VALUES_PER_POSITION`]).
    Tiled {
        /// Threads of the instance.
        threads: usize,
    },
}

impl ScoreMemory {
    /// f32 scores held at once for `batch` prompts of `prompt` tokens over `context`
    /// positions, with `heads` query heads.
    fn values(self, heads: u64, batch: u64, prompt: u64, context: u64) -> u64 {
        match self {
            ScoreMemory::Whole => heads * batch * prompt * context,
            ScoreMemory::Pieces(tokens) => heads * (batch * prompt).min(tokens as u64) * context,
            ScoreMemory::Tiled { threads } => {
                (threads * SCRATCH_VALUES_PER_POSITION) as u64 * context
            }
        }
    }
}

impl MemoryEstimate {
    /// The estimate for `batch` sequences of `context` tokens, `prompt` of them prefilled at once,
    /// with a KV cache of `kv` values (a run's own: `RunConfig::kv_dtype`) and attention
    /// scores held as `scores` says.
    pub fn new(
        config: &LlamaConfig,
        weights_bytes: u64,
        (batch, prompt, context): (usize, usize, usize),
        kv: KvDtype,
        scores: ScoreMemory,
    ) -> Self {
        let (b, p, ctx) = (batch as u64, prompt as u64, context as u64);
        let f32_bytes = 4u64;
        let per_token = (4 * config.hidden + 2 * config.kv_dim() + 3 * config.ffn) as u64;
        let scores = scores.values(config.heads as u64, b, p, ctx);
        MemoryEstimate {
            weights_bytes,
            kv_cache_bytes: config.kv_bytes_per_token(kv) * ctx * b,
            activation_bytes: f32_bytes * (b * (p * per_token + config.vocab as u64) + scores),
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
            (4, 512, 1024),
            KvDtype::F32,
            ScoreMemory::Whole,
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

    #[test]
    fn a_long_prompt_holds_the_scores_its_engine_holds() {
        let p = find_preset("llama-3.2-1b").unwrap();
        let estimate = |scores| {
            MemoryEstimate::new(&p.config, 0, (1, 32768, 32784), KvDtype::F16, scores)
                .activation_bytes
        };
        let per_token = 4 * 2048 + 2 * 512 + 3 * 8192;
        let rest = 4 * (32768 * per_token + 128_256);
        // 32 heads x 32768 positions x 32784 keys: 137 GB, as the old estimate for every engine
        assert_eq!(estimate(ScoreMemory::Whole), rest + 4 * 32 * 32768 * 32784);
        // llama.cpp's pieces of 512 tokens: 2.1 GB
        assert_eq!(
            estimate(ScoreMemory::Pieces(512)),
            rest + 4 * 32 * 512 * 32784
        );
        // tuned on 2 threads: scores of 4 heads over the context each, 0.5 MB
        let tiled = estimate(ScoreMemory::Tiled { threads: 2 });
        assert_eq!(tiled, rest + 4 * 2 * 4 * 32784);
        assert!(tiled < 5_000_000_000, "{tiled} bytes");
    }
}
