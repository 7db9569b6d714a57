//! A streaming GGUF (version 3) writer.
//!
//! candle's own writer needs every tensor in memory at once; synthetic models of many
//! gigabytes are instead written tensor by tensor from a caller-supplied filler.

use super::TensorType;
use std::io::{self, Write};

const GGUF_MAGIC: u32 = 0x4655_4747;
const GGUF_VERSION: u32 = 3;
/// Alignment of the tensor data section and of every tensor in it, in bytes.
pub const ALIGNMENT: u64 = 32;

/// A metadata value (the subset of GGUF value types llamaperf writes).
#[derive(Debug, Clone, PartialEq)]
pub enum MetaValue {
    /// GGUF type 4.
    U32(u32),
    /// GGUF type 6.
    F32(f32),
    /// GGUF type 7.
    Bool(bool),
    /// GGUF type 8.
    Str(String),
}

/// A tensor header: name, shape in candle order (`[rows, columns]`) and ggml type.
#[derive(Debug, Clone)]
pub struct TensorHeader {
    /// GGUF tensor name.
    pub name: String,
    /// Shape, outermost dimension first (GGUF stores it reversed).
    pub dims: Vec<usize>,
    /// Storage type.
    pub dtype: TensorType,
}

impl TensorHeader {
    /// Bytes of this tensor's data, without padding.
    pub fn data_bytes(&self) -> u64 {
        self.dtype
            .bytes_for(self.dims.iter().map(|&d| d as u64).product())
    }
}

fn padding(len: u64) -> u64 {
    (ALIGNMENT - len % ALIGNMENT) % ALIGNMENT
}

fn write_str(w: &mut impl Write, s: &str) -> io::Result<()> {
    w.write_all(&(s.len() as u64).to_le_bytes())?;
    w.write_all(s.as_bytes())
}

fn write_value(w: &mut impl Write, value: &MetaValue) -> io::Result<()> {
    match value {
        MetaValue::U32(v) => {
            w.write_all(&4u32.to_le_bytes())?;
            w.write_all(&v.to_le_bytes())
        }
        MetaValue::F32(v) => {
            w.write_all(&6u32.to_le_bytes())?;
            w.write_all(&v.to_le_bytes())
        }
        MetaValue::Bool(v) => {
            w.write_all(&7u32.to_le_bytes())?;
            w.write_all(&[u8::from(*v)])
        }
        MetaValue::Str(v) => {
            w.write_all(&8u32.to_le_bytes())?;
            write_str(w, v)
        }
    }
}

/// Writes a complete GGUF file: header, `metadata`, tensor directory, then each tensor's data,
/// produced by `fill(index, writer)`, which must write exactly `tensors[index].data_bytes()`.
pub fn write_gguf<W: Write>(
    w: &mut W,
    metadata: &[(&str, MetaValue)],
    tensors: &[TensorHeader],
    mut fill: impl FnMut(usize, &mut CountingWriter<&mut W>) -> io::Result<()>,
) -> io::Result<()> {
    let mut header = Vec::new();
    header.extend_from_slice(&GGUF_MAGIC.to_le_bytes());
    header.extend_from_slice(&GGUF_VERSION.to_le_bytes());
    header.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
    header.extend_from_slice(&(metadata.len() as u64).to_le_bytes());
    for (key, value) in metadata {
        write_str(&mut header, key)?;
        write_value(&mut header, value)?;
    }
    let mut offset = 0u64;
    for t in tensors {
        write_str(&mut header, &t.name)?;
        header.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
        for &d in t.dims.iter().rev() {
            header.extend_from_slice(&(d as u64).to_le_bytes());
        }
        header.extend_from_slice(&t.dtype.id().to_le_bytes());
        header.extend_from_slice(&offset.to_le_bytes());
        offset += t.data_bytes() + padding(t.data_bytes());
    }
    let pad = padding(header.len() as u64) as usize;
    header.resize(header.len() + pad, 0);
    w.write_all(&header)?;
    for (i, t) in tensors.iter().enumerate() {
        let mut counting = CountingWriter {
            inner: &mut *w,
            written: 0,
        };
        fill(i, &mut counting)?;
        if counting.written != t.data_bytes() {
            return Err(io::Error::other(format!(
                "tensor {} got {} bytes, needs {}",
                t.name,
                counting.written,
                t.data_bytes()
            )));
        }
        w.write_all(&vec![0u8; padding(t.data_bytes()) as usize])?;
    }
    w.flush()
}

/// A writer that counts the bytes passed through it.
pub struct CountingWriter<W> {
    inner: W,
    written: u64,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::quantized::gguf_file::Content;
    use candle_core::quantized::GgmlDType;
    use std::io::Cursor;

    #[test]
    fn candle_reads_back_what_we_write() {
        let tensors = vec![
            TensorHeader {
                name: "a".into(),
                dims: vec![3, 5],
                dtype: GgmlDType::F32.into(),
            },
            TensorHeader {
                name: "b".into(),
                dims: vec![2, 32],
                dtype: GgmlDType::Q8_0.into(),
            },
        ];
        let meta = [
            ("general.architecture", MetaValue::Str("llama".into())),
            ("x.count", MetaValue::U32(7)),
            ("x.eps", MetaValue::F32(1e-5)),
            ("x.flag", MetaValue::Bool(true)),
        ];
        let mut buf = Vec::new();
        write_gguf(&mut buf, &meta, &tensors, |i, w| {
            let n = tensors[i].data_bytes() as usize;
            if i == 0 {
                let vals: Vec<u8> = (0..15).flat_map(|v| (v as f32).to_le_bytes()).collect();
                w.write_all(&vals)
            } else {
                w.write_all(&vec![1u8; n])
            }
        })
        .unwrap();
        let mut cursor = Cursor::new(buf);
        let content = Content::read(&mut cursor).unwrap();
        assert_eq!(content.metadata["x.count"].to_u32().unwrap(), 7);
        assert!(content.metadata["x.flag"].to_bool().unwrap());
        let a = content
            .tensor(&mut cursor, "a", &candle_core::Device::Cpu)
            .unwrap();
        assert_eq!(a.shape().dims(), &[3, 5]);
        let values: Vec<f32> = a
            .dequantize(&candle_core::Device::Cpu)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert_eq!(values[14], 14.0);
        let b = content
            .tensor(&mut cursor, "b", &candle_core::Device::Cpu)
            .unwrap();
        assert_eq!(b.shape().dims(), &[2, 32]);
    }

    #[test]
    fn a_filler_that_writes_too_little_is_an_error() {
        let tensors = vec![TensorHeader {
            name: "a".into(),
            dims: vec![4],
            dtype: GgmlDType::F32.into(),
        }];
        let err = write_gguf(&mut Vec::new(), &[], &tensors, |_, w| w.write_all(&[0; 8]));
        assert!(err.unwrap_err().to_string().contains("needs 16"));
    }
}
