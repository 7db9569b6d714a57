//! A Hugging Face `config.json` of a Llama model, read into the shape GGUF metadata gives.

use llamaperf_engine::model::LlamaConfig;
use serde::Deserialize;

/// The model class transformers builds for a Llama model.
pub const LLAMA_CLASS: &str = "LlamaForCausalLM";

/// The keys of a Hugging Face Llama `config.json` that llamaperf reads; the others (dropout,
/// initializers, `torch_dtype`, ...) are ignored. Keys transformers gives a default are
/// optional here with the same default; the shape's keys are required.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct HfConfig {
    /// Model classes the folder holds weights for (`["LlamaForCausalLM"]`).
    #[serde(default)]
    pub architectures: Option<Vec<String>>,
    /// The model family (`llama`), looked at where `architectures` is absent.
    #[serde(default)]
    pub model_type: Option<String>,
    /// Width of the residual stream.
    pub hidden_size: usize,
    /// Inner width of the SwiGLU feed-forward block.
    pub intermediate_size: usize,
    /// Number of transformer blocks.
    pub num_hidden_layers: usize,
    /// Number of query heads.
    pub num_attention_heads: usize,
    /// Number of key/value heads (default: one per query head).
    #[serde(default)]
    pub num_key_value_heads: Option<usize>,
    /// Dimension of one head, where stated (it must be `hidden_size / num_attention_heads`).
    #[serde(default)]
    pub head_dim: Option<usize>,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Longest sequence the model was trained for, in tokens.
    pub max_position_embeddings: usize,
    /// RoPE base frequency (default 10000, as transformers').
    #[serde(default = "default_rope_theta")]
    pub rope_theta: f32,
    /// Epsilon of the RMSNorm layers.
    pub rms_norm_eps: f32,
    /// Whether the output projection is the token embedding (default false, as transformers').
    #[serde(default)]
    pub tie_word_embeddings: bool,
    /// The end-of-sequence token, or several.
    #[serde(default)]
    pub eos_token_id: Option<TokenIds>,
}

/// A token id key that holds one id or a list (`eos_token_id = [128001, 128008, 128009]`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum TokenIds {
    /// One id.
    One(u32),
    /// Several ids.
    Many(Vec<u32>),
}

impl TokenIds {
    /// The ids, as a list.
    pub fn to_vec(&self) -> Vec<u32> {
        match self {
            TokenIds::One(id) => vec![*id],
            TokenIds::Many(ids) => ids.clone(),
        }
    }
}

fn default_rope_theta() -> f32 {
    10_000.0
}

/// Why a `config.json` does not describe a Llama model llamaperf can size.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HfConfigError {
    /// Another model class or family.
    #[error("not a Llama model: {found}; llamaperf runs {LLAMA_CLASS} (model_type \"llama\")")]
    NotLlama {
        /// What the file states, key and value.
        found: String,
    },
    /// The heads do not divide the width, or `head_dim` differs from their quotient.
    #[error("{0}")]
    BadShape(String),
}

