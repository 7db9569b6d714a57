//! llama.cpp's own tokenizer, for text prompts and the generated text of its runs.

use crate::backend;
use crate::{log, LlamaCppError};
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use std::path::Path;

/// The vocabulary of a GGUF file as llama.cpp loads it (no weights).
pub struct LlamaCppVocab {
    model: LlamaModel,
}

impl LlamaCppVocab {
    /// Loads the vocabulary of the GGUF file at `path`.
    pub fn load(path: &Path) -> Result<Self, LlamaCppError> {
        let backend = backend::backend(None)?;
        let params = LlamaModelParams::default().with_vocab_only(true);
        let model = LlamaModel::load_from_file(&backend.llama, path, &params).map_err(|e| {
            LlamaCppError::Load {
                path: path.display().to_string(),
                reason: format!("{e}; {}", log::take()),
            }
        })?;
        Ok(LlamaCppVocab { model })
    }

    /// Token ids of `text`, with the special tokens the model adds (BOS where it asks for
    /// one), as llama.cpp's tools tokenize a prompt.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        self.model
            .vocab()
            .tokenize(text.as_bytes(), true, false)
            .into_iter()
            .map(|t| t.0 as u32)
            .collect()
    }

    /// The text of `ids`: each token's piece (special tokens written out), concatenated, as
    /// llama.cpp's tools print generated tokens.
    pub fn decode(&self, ids: &[u32]) -> String {
        let vocab = self.model.vocab();
        let bytes: Vec<u8> = ids
            .iter()
            .flat_map(|&id| vocab.token_to_piece(LlamaToken(id as i32), true, None))
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}
