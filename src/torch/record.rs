//! What a run record keeps of how the torch worker ran.

use super::protocol::Ready;
use super::settings::{TorchBackend, TorchDtype};
use crate::model::ModelFormat;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// How a `torch` run's model ran: the backend, the data type, the versions, and what was
/// dequantized on the way. The weights' type as stored is the record's `model.dtype`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TorchRecord {
    /// What torch did to the model.
    pub backend: TorchBackend,
    /// The data type weights and KV cache were kept in.
    pub dtype: TorchDtype,
    /// The interpreter of the environment that ran it.
    pub python: PathBuf,
    /// torch's version.
    pub torch: String,
    /// transformers' version.
    pub transformers: String,
    /// The extension and its version, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension: Option<String>,
    /// Whether the weights were dequantized from a GGUF file's types on load (false for a
    /// Hugging Face folder, whose weights are cast from their stored type to `dtype`).
    #[serde(default)]
    pub dequantized: bool,
    /// GGUF tensor types dequantized to `dtype` on load (empty for a Hugging Face folder):
    /// the run measures `dtype` arithmetic, not the file's quantized kernels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dequantized_from: Vec<String>,
    /// Reading and dequantizing the model, s (part of the record's `load_s`).
    pub read_s: f64,
    /// Compiling or optimizing it with the warm-up that finishes that, s (part of `load_s`,
    /// never of a measured phase).
    pub optimize_s: f64,
}

impl TorchRecord {
    /// The record of a worker of `backend` and `dtype` run by `python` on a model stored as
    /// `format` that reported `ready`.
    pub fn of(
        backend: TorchBackend,
        dtype: TorchDtype,
        python: PathBuf,
        format: ModelFormat,
        ready: &Ready,
    ) -> Self {
        TorchRecord {
            backend,
            dtype,
            python,
            dequantized: format == ModelFormat::Gguf,
            torch: ready.torch.clone(),
            transformers: ready.transformers.clone(),
            extension: ready.extension.clone(),
            dequantized_from: ready.source_dtypes.clone(),
            read_s: ready.load_s,
            optimize_s: ready.optimize_s,
        }
    }
}
