//! The shape of a Llama model, as presets define it and as GGUF metadata states it.

use super::{Header, KvDtype, ModelFileError};
use candle_core::quantized::gguf_file::Value;
use serde::{Deserialize, Serialize};

/// Hyper-parameters of a Llama-architecture model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlamaConfig {
    /// Number of transformer blocks.
    pub layers: usize,
    /// Width of the residual stream (embedding length).
    pub hidden: usize,
    /// Inner width of the SwiGLU feed-forward block.
    pub ffn: usize,
    /// Number of query heads.
    pub heads: usize,
    /// Number of key/value heads (grouped-query attention when below `heads`).
    pub kv_heads: usize,
    /// Vocabulary size (rows of the token embedding).
    pub vocab: usize,
    /// Longest sequence the model was trained for, in tokens.
    pub context: usize,
    /// RoPE base frequency (theta).
    pub rope_base: f32,
    /// Epsilon of the RMSNorm layers.
    pub rms_eps: f32,
}

impl LlamaConfig {
    /// Dimension of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden / self.heads
    }

    /// Width of the key (or value) projection: `kv_heads * head_dim`.
    pub fn kv_dim(&self) -> usize {
        self.kv_heads * self.head_dim()
    }

    /// Bytes of KV cache per token of context per sequence in `kv` (131072 for Llama-3.1-8B in
    /// f16): `2 * layers * kv_heads * head_dim * bytes`.
    pub fn kv_bytes_per_token(&self, kv: KvDtype) -> u64 {
        self.layers as u64 * kv.bytes_for(2 * self.kv_dim() as u64)
    }

    /// Reads the configuration from a GGUF file's metadata (and its token embedding's rows,
    /// where the metadata lacks the vocabulary size); the file must be a Llama model.
    pub fn from_gguf(header: &Header) -> Result<Self, ModelFileError> {
        let content = &header.content;
        let arch = content
            .metadata
            .get("general.architecture")
            .and_then(|v| v.to_string().ok())
            .cloned()
            .unwrap_or_default();
        if arch != "llama" {
            return Err(ModelFileError::NotLlama { architecture: arch });
        }
        let get = |key: &str| -> Result<&Value, ModelFileError> {
            content
                .metadata
                .get(&format!("llama.{key}"))
                .ok_or_else(|| ModelFileError::MissingMetadata(format!("llama.{key}")))
        };
        let int = |key: &str| -> Result<usize, ModelFileError> {
            let v = get(key)?;
            v.to_u32()
                .map(|v| v as usize)
                .or_else(|_| v.to_u64().map(|v| v as usize))
                .map_err(|_| ModelFileError::BadMetadata(format!("llama.{key}")))
        };
        let float = |key: &str| -> Result<f32, ModelFileError> {
            get(key)?
                .to_f32()
                .map_err(|_| ModelFileError::BadMetadata(format!("llama.{key}")))
        };
        let heads = int("attention.head_count")?;
        let vocab = match int("vocab_size") {
            Ok(v) => v,
            Err(_) => header
                .tensors
                .get("token_embd.weight")
                .and_then(|t| t.dims.first().copied())
                .ok_or_else(|| ModelFileError::MissingTensor("token_embd.weight".into()))?,
        };
        let config = LlamaConfig {
            layers: int("block_count")?,
            hidden: int("embedding_length")?,
            ffn: int("feed_forward_length")?,
            heads,
            kv_heads: int("attention.head_count_kv").unwrap_or(heads),
            vocab,
            context: int("context_length")?,
            rope_base: float("rope.freq_base").unwrap_or(10_000.0),
            rms_eps: float("attention.layer_norm_rms_epsilon")?,
        };
        if config.heads == 0
            || config.kv_heads == 0
            || !config.hidden.is_multiple_of(config.heads)
            || !config.heads.is_multiple_of(config.kv_heads)
        {
            return Err(ModelFileError::BadMetadata(format!(
                "llama.attention.head_count {} / head_count_kv {} do not divide embedding_length {}",
                config.heads, config.kv_heads, config.hidden
            )));
        }
        Ok(config)
    }
}
