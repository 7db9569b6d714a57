//! Reading a Llama GGUF's tensors into memory (read, not mmapped: the pages belong to the
//! worker and are placed by its memory policy).

use super::kernels::WeightMatrix;
use super::linear::Linear;
use super::EngineError;
use crate::model::{ModelFile, ModelFileError};
use candle_core::quantized::{QMatMul, QTensor};
use candle_core::Device;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::sync::Arc;

/// The weights of one transformer block.
#[derive(Debug)]
pub struct LayerWeights {
    /// RMSNorm scale before attention, `[hidden]`.
    pub attn_norm: Vec<f32>,
    /// Query projection, `[hidden] -> [heads * head_dim]`.
    pub wq: Linear,
    /// Key projection, `[hidden] -> [kv_heads * head_dim]`.
    pub wk: Linear,
    /// Value projection, `[hidden] -> [kv_heads * head_dim]`.
    pub wv: Linear,
    /// Attention output projection.
    pub wo: Linear,
    /// RMSNorm scale before the feed-forward block.
    pub ffn_norm: Vec<f32>,
    /// SwiGLU gate projection, `[hidden] -> [ffn]`.
    pub gate: Linear,
    /// SwiGLU up projection, `[hidden] -> [ffn]`.
    pub up: Linear,
    /// SwiGLU down projection, `[ffn] -> [hidden]`.
    pub down: Linear,
}

/// All weights of a Llama model.
#[derive(Debug)]
pub struct LlamaWeights {
    /// Token embedding, `[vocab, hidden]`, kept in its stored type.
    pub embedding: Arc<Linear>,
    /// The blocks.
    pub layers: Vec<LayerWeights>,
    /// Final RMSNorm scale.
    pub output_norm: Vec<f32>,
    /// Output projection to the vocabulary (the embedding itself when tied: one copy).
    pub output: Arc<Linear>,
    /// Llama-3 RoPE frequency divisors, when the file has them.
    pub rope_factors: Option<Vec<f32>>,
}

struct Reader<'a> {
    model: &'a ModelFile,
    file: BufReader<File>,
}

impl Reader<'_> {
    fn qtensor(&mut self, name: &str) -> Result<QTensor, EngineError> {
        if !self.model.content.tensor_infos.contains_key(name) {
            return Err(ModelFileError::MissingTensor(name.to_string()).into());
        }
        Ok(self
            .model
            .content
            .tensor(&mut self.file, name, &Device::Cpu)?)
    }

    /// A projection: the project's kernels when they handle the tensor's type, else candle's.
    fn matrix(&mut self, name: &str) -> Result<Linear, EngineError> {
        let info = self
            .model
            .tensors
            .get(name)
            .ok_or_else(|| ModelFileError::MissingTensor(name.to_string()))?;
        let Some(format) = info.dtype.weight_format() else {
            return Ok(Linear::Candle(QMatMul::from_qtensor(self.qtensor(name)?)?));
        };
        let &[rows, cols] = info.dims.as_slice() else {
            return Err(EngineError::Unsupported(format!(
                "tensor {name} has dimensions {:?}, not a matrix's two",
                info.dims
            )));
        };
        let bytes = rows * cols / info.dtype.block_size() * info.dtype.type_size();
        let start = self.model.content.tensor_data_offset + info.offset;
        let mut raw = vec![0u8; bytes];
        let path = &self.model.path;
        self.file
            .seek(SeekFrom::Start(start))
            .and_then(|_| self.file.read_exact(&mut raw))
            .map_err(|e| ModelFileError::io(path, e))?;
        let matrix = WeightMatrix::from_ggml(format, rows, cols, &raw)
            .map_err(|e| EngineError::Unsupported(format!("tensor {name}: {e}")))?;
        Ok(Linear::Own(matrix))
    }

    fn vector(&mut self, name: &str) -> Result<Vec<f32>, EngineError> {
        Ok(self
            .qtensor(name)?
            .dequantize(&Device::Cpu)?
            .flatten_all()?
            .to_vec1::<f32>()?)
    }
}

impl LlamaWeights {
    /// Reads every tensor of `model`.
    pub fn read(model: &ModelFile) -> Result<Self, EngineError> {
        let file = File::open(&model.path).map_err(|e| ModelFileError::io(&model.path, e))?;
        let mut r = Reader {
            model,
            file: BufReader::with_capacity(1 << 20, file),
        };
        let embedding = Arc::new(r.matrix("token_embd.weight")?);
        let layers = (0..model.summary.config.layers)
            .map(|i| {
                let n = |s: &str| format!("blk.{i}.{s}.weight");
                Ok(LayerWeights {
                    attn_norm: r.vector(&n("attn_norm"))?,
                    wq: r.matrix(&n("attn_q"))?,
                    wk: r.matrix(&n("attn_k"))?,
                    wv: r.matrix(&n("attn_v"))?,
                    wo: r.matrix(&n("attn_output"))?,
                    ffn_norm: r.vector(&n("ffn_norm"))?,
                    gate: r.matrix(&n("ffn_gate"))?,
                    up: r.matrix(&n("ffn_up"))?,
                    down: r.matrix(&n("ffn_down"))?,
                })
            })
            .collect::<Result<Vec<_>, EngineError>>()?;
        let output_norm = r.vector("output_norm.weight")?;
        let output = if model.summary.tied_embeddings {
            embedding.clone()
        } else {
            Arc::new(r.matrix("output.weight")?)
        };
        let rope_factors = if model.summary.rope_freqs {
            Some(r.vector("rope_freqs.weight")?)
        } else {
            None
        };
        Ok(LlamaWeights {
            embedding,
            layers,
            output_norm,
            output,
            rope_factors,
        })
    }
}
