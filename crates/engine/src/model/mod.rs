//! GGUF model files as the engines read them: the Llama shape, the weight and KV cache data
//! types, and an opened file's header and tensor directory.

pub mod config;
pub mod dtype;
pub mod file;
pub mod header;
pub mod iq4_quantize;
pub mod tensor_type;
pub mod tensors;

pub use config::LlamaConfig;
pub use dtype::{KvDtype, WeightDtype};
pub use file::{ModelFile, ModelSummary, StepWeights, TensorRead};
pub use header::{Header, TensorEntry};
pub use tensor_type::TensorType;

use std::path::{Path, PathBuf};

/// What can go wrong when opening or reading a GGUF model file.
#[derive(Debug, thiserror::Error)]
pub enum ModelFileError {
    /// The model file does not exist.
    #[error("model file not found: {0}")]
    NotFound(PathBuf),
    /// The path is a directory, a device or another thing that is not a file.
    #[error("{0} is not a regular file")]
    NotRegularFile(PathBuf),
    /// The file exists but is not a GGUF file.
    #[error("{path} is not a GGUF model file ({reason})")]
    NotGguf {
        /// The file.
        path: PathBuf,
        /// What the GGUF reader said.
        reason: String,
    },
    /// The GGUF file holds another architecture.
    #[error("not a Llama model: general.architecture is '{architecture}', llamaperf runs 'llama'")]
    NotLlama {
        /// The architecture the file states.
        architecture: String,
    },
    /// A required metadata key is missing.
    #[error("GGUF metadata key '{0}' is missing")]
    MissingMetadata(String),
    /// A metadata key has an unusable value.
    #[error("GGUF metadata key '{0}' has an unusable value")]
    BadMetadata(String),
    /// A tensor's directory entry is unusable: its size, its type's blocks, or its data beyond
    /// the end of the file.
    #[error("{path} is not a usable GGUF model file: tensor '{tensor}' {reason}")]
    BadTensor {
        /// The file.
        path: PathBuf,
        /// The tensor's name.
        tensor: String,
        /// What is wrong, with the numbers.
        reason: String,
    },
    /// A required tensor is missing.
    #[error("GGUF tensor '{0}' is missing")]
    MissingTensor(String),
    /// A file system operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
}

impl ModelFileError {
    /// An I/O error about `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        ModelFileError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// Whether the error is the user's to fix (a path, a file), as opposed to a failure of
    /// the machine (disk full, permissions).
    pub fn is_input_error(&self) -> bool {
        !matches!(self, ModelFileError::Io { .. })
    }
}
