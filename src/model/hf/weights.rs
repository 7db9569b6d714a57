//! The tensor directory of a Hugging Face folder's safetensors files, read from their headers
//! (the 8-byte little-endian length, then the JSON directory) without reading a weight.

use safetensors::tensor::{Metadata, TensorInfo};
use safetensors::Dtype;
use serde::Deserialize;
use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The weights of an unsharded folder.
pub const SINGLE_FILE: &str = "model.safetensors";
/// The index of a sharded folder: which shard holds each tensor.
pub const SHARD_INDEX: &str = "model.safetensors.index.json";
/// The longest header read, bytes (safetensors' own limit).
const MAX_HEADER_BYTES: u64 = 100_000_000;

/// Why a folder's weights cannot be sized.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    /// Neither weight layout is there.
    #[error("{} has neither {SINGLE_FILE} nor {SHARD_INDEX}: llamaperf reads a folder's weights from safetensors files", .0.display())]
    NoWeights(PathBuf),
    /// A file is not a usable safetensors file or index.
    #[error("{} is not a usable safetensors {what}: {reason}", .path.display())]
    Unusable {
        /// The file.
        path: PathBuf,
        /// `file` or `index`.
        what: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A file system operation failed.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
}

impl WeightsError {
    fn unusable(path: &Path, reason: impl Into<String>) -> Self {
        WeightsError::Unusable {
            path: path.to_path_buf(),
            what: "file",
            reason: reason.into(),
        }
    }
}

/// One stored tensor: its data type and shape.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredTensor {
    /// Element type as stored.
    pub dtype: Dtype,
    /// Dimensions, outermost first (rows of a matrix first).
    pub shape: Vec<usize>,
}

impl StoredTensor {
    /// Number of values.
    pub fn elements(&self) -> u64 {
        self.shape.iter().map(|&d| d as u64).product()
    }

    /// Bytes as stored.
    pub fn bytes(&self) -> u64 {
        self.elements() * self.dtype.bitsize() as u64 / 8
    }
}

impl From<&TensorInfo> for StoredTensor {
    fn from(info: &TensorInfo) -> Self {
        StoredTensor {
            dtype: info.dtype,
            shape: info.shape.clone(),
        }
    }
}

/// `model.safetensors.index.json`: the shard of each tensor.
#[derive(Deserialize)]
struct ShardIndex {
    weight_map: HashMap<String, String>,
}

/// Every tensor of the folder `dir` by name, from `model.safetensors` or from the shards its
/// index names.
pub fn read_tensors(dir: &Path) -> Result<HashMap<String, StoredTensor>, WeightsError> {
    let single = dir.join(SINGLE_FILE);
    let index = dir.join(SHARD_INDEX);
    let files: Vec<PathBuf> = if single.is_file() {
        vec![single]
    } else if index.is_file() {
        let text = std::fs::read_to_string(&index).map_err(|source| WeightsError::Io {
            path: index.clone(),
            source,
        })?;
        let map: ShardIndex = serde_json::from_str(&text).map_err(|e| WeightsError::Unusable {
            path: index.clone(),
            what: "index",
            reason: e.to_string(),
        })?;
        let shards: BTreeSet<&String> = map.weight_map.values().collect();
        shards.into_iter().map(|s| dir.join(s)).collect()
    } else {
        return Err(WeightsError::NoWeights(dir.to_path_buf()));
    };
    let mut tensors = HashMap::new();
    for file in files {
        let directory = read_directory(&file)?;
        tensors.extend(
            directory
                .tensors()
                .into_iter()
                .map(|(name, info)| (name, StoredTensor::from(info))),
        );
    }
    Ok(tensors)
}

