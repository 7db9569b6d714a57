//! Synthetic model files: seeded random weights written as GGUF.
//!
//! Quantizing gigabytes of random values would take minutes, so each model draws one random
//! tile of [`TILE_ELEMENTS`] values, quantizes it once into each type its matrices are stored in
//! (several in a llama.cpp mix, see [`super::mix`]), and every tensor copies whole blocks from
//! its type's tile starting at its own random block offset. Values are never zero (zero pages would
//! make decode look faster than it is) and differ between neighbouring rows.

use super::dtype::WeightDtype;
use super::gguf_writer::{write_gguf, MetaValue, TensorHeader};
use super::preset::{Preset, TensorRole};
use super::{ModelError, TensorType};
use candle_core::quantized::GgmlDType;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// Values in the random tile that every weight matrix is cut from.
pub const TILE_ELEMENTS: usize = 1 << 22;
/// Standard deviation of the synthetic weights (typical of trained Llama matrices).
pub const WEIGHT_STD: f32 = 0.02;
/// Version of the synthesis recipe; part of cached file names so old files are not reused.
pub const SYNTH_VERSION: u32 = 1;

/// llama.cpp's `general.file_type` for a model whose matrices are `dtype`.
fn llama_file_type(dtype: WeightDtype) -> u32 {
    match dtype {
        WeightDtype::F32 => 0,
        WeightDtype::F16 => 1,
        WeightDtype::Q4_0 => 2,
        WeightDtype::Q4_1 => 3,
        WeightDtype::Q8_0 => 7,
        WeightDtype::Q4K => 14,
        WeightDtype::Q6K => 18,
        WeightDtype::Bf16 => 32,
        WeightDtype::Q2KMix => 10,
        WeightDtype::Q3KM => 12,
        WeightDtype::Q4KM => 15,
        WeightDtype::Q5KM => 17,
        WeightDtype::Iq4Xs => 30,
    }
}

/// GGUF metadata describing `preset` (no vocabulary: `tokenizer.ggml.model = "none"`).
fn metadata(preset: &Preset, dtype: WeightDtype, seed: u64) -> Vec<(&'static str, MetaValue)> {
    let c = &preset.config;
    let u = |v: usize| MetaValue::U32(v as u32);
    vec![
        ("general.architecture", MetaValue::Str("llama".into())),
        (
            "general.name",
            MetaValue::Str(format!("llamaperf synthetic {}", preset.name)),
        ),
        ("general.file_type", MetaValue::U32(llama_file_type(dtype))),
        ("llama.block_count", u(c.layers)),
        ("llama.context_length", u(c.context)),
        ("llama.embedding_length", u(c.hidden)),
        ("llama.feed_forward_length", u(c.ffn)),
        ("llama.attention.head_count", u(c.heads)),
        ("llama.attention.head_count_kv", u(c.kv_heads)),
        (
            "llama.attention.layer_norm_rms_epsilon",
            MetaValue::F32(c.rms_eps),
        ),
        ("llama.rope.freq_base", MetaValue::F32(c.rope_base)),
        ("llama.rope.dimension_count", u(c.head_dim())),
        ("llama.vocab_size", u(c.vocab)),
        ("tokenizer.ggml.model", MetaValue::Str("none".into())),
        ("llamaperf.preset", MetaValue::Str(preset.name.into())),
        ("llamaperf.seed", MetaValue::U32(seed as u32)),
        ("llamaperf.synth_version", MetaValue::U32(SYNTH_VERSION)),
    ]
}

/// A block-aligned byte tile that tensors are cut from.
struct Tile {
    bytes: Vec<u8>,
    block_bytes: usize,
}

impl Tile {
    fn quantized(values: &[f32], dtype: TensorType) -> Result<Self, ModelError> {
        let bytes = dtype.quantize(values)?;
        Ok(Tile {
            bytes,
            block_bytes: dtype.type_size(),
        })
    }

    /// Writes `len` bytes starting at a random whole block, wrapping around the tile.
    fn copy_to(&self, w: &mut impl Write, len: u64, rng: &mut StdRng) -> std::io::Result<()> {
        let blocks = self.bytes.len() / self.block_bytes;
        let mut pos = rng.random_range(0..blocks) * self.block_bytes;
        let mut left = len as usize;
        while left > 0 {
            let n = left.min(self.bytes.len() - pos);
            w.write_all(&self.bytes[pos..pos + n])?;
            left -= n;
            pos = (pos + n) % self.bytes.len();
        }
        Ok(())
    }
}

