//! Work of a forward pass: floating-point operations of a prefill, bytes streamed per decode step.

use super::{KvDtype, LlamaConfig};

/// Weights multiplied per token by every transformer block (attention + SwiGLU projections).
fn block_matmul_params(c: &LlamaConfig) -> f64 {
    let (h, kv, ffn) = (c.hidden as f64, c.kv_dim() as f64, c.ffn as f64);
    2.0 * h * h + 2.0 * h * kv + 3.0 * h * ffn
}

/// FLOPs of prefilling `batch` prompts of `prompt` tokens: 2 per weight per token in every
/// block, the causal attention products (QK^T and PV: 2 x prompt^2 x hidden per layer), and the
/// vocabulary projection of the last position.
pub fn prefill_flops(c: &LlamaConfig, batch: usize, prompt: usize) -> f64 {
    let (b, n) = (batch as f64, prompt as f64);
    let layers = c.layers as f64;
    let matmuls = 2.0 * block_matmul_params(c) * n * layers;
    let attention = 2.0 * n * n * c.hidden as f64 * layers;
    let output = 2.0 * (c.vocab * c.hidden) as f64;
    b * (matmuls + attention + output)
}

/// FLOPs of one decode step of `batch` sequences whose KV caches hold `context` tokens: 2 per
/// weight per sequence in every block, attention over the context (QK^T and PV: 4 x context x
/// hidden per layer), and the vocabulary projection.
pub fn decode_flops_per_step(c: &LlamaConfig, batch: usize, context: usize) -> f64 {
    let layers = c.layers as f64;
    let matmuls = 2.0 * block_matmul_params(c) * layers;
    let attention = 4.0 * context as f64 * c.hidden as f64 * layers;
    let output = 2.0 * (c.vocab * c.hidden) as f64;
    batch as f64 * (matmuls + attention + output)
}

/// Bytes a decode step reads, on average over a generation of `gen` tokens after `prompt`:
/// every weight once (shared by the batch) plus each sequence's KV cache of `kv` values so far.
pub fn decode_bytes_per_step(
    c: &LlamaConfig,
    weights_bytes: u64,
    batch: usize,
    prompt: usize,
    gen: usize,
    kv: KvDtype,
) -> f64 {
    let mean_context = prompt as f64 + gen as f64 / 2.0;
    let kv = c.kv_bytes_per_token(kv) as f64 * mean_context * batch as f64;
    weights_bytes as f64 + kv
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::find_preset;

    #[test]
    fn prefill_of_llama_3_1_8b_is_about_two_flops_per_parameter_per_token() {
        let p = find_preset("llama-3.1-8b").unwrap();
        let per_token = prefill_flops(&p.config, 1, 1000) / 1000.0;
        let params = p.param_count() as f64;
        // Embedding and output (1.05 B) are not multiplied per prompt token; attention adds a bit.
        assert!(
            per_token > 2.0 * (params - 1.06e9) && per_token < 2.0 * params,
            "{per_token}"
        );
        assert_eq!(
            prefill_flops(&p.config, 4, 1000),
            4.0 * prefill_flops(&p.config, 1, 1000)
        );
    }

    #[test]
    fn decode_reads_the_weights_and_the_kv_cache() {
        let p = find_preset("llama-3.1-8b").unwrap();
        let bytes = decode_bytes_per_step(&p.config, 1_000, 2, 100, 20, KvDtype::F32);
        // 2 x 32 layers x 1024 kv dims x 4 bytes per token, 110 tokens on average, 2 sequences.
        assert_eq!(bytes, 1_000.0 + (2 * 32 * 1024 * 4) as f64 * 110.0 * 2.0);
        let f16 = decode_bytes_per_step(&p.config, 1_000, 2, 100, 20, KvDtype::F16);
        assert_eq!(f16, 1_000.0 + 131_072.0 * 110.0 * 2.0);
    }

    #[test]
    fn decode_step_is_two_flops_per_block_weight_plus_attention_and_output() {
        let p = find_preset("llama-3.1-8b").unwrap();
        let c = &p.config;
        let block = 2 * 4096 * 4096 + 2 * 4096 * 1024 + 3 * 4096 * 14336;
        let want = 3.0
            * (2.0 * 32.0 * block as f64 + 4.0 * 1000.0 * 4096.0 * 32.0 + 2.0 * 128_256.0 * 4096.0);
        assert_eq!(decode_flops_per_step(c, 3, 1000), want);
    }
}
