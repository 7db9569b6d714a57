//! Hugging Face model folders (`config.json`, safetensors weights, `tokenizer.json`), which
//! engine `torch` loads as stored: their shape and size read from the config and the
//! safetensors headers, as a GGUF file's are from its header, without reading a weight.

pub mod config;
pub mod weights;

use config::{HfConfig, HfConfigError};
use llamaperf_engine::model::{ModelSummary, StepWeights};
use std::path::{Path, PathBuf};
use weights::{read_tensors, StoredTensor, WeightsError};

/// The file of a folder that makes it a Hugging Face model folder.
pub const CONFIG_FILE: &str = "config.json";
/// The tokenizer a folder's text prompt is tokenized with.
pub const TOKENIZER_FILE: &str = "tokenizer.json";
/// The tensor whose type names the model's main type (as `blk.0.attn_q.weight` of a GGUF).
const MAIN_TENSOR: &str = "model.layers.0.self_attn.q_proj.weight";
/// The token embedding table.
const EMBEDDING: &str = "model.embed_tokens.weight";

/// Why a folder is not a Hugging Face Llama model llamaperf can size.
#[derive(Debug, thiserror::Error)]
pub enum HfFolderError {
    /// The folder has no `config.json`.
    #[error("{} is a folder without {CONFIG_FILE}: a model is a preset, a GGUF file, or a Hugging Face model folder ({CONFIG_FILE}, safetensors weights, {TOKENIZER_FILE})", .0.display())]
    NoConfig(PathBuf),
    /// `config.json` is not JSON, or lacks a key (serde's message names it, with the line).
    #[error("{}: {reason}", .path.display())]
    BadConfig {
        /// The config file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// `config.json` states another model, or a shape llamaperf cannot size.
    #[error("{}: {source}", .path.display())]
    NotLlama {
        /// The config file.
        path: PathBuf,
        /// What it states.
        source: HfConfigError,
    },
    /// The weights cannot be sized.
    #[error(transparent)]
    Weights(#[from] WeightsError),
    /// A tensor every Llama model has is not in the weights.
    #[error("{}: tensor '{tensor}' is in none of its safetensors files", .folder.display())]
    MissingTensor {
        /// The folder.
        folder: PathBuf,
        /// The tensor's name.
        tensor: &'static str,
    },
}

impl HfFolderError {
    /// Whether the error is the user's to fix (a folder, a file), as opposed to a failure of
    /// the machine (permissions, I/O).
    pub fn is_input_error(&self) -> bool {
        !matches!(self, HfFolderError::Weights(WeightsError::Io { .. }))
    }
}

/// A Hugging Face model folder, opened: its config and safetensors headers are read, the
/// weights are not.
#[derive(Debug, Clone)]
pub struct HfFolder {
    /// The folder.
    pub path: PathBuf,
    /// Shape, parameters and stored size, as a GGUF file's summary states them; `dtype` is the
    /// first layer's query projection's safetensors type, lower case (`bf16`, `f32`).
    pub summary: ModelSummary,
    /// End-of-sequence token ids `config.json` states (none when it states none).
    pub eos_token_ids: Vec<u32>,
}

impl HfFolder {
    /// Opens the folder `path`: a Llama `config.json` and the safetensors weights' headers.
    pub fn open(path: &Path) -> Result<Self, HfFolderError> {
        let config_path = path.join(CONFIG_FILE);
        if !config_path.is_file() {
            return Err(HfFolderError::NoConfig(path.to_path_buf()));
        }
        let bad_config = |reason: String| HfFolderError::BadConfig {
            path: config_path.clone(),
            reason,
        };
        let text = std::fs::read_to_string(&config_path).map_err(|e| bad_config(e.to_string()))?;
        let config: HfConfig =
            serde_json::from_str(&text).map_err(|e| bad_config(e.to_string()))?;
        let shape = config.llama().map_err(|source| HfFolderError::NotLlama {
            path: config_path.clone(),
            source,
        })?;
        let tensors = read_tensors(path)?;
        let tensor = |name: &'static str| {
            tensors.get(name).ok_or(HfFolderError::MissingTensor {
                folder: path.to_path_buf(),
                tensor: name,
            })
        };
        let dtype = tensor(MAIN_TENSOR)?.dtype.to_string().to_lowercase();
        tensor(EMBEDDING)?;
        let tied = config.tie_word_embeddings;
        let reads = tensors.iter().map(|(name, t)| {
            let rows = t.shape.first().copied().unwrap_or(1) as u64;
            (gguf_name(name), rows, t.bytes())
        });
        let summary = ModelSummary {
            params: tensors.values().map(StoredTensor::elements).sum(),
            weight_bytes: tensors.values().map(StoredTensor::bytes).sum(),
            dtype,
            tied_embeddings: tied,
            // transformers computes Llama-3's RoPE frequencies from config.json's rope_scaling
            rope_freqs: false,
            step_reads: Some(StepWeights::of(reads, tied)),
            config: shape,
        };
        Ok(HfFolder {
            path: path.to_path_buf(),
            summary,
            eos_token_ids: config.eos_token_id.map(|e| e.to_vec()).unwrap_or_default(),
        })
    }

    /// The folder's `tokenizer.json`.
    pub fn tokenizer_path(&self) -> PathBuf {
        self.path.join(TOKENIZER_FILE)
    }
}

/// The GGUF name of the tensors whose reads per pass differ from the rest (the token
/// embedding); any other name as it is (every other tensor is read whole).
fn gguf_name(name: &str) -> &str {
    match name {
        EMBEDDING => "token_embd.weight",
        other => other,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::weights::tests::write_safetensors;
    use super::weights::SINGLE_FILE;
    use super::*;
    use safetensors::Dtype;

    /// A config.json of a 2-layer Llama of width 64 (4 heads, 2 KV heads), vocabulary 100.
    pub(crate) const TINY_CONFIG: &str = r#"{
      "architectures": ["LlamaForCausalLM"], "model_type": "llama",
      "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
      "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 100,
      "max_position_embeddings": 256, "rope_theta": 10000.0, "rms_norm_eps": 1e-05,
      "tie_word_embeddings": false, "torch_dtype": "bfloat16", "eos_token_id": 2
    }"#;

    /// Writes a folder of [`TINY_CONFIG`] with `config` as its config.json and every tensor
    /// of the model in BF16 (zeros).
    pub(crate) fn tiny_folder(dir: &Path, config: &str) {
        std::fs::write(dir.join(CONFIG_FILE), config).unwrap();
        let (h, kv, ffn, vocab) = (64, 32, 128, 100);
        let mut tensors: Vec<(String, Vec<usize>)> = vec![
            (EMBEDDING.into(), vec![vocab, h]),
            ("lm_head.weight".into(), vec![vocab, h]),
            ("model.norm.weight".into(), vec![h]),
        ];
        for l in 0..2 {
            let p = format!("model.layers.{l}");
            for (name, shape) in [
                ("self_attn.q_proj.weight", vec![h, h]),
                ("self_attn.k_proj.weight", vec![kv, h]),
                ("self_attn.v_proj.weight", vec![kv, h]),
                ("self_attn.o_proj.weight", vec![h, h]),
                ("mlp.gate_proj.weight", vec![ffn, h]),
                ("mlp.up_proj.weight", vec![ffn, h]),
                ("mlp.down_proj.weight", vec![h, ffn]),
                ("input_layernorm.weight", vec![h]),
                ("post_attention_layernorm.weight", vec![h]),
            ] {
                tensors.push((format!("{p}.{name}"), shape));
            }
        }
        let tensors: Vec<(&str, Dtype, Vec<usize>)> = tensors
            .iter()
            .map(|(n, s)| (n.as_str(), Dtype::BF16, s.clone()))
            .collect();
        write_safetensors(&dir.join(SINGLE_FILE), &tensors);
    }

    #[test]
    fn a_folder_is_sized_from_its_config_and_safetensors_header() {
        let dir = tempfile::tempdir().unwrap();
        tiny_folder(dir.path(), TINY_CONFIG);
        let folder = HfFolder::open(dir.path()).unwrap();
        let s = &folder.summary;
        assert_eq!((s.config.layers, s.config.kv_dim()), (2, 32));
        let block = 2 * 64 * 64 + 2 * 32 * 64 + 3 * 128 * 64 + 2 * 64;
        let params = 2 * 100 * 64 + 64 + 2 * block;
        assert_eq!(s.params, params as u64);
        assert_eq!(s.weight_bytes, 2 * params as u64);
        assert_eq!(s.dtype, "bf16");
        assert!(!s.tied_embeddings && !s.rope_freqs);
        // untied: a pass reads one embedding row per token, the rest whole
        let reads = s.step_reads.unwrap();
        assert_eq!((reads.rows, reads.row_bytes), (100, 128));
        assert_eq!(reads.whole_bytes, s.weight_bytes - 100 * 128);
        assert_eq!(folder.eos_token_ids, [2]);
    }

    #[test]
    fn folders_that_are_no_llama_model_are_refused_naming_file_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let e = HfFolder::open(dir.path()).unwrap_err();
        assert!(
            e.to_string().contains("a folder without config.json"),
            "{e}"
        );
        assert!(e.is_input_error());

        tiny_folder(
            dir.path(),
            &TINY_CONFIG.replace(r#""vocab_size": 100,"#, ""),
        );
        let e = HfFolder::open(dir.path()).unwrap_err().to_string();
        assert!(e.contains("config.json: missing field `vocab_size`"), "{e}");

        let qwen = TINY_CONFIG.replace("LlamaForCausalLM", "Qwen2ForCausalLM");
        std::fs::write(dir.path().join(CONFIG_FILE), qwen).unwrap();
        let e = HfFolder::open(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("config.json: not a Llama model: architectures is [\"Qwen2ForCausalLM\"]"),
            "{e}"
        );

        std::fs::write(dir.path().join(CONFIG_FILE), TINY_CONFIG).unwrap();
        write_safetensors(
            &dir.path().join(SINGLE_FILE),
            &[(EMBEDDING, Dtype::BF16, vec![100, 64])],
        );
        let e = HfFolder::open(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("tensor 'model.layers.0.self_attn.q_proj.weight' is in none"),
            "{e}"
        );
    }
}
