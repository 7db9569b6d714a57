//! Opening a GGUF file: its metadata, shape and size, without reading the weights.

use super::dtype::tensor_bytes;
use super::{LlamaConfig, ModelFileError, WeightDtype};
use candle_core::quantized::gguf_file::Content;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

/// What a model file holds, in numbers a results table needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSummary {
    /// The model's shape.
    pub config: LlamaConfig,
    /// Number of weight values in all tensors.
    pub params: u64,
    /// Bytes of all tensors as stored.
    pub weight_bytes: u64,
    /// ggml type name of the first layer's query projection (the model's main type).
    pub dtype: String,
    /// Whether the output projection is the token embedding.
    pub tied_embeddings: bool,
    /// Whether the file carries Llama-3 RoPE frequency factors.
    pub rope_freqs: bool,
}

/// An opened GGUF file: its header and tensor directory are read, the weights are not.
#[derive(Debug)]
pub struct ModelFile {
    /// Where it is.
    pub path: PathBuf,
    /// Metadata and tensor directory.
    pub content: Content,
    /// Summary derived from the directory.
    pub summary: ModelSummary,
}

impl ModelFile {
    /// Opens `path`, checking that it is a Llama GGUF file.
    pub fn open(path: &Path) -> Result<Self, ModelFileError> {
        let file = File::open(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ModelFileError::NotFound(path.to_path_buf()),
            _ => ModelFileError::io(path, e),
        })?;
        let content =
            Content::read(&mut BufReader::new(file)).map_err(|e| ModelFileError::NotGguf {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
        let config = LlamaConfig::from_gguf(&content)?;
        let infos = &content.tensor_infos;
        let q = infos
            .get("blk.0.attn_q.weight")
            .ok_or_else(|| ModelFileError::MissingTensor("blk.0.attn_q.weight".into()))?;
        let dtype = WeightDtype::from_ggml(q.ggml_dtype)
            .map(|d| d.name().to_string())
            .unwrap_or_else(|| format!("{:?}", q.ggml_dtype).to_lowercase());
        let summary = ModelSummary {
            params: infos.values().map(|t| t.shape.elem_count() as u64).sum(),
            weight_bytes: infos
                .values()
                .map(|t| tensor_bytes(t.ggml_dtype, t.shape.elem_count() as u64))
                .sum(),
            dtype,
            tied_embeddings: !infos.contains_key("output.weight"),
            rope_freqs: infos.contains_key("rope_freqs.weight"),
            config,
        };
        Ok(ModelFile {
            path: path.to_path_buf(),
            content,
            summary,
        })
    }

    /// A string metadata value, if present.
    pub fn metadata_str(&self, key: &str) -> Option<&str> {
        self.content
            .metadata
            .get(key)
            .and_then(|v| v.to_string().ok())
            .map(String::as_str)
    }
}
