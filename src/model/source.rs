//! How a run names its model: a preset in a data type, a local GGUF file, or a Hugging Face
//! model folder.

use super::{find_preset, ModelCache, ModelError, Preset, WeightDtype};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// How results name the data type of a GGUF file's run, whose tensors keep their own types
/// (run ids, summary.csv, reports, plans).
pub const FILE_DTYPE: &str = "file";

/// The data type of a run as results name it: the preset's, or [`FILE_DTYPE`].
pub fn dtype_label(dtype: Option<WeightDtype>) -> String {
    dtype.map_or_else(|| FILE_DTYPE.to_string(), |d| d.to_string())
}

/// Default data type of a preset when none is given.
pub const DEFAULT_DTYPE: WeightDtype = WeightDtype::Q4K;

/// A model as a user names it.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelRef {
    /// A synthetic model of a preset's shape.
    Preset {
        /// The shape.
        preset: Preset,
        /// Data type of its matrices.
        dtype: WeightDtype,
    },
    /// A GGUF file on disk (its data types are its own).
    File(PathBuf),
    /// A Hugging Face model folder on disk (`config.json`, safetensors weights): engine
    /// `torch` only.
    Folder(PathBuf),
}

/// How a model's weights are stored, which decides the engines that can load it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelFormat {
    /// A GGUF file: every engine.
    Gguf,
    /// A Hugging Face model folder: engine `torch` only.
    HfFolder,
}

/// A model resolved to a file (or a Hugging Face folder), as the worker receives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResolvedModel {
    /// Name for tables and results: the preset name or the file or folder path as given.
    pub name: String,
    /// Data type of the matrices for presets; `None` for files and folders (see the loaded
    /// model's summary).
    pub dtype: Option<WeightDtype>,
    /// Where the GGUF file (or the Hugging Face folder) is.
    pub path: PathBuf,
    /// Whether the weights are synthetic (random).
    pub synthetic: bool,
}

impl ModelRef {
    /// Parses a model name: a preset name, else a folder that exists, else a file path (which
    /// must end in `.gguf`, contain a `/` or exist).
    pub fn parse(name: &str, dtype: Option<WeightDtype>) -> Result<Self, ModelError> {
        if let Some(preset) = find_preset(name) {
            return Ok(ModelRef::Preset {
                preset,
                dtype: dtype.unwrap_or(DEFAULT_DTYPE),
            });
        }
        let path = PathBuf::from(name);
        if path.is_dir() {
            return Ok(ModelRef::Folder(path));
        }
        if name.ends_with(".gguf") || name.contains('/') || path.exists() {
            return Ok(ModelRef::File(path));
        }
        Err(ModelError::UnknownModel {
            given: name.to_string(),
        })
    }

    /// The name shown in tables and results.
    pub fn name(&self) -> String {
        match self {
            ModelRef::Preset { preset, .. } => preset.name.to_string(),
            ModelRef::File(path) | ModelRef::Folder(path) => path.display().to_string(),
        }
    }

    /// How its weights are stored.
    pub fn format(&self) -> ModelFormat {
        match self {
            ModelRef::Preset { .. } | ModelRef::File(_) => ModelFormat::Gguf,
            ModelRef::Folder(_) => ModelFormat::HfFolder,
        }
    }

    /// Whether it is stored with data types of its own (a file or a folder): a `dtype` given
    /// with it is ignored.
    pub fn keeps_own_dtypes(&self) -> bool {
        !matches!(self, ModelRef::Preset { .. })
    }

    /// Where the model's file is, without writing it: the cache's path of a synthetic
    /// model (which may not exist yet, see [`ModelCache::materialize`]) or the given path.
    pub fn locate(&self, cache: &ModelCache) -> ResolvedModel {
        match self {
            ModelRef::Preset { preset, dtype } => ResolvedModel {
                name: self.name(),
                dtype: Some(*dtype),
                path: cache.synthetic_path(preset, *dtype),
                synthetic: true,
            },
            ModelRef::File(path) | ModelRef::Folder(path) => ResolvedModel {
                name: self.name(),
                dtype: None,
                path: path.clone(),
                synthetic: false,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_paths_and_unknown_names() {
        assert!(matches!(
            ModelRef::parse("tiny", None).unwrap(),
            ModelRef::Preset {
                dtype: DEFAULT_DTYPE,
                ..
            }
        ));
        assert!(matches!(
            ModelRef::parse("models/x.gguf", None).unwrap(),
            ModelRef::File(_)
        ));
        let folder = tempfile::tempdir().unwrap();
        let name = folder.path().to_str().unwrap();
        let model = ModelRef::parse(name, None).unwrap();
        assert_eq!(model, ModelRef::Folder(folder.path().to_path_buf()));
        assert_eq!(model.format(), ModelFormat::HfFolder);
        assert_eq!(model.name(), name);
        let err = ModelRef::parse("llama-9", None).unwrap_err().to_string();
        assert!(
            err.contains("llama-9") && err.contains("llama-3.1-8b"),
            "{err}"
        );
        let err = ModelRef::parse("llama-3.2-1c", None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("did you mean 'llama-3.2-1b'?"), "{err}");
    }
}