/// The tensor directory of the safetensors file `path`, checked against the file's size.
pub fn read_directory(path: &Path) -> Result<Metadata, WeightsError> {
    let io = |source| WeightsError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(io)?;
    let file_bytes = file.metadata().map_err(io)?.len();
    let mut length = [0u8; 8];
    file.read_exact(&mut length)
        .map_err(|_| WeightsError::unusable(path, "shorter than the 8-byte header length"))?;
    let header_bytes = u64::from_le_bytes(length);
    if header_bytes > MAX_HEADER_BYTES || 8 + header_bytes > file_bytes {
        return Err(WeightsError::unusable(
            path,
            format!("a header of {header_bytes} bytes in a file of {file_bytes}"),
        ));
    }
    let mut header = vec![0u8; header_bytes as usize];
    file.read_exact(&mut header).map_err(io)?;
    let directory: Metadata = serde_json::from_slice(&header)
        .map_err(|e| WeightsError::unusable(path, format!("header: {e}")))?;
    let needed = 8 + header_bytes + directory.data_len() as u64;
    if needed > file_bytes {
        return Err(WeightsError::unusable(
            path,
            format!("its tensors end at byte {needed}, the file has {file_bytes}"),
        ));
    }
    Ok(directory)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use safetensors::tensor::TensorView;

    /// Writes a safetensors file of `tensors` (name, type, shape), every value zero.
    pub(crate) fn write_safetensors(path: &Path, tensors: &[(&str, Dtype, Vec<usize>)]) {
        let data: Vec<Vec<u8>> = tensors
            .iter()
            .map(|(_, dtype, shape)| {
                vec![0u8; shape.iter().product::<usize>() * dtype.bitsize() / 8]
            })
            .collect();
        let views: Vec<(&str, TensorView<'_>)> = tensors
            .iter()
            .zip(&data)
            .map(|((name, dtype, shape), bytes)| {
                (
                    *name,
                    TensorView::new(*dtype, shape.clone(), bytes).unwrap(),
                )
            })
            .collect();
        safetensors::serialize_to_file(views, None, path).unwrap();
    }

    #[test]
    fn directories_are_read_from_single_files_and_shards() {
        let dir = tempfile::tempdir().unwrap();
        write_safetensors(
            &dir.path().join(SINGLE_FILE),
            &[("a", Dtype::BF16, vec![4, 8]), ("b", Dtype::F32, vec![3])],
        );
        let tensors = read_tensors(dir.path()).unwrap();
        assert_eq!(tensors["a"].bytes(), 64);
        assert_eq!(tensors["b"].elements(), 3);

        let sharded = tempfile::tempdir().unwrap();
        write_safetensors(
            &sharded.path().join("s1.safetensors"),
            &[("a", Dtype::F16, vec![2, 2])],
        );
        write_safetensors(
            &sharded.path().join("s2.safetensors"),
            &[("b", Dtype::F16, vec![5])],
        );
        std::fs::write(
            sharded.path().join(SHARD_INDEX),
            r#"{"metadata": {}, "weight_map": {"a": "s1.safetensors", "b": "s2.safetensors"}}"#,
        )
        .unwrap();
        let tensors = read_tensors(sharded.path()).unwrap();
        assert_eq!(tensors.len(), 2);
        assert_eq!(tensors["b"].bytes(), 10);
    }

    #[test]
    fn missing_and_truncated_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let e = read_tensors(dir.path()).unwrap_err().to_string();
        assert!(e.contains("neither model.safetensors nor"), "{e}");
        let file = dir.path().join(SINGLE_FILE);
        write_safetensors(&file, &[("a", Dtype::F32, vec![64])]);
        let bytes = std::fs::read(&file).unwrap();
        std::fs::write(&file, &bytes[..bytes.len() - 4]).unwrap();
        let e = read_tensors(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("model.safetensors is not a usable safetensors file")
                && e.contains("the file has"),
            "{e}"
        );
        std::fs::write(&file, b"{}").unwrap();
        let e = read_tensors(dir.path()).unwrap_err().to_string();
        assert!(e.contains("8-byte header length"), "{e}");
    }
}
