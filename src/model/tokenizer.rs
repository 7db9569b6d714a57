//! The tokenizer stored inside a GGUF file, tokenizing as llama.cpp does.
//!
//! candle's `TokenizerFromGguf` builds the BPE vocabulary and merges, but for pre-tokenizer
//! names it does not know (SmolLM2's is `smollm`) it falls back to GPT-2 byte-level splitting
//! *with* a prefix space, so "The capital" becomes "ĠThe Ġcapital". llama.cpp honours
//! `tokenizer.ggml.add_space_prefix` (false unless stated) and splits digits one by one for
//! `smollm`; this module rebuilds the pre-tokenizer accordingly.

use super::{ModelError, ModelFile};
use candle_core::quantized::tokenizer::TokenizerFromGguf;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::Tokenizer;

/// Pre-tokenizer names that candle configures itself, exactly as llama.cpp does.
const CANDLE_KNOWN_PRE: [&str; 4] = ["qwen2", "smaug-bpe", "lfm2", "llama3"];

/// Text in and out of token ids with the model's own vocabulary.
pub struct TextCodec {
    tokenizer: Tokenizer,
    eos: Option<u32>,
}

impl TextCodec {
    /// Builds the codec of `model`; an error when the file has no gpt2-style vocabulary.
    pub fn from_model(model: &ModelFile) -> Result<Self, ModelError> {
        let kind = model.metadata_str("tokenizer.ggml.model").unwrap_or("none");
        if kind != "gpt2" {
            return Err(ModelError::NoTokenizer(format!(
                "tokenizer.ggml.model is '{kind}'"
            )));
        }
        let mut tokenizer = Tokenizer::from_gguf(&model.content)
            .map_err(|e| ModelError::NoTokenizer(e.to_string()))?;
        let pre = model.metadata_str("tokenizer.ggml.pre").unwrap_or("gpt2");
        if !CANDLE_KNOWN_PRE.contains(&pre) {
            let add_space_prefix = model
                .content
                .metadata
                .get("tokenizer.ggml.add_space_prefix")
                .and_then(|v| v.to_bool().ok())
                .unwrap_or(false);
            let byte_level = ByteLevel::new(add_space_prefix, true, true);
            let pre_tokenizer: PreTokenizerWrapper = if pre == "smollm" {
                Sequence::new(vec![Digits::new(true).into(), byte_level.into()]).into()
            } else {
                byte_level.into()
            };
            tokenizer.with_pre_tokenizer(Some(pre_tokenizer));
        }
        let eos = model
            .content
            .metadata
            .get("tokenizer.ggml.eos_token_id")
            .and_then(|v| v.to_u32().ok());
        Ok(TextCodec { tokenizer, eos })
    }

    /// Token ids of `text`, with the BOS token when the model asks for it.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, ModelError> {
        let encoding = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| ModelError::NoTokenizer(e.to_string()))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// The vocabulary entry of token `id` (byte-level form, e.g. `Ġcapital`).
    pub fn token(&self, id: u32) -> Option<String> {
        self.tokenizer.id_to_token(id)
    }

    /// The text of `ids`, stopping before the end-of-sequence token.
    pub fn decode(&self, ids: &[u32]) -> Result<String, ModelError> {
        let end = ids
            .iter()
            .position(|&id| Some(id) == self.eos)
            .unwrap_or(ids.len());
        self.tokenizer
            .decode(&ids[..end], true)
            .map_err(|e| ModelError::NoTokenizer(e.to_string()))
    }
}