/// Writes a synthetic GGUF of `preset` with matrices in `dtype`, weights drawn from `seed`,
/// into `out` (the file `out_path`, named in errors).
pub fn write_synthetic(
    preset: &Preset,
    dtype: WeightDtype,
    seed: u64,
    out: &mut impl Write,
    out_path: &Path,
) -> Result<(), ModelError> {
    let mut rng = StdRng::seed_from_u64(seed);
    let normal = Normal::new(0.0f32, WEIGHT_STD).expect("constant, valid standard deviation");
    let weights: Vec<f32> = (0..TILE_ELEMENTS)
        .map(|_| {
            let v = normal.sample(&mut rng);
            // Never exactly zero, also after rounding to a few bits.
            if v.abs() < 1e-4 {
                1e-4f32.copysign(v)
            } else {
                v
            }
        })
        .collect();
    let norms: Vec<f32> = (0..65_536).map(|_| rng.random_range(0.8f32..1.2)).collect();
    let norm_tile = Tile::quantized(&norms, TensorType::Candle(GgmlDType::F32))?;
    let rope_factors = preset
        .rope_scaling
        .map(|s| s.frequency_factors(preset.config.head_dim(), preset.config.rope_base));

    let specs = preset.tensors();
    let headers: Vec<TensorHeader> = specs
        .iter()
        .map(|t| TensorHeader {
            name: t.name.clone(),
            dims: t.dims.clone(),
            dtype: preset.tensor_type(t, dtype),
        })
        .collect();
    let mut matrix_tiles = HashMap::new();
    for (spec, header) in specs.iter().zip(&headers) {
        if matches!(spec.role, TensorRole::Matrix(_)) && !matrix_tiles.contains_key(&header.dtype) {
            let tile = Tile::quantized(&weights, header.dtype)?;
            matrix_tiles.insert(header.dtype, tile);
        }
    }
    let meta = metadata(preset, dtype, seed);
    write_gguf(out, &meta, &headers, |i, w| {
        let len = headers[i].data_bytes();
        match specs[i].role {
            TensorRole::Matrix(_) => matrix_tiles[&headers[i].dtype].copy_to(w, len, &mut rng),
            TensorRole::Norm => norm_tile.copy_to(w, len, &mut rng),
            TensorRole::RopeFreqs => {
                let factors = rope_factors.as_deref().unwrap_or_default();
                let bytes: Vec<u8> = factors.iter().flat_map(|f| f.to_le_bytes()).collect();
                w.write_all(&bytes)
            }
        }
    })
    .map_err(|e| ModelError::io(out_path, e))
}

/// Refuses to write `needed_bytes` of the synthetic `model` (e.g. "llama-3.1-405b f32") into
/// the existing folder `dir` when they exceed its free space, before a byte is written.
pub fn check_free_space(model: String, needed_bytes: u64, dir: &Path) -> Result<(), ModelError> {
    let free_bytes = llamaperf_os::fs::free_bytes(dir).map_err(|e| ModelError::io(dir, e))?;
    if needed_bytes > free_bytes {
        return Err(ModelError::NoSpace {
            model,
            needed_bytes,
            free_bytes,
            dir: dir.to_path_buf(),
        });
    }
    Ok(())
}

/// A writer that fails once `interrupted` is set, so that a long write stops at its next
/// buffer.
struct Interruptible<'a, W> {
    inner: W,
    interrupted: &'a AtomicBool,
}

impl<W: Write> Write for Interruptible<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.interrupted.load(Ordering::SeqCst) {
            return Err(std::io::Error::other("interrupted"));
        }
        self.inner.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Synthesizes into `path` atomically: a locked partial file in the same folder
