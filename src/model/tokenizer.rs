//! The tokenizer of a model: the one stored inside a GGUF file, tokenizing as llama.cpp does,
//! or a Hugging Face folder's `tokenizer.json`, tokenizing as transformers does.
//!
//! candle's `TokenizerFromGguf` builds the BPE vocabulary and merges, but for pre-tokenizer
//! names it does not know (SmolLM2's is `smollm`) it falls back to GPT-2 byte-level splitting
//! *with* a prefix space, so "The capital" becomes "ĠThe Ġcapital". llama.cpp honours
//! `tokenizer.ggml.add_space_prefix` (false unless stated) and splits digits one by one for
//! `smollm`; this module rebuilds the pre-tokenizer accordingly.

use super::hf::HfFolder;
use super::opened::OpenedModel;
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
    /// End-of-sequence token ids: decoding stops before the first.
    eos: Vec<u32>,
}

impl TextCodec {
    /// Builds the codec of an opened file or folder.
    pub fn of(model: &OpenedModel) -> Result<Self, ModelError> {
        match model {
            OpenedModel::Gguf(file) => Self::from_model(file),
            OpenedModel::Folder(folder) => Self::from_folder(folder),
        }
    }

    /// Builds the codec of a Hugging Face folder from its `tokenizer.json`, with the
    /// end-of-sequence ids of its `config.json`.
    pub fn from_folder(folder: &HfFolder) -> Result<Self, ModelError> {
        let path = folder.tokenizer_path();
        let tokenizer = Tokenizer::from_file(&path)
            .map_err(|e| ModelError::NoTokenizer(format!("{}: {e}", path.display())))?;
        Ok(TextCodec {
            tokenizer,
            eos: folder.eos_token_ids.clone(),
        })
    }

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
            .and_then(|v| v.to_u32().ok())
            .into_iter()
            .collect();
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
            .position(|id| self.eos.contains(id))
            .unwrap_or(ids.len());
        self.tokenizer
            .decode(&ids[..end], true)
            .map_err(|e| ModelError::NoTokenizer(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::hf::tests::{tiny_folder, TINY_CONFIG};

    /// A word-level tokenizer.json: `</s>` (id 2) is the config's end-of-sequence token.
    const WORDS: &str = r#"{"version": "1.0", "truncation": null, "padding": null,
      "added_tokens": [], "normalizer": null, "pre_tokenizer": {"type": "Whitespace"},
      "post_processor": null, "decoder": null,
      "model": {"type": "WordLevel", "unk_token": "<unk>",
                "vocab": {"<unk>": 0, "hello": 1, "</s>": 2, "world": 3}}}"#;

    #[test]
    fn a_folder_s_tokenizer_json_encodes_and_decoding_stops_at_its_eos() {
        let dir = tempfile::tempdir().unwrap();
        tiny_folder(dir.path(), TINY_CONFIG);
        let folder = HfFolder::open(dir.path()).unwrap();
        let e = TextCodec::from_folder(&folder).err().unwrap().to_string();
        assert!(e.contains("tokenizer.json"), "{e}");

        std::fs::write(folder.tokenizer_path(), WORDS).unwrap();
        let codec = TextCodec::from_folder(&folder).unwrap();
        assert_eq!(codec.encode("hello world").unwrap(), [1, 3]);
        assert_eq!(codec.decode(&[1, 3, 2, 1]).unwrap(), "hello world");
        assert_eq!(codec.token(3).as_deref(), Some("world"));
    }
}
