//! A GGUF file's header with tensors of any type llamaperf reads. candle's `Content::read`
//! refuses a whole file when one tensor's type is one it does not know (IQ4_NL, IQ4_XS:
//! "unknown dtype for tensor 23"), so candle reads the metadata only (it is shown a tensor
//! count of 0) and the tensor directory that follows is read here, as the GGUF specification
//! lays it out: per tensor its name, dimension count, dimensions (innermost first), type id
//! and data offset.

use super::tensor_type::TensorType;
use candle_core::quantized::gguf_file::{Content, TensorInfo, Value};
use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};

/// Most dimensions of a GGUF tensor (ggml's `GGML_MAX_DIMS`).
const MOST_DIMS: u32 = 4;

/// Data alignment when the file does not state `general.alignment`.
const DEFAULT_ALIGNMENT: u64 = 32;

/// One tensor of the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorEntry {
    /// Its type.
    pub dtype: TensorType,
    /// Its dimensions, outermost first (rows, then columns), as candle's shapes.
    pub dims: Vec<usize>,
    /// Where its data starts, in bytes from the start of the data section.
    pub offset: u64,
}

impl TensorEntry {
    /// Number of values.
    pub fn elements(&self) -> usize {
        self.dims.iter().product()
    }
}

/// A GGUF header: candle's metadata (its `tensor_infos` hold the tensors of the types candle
/// reads, so candle can still load those) and the whole tensor directory.
#[derive(Debug)]
pub struct Header {
    /// Metadata, the tensors of candle's types and the data section's offset.
    pub content: Content,
    /// Every tensor, by name.
    pub tensors: HashMap<String, TensorEntry>,
}

/// Why a GGUF header cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum HeaderError {
    /// candle's reader refused the magic, the version or the metadata.
    #[error("{0}")]
    Candle(String),
    /// The tensor directory is cut short or unreadable.
    #[error("tensor directory: {0}")]
    Io(#[from] std::io::Error),
    /// A tensor's entry is unusable.
    #[error("tensor {index} ('{name}'): {reason}")]
    BadEntry {
        /// Its place in the directory.
        index: u64,
        /// Its name, as far as it was read.
        name: String,
        /// What is wrong.
        reason: String,
    },
}

/// Reads the header of the GGUF file `reader` holds (from its start).
pub fn read_header<R: Read + Seek>(reader: &mut R) -> Result<Header, HeaderError> {
    let file_bytes = reader.seek(SeekFrom::End(0))?;
    reader.seek(SeekFrom::Start(0))?;
    let mut start = [0u8; 8];
    // GGUF v1 counts in 32 bits, v2 and v3 in 64; a file too short to say is candle's to refuse
    let wide = match reader.read_exact(&mut start) {
        Ok(()) => u32::from_le_bytes([start[4], start[5], start[6], start[7]]) >= 2,
        Err(_) => true,
    };
    reader.seek(SeekFrom::Start(0))?;
    let count_bytes = if wide { 8 } else { 4 };
    let mut metadata_only = WithoutTensors {
        inner: &mut *reader,
        position: 0,
        count: 8..8 + count_bytes,
    };
    let mut content = Content::read(&mut metadata_only)
        .map_err(|e| HeaderError::Candle(crate::candle_error::cause(&e)))?;
    let end_of_metadata = metadata_only.position;
    reader.seek(SeekFrom::Start(8))?;
    let count = read_count(reader, wide)?;
    reader.seek(SeekFrom::Start(end_of_metadata))?;
    let mut tensors = HashMap::new();
    for index in 0..count {
        let (name, entry) = read_entry(reader, wide, index, file_bytes)?;
        if let TensorType::Candle(ggml_dtype) = entry.dtype {
            let info = TensorInfo {
                ggml_dtype,
                shape: candle_core::Shape::from(entry.dims.clone()),
                offset: entry.offset,
            };
            content.tensor_infos.insert(name.clone(), info);
        }
        tensors.insert(name, entry);
    }
    let alignment = alignment(&content.metadata);
    content.tensor_data_offset = reader.stream_position()?.div_ceil(alignment) * alignment;
    Ok(Header { content, tensors })
}

