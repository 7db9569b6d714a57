//! llama.cpp's own settings of a run (scenario keys and `run` flags), and what a run record
//! keeps of how llama.cpp ran.

use crate::amx::AmxSupport;
use llamaperf_engine::model::KvDtype;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Whether llama.cpp computes attention with its fused flash-attention kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlashAttn {
    /// llama.cpp decides (its default: on where the backend supports it).
    #[default]
    Auto,
    /// Always.
    On,
    /// Never.
    Off,
}

impl FlashAttn {
    /// Every value, for error messages.
    pub const ALL: [FlashAttn; 3] = [FlashAttn::Auto, FlashAttn::On, FlashAttn::Off];

    /// The name used in scenarios, on the command line and in results.
    pub fn name(self) -> &'static str {
        match self {
            FlashAttn::Auto => "auto",
            FlashAttn::On => "on",
            FlashAttn::Off => "off",
        }
    }

    /// llama.cpp's value.
    pub(crate) fn raw(self) -> llama_cpp_sys_2::llama_flash_attn_type {
        match self {
            FlashAttn::Auto => llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_AUTO,
            FlashAttn::On => llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_ENABLED,
            FlashAttn::Off => llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_DISABLED,
        }
    }
}

impl fmt::Display for FlashAttn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Error for a flash-attention value that does not exist.
#[derive(Debug, thiserror::Error)]
#[error("unknown flash attention setting '{0}'; valid: auto, on, off")]
pub struct UnknownFlashAttn(pub String);

impl FromStr for FlashAttn {
    type Err = UnknownFlashAttn;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| UnknownFlashAttn(s.to_string()))
    }
}

/// Tokens per physical batch (`n_ubatch`) where a run sets none: llama.cpp's default.
pub const DEFAULT_UBATCH: usize = 512;

/// The settings one llama.cpp engine is created with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlamaCppSettings {
    /// Flash attention.
    pub flash_attn: FlashAttn,
    /// Type of the cached keys and values.
    pub kv_dtype: KvDtype,
    /// Tokens per physical batch (`n_ubatch`): the prompt is computed in pieces of this many.
    pub ubatch: usize,
    /// Threads of the prompt's and of every decode step's computation.
    pub threads: usize,
    /// Why the AMX variants must not be loaded, whatever the probe finds; `None`: the probe
    /// decides. Only the process's first engine or vocabulary chooses the variant.
    pub amx_refused: Option<String>,
}

/// How llama.cpp ran, as a run record keeps it (the KV type is the record's own
/// `kv_dtype`). Unknown fields are ignored: the first records also held `kv_dtype` here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlamaCppRecord {
    /// The CPU backend variant that ran (`haswell`, `zen4`, `sapphirerapids`, ...).
    pub cpu_variant: String,
    /// ggml's features of that variant, as llama.cpp's system info lists them.
    pub features: String,
    /// What the AMX probe found (AMX variants run only where it says usable).
    pub amx: AmxSupport,
    /// Flash attention as set.
    pub flash_attn: FlashAttn,
    /// Tokens per logical batch (`n_batch`, as the context holds it): the whole prompt of
    /// every sequence.
    pub n_batch: usize,
    /// Tokens per physical batch (`n_ubatch`, as the context holds it).
    pub n_ubatch: usize,
    /// Threads llama.cpp was given (prompt and generation).
    pub threads: usize,
}
