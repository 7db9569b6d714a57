//! A projection of the tuned engine: the project's own kernels where they cover the weight
//! format, candle's `QMatMul` for the others (the k-quants).

use super::kernels::{Activations, QuantizedActivations, WeightFormat, WeightMatrix};
use super::EngineError;
use candle_core::quantized::{QMatMul, QTensor};
use candle_core::{Module, Tensor};

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

    /// `x · Wᵀ` for `x` of shape `[..., in]`, giving `[..., out]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor, EngineError> {
        Ok(Linear::forward_shared(&[self], x)?.remove(0))
    }

    /// Rows `ids` (`[batch, seq]` u32) of the matrix as f32, `[batch, seq, cols]`: the lookup of
    /// a token embedding table.
    pub fn rows(&self, ids: &Tensor) -> Result<Tensor, EngineError> {
        match self {
            Linear::Own(w) => {
                let (batch, seq) = ids.dims2()?;
                let mut values = Vec::with_capacity(batch * seq * w.cols());
                for id in ids.flatten_all()?.to_vec1::<u32>()? {
                    let id = id as usize;
                    if id >= w.rows() {
                        return Err(EngineError::Unsupported(format!(
                            "token id {id} is outside the vocabulary of {}",
                            w.rows()
                        )));
                    }
                    values.extend(w.dequantize_row(id));
                }
                Ok(Tensor::from_vec(
                    values,
                    (batch, seq, w.cols()),
                    ids.device(),
                )?)
            }
            Linear::Candle(QMatMul::QTensor(t)) => Ok(t.embedding(ids)?),
            Linear::Candle(QMatMul::Tensor(t)) => {
                Ok(candle_nn::Embedding::new(t.clone(), t.dim(1)?).forward(ids)?)
            }
            Linear::Candle(QMatMul::TensorF16(t)) => {
                let table = t.to_dtype(candle_core::DType::F32)?;
                Ok(candle_nn::Embedding::new(table.clone(), table.dim(1)?).forward(ids)?)
            }
        }
    }

    /// `x · Wᵀ` for several matrices with the same input, which is read (and, for quantized
    /// weights, quantized) once.
    pub fn forward_shared(linears: &[&Linear], x: &Tensor) -> Result<Vec<Tensor>, EngineError> {
        if linears.iter().any(|l| matches!(l, Linear::Candle(_))) {
            return linears
                .iter()
                .map(|l| match l {
                    Linear::Own(_) => l.forward(x),
                    Linear::Candle(m) => Ok(m.forward(x)?),
                })
                .collect();
        }
        let dims = x.dims().to_vec();
        let features = *dims.last().expect("inputs have at least one dimension");
        let values = x.flatten_all()?.to_vec1::<f32>()?;
        let tokens = values.len() / features;
        let mut scratch = QuantizedActivations::default();
        let mut input = Activations::new(&values, tokens, &mut scratch);
        let matrices: Vec<&WeightMatrix> = linears
            .iter()
            .map(|l| match l {
                Linear::Own(w) if w.cols() == features => Ok(w),
                Linear::Own(w) => Err(EngineError::Unsupported(format!(
                    "input of {features} features for a matrix of {} columns",
                    w.cols()
                ))),
                Linear::Candle(_) => unreachable!("candle matrices were handled above"),
            })
            .collect::<Result<_, _>>()?;
        let mut outs: Vec<Vec<f32>> = matrices
            .iter()
            .map(|w| vec![0f32; tokens * w.rows()])
            .collect();
        let mut views: Vec<&mut [f32]> = outs.iter_mut().map(Vec::as_mut_slice).collect();
        WeightMatrix::products(&matrices, &mut input, &mut views);
        matrices
            .iter()
            .zip(outs)
            .map(|(w, out)| {
                let mut shape = dims.clone();
                *shape.last_mut().expect("non-empty") = w.rows();
                Ok(Tensor::from_vec(out, shape, x.device())?)
            })
            .collect()
    }
}
