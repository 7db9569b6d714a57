//! Models: presets with true Llama shapes, synthetic GGUF files and their cache, local GGUF
//! files, Hugging Face model folders.

pub mod cache;
pub mod flops;
pub mod gguf_writer;
pub mod hf;
pub mod memory;
pub mod mix;
pub mod opened;
pub mod partials;
pub mod preset;
pub mod source;
pub mod synth;
pub mod tokenizer;

pub use cache::ModelCache;
pub use hf::{HfFolder, HfFolderError};
pub use llamaperf_engine::model::{config, dtype, file};
pub use llamaperf_engine::model::{
    KvDtype, LlamaConfig, ModelFile, ModelFileError, StepWeights, TensorType, WeightDtype,
};
pub use opened::OpenedModel;
pub use preset::{find_preset, presets, Preset};
pub use source::{ModelFormat, ModelRef};

use std::path::{Path, PathBuf};

/// What can go wrong when naming, synthesizing or opening a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// SIGINT/SIGTERM stopped a synthesis; its partial file is removed, nothing was cached.
    #[error("interrupted while synthesizing: nothing was cached")]
    Interrupted,
    /// The model name is neither a preset nor a path.
    #[error("unknown model '{given}'; did you mean '{}'? valid presets: {}, or a path to a .gguf file or a Hugging Face model folder", preset::nearest_preset(given), preset::preset_names().join(", "))]
    UnknownModel {
        /// The name as the user wrote it.
        given: String,
    },
    /// The data type name is not supported.
    #[error(transparent)]
    UnknownDtype(#[from] dtype::UnknownDtype),
    /// The GGUF file is missing or unusable.
    #[error(transparent)]
    File(#[from] ModelFileError),
    /// The Hugging Face folder is missing or unusable.
    #[error(transparent)]
    Folder(#[from] HfFolderError),
    /// The file has no tokenizer, or one llamaperf cannot use, and text was asked for.
    #[error("the model has no usable tokenizer ({0}); --prompt needs a GGUF with a gpt2 (BPE) vocabulary, or a Hugging Face folder with tokenizer.json")]
    NoTokenizer(String),
    /// No cache folder could be determined.
    #[error("no cache folder: set {} or HOME", cache::CACHE_ENV)]
    NoCacheDir,
    /// The cache's file system has too little free space for a synthetic model.
    #[error("synthesizing {model} needs {:.1} GB, but {} has {:.1} GB free: free space there or set {} to a folder on a larger disk", *.needed_bytes as f64 / 1e9, .dir.display(), *.free_bytes as f64 / 1e9, cache::CACHE_ENV)]
    NoSpace {
        /// The preset and data type, e.g. "llama-3.1-405b f32".
        model: String,
        /// Bytes of its weights.
        needed_bytes: u64,
        /// Bytes free in the cache folder.
        free_bytes: u64,
        /// The cache's folder of models.
        dir: PathBuf,
    },
    /// A file system operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// candle failed while quantizing or reading tensors.
    #[error("{}", crate::engine::candle_error::cause(.0))]
    Candle(candle_core::Error),
}

/// Holds candle's error as the message's cause only, not as a source, which a chain of
/// causes would print again with its backtrace.
impl From<candle_core::Error> for ModelError {
    fn from(err: candle_core::Error) -> Self {
        ModelError::Candle(err)
    }
}

impl ModelError {
    /// An I/O error about `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        ModelError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// Whether the error is the user's to fix (a name, a path, a file), as opposed to a failure
    /// of the machine (disk full, permissions) or of the library.
    pub fn is_input_error(&self) -> bool {
        match self {
            ModelError::File(e) => e.is_input_error(),
            ModelError::Folder(e) => e.is_input_error(),
            ModelError::Io { .. } | ModelError::Candle(_) => false,
            _ => true,
        }
    }
}
