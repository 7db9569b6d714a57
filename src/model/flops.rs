//! Work of a forward pass: floating-point operations of a prefill, bytes streamed per decode step.

use super::{KvDtype, LlamaConfig, StepWeights};

/// Weights multiplied per token by every transformer block (attention + SwiGLU projections).
fn block_matmul_params(c: &LlamaConfig) -> f64 {
    let (h, kv, ffn) = (c.hidden as f64, c.kv_dim() as f64, c.ffn as f64);
    2.0 * h * h + 2.0 * h * kv + 3.0 * h * ffn
}

/// Parameters of the model's matrices: every block's projections, the token embedding and
/// the output projection (counted twice where they are tied: a runtime that unties them keeps
/// both), as a dense runtime holds them once dequantized.
pub fn matrix_parameters(c: &LlamaConfig) -> u64 {
    (block_matmul_params(c) as u64) * c.layers as u64 + 2 * (c.vocab * c.hidden) as u64
}

/// FLOPs of prefilling `batch` prompts of `prompt` tokens after `depth` cached ones: 2 per
/// weight per token in every block, the causal attention products (QK^T and PV over
/// `depth + i` keys for position i: 2 x prompt x (prompt + 2 depth) x hidden per layer), and
/// the vocabulary projection of the last position.
pub fn prefill_flops(c: &LlamaConfig, batch: usize, depth: usize, prompt: usize) -> f64 {
    let (b, n, d) = (batch as f64, prompt as f64, depth as f64);
    let layers = c.layers as f64;
    let matmuls = 2.0 * block_matmul_params(c) * n * layers;
    let attention = 2.0 * n * (n + 2.0 * d) * c.hidden as f64 * layers;
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

/// Bytes a decode step reads, on average over a generation of `gen` tokens after `cached`
/// ones (depth and prompt): the weights it reads (each matrix and norm once, shared by the
/// batch; of an untied embedding table the batch's rows) plus each sequence's KV cache of `kv`
/// values so far.
pub fn decode_bytes_per_step(
    c: &LlamaConfig,
    weights: &StepWeights,
    batch: usize,
    cached: usize,
    gen: usize,
    kv: KvDtype,
) -> f64 {
    let mean_context = cached as f64 + gen as f64 / 2.0;
    let kv = c.kv_bytes_per_token(kv) as f64 * mean_context * batch as f64;
    weights.bytes(batch) as f64 + kv
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{find_preset, WeightDtype};

    #[test]
    fn prefill_of_llama_3_1_8b_is_about_two_flops_per_parameter_per_token() {
        let p = find_preset("llama-3.1-8b").unwrap();
        let per_token = prefill_flops(&p.config, 1, 0, 1000) / 1000.0;
        let params = p.param_count() as f64;
        // Embedding and output (1.05 B) are not multiplied per prompt token; attention adds a bit.
        assert!(
            per_token > 2.0 * (params - 1.06e9) && per_token < 2.0 * params,
            "{per_token}"
        );
        assert_eq!(
            prefill_flops(&p.config, 4, 0, 1000),
            4.0 * prefill_flops(&p.config, 1, 0, 1000)
        );
    }

    #[test]
    fn a_prompt_at_depth_attends_to_every_cached_key_as_well() {
        let c = &find_preset("llama-3.2-1b").unwrap().config;
        // the attention of 100 prompt tokens at depth 1000: 100 x 1000 more key/value pairs
        // (4 x hidden FLOPs each per layer) than at depth 0
        let extra = prefill_flops(c, 1, 1000, 100) - prefill_flops(c, 1, 0, 100);
        let want = 4.0 * 100.0 * 1000.0 * (c.hidden * c.layers) as f64;
        assert!((extra - want).abs() < 1e-6 * want, "{extra} vs {want}");
    }

    #[test]
    fn decode_reads_the_weights_and_the_kv_cache() {
        let p = find_preset("llama-3.1-8b").unwrap();
        let weights = StepWeights {
            whole_bytes: 1_000,
            row_bytes: 10,
            rows: 128_256,
        };
        let bytes = decode_bytes_per_step(&p.config, &weights, 2, 100, 20, KvDtype::F32);
        // 2 rows of the embedding; 2 x 32 layers x 1024 kv dims x 4 bytes per token, 110
        // tokens on average, 2 sequences.
        assert_eq!(bytes, 1_020.0 + (2 * 32 * 1024 * 4) as f64 * 110.0 * 2.0);
        let f16 = decode_bytes_per_step(&p.config, &weights, 2, 100, 20, KvDtype::F16);
        assert_eq!(f16, 1_020.0 + 131_072.0 * 110.0 * 2.0);
    }

    #[test]
    fn a_step_of_llama_3_1_8b_f16_reads_all_but_the_untied_embedding_table() {
        let p = find_preset("llama-3.1-8b").unwrap();
        let w = p.step_weights(WeightDtype::F16);
        // 128256 x 4096 f16 embedding table (1.05 GB): one 8 KiB row per sequence; the
        // 64 rope factors (256 bytes) are folded into tables at load.
        let table = 128_256 * 4096 * 2;
        assert_eq!(w.row_bytes, 4096 * 2);
        assert_eq!(w.rows, 128_256);
        assert_eq!(
            w.whole_bytes,
            p.weight_bytes(WeightDtype::F16) - table - 256
        );
        assert_eq!(w.bytes(1), w.whole_bytes + 8192);
        assert_eq!(w.bytes(1_000_000), w.whole_bytes + table);
        // 16.06 GB stored, 15.01 GB read per step.
        assert!((p.weight_bytes(WeightDtype::F16) as f64 / 1e9 - 16.061).abs() < 0.001);
        assert!((w.bytes(1) as f64 / 1e9 - 15.010).abs() < 0.001, "{w:?}");
    }

    #[test]
    fn a_step_of_llama_3_2_1b_reads_its_tied_embedding_whole() {
        let p = find_preset("llama-3.2-1b").unwrap();
        let w = p.step_weights(WeightDtype::F16);
        // The output projection reads the 128256 x 2048 table; only the 32 rope factors
        // (128 bytes) drop.
        assert_eq!((w.row_bytes, w.rows), (0, 0));
        assert_eq!(w.whole_bytes, p.weight_bytes(WeightDtype::F16) - 128);
        assert_eq!(w.bytes(8), w.whole_bytes);
        assert!((w.bytes(1) as f64 / 1e9 - 2.471).abs() < 0.001, "{w:?}");
    }

    #[test]
    fn a_synthetic_gguf_reads_as_its_preset_counts() {
        let dir = tempfile::tempdir().unwrap();
        let cache = crate::model::ModelCache::at(dir.path());
        let untied = find_preset("tiny").unwrap();
        // tiny's shape with Llama-3.2's tied embedding and rope factors
        let tied = crate::model::Preset {
            name: "tiny-tied",
            tied_embeddings: true,
            rope_scaling: find_preset("llama-3.2-1b").unwrap().rope_scaling,
            ..untied.clone()
        };
        for (p, dtype) in [
            (&untied, WeightDtype::Q8_0),
            (&tied, WeightDtype::F16),
            (&untied, WeightDtype::Q4KM),
            (&tied, WeightDtype::Q3KM),
        ] {
            let path = cache
                .get_or_synthesize(p, dtype, &Default::default())
                .unwrap()
                .0;
            let file = crate::model::ModelFile::open(&path).unwrap();
            assert_eq!(file.summary.step_reads, Some(p.step_weights(dtype)));
            // The estimate for records without the field is exact for the presets.
            let old = crate::model::file::ModelSummary {
                step_reads: None,
                ..file.summary.clone()
            };
            assert_eq!(old.step_weights(), p.step_weights(dtype));
        }
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