impl HfConfig {
    /// Checks that the file is a Llama model and returns its shape.
    pub fn llama(&self) -> Result<LlamaConfig, HfConfigError> {
        match (&self.architectures, &self.model_type) {
            (Some(classes), _) if !classes.is_empty() => {
                if !classes.iter().any(|c| c == LLAMA_CLASS) {
                    return Err(HfConfigError::NotLlama {
                        found: format!("architectures is {classes:?}"),
                    });
                }
            }
            (_, Some(family)) if family == "llama" => {}
            (_, family) => {
                return Err(HfConfigError::NotLlama {
                    found: format!(
                        "architectures is absent and model_type is {}",
                        family
                            .as_deref()
                            .map_or("absent".into(), |f| format!("'{f}'"))
                    ),
                })
            }
        }
        let heads = self.num_attention_heads;
        let kv_heads = self.num_key_value_heads.unwrap_or(heads);
        if heads == 0
            || kv_heads == 0
            || !self.hidden_size.is_multiple_of(heads)
            || !heads.is_multiple_of(kv_heads)
        {
            return Err(HfConfigError::BadShape(format!(
                "num_attention_heads {heads} / num_key_value_heads {kv_heads} do not divide hidden_size {}",
                self.hidden_size
            )));
        }
        if let Some(dim) = self.head_dim.filter(|&d| d != self.hidden_size / heads) {
            return Err(HfConfigError::BadShape(format!(
                "head_dim {dim} is not hidden_size {} / num_attention_heads {heads}: llamaperf sizes heads of hidden_size / heads",
                self.hidden_size
            )));
        }
        Ok(LlamaConfig {
            layers: self.num_hidden_layers,
            hidden: self.hidden_size,
            ffn: self.intermediate_size,
            heads,
            kv_heads,
            vocab: self.vocab_size,
            context: self.max_position_embeddings,
            rope_base: self.rope_theta,
            rms_eps: self.rms_norm_eps,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SmolLM2-135M's config.json as transformers 4.51 writes it, trimmed of ignored keys.
    const SMOLLM2: &str = r#"{
      "architectures": ["LlamaForCausalLM"], "model_type": "llama", "head_dim": 64,
      "hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30,
      "num_attention_heads": 9, "num_key_value_heads": 3, "vocab_size": 49152,
      "max_position_embeddings": 8192, "rope_theta": 100000.0,
      "rms_norm_eps": 9.999999747378752e-06, "tie_word_embeddings": true,
      "torch_dtype": "float32", "eos_token_id": 2, "rope_scaling": null
    }"#;

    #[test]
    fn a_llama_config_gives_the_gguf_shape() {
        let config: HfConfig = serde_json::from_str(SMOLLM2).unwrap();
        let shape = config.llama().unwrap();
        assert_eq!(
            shape,
            LlamaConfig {
                layers: 30,
                hidden: 576,
                ffn: 1536,
                heads: 9,
                kv_heads: 3,
                vocab: 49152,
                context: 8192,
                rope_base: 100_000.0,
                rms_eps: 1e-5,
            }
        );
        assert!(config.tie_word_embeddings);
        assert_eq!(config.eos_token_id.unwrap().to_vec(), [2]);
    }

    #[test]
    fn defaults_are_transformers_and_eos_may_be_a_list() {
        let text = SMOLLM2
            .replace(r#""num_key_value_heads": 3,"#, "")
            .replace(r#""rope_theta": 100000.0,"#, "")
            .replace(r#""tie_word_embeddings": true,"#, "")
            .replace(r#""eos_token_id": 2"#, r#""eos_token_id": [2, 7]"#);
        let config: HfConfig = serde_json::from_str(&text).unwrap();
        let shape = config.llama().unwrap();
        assert_eq!((shape.kv_heads, shape.rope_base), (9, 10_000.0));
        assert!(!config.tie_word_embeddings);
        assert_eq!(config.eos_token_id.unwrap().to_vec(), [2, 7]);
    }

    #[test]
    fn other_models_and_odd_shapes_are_refused_by_key() {
        let mistral = SMOLLM2.replace("LlamaForCausalLM", "MistralForCausalLM");
        let e = serde_json::from_str::<HfConfig>(&mistral)
            .unwrap()
            .llama()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(r#"architectures is ["MistralForCausalLM"]"#),
            "{e}"
        );
        let untyped = SMOLLM2
            .replace(r#""architectures": ["LlamaForCausalLM"],"#, "")
            .replace(r#""model_type": "llama","#, r#""model_type": "gpt2","#);
        let e = serde_json::from_str::<HfConfig>(&untyped)
            .unwrap()
            .llama()
            .unwrap_err()
            .to_string();
        assert!(e.contains("model_type is 'gpt2'"), "{e}");
        let odd = SMOLLM2.replace(r#""head_dim": 64"#, r#""head_dim": 128"#);
        let e = serde_json::from_str::<HfConfig>(&odd)
            .unwrap()
            .llama()
            .unwrap_err()
            .to_string();
        assert!(e.contains("head_dim 128"), "{e}");
        let missing = SMOLLM2.replace(r#""intermediate_size": 1536,"#, "");
        let e = serde_json::from_str::<HfConfig>(&missing)
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing field `intermediate_size`"), "{e}");
    }
}