/// The data alignment `general.alignment` states (any non-negative integer type), else 32.
fn alignment(metadata: &HashMap<String, Value>) -> u64 {
    let stated = match metadata.get("general.alignment") {
        Some(Value::U8(v)) => u64::from(*v),
        Some(Value::U16(v)) => u64::from(*v),
        Some(Value::U32(v)) => u64::from(*v),
        Some(Value::I8(v)) => u64::try_from(*v).unwrap_or(0),
        Some(Value::I16(v)) => u64::try_from(*v).unwrap_or(0),
        Some(Value::I32(v)) => u64::try_from(*v).unwrap_or(0),
        _ => 0,
    };
    if stated == 0 {
        DEFAULT_ALIGNMENT
    } else {
        stated
    }
}

fn read_u32(reader: &mut impl Read) -> std::io::Result<u32> {
    let mut b = [0u8; 4];
    reader.read_exact(&mut b)?;
    Ok(u32::from_le_bytes(b))
}

fn read_u64(reader: &mut impl Read) -> std::io::Result<u64> {
    let mut b = [0u8; 8];
    reader.read_exact(&mut b)?;
    Ok(u64::from_le_bytes(b))
}

/// A count or length: 64 bits in GGUF v2 and v3 (`wide`), 32 in v1.
fn read_count(reader: &mut impl Read, wide: bool) -> std::io::Result<u64> {
    if wide {
        read_u64(reader)
    } else {
        read_u32(reader).map(u64::from)
    }
}

/// Directory entry `index`, in a file of `file_bytes` bytes.
fn read_entry<R: Read + Seek>(
    reader: &mut R,
    wide: bool,
    index: u64,
    file_bytes: u64,
) -> Result<(String, TensorEntry), HeaderError> {
    let bad = |name: &str, reason: String| HeaderError::BadEntry {
        index,
        name: name.to_string(),
        reason,
    };
    let length = read_count(reader, wide)?;
    let left = file_bytes.saturating_sub(reader.stream_position()?);
    if length > left {
        return Err(bad("", format!("a name of {length} bytes, {left} left")));
    }
    let mut name = vec![0u8; length as usize];
    reader.read_exact(&mut name)?;
    let name = String::from_utf8_lossy(&name).into_owned();
    let n_dims = read_u32(reader)?;
    if n_dims > MOST_DIMS {
        return Err(bad(
            &name,
            format!("{n_dims} dimensions, at most {MOST_DIMS}"),
        ));
    }
    let mut dims = (0..n_dims)
        .map(|_| read_count(reader, wide).map(|d| d as usize))
        .collect::<std::io::Result<Vec<usize>>>()?;
    dims.reverse();
    let id = read_u32(reader)?;
    let dtype = TensorType::from_id(id).ok_or_else(|| {
        bad(
            &name,
            format!(
                "ggml type {id}, which llamaperf does not read (it reads f32, f16, bf16, q4_0, \
                 q4_1, q5_0, q5_1, q8_0, q2_k to q6_k, iq4_nl and iq4_xs)"
            ),
        )
    })?;
    let offset = read_u64(reader)?;
    Ok((
        name,
        TensorEntry {
            dtype,
            dims,
            offset,
        },
    ))
}

/// A reader of a GGUF file that shows its tensor count (bytes `count`) as 0, so that candle's
/// `Content::read` stops after the metadata, and knows where it stopped.
struct WithoutTensors<'a, R> {
    inner: &'a mut R,
    position: u64,
    count: std::ops::Range<u64>,
}

impl<R: Read> Read for WithoutTensors<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        for (i, byte) in buf[..n].iter_mut().enumerate() {
            if self.count.contains(&(self.position + i as u64)) {
                *byte = 0;
            }
        }
        self.position += n as u64;
        Ok(n)
    }
}

