//! The reference engine: candle-transformers' `quantized_llama`, the oracle the tuned engine is
//! tested against and a software baseline users can measure.

use super::{Engine, EngineError};
use crate::model::{ModelFile, ModelFileError, TensorType};
use candle_core::quantized::gguf_file::Content;
use candle_core::{Device, Tensor};
use candle_transformers::models::quantized_llama::ModelWeights;
use std::fs::File;
use std::io::BufReader;

/// `quantized_llama::ModelWeights` behind the [`Engine`] trait (batch 1).
pub struct ReferenceLlama {
    model: ModelWeights,
}

impl ReferenceLlama {
    /// Loads `model`; `batch` must be 1 (quantized_llama's prefill fails for batch > 1).
    pub fn load(model: &ModelFile, batch: usize) -> Result<Self, EngineError> {
        if batch != 1 {
            return Err(EngineError::Unsupported(format!(
                "engine 'reference' (candle-transformers quantized_llama) supports batch 1 only, \
                 got batch {batch}: its prefill cannot broadcast the attention mask over a batch; \
                 use engine 'tuned'"
            )));
        }
        if let Some((name, t)) = model
            .tensors
            .iter()
            .find(|(_, t)| !matches!(t.dtype, TensorType::Candle(_)))
        {
            return Err(EngineError::Unsupported(format!(
                "engine 'reference' (candle-transformers) cannot read {} tensors such as {name}; \
                 use engine 'tuned' or 'llama.cpp'",
                t.dtype
            )));
        }
        let file = File::open(&model.path).map_err(|e| ModelFileError::io(&model.path, e))?;
        let mut reader = BufReader::new(file);
        let content = Content::read(&mut reader)?;
        let model = ModelWeights::from_gguf(content, &mut reader, &Device::Cpu)?;
        Ok(ReferenceLlama { model })
    }
}

impl Engine for ReferenceLlama {
    fn forward(&mut self, tokens: &Tensor, pos: usize) -> Result<Tensor, EngineError> {
        Ok(self.model.forward(tokens, pos)?)
    }

    fn reset(&mut self) {
        self.model.clear_kv_cache();
    }
}