/// ([`super::partials`]), synced, then renamed; refused when the weights would not fit in the
/// folder's free space. Stops within one 8 MiB buffer once `interrupted` is set, removing
/// the partial file ([`ModelError::Interrupted`]).
pub fn synthesize_to(
    preset: &Preset,
    dtype: WeightDtype,
    seed: u64,
    path: &Path,
    interrupted: &AtomicBool,
) -> Result<(), ModelError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| ModelError::io(dir, e))?;
    let model = format!("{} {dtype}", preset.name);
    check_free_space(model, preset.weight_bytes(dtype), dir)?;
    let tmp = super::partials::create(dir)?;
    let stopped = |e: ModelError| {
        if interrupted.load(Ordering::SeqCst) {
            ModelError::Interrupted
        } else {
            e
        }
    };
    {
        let out = Interruptible {
            inner: tmp.as_file(),
            interrupted,
        };
        let mut w = BufWriter::with_capacity(8 << 20, out);
        write_synthetic(preset, dtype, seed, &mut w, tmp.path()).map_err(stopped)?;
        w.flush()
            .map_err(|e| stopped(ModelError::io(tmp.path(), e)))?;
    }
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| ModelError::io(tmp.path(), e))?;
    tmp.persist(path)
        .map_err(|e| ModelError::io(path, e.error))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| ModelError::io(dir, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::find_preset;
    use candle_core::quantized::gguf_file::Content;
    use candle_core::Device;
    use llamaperf_engine::kernels::WeightMatrix;
    use llamaperf_engine::model::header::read_header;
    use std::io::Cursor;

    /// tiny with 288-wide rows: 9 blocks of 32, not whole super-blocks of 256.
    fn odd() -> Preset {
        let tiny = find_preset("tiny").unwrap();
        Preset {
            name: "odd",
            config: crate::model::LlamaConfig {
                hidden: 288,
                heads: 4,
                kv_heads: 2,
                vocab: 512,
                ..tiny.config.clone()
            },
            ..tiny
        }
    }

    /// Root mean square of `values`.
    fn rms(values: &[f32]) -> f32 {
        (values.iter().map(|x| x * x).sum::<f32>() / values.len() as f32).sqrt()
    }

    #[test]
    fn iq4_xs_tensors_hold_valid_blocks_of_the_synthetic_weights() {
        let odd = odd();
        let mut buf = Vec::new();
        write_synthetic(&odd, WeightDtype::Iq4Xs, 7, &mut buf, Path::new("odd.gguf")).unwrap();
        let header = read_header(&mut Cursor::new(&buf)).unwrap();
        let type_of = |name: &str| header.tensors[name].dtype.name();
        // 288-wide rows fall back to IQ4_NL, ffn_down's 768-wide ones are whole super-blocks
        assert_eq!(type_of("token_embd.weight"), "iq4_nl");
        assert_eq!(type_of("blk.0.attn_q.weight"), "iq4_nl");
        assert_eq!(type_of("blk.1.attn_v.weight"), "iq4_nl");
        assert_eq!(type_of("blk.0.ffn_down.weight"), "iq4_xs");
        assert_eq!(type_of("output.weight"), "q8_0");
        let stored: u64 = header
            .tensors
            .values()
            .map(|t| t.dtype.bytes_for(t.elements() as u64))
            .sum();
        assert_eq!(stored, odd.weight_bytes(WeightDtype::Iq4Xs));
        for name in ["blk.0.attn_q.weight", "blk.1.ffn_down.weight"] {
            let t = &header.tensors[name];
            let (rows, cols) = (t.dims[0], t.dims[1]);
            let start = (header.content.tensor_data_offset + t.offset) as usize;
            let bytes = &buf[start..start + t.dtype.bytes_for(t.elements() as u64) as usize];
            let format = t.dtype.weight_format().unwrap();
            let w = WeightMatrix::from_ggml(format, rows, cols, bytes).unwrap();
            let v: Vec<f32> = (0..rows).flat_map(|r| w.dequantize_row(r)).collect();
            assert!((rms(&v) - WEIGHT_STD).abs() < 2e-3, "{name}: {}", rms(&v));
            assert!(v.iter().all(|x| x.abs() < 0.2), "{name}: no wild values");
        }
    }

    #[test]
    fn rows_of_partial_k_quant_blocks_are_written_in_llama_cpp_fallback_types() {
        let odd = odd();
        let mut buf = Vec::new();
        write_synthetic(&odd, WeightDtype::Q4KM, 7, &mut buf, Path::new("odd.gguf")).unwrap();
        let mut cursor = Cursor::new(buf);
        let content = Content::read(&mut cursor).unwrap();
        let type_of = |name: &str| content.tensor_infos[name].ggml_dtype;
        assert_eq!(type_of("token_embd.weight"), GgmlDType::Q5_0);
        assert_eq!(type_of("blk.0.attn_q.weight"), GgmlDType::Q5_0);
        assert_eq!(type_of("blk.0.attn_v.weight"), GgmlDType::Q5_0);
        assert_eq!(type_of("blk.1.attn_v.weight"), GgmlDType::Q8_0);
        // ffn_down's rows are 768 wide: whole super-blocks.
        assert_eq!(type_of("blk.0.ffn_down.weight"), GgmlDType::Q4K);
        assert_eq!(type_of("blk.1.ffn_down.weight"), GgmlDType::Q6K);
        assert_eq!(type_of("output.weight"), GgmlDType::Q8_0);
        assert_eq!(type_of("blk.0.attn_norm.weight"), GgmlDType::F32);
        let stored: u64 = content
            .tensor_infos
            .values()
            .map(|t| {
                let blocks = t.shape.elem_count() / t.ggml_dtype.block_size();
                (blocks * t.ggml_dtype.type_size()) as u64
            })
            .sum();
        assert_eq!(stored, odd.weight_bytes(WeightDtype::Q4KM));
        let v: Vec<f32> = content
            .tensor(&mut cursor, "blk.0.attn_q.weight", &Device::Cpu)
            .unwrap()
            .dequantize(&Device::Cpu)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let std = rms(&v);
        assert!((std - WEIGHT_STD).abs() < 2e-3, "std {std}");
    }
}
