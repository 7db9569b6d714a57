//! A run's model opened for what must be known before it loads (shape, size, tokenizer): a
//! GGUF file, or a Hugging Face model folder.

use super::hf::HfFolder;
use super::source::ModelFormat;
use super::{ModelError, ModelFile};
use llamaperf_engine::model::ModelSummary;
use std::path::Path;

/// A model opened without reading its weights.
#[derive(Debug)]
pub enum OpenedModel {
    /// A GGUF file: header and tensor directory.
    Gguf(ModelFile),
    /// A Hugging Face folder: config and safetensors headers.
    Folder(HfFolder),
}

impl OpenedModel {
    /// Opens `path`: a folder as a Hugging Face model folder, anything else as a GGUF file.
    pub fn open(path: &Path) -> Result<Self, ModelError> {
        if path.is_dir() {
            Ok(OpenedModel::Folder(HfFolder::open(path)?))
        } else {
            Ok(OpenedModel::Gguf(ModelFile::open(path)?))
        }
    }

    /// Shape, parameters and stored size.
    pub fn summary(&self) -> &ModelSummary {
        match self {
            OpenedModel::Gguf(file) => &file.summary,
            OpenedModel::Folder(folder) => &folder.summary,
        }
    }

    /// The summary, the model dropped.
    pub fn into_summary(self) -> ModelSummary {
        match self {
            OpenedModel::Gguf(file) => file.summary,
            OpenedModel::Folder(folder) => folder.summary,
        }
    }

    /// How its weights are stored.
    pub fn format(&self) -> ModelFormat {
        match self {
            OpenedModel::Gguf(_) => ModelFormat::Gguf,
            OpenedModel::Folder(_) => ModelFormat::HfFolder,
        }
    }
}