impl<R: Seek> Seek for WithoutTensors<'_, R> {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        self.position = self.inner.seek(to)?;
        Ok(self.position)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// A GGUF v3 file with one metadata entry (`general.alignment`, u32) and the tensors
    /// `(name, dims innermost first, type id, offset)`.
    fn gguf(tensors: &[(&str, &[u64], u32, u64)], alignment: u32) -> Vec<u8> {
        let mut b = b"GGUF".to_vec();
        b.extend(3u32.to_le_bytes());
        b.extend((tensors.len() as u64).to_le_bytes());
        b.extend(1u64.to_le_bytes());
        let key = "general.alignment";
        b.extend((key.len() as u64).to_le_bytes());
        b.extend(key.as_bytes());
        b.extend(4u32.to_le_bytes());
        b.extend(alignment.to_le_bytes());
        for (name, dims, id, offset) in tensors {
            b.extend((name.len() as u64).to_le_bytes());
            b.extend(name.as_bytes());
            b.extend((dims.len() as u32).to_le_bytes());
            dims.iter().for_each(|d| b.extend(d.to_le_bytes()));
            b.extend(id.to_le_bytes());
            b.extend(offset.to_le_bytes());
        }
        b
    }

    #[test]
    fn iq4_tensors_are_read_beside_the_types_candle_reads() {
        let bytes = gguf(
            &[
                ("a", &[256, 3], 23, 0),
                ("b", &[32], 0, 416),
                ("c", &[64, 2], 20, 544),
            ],
            64,
        );
        let header = read_header(&mut Cursor::new(&bytes)).unwrap();
        let entry = &header.tensors["a"];
        assert_eq!(
            (entry.dtype, entry.dims.clone(), entry.offset),
            (TensorType::Iq4Xs, vec![3, 256], 0)
        );
        assert_eq!(header.tensors["c"].dtype, TensorType::Iq4Nl);
        assert_eq!(header.tensors["c"].offset, 544);
        let infos = &header.content.tensor_infos;
        assert_eq!(infos.len(), 1, "candle holds its own types only");
        assert_eq!(infos["b"].shape.dims(), &[32]);
        assert_eq!(
            header.content.tensor_data_offset,
            bytes.len().div_ceil(64) as u64 * 64
        );
        assert_eq!(
            header.content.metadata["general.alignment"]
                .to_u32()
                .unwrap(),
            64
        );
    }

    #[test]
    fn the_same_header_reads_as_candle_reads_it_when_candle_knows_every_type() {
        let bytes = gguf(&[("x", &[32, 4], 8, 0), ("y", &[7], 0, 160)], 32);
        let header = read_header(&mut Cursor::new(&bytes)).unwrap();
        let candle = Content::read(&mut Cursor::new(&bytes)).unwrap();
        assert_eq!(header.content.tensor_data_offset, candle.tensor_data_offset);
        for (name, info) in &candle.tensor_infos {
            let ours = &header.content.tensor_infos[name];
            assert_eq!(
                (ours.ggml_dtype, ours.shape.dims(), ours.offset),
                (info.ggml_dtype, info.shape.dims(), info.offset)
            );
            assert_eq!(header.tensors[name].dims, info.shape.dims());
        }
    }

    #[test]
    fn unknown_types_and_cut_directories_are_errors_naming_the_tensor() {
        let bytes = gguf(&[("ok", &[32], 0, 0), ("odd", &[256], 21, 128)], 32);
        let err = read_header(&mut Cursor::new(&bytes))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("'odd'") && err.contains("ggml type 21"),
            "{err}"
        );
        let bytes = gguf(&[("ok", &[32], 0, 0)], 32);
        let cut = &bytes[..bytes.len() - 4];
        assert!(read_header(&mut Cursor::new(cut)).is_err());
        let err = read_header(&mut Cursor::new(b"GGUF".to_vec())).unwrap_err();
        assert!(matches!(err, HeaderError::Candle(_)), "{err}");
    }
}
