//! A projection of the tuned engine: the project's own kernels where they cover the weight
//! format (see `kernels::WeightFormat`), candle's `QMatMul` for the others (the IQ types,
//! Q8_1 and Q8_K).

use super::kernels::{ActivationScratch, Activations, WeightFormat, WeightMatrix};
use super::model::TensorType;
use super::team::Team;
use super::EngineError;
use candle_core::quantized::{QMatMul, QTensor};
use candle_core::{DType, Device, Module, Tensor};

/// A weight matrix `[out, in]` applied as `x · Wᵀ` to the last dimension of its input.
#[derive(Debug)]
pub enum Linear {
    /// Weights in a format the project's kernels handle.
    Own(WeightMatrix),
    /// Weights in another format, multiplied by candle.
    Candle(QMatMul),
}

impl Linear {
    /// The projection for a quantized tensor `[out, in]`: the project's kernels when they handle
    /// its type, else candle's.
    pub fn from_qtensor(tensor: QTensor) -> Result<Self, EngineError> {
        let dtype = tensor.dtype();
        let Some(format) = WeightFormat::of_ggml(dtype) else {
            return Ok(Linear::Candle(QMatMul::from_qtensor(tensor)?));
        };
        let (rows, cols) = tensor.shape().dims2()?;
        let matrix = WeightMatrix::from_ggml(format, rows, cols, &tensor.data()?)
            .map_err(|e| EngineError::Unsupported(e.to_string()))?;
        Ok(Linear::Own(matrix))
    }

    /// The projection for the f32 matrix `weights` (`[out, in]`) quantized into `dtype`:
    /// candle's quantizer for its types, the project's own for IQ4_NL and IQ4_XS.
    pub fn quantized(weights: &Tensor, dtype: TensorType) -> Result<Self, EngineError> {
        let TensorType::Candle(ggml) = dtype else {
            let (rows, cols) = weights.dims2()?;
            let bytes = dtype.quantize(&weights.flatten_all()?.to_vec1::<f32>()?)?;
            let format = dtype
                .weight_format()
                .ok_or_else(|| EngineError::Unsupported(format!("no kernels for {dtype}")))?;
            let matrix = WeightMatrix::from_ggml(format, rows, cols, &bytes)
                .map_err(|e| EngineError::Unsupported(e.to_string()))?;
            return Ok(Linear::Own(matrix));
        };
        Self::from_qtensor(QTensor::quantize(weights, ggml)?)
    }

    /// Input features (columns of the matrix).
    pub fn cols(&self) -> usize {
        match self {
            Linear::Own(w) => w.cols(),
            Linear::Candle(m) => candle_dims(m).1,
        }
    }

    /// Output features (rows of the matrix).
    pub fn rows(&self) -> usize {
        match self {
            Linear::Own(w) => w.rows(),
            Linear::Candle(m) => candle_dims(m).0,
        }
    }

    /// Rows `ids` of the matrix as f32 into `out` (`[ids.len(), cols]`): the lookup of a token
    /// embedding table.
    pub fn embed(&self, ids: &[u32], out: &mut [f32]) -> Result<(), EngineError> {
        let cols = self.cols();
        assert_eq!(out.len(), ids.len() * cols, "one output row per id");
        if let Some(id) = ids.iter().find(|id| **id as usize >= self.rows()) {
            return Err(EngineError::Unsupported(format!(
                "token id {id} is outside the vocabulary of {}",
                self.rows()
            )));
        }
        match self {
            Linear::Own(w) => {
                for (id, row) in ids.iter().zip(out.chunks_exact_mut(cols)) {
                    row.copy_from_slice(&w.dequantize_row(*id as usize));
                }
            }
            Linear::Candle(m) => {
                let ids = Tensor::from_slice(ids, ids.len(), &Device::Cpu)?;
                let table = m.embedding(&ids)?.to_dtype(DType::F32)?;
                out.copy_from_slice(&table.flatten_all()?.to_vec1::<f32>()?);
            }
        }
        Ok(())
    }

    /// `outs[i] = x · Wᵢᵀ` for `tokens` rows of `x` and each matrix `Wᵢ` of `linears`: the
    /// input is read (and, for quantized weights, quantized into `scratch`) once, and the
    /// products of the project's kernels are one parallel step.
    pub fn products(
        linears: &[&Linear],
        x: &[f32],
        tokens: usize,
        scratch: &mut ActivationScratch,
        outs: &mut [&mut [f32]],
    ) -> Result<(), EngineError> {
        for l in linears {
            if x.len() != tokens * l.cols() {
                return Err(EngineError::Unsupported(format!(
                    "input of {} values for {tokens} tokens and a matrix of {} columns",
                    x.len(),
                    l.cols()
                )));
            }
        }
        let mut own: Vec<&WeightMatrix> = Vec::new();
        let mut own_outs: Vec<&mut [f32]> = Vec::new();
        let mut candle = Vec::new();
        for (l, out) in linears.iter().zip(outs.iter_mut()) {
            match l {
                Linear::Own(w) => {
                    own.push(w);
                    own_outs.push(&mut **out);
                }
                Linear::Candle(m) => candle.push((m, l.cols(), out)),
            }
        }
        if !own.is_empty() {
            let mut input = Activations::new(x, tokens, scratch);
            WeightMatrix::products(&own, &mut input, &mut own_outs);
        }
        if !candle.is_empty() {
            // candle's kernels run on the pool itself, so the team goes back to it meanwhile
            Team::suspended(|| -> Result<(), EngineError> {
                for (m, cols, out) in candle {
                    let input = Tensor::from_slice(x, (tokens, cols), &Device::Cpu)?;
                    out.copy_from_slice(&m.forward(&input)?.flatten_all()?.to_vec1::<f32>()?);
                }
                Ok(())
            })?;
        }
        Ok(())
    }
}

/// `(rows, cols)` of a candle matrix.
fn candle_dims(m: &QMatMul) -> (usize, usize) {
    let dims = match m {
        QMatMul::QTensor(t) => t.shape().dims(),
        QMatMul::Tensor(t) | QMatMul::TensorF16(t) => t.dims(),
    };
    (dims[0], dims[1])
}
