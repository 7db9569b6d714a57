//! Opening a GGUF file: its metadata, shape and size, without reading the weights.

use super::header::{read_header, TensorEntry};
use super::tensors::check_tensors;
use super::{LlamaConfig, ModelFileError, WeightDtype};
use candle_core::quantized::gguf_file::Content;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
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
    /// ggml type name of the first layer's query projection (the model's main type, `q4_k` in
    /// a Q4_K_M file), as [`TensorType::name`](super::TensorType::name) writes it.
    pub dtype: String,
    /// Whether the output projection is the token embedding.
    pub tied_embeddings: bool,
    /// Whether the file carries Llama-3 RoPE frequency factors.
    pub rope_freqs: bool,
    /// What a forward pass reads of the weights; absent in records written before it was
    /// recorded (see [`ModelSummary::step_weights`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_reads: Option<StepWeights>,
}

/// What a forward pass of the tuned engine reads of one tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TensorRead {
    /// All of it, once per pass, whatever the batch: the matrices, the norms, and a tied
    /// embedding table (the output projection reads it whole).
    Whole,
    /// One row per token looked up: an untied token embedding table.
    Rows,
    /// Nothing: the RoPE frequency factors are folded into tables when the model loads.
    Never,
}

impl TensorRead {
    /// What a pass reads of the tensor called `name` (GGUF naming) of a model whose output
    /// projection is (`tied`) or is not its token embedding.
    pub fn of(name: &str, tied: bool) -> Self {
        match name {
            "token_embd.weight" if !tied => TensorRead::Rows,
            "rope_freqs.weight" => TensorRead::Never,
            _ => TensorRead::Whole,
        }
    }
}

/// The weight bytes a forward pass reads: the tensors read whole once, plus one row of an
/// untied embedding table per token looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepWeights {
    /// Bytes of the tensors a pass reads whole, whatever its batch.
    pub whole_bytes: u64,
    /// Bytes of one row of the untied embedding table (0 when tied).
    pub row_bytes: u64,
    /// Rows of that table (its vocabulary; 0 when tied).
    pub rows: u64,
}

impl StepWeights {
    /// Sums `tensors`, each given as (GGUF name, rows, stored bytes), by [`TensorRead::of`].
    pub fn of<'a>(tensors: impl IntoIterator<Item = (&'a str, u64, u64)>, tied: bool) -> Self {
        let mut sum = StepWeights {
            whole_bytes: 0,
            row_bytes: 0,
            rows: 0,
        };
        for (name, rows, bytes) in tensors {
            match TensorRead::of(name, tied) {
                TensorRead::Whole => sum.whole_bytes += bytes,
                TensorRead::Rows => {
                    sum.rows = rows;
                    sum.row_bytes = bytes / rows.max(1);
                }
                TensorRead::Never => {}
            }
        }
        sum
    }

    /// Bytes of weights a pass reads that looks up `lookups` token ids (B for a decode step
    /// of B sequences, B x prompt tokens for a prefill); rows looked up twice count once.
    pub fn bytes(&self, lookups: usize) -> u64 {
        self.whole_bytes + self.row_bytes * (lookups as u64).min(self.rows)
    }
}

impl ModelSummary {
    /// What a forward pass reads of the weights. Records written before it was recorded give
    /// an estimate: every tensor but the f32 RoPE factors; of an untied embedding table, rows
    /// taken to be in the model's main type (exact for the synthetic presets).
    pub fn step_weights(&self) -> StepWeights {
        if let Some(reads) = self.step_reads {
            return reads;
        }
        let rope_bytes = if self.rope_freqs {
            4 * self.config.head_dim() as u64 / 2
        } else {
            0
        };
        let read = self.weight_bytes.saturating_sub(rope_bytes);
        let dtype = self.dtype.parse::<WeightDtype>().ok();
        match dtype.filter(|_| !self.tied_embeddings) {
            Some(d) => {
                let row_bytes = d.bytes_for(self.config.hidden as u64);
                let rows = self.config.vocab as u64;
                StepWeights {
                    whole_bytes: read.saturating_sub(rows * row_bytes),
                    row_bytes,
                    rows,
                }
            }
            None => StepWeights {
                whole_bytes: read,
                row_bytes: 0,
                rows: 0,
            },
        }
    }
}

/// An opened GGUF file: its header and tensor directory are read, the weights are not.
#[derive(Debug)]
pub struct ModelFile {
    /// Where it is.
    pub path: PathBuf,
    /// Metadata, and the tensors of the types candle reads (the reference engine loads
    /// through it).
    pub content: Content,
    /// Every tensor, IQ4_NL and IQ4_XS ones included, by name.
    pub tensors: HashMap<String, TensorEntry>,
    /// Summary derived from the directory.
    pub summary: ModelSummary,
}

impl ModelFile {
    /// Opens `path`, checking that it is a Llama GGUF file whose every tensor lies inside it.
    pub fn open(path: &Path) -> Result<Self, ModelFileError> {
        let not_found = |e: std::io::Error| match e.kind() {
            std::io::ErrorKind::NotFound => ModelFileError::NotFound(path.to_path_buf()),
            _ => ModelFileError::io(path, e),
        };
        if !std::fs::metadata(path).map_err(not_found)?.is_file() {
            return Err(ModelFileError::NotRegularFile(path.to_path_buf()));
        }
        let file = File::open(path).map_err(not_found)?;
        let file_bytes = file.metadata().map_err(not_found)?.len();
        let header =
            read_header(&mut BufReader::new(file)).map_err(|e| ModelFileError::NotGguf {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
        check_tensors(&header, file_bytes).map_err(|p| ModelFileError::BadTensor {
            path: path.to_path_buf(),
            tensor: p.tensor,
            reason: p.reason,
        })?;
        let config = LlamaConfig::from_gguf(&header)?;
        let infos = &header.tensors;
        let q = infos
            .get("blk.0.attn_q.weight")
            .ok_or_else(|| ModelFileError::MissingTensor("blk.0.attn_q.weight".into()))?;
        let dtype = q.dtype.name().to_string();
        let tied_embeddings = !infos.contains_key("output.weight");
        let bytes = |t: &TensorEntry| t.dtype.bytes_for(t.elements() as u64);
        let tensors = infos.iter().map(|(name, t)| {
            let rows = t.dims.first().copied().unwrap_or(1) as u64;
            (name.as_str(), rows, bytes(t))
        });
        let step_reads = Some(StepWeights::of(tensors, tied_embeddings));
        let summary = ModelSummary {
            params: infos.values().map(|t| t.elements() as u64).sum(),
            weight_bytes: infos.values().map(bytes).sum(),
            dtype,
            tied_embeddings,
            rope_freqs: infos.contains_key("rope_freqs.weight"),
            step_reads,
            config,
        };
        Ok(ModelFile {
            path: path.to_path_buf(),
            content: header.content,
            tensors: header.tensors,
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
