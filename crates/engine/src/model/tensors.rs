//! Checks of a GGUF file's tensor directory before anything reads the weights: each tensor's
//! element count fits in 64 bits, its rows are whole blocks of its type, and its data lies
//! inside the file. A file that passes cannot make a reader allocate more than the file holds
//! or read past its end.

use super::header::Header;

/// What is wrong with one tensor of the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorProblem {
    /// The tensor's name.
    pub tensor: String,
    /// What is wrong, with the numbers.
    pub reason: String,
}

/// The first problem (by tensor name) of `header`'s tensors in a file of `file_bytes` bytes.
pub fn check_tensors(header: &Header, file_bytes: u64) -> Result<(), TensorProblem> {
    let mut names: Vec<&String> = header.tensors.keys().collect();
    names.sort();
    for name in names {
        let info = &header.tensors[name];
        let problem = |reason: String| TensorProblem {
            tensor: name.clone(),
            reason,
        };
        let dims = &info.dims;
        let elements = dims
            .iter()
            .try_fold(1u64, |n, &d| n.checked_mul(d as u64))
            .ok_or_else(|| problem(format!("has dimensions {dims:?}: more than 2^64 elements")))?;
        let block = info.dtype.block_size() as u64;
        let row = dims.last().copied().unwrap_or(1) as u64;
        if !row.is_multiple_of(block) {
            return Err(problem(format!(
                "has rows of {row} values, not whole blocks of {block} ({})",
                info.dtype
            )));
        }
        let bytes = (elements / block)
            .checked_mul(info.dtype.type_size() as u64)
            .ok_or_else(|| problem(format!("has dimensions {dims:?}: more than 2^64 bytes")))?;
        let start = header.content.tensor_data_offset.checked_add(info.offset);
        let end = start.and_then(|s| s.checked_add(bytes));
        match (start, end) {
            (Some(_), Some(end)) if end <= file_bytes => {}
            (start, _) => {
                return Err(problem(format!(
                    "has {bytes} bytes of data (dimensions {dims:?}, {}) at byte {}, past the end of the file ({file_bytes} bytes): the file is cut short or its directory is corrupt",
                    info.dtype,
                    start.map_or("beyond 2^64".to_string(), |s| s.to_string())
                )))
            }
        }
    }
    Ok(())
}
